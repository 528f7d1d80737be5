"""``python -m experiments.probe.experiment`` (checkout) or ``python -m experiments.probe.experiment``: the probe experiment's command line (``rljax run probe`` and its subcommands)."""
from rljax.cli import experiment_main

raise SystemExit(experiment_main("probe"))
