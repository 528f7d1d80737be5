"""The per-seed report carries the baseline win rates and Elo ratings (synthetic metrics)."""
import os

import pandas as pd

from rljax.experiments.pursuit.report import write_report


def test_report_has_baselines_and_elo(tmp_path):
    rows = []
    for member, name in enumerate(("seed0", "seed1")):
        for phase in range(4):
            rows.append({"member": member, "name": name, "update": phase, "env_steps": 100 * phase, "phase": phase,
                         "role": phase % 2, "phase_end": 1, "eval_capture_rate": 0.5, "eval_escape_rate": 0.5,
                         "eval_ne_gap": 0.0, "level": 1, "max_init_d": 5.0, "n_obstacles": 0, "advanced": 0,
                         "regressed": 0, "rollbacks": member, "converged": 0, "baseline/flee_away": 0.25 * phase,
                         "baseline/pure_pursuit": 0.5, "elo/pursuer": 1200 + 10 * phase, "elo/evader": 1190.0})
            rows.append(dict(rows[-1], phase_end=0, update=phase + 0.5))
    pd.DataFrame(rows).to_csv(tmp_path / "metrics.csv", index=False)
    out = write_report(str(tmp_path), str(tmp_path / "report"))
    table = pd.read_csv(tmp_path / "report" / "phases.csv")
    assert len(table) == 8 and {"baseline/flee_away", "baseline/pure_pursuit", "elo/pursuer", "elo/evader"} <= set(table.columns)
    assert "final Elo P / E" in out["markdown"] and "| 1230 / 1190 |" in out["markdown"]
    assert os.path.isfile(tmp_path / "report" / "curves.png")
