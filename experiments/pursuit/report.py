"""Per-seed report of a pursuit self-play run (``python -m experiments.pursuit report RUN_DIR``).

Reads ``metrics.csv`` (one row per member and update) and writes, under ``out``:

* ``curves.png``: per seed, the head-to-head capture rate, NE gap and curriculum level after
  every evaluation (x: the member's phase number, 0 = after the cold start);
* ``phases.csv``: one row per member and phase (role, capture/escape rate, NE gap, level,
  advances, regressions, rollbacks, the win rates against the scripted baselines and the
  agents' Elo ratings against them);
* a markdown table (returned and written as ``report.md``) with each seed's outcome:

  - ``converged``: the protocol's convergence test passed (NE gap < eta at the max level);
  - ``collapsed``: its last ``COLLAPSE_PHASES`` evaluations all have NE gap >= ``COLLAPSE_GAP``
    (one side wins >= 97.5% of the deterministic episodes);
  - ``open`` otherwise (still contested, not at the max level).
"""
from __future__ import annotations

import os

import numpy as np

COLLAPSE_PHASES = 3
COLLAPSE_GAP = 0.95


def phase_table(metrics):
    """One row per member and phase end, from the columnar metrics."""
    d = metrics[metrics.phase_end == 1]
    cols = ["member", "name", "update", "env_steps", "phase", "role", "eval_capture_rate", "eval_escape_rate", "eval_ne_gap",
            "level", "max_init_d", "n_obstacles", "advanced", "regressed", "rollbacks", "converged"]
    cols += [c for c in d.columns if c.startswith("baseline/")] + [c for c in ("elo/pursuer", "elo/evader") if c in d.columns]
    return d[[c for c in cols if c in d.columns]].reset_index(drop=True)


def outcome(rows) -> str:
    if len(rows) and rows.converged.iloc[-1] > 0:
        return "converged"
    gaps = rows.eval_ne_gap.to_numpy()[-COLLAPSE_PHASES:]
    if len(gaps) == COLLAPSE_PHASES and np.all(gaps >= COLLAPSE_GAP):
        side = "pursuer" if rows.eval_capture_rate.iloc[-1] > 0.5 else "evader"
        return f"collapsed ({side} dominates)"
    return "open"


def write_report(run_dir: str, out: str) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    os.makedirs(out, exist_ok=True)
    metrics = pd.read_csv(os.path.join(run_dir, "metrics.csv"))
    table = phase_table(metrics)
    table.to_csv(os.path.join(out, "phases.csv"), index=False)
    names = list(dict.fromkeys(metrics.name))
    rated = "elo/pursuer" in table.columns
    panels = [("eval_capture_rate", "capture rate (100 deterministic episodes)"), ("eval_ne_gap", "NE gap |SR_P - SR_E|"),
              ("level", "curriculum level")] + ([("elo/pursuer", "Elo vs baselines (solid pursuer, dashed evader)")] if rated else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4))
    for name in names:
        rows = table[table.name == name]
        for ax, (col, _) in zip(axes, panels):
            line, = ax.plot(rows.phase, rows[col], marker="o", ms=3, label=name)
            if col == "elo/pursuer":
                ax.plot(rows.phase, rows["elo/evader"], ls="--", marker="x", ms=3, color=line.get_color())
    for ax, (_, title) in zip(axes, panels):
        ax.set_title(title)
        ax.set_xlabel("phase")
        ax.grid(alpha=0.3)
    axes[1].axhline(0.15, color="k", ls="--", lw=0.8)
    axes[0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "curves.png"), dpi=90)
    plt.close(fig)

    lines = ["| seed | phases | final capture rate | min NE gap | final level | advances | regressions | rollbacks | outcome |"
             + (" final Elo P / E |" if rated else ""),
             "|---|---|---|---|---|---|---|---|---|" + ("---|" if rated else "")]
    outcomes = {}
    for name in names:
        rows = table[table.name == name]
        if not len(rows):
            continue
        outcomes[name] = outcome(rows)
        lines.append(f"| {name} | {int(rows.phase.max())} | {rows.eval_capture_rate.iloc[-1]:.2f} | {rows.eval_ne_gap.min():.2f} | "
                     f"{int(rows.level.iloc[-1])} | {int(rows.advanced.sum())} | {int(rows.regressed.sum())} | "
                     f"{int(rows.rollbacks.iloc[-1])} | {outcomes[name]} |"
                     + (f" {rows['elo/pursuer'].iloc[-1]:.0f} / {rows['elo/evader'].iloc[-1]:.0f} |" if rated else ""))
    markdown = "\n".join(lines)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(markdown + "\n")
    return {"markdown": markdown, "outcomes": outcomes, "table": table}
