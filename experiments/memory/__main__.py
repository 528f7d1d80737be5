"""``python -m experiments.memory.experiment`` (checkout) or ``python -m experiments.memory.experiment``: the memory experiment's command line (``rljax run memory`` and its subcommands)."""
from rljax.cli import experiment_main

raise SystemExit(experiment_main("memory"))
