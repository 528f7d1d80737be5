"""``python -m experiments.cartpole.experiment`` (checkout) or ``python -m experiments.cartpole.experiment``: the cartpole experiment's command line (``rljax run cartpole`` and its subcommands)."""
from rljax.cli import experiment_main

raise SystemExit(experiment_main("cartpole"))
