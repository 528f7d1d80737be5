"""``python -m experiments.communities.experiment`` (checkout) or ``python -m experiments.communities.experiment``: the communities experiment's command line (``rljax run communities`` and its subcommands)."""
from rljax.cli import experiment_main

raise SystemExit(experiment_main("communities"))
