"""``python -m experiments.communities`` from a checkout, ``python -m rljax.experiments.communities`` where installed:
the communities experiment's command line (``rljax run communities`` and its subcommands)."""
from rljax.cli import experiment_main

raise SystemExit(experiment_main("communities"))
