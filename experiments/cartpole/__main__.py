"""``python -m experiments.cartpole`` from a checkout, ``python -m rljax.experiments.cartpole`` where installed:
the cartpole experiment's command line (``rljax run cartpole`` and its subcommands)."""
from rljax.cli import experiment_main

raise SystemExit(experiment_main("cartpole"))
