"""Runs batches of sweep/validation jobs on the engine: all (configuration, seed) pairs of a
call are members of ONE compiled program (hyperparameters and seeds are a vmapped axis).

Any algorithm can be swept: the keys a sweep may vary are the ones its algorithm declares
vmappable (``Algorithm.vary_keys`` of ``Algorithm.config_section``, the keys ``--vary`` takes),
e.g. PPO's numeric fields for CartPole, self-play and harvest, EMPO's learning rates and
``beta_r``. An experiment with several task variants (treatment and control arms) trains every
variant of a job in the same program and scores each (``eval_return_by_variant``; the job's
``eval_return`` is their mean), or, with ``variant=NAME``, trains only that one.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Sequence

import numpy as np

from rljax.errors import ConfigError
from rljax.experiment import Experiment
from rljax.runner import Runner

TrainFn = Callable[[list[dict], list[int]], list[dict]]


def only_variant(experiment: Experiment, name: str) -> Experiment:
    """``experiment`` restricted to its task variant ``name`` (an unknown name: ``ConfigError``)."""

    def build(cfg: Any):
        setup = experiment.build(cfg)
        chosen = tuple((v, p) for v, p in setup.variants if v == name)
        if not chosen:
            raise ConfigError(f"{experiment.name} has no variant {name!r}; available: "
                              + ", ".join(v for v, _ in setup.variants))
        return dataclasses.replace(setup, variants=chosen)

    return dataclasses.replace(experiment, build=build)


def check_keys(keys: Sequence[str], section: str, experiment: Experiment, cfg: Any) -> None:
    """Raises ``ConfigError`` unless every key is a vmappable hyperparameter of ``section`` in
    the experiment's algorithm."""
    alg = experiment.build(cfg).algorithm
    if section != alg.config_section:
        raise ConfigError(f"sweep section {section!r} does not match {experiment.name}'s algorithm, whose "
                          f"vmappable section is {alg.config_section!r}")
    for k in keys:
        if k not in alg.vary_keys:
            raise ConfigError(f"sweep parameter {section}.{k} is not a vmappable hyperparameter of "
                              f"{experiment.name}; use one of " + ", ".join(f"{section}.{v}" for v in alg.vary_keys))


def make_train_fn(experiment: Experiment, base_cfg: Any, out_root: str, progress: bool = True,
                  variant: str | None = None) -> TrainFn:
    """``train_fn(configs, seeds)`` -> one metrics dict per (config, seed), config-major.

    ``configs`` hold values of the algorithm's ``vary_keys``; everything else comes from
    ``base_cfg``. ``variant``: train only that task variant (``None``: all of them, scored per
    variant). Each call writes a normal run directory under ``out_root``.
    """
    if variant is not None:
        experiment = only_variant(experiment, variant)
    alg = experiment.build(base_cfg).algorithm
    calls = [0]

    def train_fn(configs: list[dict], seeds: list[int]) -> list[dict]:
        for c in configs:
            bad = [k for k in c if k not in alg.vary_keys]
            if bad:
                raise ConfigError(f"sweep parameter {alg.config_section}.{bad[0]} is not a vmappable hyperparameter "
                                  f"of {experiment.name}")
        runner_cfg = dataclasses.replace(base_cfg.runner, seeds=tuple(int(s) for s in seeds), progress=progress)
        cfg = dataclasses.replace(base_cfg, runner=runner_cfg)
        out = os.path.join(out_root, f"batch{calls[0]:04d}")
        while os.path.exists(os.path.join(out, "run.json")):  # a rerun after a crash
            calls[0] += 1
            out = os.path.join(out_root, f"batch{calls[0]:04d}")
        calls[0] += 1
        runner = Runner(experiment, cfg, out, grid=[dict(c) for c in configs])
        summary = runner.run()
        variants = [v for v, _ in runner.setup.variants]
        # Members are variant-major (variants x settings x seeds): one block of jobs per variant.
        per_variant = len(configs) * len(seeds)
        members = summary["members"]
        out_rows = []
        for j in range(per_variant):
            rows = [members[v * per_variant + j] for v in range(len(variants))]
            ret = [r["eval_return"] for r in rows]
            m = {"eval_return": float(np.mean(ret)), "eval_return_std": float(np.mean([r["eval_return_std"] for r in rows])),
                 "train_episode_return": float(np.mean([r["train_episode_return"] for r in rows])),
                 "env_steps": int(sum(r["env_steps"] for r in rows)),
                 "steps_per_second": float(sum(r["steps_per_second"] for r in rows)), "run_dir": out,
                 "member": rows[0]["name"] if len(rows) == 1 else [r["name"] for r in rows]}
            if len(variants) > 1:
                m["eval_return_by_variant"] = {v: float(r) for v, r in zip(variants, ret)}
            out_rows.append(m)
        return out_rows

    return train_fn
