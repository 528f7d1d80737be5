"""``python -m experiments.goodhart`` from a checkout, ``python -m rljax.experiments.goodhart`` where installed:
the goodhart experiment's command line (``rljax run goodhart`` and its subcommands)."""
from rljax.cli import experiment_main

raise SystemExit(experiment_main("goodhart"))
