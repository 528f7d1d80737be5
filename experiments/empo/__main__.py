"""``python -m experiments.empo`` from a checkout, ``python -m rljax.experiments.empo`` where installed:
the empo experiment's command line (``rljax run empo`` and its subcommands)."""
from rljax.cli import experiment_main

raise SystemExit(experiment_main("empo"))
