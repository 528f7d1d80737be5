"""A PBT run: any experiment's algorithm wrapped in :class:`~rljax.pbt.population.PBT`, driven by
the ordinary runner (members, chunks, logs, evaluation, checkpoints, resume).

The run directory is a normal run directory plus ``pbt.json`` (the PBT settings, so
``rljax pbt --resume DIR`` rebuilds the same program) and ``lineage.json``/``lineage.csv``.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Sequence

from rljax import checkpoint
from rljax.errors import ConfigError
from rljax.experiment import Experiment, load_experiment
from rljax.pbt.lineage import LineageWriter
from rljax.pbt.population import PBT, Explored, PBTConfig

PBT_FILE = checkpoint.PBT_FILE


def pbt_experiment(experiment: Experiment, cfg: PBTConfig, variant: str | None = None) -> Experiment:
    """``experiment`` whose algorithm is wrapped in PBT (one task variant: ``variant``, or the
    experiment's only one; populations never mix variants)."""
    from rljax.sweep.engine import only_variant

    base = experiment if variant is None else only_variant(experiment, variant)

    def build(run_cfg: Any):
        setup = base.build(run_cfg)
        if len(setup.variants) != 1:
            raise ConfigError(f"pbt trains one task variant; {experiment.name} has "
                              f"{', '.join(v for v, _ in setup.variants)}: choose one with --variant")
        inner = setup.algorithm
        cfg.validate(tuple(inner.vary_keys), inner.config_section, inner.num_updates)
        return dataclasses.replace(setup, algorithm=PBT(inner, cfg))

    return dataclasses.replace(experiment, build=build)


def settings(cfg: PBTConfig, variant: str | None) -> dict:
    return {"pbt": dataclasses.asdict(cfg), "variant": variant}


def from_settings(data: dict) -> tuple[PBTConfig, str | None]:
    p = dict(data["pbt"])
    p["explore"] = tuple(Explored(**e) for e in p["explore"])
    p["factors"] = tuple(p["factors"])
    return PBTConfig(**p), data.get("variant")


def pbt_runner(experiment: Experiment, run_cfg: Any, out_dir: str, cfg: PBTConfig, variant: str | None = None,
               on_chunk_end: Sequence[Callable] = ()):
    """A new PBT run of ``experiment`` into ``out_dir``; members ``cfg.members`` per seed of
    ``run_cfg.runner``."""
    from rljax.runner import Runner

    runner = Runner(pbt_experiment(experiment, cfg, variant), run_cfg, out_dir,
                    grid=[{"member": j} for j in range(cfg.members)],
                    on_chunk_end=[LineageWriter(), *on_chunk_end])
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, PBT_FILE), "w") as f:
        json.dump({"experiment": experiment.name, **settings(cfg, variant)}, f, indent=1)
    return runner


def resume_pbt(run_dir: str, on_chunk_end: Sequence[Callable] = ()):
    """A runner that continues the PBT run in ``run_dir`` from its latest complete checkpoint."""
    from rljax.checkpoint import read_run_json
    from rljax.config import from_dict
    from rljax.runner import Runner

    path = os.path.join(run_dir, PBT_FILE)
    if not os.path.isfile(path):
        raise ConfigError(f"{run_dir} is not a PBT run (no {PBT_FILE})")
    with open(path) as f:
        data = json.load(f)
    cfg, variant = from_settings(data)
    meta = read_run_json(run_dir)
    exp = load_experiment(meta["experiment"])
    run_cfg = from_dict(exp.config_cls, meta["config"])
    return Runner(pbt_experiment(exp, cfg, variant), run_cfg, run_dir, grid=meta.get("grid") or None,
                  on_chunk_end=[LineageWriter(), *on_chunk_end], resume=True)
