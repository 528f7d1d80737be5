"""Orbax checkpoints of the whole (member-batched) train state.

Two managers under ``<run>/checkpoints``: ``latest`` keeps the newest N (used by ``--resume``)
and ``best`` keeps the N best by mean evaluation return. Orbax writes to a temporary directory
and renames it when complete, so a run killed mid-save resumes from the last complete step.
"""
from __future__ import annotations

import json
import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from rljax.errors import ConfigError


class Checkpointer:
    def __init__(self, run_dir: str, keep_latest: int = 2, keep_best: int = 1, metadata: dict | None = None):
        root = os.path.abspath(os.path.join(run_dir, "checkpoints"))
        self.latest = ocp.CheckpointManager(
            os.path.join(root, "latest"),
            options=ocp.CheckpointManagerOptions(max_to_keep=keep_latest, create=True),
            metadata=metadata or {},
        )
        self.best = None
        # Two managers saving the same step collide on orbax's per-step barrier names when
        # several processes save; multi-process runs keep latest-N only.
        if keep_best > 0 and jax.process_count() == 1:
            self.best = ocp.CheckpointManager(
                os.path.join(root, "best"),
                options=ocp.CheckpointManagerOptions(
                    max_to_keep=keep_best, best_fn=lambda m: m["eval_return"], best_mode="max", create=True
                ),
                metadata=metadata or {},
            )

    def save(self, step: int, state: Any, eval_return: float | None = None) -> None:
        self.latest.save(step, args=ocp.args.StandardSave(state))
        if self.best is not None and eval_return is not None:
            self.best.save(step, args=ocp.args.StandardSave(state), metrics={"eval_return": float(eval_return)})

    def latest_step(self) -> int | None:
        return self.latest.latest_step()

    def restore(self, abstract_state: Any, step: int | None = None, which: str = "latest") -> Any:
        mngr = self.latest if which == "latest" else self.best
        if mngr is None:
            raise ConfigError("this run keeps no best checkpoints")
        step = mngr.latest_step() if step is None and which == "latest" else (step or mngr.best_step())
        if step is None:
            raise ConfigError(f"no complete {which} checkpoint in {mngr.directory}")
        return mngr.restore(step, args=ocp.args.StandardRestore(abstract_state))

    def wait(self) -> None:
        self.latest.wait_until_finished()
        if self.best is not None:
            self.best.wait_until_finished()

    def close(self) -> None:
        self.latest.close()
        if self.best is not None:
            self.best.close()


def abstract_like(state: Any) -> Any:
    """Shape/dtype/sharding skeleton of ``state`` for :meth:`Checkpointer.restore`."""
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, state)


def read_run_json(run_dir: str) -> dict:
    path = os.path.join(run_dir, "run.json")
    if not os.path.isdir(run_dir):
        raise ConfigError(f"run directory not found: {run_dir}")
    if not os.path.isfile(path):
        raise ConfigError(f"{run_dir} is not an rljax run directory (no run.json)")
    with open(path) as f:
        return json.load(f)
