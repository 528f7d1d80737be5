"""The lineage of a PBT run, read from its state: which member copied which at which update.

Written as ``lineage.json`` and ``lineage.csv`` into the run directory after every chunk, each
time rebuilt from the (checkpointed) state, so a resumed run writes exactly what an
uninterrupted one would.

``lineage.csv`` has one row per (round, population, member): ``update`` (the update after which
the round ran), ``seed`` (the population), ``member``, ``parent`` (the member whose state it
took; itself when it kept its own), ``copied``, ``score`` (its score when the round was decided),
``parent_score`` and the explored values after the round.
"""
from __future__ import annotations

import csv
import json
import os
from typing import Any

import numpy as np

from rljax.pbt.population import PBT


def lineage(alg: PBT, seeds: list[int], state: Any) -> dict:
    """The lineage of the member-batched ``state`` (host arrays or device arrays)."""
    from rljax.sharding import to_host

    n, keys = alg.cfg.members, [e.key for e in alg.cfg.explore]
    done = int(np.max(to_host(alg.update_count(state))))
    num = min(alg.num_rounds, done // alg.cfg.every) if alg.cfg.every else 0
    parents = np.asarray(to_host(state.parents))[:, :num]
    scores = np.asarray(to_host(state.scores))[:, :num]
    values = np.asarray(to_host(state.values))[:, :num]
    p = parents.shape[0] // n
    grouped = lambda x: x.reshape((n, p) + x.shape[1:])  # noqa: E731 -- members are grid-major
    parents, scores, values = grouped(parents), grouped(scores), grouped(values)
    rows = []
    for r in range(num):
        for pop in range(p):
            for j in range(n):
                i = int(parents[j, pop, r])
                rows.append({"update": (r + 1) * alg.cfg.every, "seed": int(seeds[pop]), "member": j, "parent": i,
                             "copied": i != j, "score": float(scores[j, pop, r]),
                             "parent_score": float(scores[i, pop, r]),
                             **{k: float(values[j, pop, r, e]) for e, k in enumerate(keys)}})
    return {"members": n, "every": alg.cfg.every, "fraction": alg.cfg.fraction, "metric": alg.cfg.metric,
            "explored": keys, "seeds": [int(s) for s in seeds[:p]], "rounds_done": num, "rows": rows}


def write_lineage(out_dir: str, record: dict) -> None:
    """``lineage.json`` and ``lineage.csv`` (replaced atomically)."""
    tmp = os.path.join(out_dir, "lineage.json.tmp")
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1)
    os.replace(tmp, os.path.join(out_dir, "lineage.json"))
    cols = ["update", "seed", "member", "parent", "copied", "score", "parent_score", *record["explored"]]
    tmp = os.path.join(out_dir, "lineage.csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        w.writerows(record["rows"])
    os.replace(tmp, os.path.join(out_dir, "lineage.csv"))


class LineageWriter:
    """An ``on_chunk_end`` callback that rewrites the lineage files from the chunk's state."""

    def __call__(self, ctx: Any) -> None:
        from rljax.sharding import is_primary

        runner = ctx.runner
        if is_primary():
            seeds = runner.cfg.runner.seed_list()
            write_lineage(runner.out_dir, lineage(runner.algorithm, seeds, ctx.state))
