"""Writes metrics from Python between chunks, with host work that does not grow with members.

Every run writes columnar files with the member as a column, one table per run:

- ``metrics.csv``: one row per (member, update): ``member, name, update, env_steps, <metrics>``;
- ``eval.csv``: one row per (member, evaluation): mean evaluation return and the other
  per-episode means;
- ``episodes.csv`` (``runner.log_episodes``): one row per finished training episode.

They are built as whole columns with numpy and written by pyarrow's C++ CSV writer, so a chunk
costs the same few Python calls at 4 or 4096 members. Runs with at most ``per_member_files``
members also get the familiar ``metrics_<member>.csv`` / ``episodes_<member>.csv`` files (each
member its own series, nothing averaged away). TensorBoard and W&B get one series per member in
those small runs, and quantiles across members (min, p25, median, p75, max) in large ones; the
columnar files always hold every member.
"""
from __future__ import annotations

import csv
import io
import math
import os
from typing import Any, Sequence

import numpy as np

from rljax.optional import require

QUANTILES = {"min": 0.0, "p25": 0.25, "median": 0.5, "p75": 0.75, "max": 1.0}


def _truncate_csv(path: str, max_update: int) -> None:
    """On resume, drop rows written after the checkpoint we restart from (column ``update``).
    The rows kept stay byte for byte as written (parsing and rewriting them would not: pyarrow
    reads ``nan`` as a missing value and writes it back empty), so a resumed run's logs equal
    an uninterrupted run's."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        lines = f.read().splitlines(keepends=True)
    if not lines:
        return
    header = next(csv.reader(lines[:1]))
    col = header.index("update") if "update" in header else 0
    rows = [l for l in lines[1:] if l.endswith("\n")]  # a last line without one was cut off by the kill
    keep = lines[:1] + [l for l, r in zip(rows, csv.reader(rows)) if r and int(r[col]) <= max_update]
    with open(path, "w", newline="") as f:
        f.writelines(keep)


class ColumnarCsv:
    """An append-only CSV written a whole table at a time (pyarrow's C++ writer).

    The header comes from the first table; later tables must have the same columns. On resume
    the rows with ``update > resume_from`` are dropped first (a chunk the crash cut off).
    """

    def __init__(self, path: str, resume_from: int | None = None):
        self.path = path
        self.has_header = False
        if resume_from is not None and os.path.exists(path):
            _truncate_csv(path, resume_from)
            self.has_header = os.path.getsize(path) > 0
        elif os.path.exists(path):
            os.remove(path)

    def write(self, columns: dict[str, np.ndarray]) -> None:
        """Appends rows; every column has the same length."""
        import pyarrow as pa

        table = pa.table({k: np.asarray(v) for k, v in columns.items()})
        if table.num_rows == 0 and self.has_header:
            return
        with open(self.path, "ab") as f:
            f.write(_csv_bytes(table, header=not self.has_header))
            f.flush()
        self.has_header = True


def _csv_bytes(table: Any, header: bool) -> bytes:
    import pyarrow.csv as pcsv

    buf = io.BytesIO()
    pcsv.write_csv(table, buf, write_options=pcsv.WriteOptions(include_header=header, quoting_style="needed"))
    return buf.getvalue()


class CsvSeries:
    """One member's CSV with a fixed header taken from the first row written."""

    def __init__(self, path: str, resume_from: int | None = None):
        self.path = path
        self.header: list[str] | None = None
        if resume_from is not None and os.path.exists(path):
            _truncate_csv(path, resume_from)
            with open(path, newline="") as f:
                first = next(csv.reader(f), None)
            self.header = first
        self._file = open(path, "a" if resume_from is not None else "w", newline="")
        self._writer = csv.writer(self._file)

    def write_rows(self, columns: dict[str, np.ndarray]) -> None:
        if self.header is None:
            self.header = list(columns)
            self._writer.writerow(self.header)
        n = len(next(iter(columns.values())))
        cols = [columns.get(k, np.full(n, "")) for k in self.header]
        self._writer.writerows([_fmt(c[r]) for c in cols] for r in range(n))
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
    """Logs of one run.

    ``members``: member names (their index is the ``member`` column); ``steps_per_update``:
    environment steps per update (the ``env_steps`` column and the TensorBoard x-axis);
    ``per_member``: also write one CSV (and TensorBoard run) per member; ``tag_names``: the
    episode ``tag`` column is written as these names (tag ``i`` -> ``tag_names[i]``).
    """

    def __init__(self, run_dir: str, members: Sequence[str], steps_per_update: int, per_member: bool = True,
                 tensorboard: bool = False, wandb: bool = False, wandb_project: str = "rljax",
                 wandb_offline: bool = True, config: dict | None = None, resume_from: int | None = None,
                 log_episodes: bool = False, tag_names: Sequence[str] | None = None):
        self.tag_names = None if tag_names is None else np.asarray(list(tag_names), dtype=object)
        self.members = list(members)
        self.names = np.asarray(self.members, dtype=object)
        self.steps_per_update = steps_per_update
        self.per_member = per_member
        join = lambda name: os.path.join(run_dir, name)
        self.metrics = ColumnarCsv(join("metrics.csv"), resume_from)
        self.evals = ColumnarCsv(join("eval.csv"), resume_from)
        self.episodes = ColumnarCsv(join("episodes.csv"), resume_from) if log_episodes else None
        self.member_updates = [CsvSeries(join(f"metrics_{m}.csv"), resume_from) for m in members] if per_member else []
        self.member_episodes = (
            [CsvSeries(join(f"episodes_{m}.csv"), resume_from) for m in members] if per_member and log_episodes else []
        )
        self.tb = None
        if tensorboard:
            require("tensorboardX", "runner.tensorboard=true")
            from tensorboardX import SummaryWriter

            if per_member:
                self.tb = [SummaryWriter(os.path.join(run_dir, "tb", m)) for m in members]
            else:
                self.tb = [SummaryWriter(os.path.join(run_dir, "tb", "members"))]
        self.wandb_run = None
        if wandb:
            require("wandb", "runner.wandb=true")
            import wandb as wb

            self.wandb_run = wb.init(project=wandb_project, config=config, dir=run_dir,
                                     mode="offline" if wandb_offline else "online", reinit=True)

    # -- per update ------------------------------------------------------------------------
    def log_updates(self, first_update: int, metrics: dict[str, np.ndarray], every: int = 1,
                    last_update: int | None = None) -> None:
        """``metrics[name]``: ``[M, K]`` for K consecutive updates after ``first_update``. Only
        updates that are multiples of ``every`` (and ``last_update``) are written; the choice
        depends on the update number alone, so a resumed run writes the rows an uninterrupted
        one does."""
        scalars = {k: np.asarray(v) for k, v in metrics.items() if np.ndim(v) == 2}
        m, k = next(iter(scalars.values())).shape
        updates = first_update + 1 + np.arange(k)
        if every > 1:
            keep = (updates % every == 0) | (updates == last_update)
            if not keep.any():
                return
            updates = updates[keep]
            scalars = {n: v[:, keep] for n, v in scalars.items()}
            k = updates.size
        member = np.repeat(np.arange(m), k)
        update = np.tile(updates, m)
        self.metrics.write({"member": member, "name": self.names[member], "update": update,
                            "env_steps": update * self.steps_per_update,
                            **{n: v.reshape(-1) for n, v in scalars.items()}})
        for i, series in enumerate(self.member_updates):
            series.write_rows({"update": updates, "env_steps": updates * self.steps_per_update,
                               **{n: v[i] for n, v in scalars.items()}})
        self._scalars(scalars, updates)

    def _scalars(self, scalars: dict[str, np.ndarray], updates: np.ndarray, prefix: str = "") -> None:
        """TensorBoard / W&B: per member in small runs, quantiles across members otherwise."""
        if self.tb is None and self.wandb_run is None:
            return
        if self.per_member:
            series = {(i, n): v[i] for n, v in scalars.items() for i in range(len(self.members))}
            label = lambda i, n: f"{self.members[i]}/{prefix}{n}"
        else:
            series = {}
            for n, v in scalars.items():
                with np.errstate(all="ignore"):
                    qs = np.nanquantile(np.where(np.isfinite(v), v, np.nan), list(QUANTILES.values()), axis=0) \
                        if np.isfinite(v).any() else np.full((len(QUANTILES), v.shape[1]), np.nan)
                for q, row in zip(QUANTILES, qs):
                    series[(0, f"{n}/{q}")] = row
            label = lambda i, n: f"members/{prefix}{n}"
        for j, u in enumerate(updates):
            step = int(u) * self.steps_per_update
            if self.tb is not None:
                for (i, n), v in series.items():
                    if np.isfinite(v[j]):
                        self.tb[i].add_scalar(prefix + n, float(v[j]), step)
            if self.wandb_run is not None:
                self.wandb_run.log({label(i, n): float(v[j]) for (i, n), v in series.items() if np.isfinite(v[j])},
                                   step=step)

    # -- per episode -----------------------------------------------------------------------
    def log_episode_records(self, first_update: int, num_envs: int, records: dict[str, np.ndarray]) -> None:
        """``records[name]``: ``[M, K, T, N]`` per-step arrays with ``episode_done`` marking ends."""
        if self.episodes is None:
            return
        done = np.asarray(records["episode_done"], bool)
        ms, ks, ts, ns = np.nonzero(done)
        update = first_update + ks + 1
        cols = {"member": ms, "name": self.names[ms], "update": update,
                "env_steps": (update - 1) * self.steps_per_update + (ts + 1) * num_envs, "env": ns}
        for c, v in records.items():
            if c != "episode_done":
                cols[c[8:] if c.startswith("episode_") else c] = np.asarray(v)[ms, ks, ts, ns]
        if self.tag_names is not None and "tag" in cols:
            cols["tag"] = self.tag_names[np.asarray(cols["tag"]).astype(np.int64)]
        self.episodes.write(cols)
        for i, series in enumerate(self.member_episodes):
            mine = ms == i
            series.write_rows({k: v[mine] for k, v in cols.items() if k not in ("member", "name")})

    # -- per evaluation --------------------------------------------------------------------
    def log_eval(self, update: int, evaluation: dict[str, np.ndarray]) -> None:
        """``evaluation[name]``: ``[M, E]`` per-episode values; logs per-member means."""
        means = {("eval_return" if k == "return" else f"eval_{k.removeprefix('ep_')}"): np.asarray(v, np.float64).mean(axis=1)
                 for k, v in evaluation.items()}
        m = len(self.members)
        self.evals.write({"member": np.arange(m), "name": self.names, "update": np.full(m, update),
                          "env_steps": np.full(m, update * self.steps_per_update), **means})
        self._scalars({k: v[:, None] for k, v in means.items()}, np.asarray([update]))

    def close(self) -> None:
        for s in self.member_updates + self.member_episodes:
            s.close()
        if self.tb is not None:
            for w in self.tb:
                w.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()
