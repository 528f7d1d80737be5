"""``python -m experiments.goodhart.experiment`` (checkout) or ``python -m experiments.goodhart.experiment``: the goodhart experiment's command line (``rljax run goodhart`` and its subcommands)."""
from rljax.cli import experiment_main

raise SystemExit(experiment_main("goodhart"))
