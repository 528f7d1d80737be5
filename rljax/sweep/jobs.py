"""Jobs with stable ids, and an append-only results table that survives crashes.

A job is one training run: (experiment, configuration, seed[, variant]). Its id is a hash of
exactly those, so the same run asked for twice -- by a rerun of the same sweep or validation --
is recognised and not trained again. (A validation never asks for a sweep's job: their seeds
come from disjoint streams, see ``rljax.sweep.seeds``.)
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

# Runner settings that change how a run is driven, not its numbers: left out of job ids.
NON_RESULT_RUNNER_KEYS = ("seed", "num_seeds", "seeds", "chunk_updates", "eval_every", "checkpoint_every",
                          "checkpoint_minutes", "keep_latest", "keep_best", "progress", "tensorboard", "wandb",
                          "wandb_project", "wandb_offline", "log_episodes")

ID_LENGTH = 16  # hex digits of sha256: 64 bits, no collision in any realistic number of jobs


def plain(x: Any) -> Any:
    """JSON-ready copy: numpy scalars/arrays to Python, tuples to lists, keys to str."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return [plain(v) for v in x.tolist()]
    if isinstance(x, np.generic):
        return x.item()
    return x


def canonical_config(config: dict) -> dict:
    """The part of a config dict that determines a run's results (a deep, JSON-ready copy)."""
    out = plain(config)
    runner = out.get("runner")
    if isinstance(runner, dict):
        for k in NON_RESULT_RUNNER_KEYS:
            runner.pop(k, None)
    return out


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, floats as their shortest round-trip ``repr`` (so ``1e-3``,
    ``0.001`` and ``np.float64(0.001)`` all serialise as ``0.001``). ``1`` and ``1.0`` stay
    distinct (int vs float), as they may mean different things to a config loader; non-finite
    floats are written as ``NaN``/``Infinity``."""
    return json.dumps(plain(obj), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Job:
    """One training run. ``kind`` ("sweep", "validate", ...) is a label, not part of the id:
    the same computation asked for twice is recognised and reused. ``variant``: the one task
    variant the job trains, or ``None`` for all of the experiment's variants together (part of
    the id only when set, so ids of single-variant jobs are what they always were)."""

    experiment: str
    config: dict = field(hash=False)
    seed: int = 0
    kind: str = "sweep"
    variant: str | None = None

    @property
    def id(self) -> str:
        payload = {"experiment": self.experiment, "config": canonical_config(self.config), "seed": int(self.seed)}
        if self.variant is not None:
            payload["variant"] = self.variant
        return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:ID_LENGTH]


class ResultsTable:
    """Append-only JSONL, one finished job per line, flushed and fsynced line by line.

    A crash can only tear the line being written; lines that do not parse are ignored on read,
    and the next append starts on a fresh line. Later records of an id win over earlier ones.
    """

    def __init__(self, path: str):
        self.path = path

    def records(self) -> list[dict]:
        """All complete records, in file order."""
        if not os.path.exists(self.path):
            return []
        out = []
        with open(self.path, "rb") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue
                if isinstance(rec, dict) and "id" in rec:
                    out.append(rec)
        return out

    def by_id(self) -> dict[str, dict]:
        """Latest successful record per job id."""
        return {r["id"]: r for r in self.records() if r.get("status") == "done"}

    def done_ids(self) -> set[str]:
        """Ids of jobs with a successful record (failed jobs are retried)."""
        return set(self.by_id())

    def append(self, job: Job, metrics: dict, wall_seconds: float, status: str = "done") -> dict:
        """Writes one record and makes it durable before returning it."""
        import jax  # lazily: reading a table needs no JAX

        import rljax

        record = {"id": job.id, "experiment": job.experiment, "kind": job.kind, "seed": int(job.seed),
                  "variant": job.variant, "config": plain(job.config), "status": status, "metrics": plain(metrics),
                  "wall_seconds": float(wall_seconds), "rljax_version": rljax.__version__,
                  "jax_version": jax.__version__, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path, "ab") as f:
            torn = f.tell() > 0 and _last_byte(self.path) != b"\n"
            f.write((("\n" if torn else "") + json.dumps(record) + "\n").encode())
            f.flush()
            os.fsync(f.fileno())
        return record


def _last_byte(path: str) -> bytes:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1)


def pending(jobs: Iterable[Job], table: ResultsTable) -> list[Job]:
    """The jobs without a successful record in ``table``, in order, without duplicates."""
    done = table.done_ids()
    seen: set[str] = set()
    out = []
    for j in jobs:
        if j.id not in done and j.id not in seen:
            seen.add(j.id)
            out.append(j)
    return out
