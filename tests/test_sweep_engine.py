"""Sweep -> validate -> report end to end on the real engine (probe environment), exact reruns."""
import json
import os

import numpy as np
import pytest

from rljax.experiments.probe.experiment import EXPERIMENT
from rljax.cli import main
from rljax.experiment import Experiment, Setup
from rljax.sweep.engine import make_train_fn
from rljax.sweep.scheduler import run_sweep
from rljax.sweep.seeds import SELECTION_BASE
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
    assert sweep["selection_seeds"] == [SELECTION_BASE]  # the selection stream, not --seed
    lines = (sweep_dir / "results.jsonl").read_text().strip().splitlines()
    assert len(lines) == 4 and all(json.loads(l)["status"] == "done" for l in lines)
    assert main(["validate", str(sweep_dir), "--top", "2", "--seeds", "3", "--extra-seeds", "7,8", "--extra-top", "1",
                 "--devices", "1"]) == 0
    val = json.loads((sweep_dir / "validation.json").read_text())
    # Validation trained on seeds 0, 1, 2 (+ 7, 8): none of them trained a selection run, so the
    # winner's own selection run is not part of its validation sample.
    assert val["selection_seeds"] == [SELECTION_BASE] and val["phase1_seeds"] == [0, 1, 2]
    for c in val["configs"].values():
        assert SELECTION_BASE not in c["seeds"]
    sweep_ids = {j for r in sweep["ranked"] for j in r["job_ids"]}
    assert not sweep_ids & {j for c in val["configs"].values() for j in c["job_ids"]}
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


def test_sweep_and_validate_a_non_ppo_algorithm(tmp_path, capsys):
    """EMPO (lookup tables on the trivial map): its own section's learning rate and beta_r."""
    out = tmp_path / "empo"
    common = ["--set", "runner.progress=false", "--set", "runner.eval_episodes=2", "--devices", "1"]
    assert main(["sweep", "empo", "--preset", "trivial_table", "--trials", "2", "--batch", "2",
                 "--param", "empo.lr_q_r=log:0.1:1", "--param", "empo.beta_r=log:1:100",
                 "--set", "empo.num_training_steps=200", "--set", "runner.chunk_updates=0", "--set",
                 "runner.eval_every=0", "--out", str(out), *common]) == 0
    sweep = json.loads((out / "sweep.json").read_text())
    assert sweep["section"] == "empo" and sweep["space"] == "custom"
    hps = [r["hparams"] for r in sweep["ranked"]]
    assert len({h["lr_q_r"] for h in hps}) == 2
    # every trial's values reached its member: the run's traced hyperparameters are the trial's
    run = json.loads((out / "runs" / "batch0000" / "run.json").read_text())
    assert len(run["members"]) == 2
    assert {tuple(sorted(m["hparams"].items())) for m in run["members"]} == {tuple(sorted(h.items())) for h in hps}
    assert all(np.isfinite(r["objective"]) for r in sweep["ranked"])
    # a key the algorithm cannot vary is refused before anything trains
    assert main(["sweep", "empo", "--preset", "trivial_table", "--param", "empo.buffer_size=log:1:10",
                 "--out", str(tmp_path / "bad"), *common]) == 2
    assert "empo.buffer_size is not a vmappable hyperparameter of empo" in capsys.readouterr().err
    assert main(["validate", str(out), "--top", "1", "--seeds", "2", "--extra-seeds", "none", "--batch", "4",
                 "--devices", "1"]) == 0
    val = json.loads((out / "validation.json").read_text())
    assert set(val["configs"]) == {f"trial{sweep['ranked'][0]['trial']}", "baseline"}
    assert all(len(c["scores"]) == 2 and np.all(np.isfinite(c["scores"])) for c in val["configs"].values())


def _two_arm_probe() -> Experiment:
    """The probe experiment with two task variants (arms) sharing one program."""
    from rljax.experiments.probe import experiment as probe

    def build(cfg):
        setup = probe.build(cfg)
        params = setup.variants[0][1]
        return Setup(setup.algorithm, (("treatment", params), ("control", params)))

    return Experiment("probe", probe.ProbeConfig, build)


def test_multi_variant_experiment_sweeps_per_variant_or_one_variant(tmp_path):
    exp = _two_arm_probe()
    cfg = exp.make_config(overrides=["ppo.total_timesteps=1024", "runner.progress=false", "runner.eval_episodes=4"])
    quiet = lambda _m: None  # noqa: E731
    both = run_sweep("probe", {"ppo": {}}, "ppo6", 2, 2, 0, str(tmp_path / "both"),
                     make_train_fn(exp, cfg, str(tmp_path / "both" / "runs"), progress=False), log=quiet, primary=True)
    for r in both["ranked"]:
        arms = r["eval_returns_by_variant"]
        assert set(arms) == {"treatment", "control"}
        # the two arms have the same task, seed and hyperparameters: the same numbers
        np.testing.assert_allclose(arms["treatment"], arms["control"], rtol=1e-5)
        assert r["objective"] == pytest.approx(np.mean([arms["treatment"][0], arms["control"][0]]))
    one = run_sweep("probe", {"ppo": {}}, "ppo6", 2, 2, 0, str(tmp_path / "one"),
                    make_train_fn(exp, cfg, str(tmp_path / "one" / "runs"), progress=False, variant="control"),
                    log=quiet, primary=True, variant="control")
    run = json.loads((tmp_path / "one" / "runs" / "batch0000" / "run.json").read_text())
    assert {m["variant"] for m in run["members"]} == {"control"} and len(run["members"]) == 2
    assert one["variant"] == "control" and "eval_returns_by_variant" not in one["ranked"][0]
    assert ({r["trial"]: r["objective"] for r in one["ranked"]}
            == pytest.approx({r["trial"]: r["eval_returns_by_variant"]["control"][0] for r in both["ranked"]}, rel=1e-5))
    assert one["ranked"][0]["job_ids"] != [j for r in both["ranked"] for j in r["job_ids"]][:1]
