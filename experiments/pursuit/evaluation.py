"""``rljax eval RUN_DIR`` for pursuit: every member's trained pursuer and evader head to head,
and each against the game's scripted baseline (the uniform random policy of the other role),
at the member's current curriculum task.

Per member and matchup: capture rate, escape rate, mean episode length and the pursuer's mean
return over ``episodes`` episodes (default ``selfplay.eval_episodes``). The same episode keys
serve every matchup and member (common random numbers). Trained policies act as in the
run's own evaluation (greedy unless ``selfplay.eval_stochastic``). ``NE gap`` is the head to
head's :func:`rljax.selfplay.evaluation.ne_gap`. Writes ``eval.json`` into ``out_dir``
(default ``RUN_DIR/eval``).
"""
from __future__ import annotations

import json
import os
from typing import Any

import jax
import numpy as np

from rljax.errors import ConfigError

MATCHUPS = (("trained pursuer vs trained evader", "net", "net"), ("trained pursuer vs random evader", "net", "random"),
            ("random pursuer vs trained evader", "random", "net"))


def evaluate_run(run_dir: str, episodes: int | None = None, checkpoint: str | int = "latest",
                 member: str | int | None = None, out_dir: str | None = None, seed: int = 0) -> dict:
    """Plays :data:`MATCHUPS` for every member (or ``member``); returns the report with a
    printable ``table`` and writes ``eval.json``."""
    from rljax.selfplay.evaluation import PURSUER, EVADER, head_to_head, ne_gap, random_batch_act
    from rljax.selfplay.trainer import row_of
    from rljax.trained import restore_members

    runner, state = restore_members(run_dir, checkpoint, member)
    if runner.experiment.name != "pursuit":
        raise ConfigError(f"{run_dir} is a {runner.experiment.name!r} run, not a pursuit run")
    trainer = runner.algorithm
    cfg = trainer.selfplay_cfg
    n = episodes or cfg.eval_episodes
    keys = jax.random.split(jax.random.key(seed), n)
    det = not cfg.eval_stochastic

    def play(kind_p: str, kind_e: str, params: Any, arena: Any, max_steps: int) -> dict:
        acts = []
        for role, kind in ((PURSUER, kind_p), (EVADER, kind_e)):
            acts.append(trainer.agent_act(row_of(params, role), arena, deterministic=det) if kind == "net"
                        else random_batch_act(trainer.game, arena, role))
        return head_to_head(trainer.game, arena, keys, max_steps, *acts, chunk=cfg.eval_chunk)

    compiled = {m: jax.jit(lambda p, a, s, m=m: play(m[1], m[2], p, a, s), static_argnums=2) for m in MATCHUPS}
    rows = []
    for i, m in enumerate(runner.members):
        ms = jax.tree.map(lambda x, i=i: x[i], state)
        arena = trainer.task_params(ms.task, ms.curriculum)
        steps = trainer.env.max_steps(arena)
        for matchup in MATCHUPS:
            r = jax.device_get(compiled[matchup](ms.params, arena, steps))
            rows.append({"member": m.name, "matchup": matchup[0], "episodes": n, "max_steps": steps,
                         "capture_rate": float(np.mean(r["captured"])), "escape_rate": float(np.mean(r["escaped"])),
                         "length": float(np.mean(r["length"])), "pursuer_return": float(np.mean(r["return"]))})
        h2h = rows[-len(MATCHUPS)]
        h2h["ne_gap"] = float(ne_gap(np.float32(h2h["capture_rate"]), np.float32(h2h["escape_rate"])))
    src = runner.restored_from
    report = {"run_dir": runner.out_dir, "checkpoint": {k: src[k] for k in ("which", "step")}, "seed": seed,
              "policy": "greedy" if det else "sampled", "rows": rows}
    out_dir = out_dir or os.path.join(runner.out_dir, "eval")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "eval.json"), "w") as f:
        json.dump(report, f, indent=1)
    report["out_dir"] = out_dir
    report["table"] = format_table(report)
    return report


def format_table(report: dict) -> str:
    lines = [f"pursuit evaluation (checkpoint {report['checkpoint']['which']}/{report['checkpoint']['step']}, "
             f"{report['policy']} trained policies, each member at its current task)",
             f"{'member':<20}{'matchup':<36}{'capture':>8}{'escape':>8}{'length':>8}{'P return':>10}{'NE gap':>8}"]
    for r in report["rows"]:
        gap = f"{r['ne_gap']:>8.3f}" if "ne_gap" in r else f"{'':>8}"
        lines.append(f"{r['member']:<20}{r['matchup']:<36}{r['capture_rate']:>8.2f}{r['escape_rate']:>8.2f}"
                     f"{r['length']:>8.1f}{r['pursuer_return']:>10.2f}{gap}")
    return "\n".join(lines)
