"""What a resumed run may change: checks that ``--resume DIR`` continues the same computation.

A resume must name the run's own experiment and keep its member layout (variants x settings x
seeds). Overrides given on resume apply on top of the run's saved config; those that only steer
the runner (``runner.*``: logging, evaluation, checkpointing, chunking, progress) are free,
anything else changes what is computed and needs ``allow_changed_config``; accepted changes are
recorded in ``run.json`` with the update from which they apply.
"""
from __future__ import annotations

import json
import os
from typing import Any, Sequence

from rljax.checkpoint import PBT_FILE
from rljax.config import to_dict
from rljax.errors import ConfigError

FREE_SECTIONS = ("runner.",)  # keys that steer the runner, not the computation
LAYOUT_KEYS = ("runner.seed", "runner.num_seeds", "runner.seeds")  # checked as the member layout


def flat(d: Any, prefix: str = "") -> dict[str, Any]:
    """``{"ppo": {"lr": 1e-3}} -> {"ppo.lr": 1e-3}``."""
    if not isinstance(d, dict):
        return {prefix[:-1]: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flat(v, f"{prefix}{k}."))
    return out


def config_changes(old: dict, new: dict) -> dict[str, list]:
    """``{key: [old value, new value]}`` for every flattened key whose value differs."""
    a, b = flat(old), flat(new)
    return {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def computation_changes(changes: dict[str, list]) -> dict[str, list]:
    """The changes that alter what is computed (everything outside the free sections)."""
    return {k: v for k, v in changes.items() if not k.startswith(FREE_SECTIONS)}


def check_experiment(meta: dict, name: str, run_dir: str) -> None:
    """Refuses (one line) to resume ``run_dir`` as a plain run of ``name`` when it is a run of
    another experiment or a population-based training run (whose members the PBT wrapper owns)."""
    if os.path.isfile(os.path.join(run_dir, PBT_FILE)):
        raise ConfigError(f"--resume {run_dir} is a population-based training run; continue it with "
                          f"`rljax pbt --resume {run_dir}`")
    if meta.get("experiment") != name:
        raise ConfigError(f"--resume {run_dir} is a run of experiment {meta.get('experiment')!r}, "
                          f"not {name!r}; resume it with `rljax run {meta.get('experiment')} --resume {run_dir}`")


def resumed_config(experiment: Any, meta: dict, preset: str | None = None, config_file: str | None = None,
                   overrides: Sequence[str] | dict | None = None) -> Any:
    """The run's saved config with ``preset``, ``config_file`` and ``overrides`` applied on top
    (in that order), validated."""
    return experiment.make_config(preset, config_file, overrides, base=meta["config"])


def check_changes(saved: Any, cfg: Any, run_dir: str, allow_changed_config: bool) -> dict[str, list]:
    """The config changes from the run's ``saved`` config that a resume with ``cfg`` makes;
    raises (one line) when one changes the computation and ``allow_changed_config`` is false."""
    changes = config_changes(to_dict(saved), to_dict(cfg))  # both normalised by from_dict/to_dict
    refused = {k: v for k, v in computation_changes(changes).items() if k not in LAYOUT_KEYS}
    if refused and not allow_changed_config:
        shown = ", ".join(f"{k} {v[0]!r} -> {v[1]!r}" for k, v in list(refused.items())[:4])
        more = f" and {len(refused) - 4} more" if len(refused) > 4 else ""
        raise ConfigError(f"resuming {run_dir} with a changed config ({shown}{more}) would change its computation; "
                          f"pass --allow-changed-config to continue it so (recorded in run.json)")
    return changes


def _layout(members: Sequence[dict]) -> str:
    names = [m["name"] for m in members]
    seeds = sorted({m["seed"] for m in members})
    shown = ", ".join(names[:4]) + (f", ... ({len(names)} in all)" if len(names) > 4 else "")
    return f"{len(names)} member(s) [{shown}], seeds {seeds}"


def check_layout(meta: dict, members: Sequence[dict], run_dir: str) -> None:
    """Raises (one line, naming both) when ``members`` differ from the run's saved members."""
    saved = meta.get("members", [])
    if json.loads(json.dumps(list(saved))) != json.loads(json.dumps(list(members))):  # as run.json holds them
        raise ConfigError(f"--resume {run_dir}: the run has {_layout(saved)}, this command asks for "
                          f"{_layout(members)}; a resume keeps the run's members and seeds")
