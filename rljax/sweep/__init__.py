"""Hyperparameter sweeps and multi-seed validation as reproducible, resumable jobs.

``space`` (search spaces), ``jobs`` (job ids, results table), ``scheduler`` (``run_sweep``,
``run_validation``), ``report`` (Markdown/JSON/plots); the engine side is ``engine.make_train_fn``.
"""
from rljax.sweep.jobs import Job, ResultsTable, pending
from rljax.sweep.scheduler import PHASE1_SEEDS, PHASE2_SEEDS, run_sweep, run_validation
from rljax.sweep.space import LogNormal, Space, Uniform, get_space, register_space

__all__ = ["Job", "ResultsTable", "pending", "PHASE1_SEEDS", "PHASE2_SEEDS", "run_sweep", "run_validation",
           "LogNormal", "Space", "Uniform", "get_space", "register_space"]
