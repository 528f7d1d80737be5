"""``python -m experiments.pursuit`` from a checkout, ``python -m rljax.experiments.pursuit`` where installed:
the pursuit experiment's command line (``rljax run pursuit`` and its subcommands)."""
from rljax.cli import experiment_main

raise SystemExit(experiment_main("pursuit"))
