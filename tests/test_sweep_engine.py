"""Sweep -> validate -> report end to end on the real engine (probe environment), exact reruns."""
import json
import os

import numpy as np
import pytest

from experiments.probe import EXPERIMENT
from rljax.cli import main
from rljax.sweep.engine import make_train_fn
from tests.bits import EXACT


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    argv = ["sweep", "probe", "--trials", "4", "--batch", "2", "--steps", "2048", "--out", str(out),
            "--set", "runner.progress=false", "--devices", "1"]
    assert main(argv) == 0
    return out


def test_sweep_then_validate_end_to_end(sweep_dir, capsys):
    sweep = json.loads((sweep_dir / "sweep.json").read_text())
    assert len(sweep["ranked"]) == 4
    lines = (sweep_dir / "results.jsonl").read_text().strip().splitlines()
    assert len(lines) == 4 and all(json.loads(l)["status"] == "done" for l in lines)
    assert main(["validate", str(sweep_dir), "--top", "2", "--seeds", "3", "--extra-seeds", "7,8", "--extra-top", "1",
                 "--devices", "1"]) == 0
    val = json.loads((sweep_dir / "validation.json").read_text())
    n_seeds = sorted(len(c["scores"]) for c in val["configs"].values())
    assert n_seeds == [3, 5, 5]  # the phase-1 runner-up keeps 3 seeds; the best and the baseline get 5
    for name in ("report.md", "report.json", "scores.png", "profile.png"):
        assert (sweep_dir / name).exists()
    report = json.loads((sweep_dir / "report.json").read_text())
    verdicts = {n: r["pass"] for n, r in report["configs"].items() if n != "baseline"}
    assert len(verdicts) == 2 and all(isinstance(v, bool) for v in verdicts.values())
    # every candidate's verdict is the conjunction of its three criteria, shown in the markdown
    md = (sweep_dir / "report.md").read_text()
    assert all(("**PASS**" if v else "**FAIL**") in md for v in verdicts.values())
    # A rerun finds every job in the table and trains nothing.
    before = (sweep_dir / "results.jsonl").read_text()
    runs_before = len(os.listdir(sweep_dir / "runs"))
    assert main(["validate", str(sweep_dir), "--top", "2", "--seeds", "3", "--extra-seeds", "7,8", "--extra-top", "1",
                 "--devices", "1"]) == 0
    assert (sweep_dir / "results.jsonl").read_text() == before
    assert len(os.listdir(sweep_dir / "runs")) == runs_before  # no program was run


def test_rerunning_a_job_is_bit_identical(tmp_path):
    cfg = EXPERIMENT.make_config(overrides=["ppo.total_timesteps=2048", "runner.progress=false"])
    fn = make_train_fn(EXPERIMENT, cfg, str(tmp_path), progress=False)
    hp = [{"lr": 1e-3, "ent_coef": 0.01}, {"lr": 3e-4, "ent_coef": 0.0}]
    a = fn(hp, [5, 6])
    b = fn(hp, [5, 6])
    np.testing.assert_allclose([r["eval_return"] for r in a], [r["eval_return"] for r in b], rtol=0 if EXACT else 1e-3)
    runs = sorted(os.listdir(tmp_path))
    p1 = (tmp_path / runs[0] / "metrics_trial0_seed5.csv").read_text()
    p2 = (tmp_path / runs[1] / "metrics_trial0_seed5.csv").read_text()
    if EXACT:  # CPU: every logged loss, KL and return, to the printed digit (tests/bits.py)
        assert p1 == p2


def test_bad_sweep_inputs_exit_2(capsys, tmp_path):
    assert main(["sweep", "probe", "--space", "nope"]) == 2
    assert "unknown search space 'nope'" in capsys.readouterr().err
    assert main(["validate", str(tmp_path)]) == 2
    assert "no sweep.json" in capsys.readouterr().err
