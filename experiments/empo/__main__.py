"""``python -m experiments.empo.experiment`` (checkout) or ``python -m experiments.empo.experiment``: the empo experiment's command line (``rljax run empo`` and its subcommands)."""
from rljax.cli import experiment_main

raise SystemExit(experiment_main("empo"))
