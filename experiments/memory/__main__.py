"""``python -m experiments.memory`` from a checkout, ``python -m rljax.experiments.memory`` where installed:
the memory experiment's command line (``rljax run memory`` and its subcommands)."""
from rljax.cli import experiment_main

raise SystemExit(experiment_main("memory"))
