"""Runs batches of sweep/validation jobs on the engine: all (configuration, seed) pairs of a
call are members of ONE compiled program (hyperparameters and seeds are a vmapped axis)."""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

from rljax.errors import ConfigError
from rljax.experiment import Experiment
from rljax.ppo import NUMERIC_FIELDS
from rljax.runner import Runner

TrainFn = Callable[[list[dict], list[int]], list[dict]]


def make_train_fn(experiment: Experiment, base_cfg: Any, out_root: str, progress: bool = True) -> TrainFn:
    """``train_fn(configs, seeds)`` -> one metrics dict per (config, seed), config-major.

    ``configs`` hold PPO numeric hyperparameters (``ppo.NUMERIC_FIELDS`` names); everything else
    comes from ``base_cfg``. Each call writes a normal run directory under ``out_root``.
    """
    calls = [0]

    def train_fn(configs: list[dict], seeds: list[int]) -> list[dict]:
        for c in configs:
            bad = [k for k in c if k not in NUMERIC_FIELDS]
            if bad:
                raise ConfigError(f"sweep parameter {bad[0]!r} is not a vmappable PPO hyperparameter")
        runner_cfg = dataclasses.replace(base_cfg.runner, seeds=tuple(int(s) for s in seeds), progress=progress)
        cfg = dataclasses.replace(base_cfg, runner=runner_cfg)
        out = os.path.join(out_root, f"batch{calls[0]:04d}")
        while os.path.exists(os.path.join(out, "run.json")):  # a rerun after a crash
            calls[0] += 1
            out = os.path.join(out_root, f"batch{calls[0]:04d}")
        calls[0] += 1
        runner = Runner(experiment, cfg, out, grid=[dict(c) for c in configs])
        if len(runner.setup.variants) != 1:
            raise ConfigError(f"sweeps need an experiment with one task variant; {experiment.name} has "
                              f"{len(runner.setup.variants)}")
        summary = runner.run()
        return [
            {"eval_return": m["eval_return"], "eval_return_std": m["eval_return_std"],
             "train_episode_return": m["train_episode_return"], "env_steps": m["env_steps"],
             "steps_per_second": m["steps_per_second"], "run_dir": out, "member": m["name"]}
            for m in summary["members"]
        ]

    return train_fn
