"""Writes per-member metrics from Python between chunks: CSV always, TensorBoard and W&B on
request. Each member (seed / trial / variant) keeps its own series; nothing is averaged away."""
from __future__ import annotations

import csv
import math
import os
from typing import Any, Sequence

import numpy as np

from rljax.errors import ConfigError


def _truncate_csv(path: str, max_update: int) -> None:
    """On resume, drop rows written after the checkpoint we restart from."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= max_update]
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(keep)


class CsvSeries:
    """One CSV file with a fixed header taken from the first row written."""

    def __init__(self, path: str, resume_from: int | None = None):
        self.path = path
        self.header: list[str] | None = None
        if resume_from is not None and os.path.exists(path):
            _truncate_csv(path, resume_from)
            with open(path, newline="") as f:
                first = next(csv.reader(f), None)
            self.header = first
        self._file = open(path, "a", newline="")
        self._writer = csv.writer(self._file)

    def write(self, row: dict[str, Any]) -> None:
        if self.header is None:
            self.header = list(row)
            self._writer.writerow(self.header)
        self._writer.writerow([_fmt(row.get(k, "")) for k in self.header])

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _fmt(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return "" if math.isnan(v) else f"{float(v):.6g}"
    if isinstance(v, np.integer):
        return int(v)
    return v


class RunLogger:
    """``members``: names used for file names (``metrics_<name>.csv``) and TensorBoard runs."""

    def __init__(self, run_dir: str, members: Sequence[str], tensorboard: bool = False, wandb: bool = False,
                 wandb_project: str = "rljax", wandb_offline: bool = True, config: dict | None = None,
                 resume_from: int | None = None, log_episodes: bool = False):
        self.members = list(members)
        self.updates = [CsvSeries(os.path.join(run_dir, f"metrics_{m}.csv"), resume_from) for m in members]
        self.episodes = (
            [CsvSeries(os.path.join(run_dir, f"episodes_{m}.csv"), resume_from) for m in members] if log_episodes else None
        )
        self.tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self.tb = [SummaryWriter(os.path.join(run_dir, "tb", m)) for m in members]
        self.wandb_run = None
        if wandb:
            try:
                import wandb as wb
            except ImportError:
                raise ConfigError("runner.wandb=true needs the wandb package: pip install 'rljax[wandb]'") from None
            self.wandb_run = wb.init(project=wandb_project, config=config, dir=run_dir,
                                     mode="offline" if wandb_offline else "online", reinit=True)

    def log_updates(self, first_update: int, batch_size: int, metrics: dict[str, np.ndarray]) -> None:
        """``metrics[name]``: ``[M, K]`` for K consecutive updates starting at ``first_update``."""
        scalars = {k: v for k, v in metrics.items() if np.ndim(v) == 2}
        num = next(iter(scalars.values())).shape[1]
        for i, series in enumerate(self.updates):
            for j in range(num):
                update = first_update + j + 1
                row = {"update": update, "env_steps": update * batch_size}
                row.update({k: v[i, j] for k, v in scalars.items()})
                series.write(row)
                if self.tb is not None:
                    for k, v in scalars.items():
                        if np.isfinite(v[i, j]):
                            self.tb[i].add_scalar(k, float(v[i, j]), update * batch_size)
            series.flush()
        if self.wandb_run is not None:
            for j in range(num):
                update = first_update + j + 1
                self.wandb_run.log(
                    {f"{m}/{k}": float(v[i, j]) for i, m in enumerate(self.members) for k, v in scalars.items()},
                    step=update * batch_size,
                )

    def log_episode_records(self, first_update: int, batch_size: int, num_envs: int, records: dict[str, np.ndarray]) -> None:
        """``records[name]``: ``[M, K, T, N]`` per-step arrays with ``episode_done`` marking ends."""
        if self.episodes is None:
            return
        done = records["episode_done"]
        cols = [k for k in records if k != "episode_done"]
        for i, series in enumerate(self.episodes):
            ks, ts, ns = np.nonzero(done[i])
            for k, t, n in zip(ks, ts, ns):
                update = first_update + k + 1
                row = {"update": update, "env_steps": (update - 1) * batch_size + (t + 1) * num_envs, "env": n}
                row.update({c[8:] if c.startswith("episode_") else c: records[c][i, k, t, n] for c in cols})
                series.write(row)
            series.flush()

    def log_eval(self, update: int, batch_size: int, returns: np.ndarray) -> None:
        if self.tb is not None:
            for i, r in enumerate(returns):
                self.tb[i].add_scalar("eval_return", float(r), update * batch_size)
        if self.wandb_run is not None:
            self.wandb_run.log({f"{m}/eval_return": float(r) for m, r in zip(self.members, returns)},
                               step=update * batch_size)

    def close(self) -> None:
        for s in self.updates + (self.episodes or []):
            s.close()
        if self.tb is not None:
            for w in self.tb:
                w.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()
