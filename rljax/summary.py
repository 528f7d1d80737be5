"""The end-of-run summary as a user reads it in the terminal (``summary.json`` holds the rest)."""
from __future__ import annotations

import os


def print_summary(summary: dict, out_dir: str) -> None:
    print(f"\n{summary['experiment']}: {len(summary['members'])} member(s), "
          f"{summary['total_steps_per_second']:,.0f} env-steps/s in total")
    for m in summary["members"]:
        print(f"  {m['name']:<32} eval_return {m['eval_return']:9.2f} +- {m['eval_return_std']:.2f}")
    print(f"summary: {os.path.join(out_dir, 'summary.json')}")
