"""``python -m experiments.probe`` from a checkout, ``python -m rljax.experiments.probe`` where installed:
the probe experiment's command line (``rljax run probe`` and its subcommands)."""
from rljax.cli import experiment_main

raise SystemExit(experiment_main("probe"))
