"""``python -m experiments.pursuit.experiment`` (checkout) or ``python -m experiments.pursuit.experiment``: the pursuit experiment's command line (``rljax run pursuit`` and its subcommands)."""
from rljax.cli import experiment_main

raise SystemExit(experiment_main("pursuit"))
