"""Population-based training inside the compiled program: it beats the same budget of
independent members, records a consistent lineage, and resumes exactly after a kill."""
import csv
import json

import numpy as np
import pytest

from rljax.experiments.probe.experiment import EXPERIMENT
from rljax.cli import main
from rljax.pbt import Explored, PBTConfig, pbt_runner, resume_pbt
from tests.bits import same

# The action probe (reward 1 for the action matching the observation's sign): 8 members start
# with learning rates spread log-uniformly over [1e-6, 1e-2]. Within 64 updates the members
# below ~1e-4 barely move from the uniform policy (return ~0.5), the others reach ~1.
OVERRIDES = ["ppo.total_timesteps=8192", "runner.progress=false", "runner.eval_episodes=8", "runner.chunk_updates=8",
             "runner.checkpoint_every=16"]
MEMBERS, EVERY, LOW, HIGH = 8, 4, 1e-6, 1e-2


def _cfg(every: int = EVERY) -> PBTConfig:
    return PBTConfig(members=MEMBERS, every=every, explore=(Explored("lr", LOW, HIGH),))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pbt")
    cfg = EXPERIMENT.make_config(overrides=OVERRIDES)
    pbt = pbt_runner(EXPERIMENT, cfg, str(root / "pbt"), _cfg())
    pbt_summary = pbt.run()
    independent = pbt_runner(EXPERIMENT, cfg, str(root / "independent"), _cfg(every=0))
    return root, pbt, pbt_summary, independent.run()


def _final_train_returns(summary):
    return np.asarray([m["train_episode_return"] for m in summary["members"]])


def test_pbt_beats_independent_members_with_the_same_budget(runs):
    root, pbt, pbt_summary, ind_summary = runs
    # same members, same initial learning rates, same number of updates each
    first = lambda run: [r for r in csv.DictReader(open(root / run / "metrics.csv")) if r["update"] == "1"]  # noqa: E731
    assert [r["pbt/lr"] for r in first("pbt")] == [r["pbt/lr"] for r in first("independent")]
    lrs = sorted(float(r["pbt/lr"]) for r in first("pbt"))
    assert lrs[0] < 1e-5 and lrs[-1] > 1e-3  # one member per log-stratum of [1e-6, 1e-2]
    assert pbt_summary["env_steps_per_member"] == ind_summary["env_steps_per_member"]
    p, i = _final_train_returns(pbt_summary), _final_train_returns(ind_summary)
    # stochastic-policy return at the end of training (= P(correct action)), mean over members
    assert p.mean() >= 0.95, p
    assert i.mean() <= 0.85, i
    assert p.mean() - i.mean() >= 0.15
    # exploration moved the population's learning rates up from the start's bad spread
    last = [r for r in csv.DictReader(open(root / "pbt" / "metrics.csv")) if r["update"] == "64"]
    assert min(float(r["pbt/lr"]) for r in last) > 1e-4


def test_lineage_records_truncation_selection_and_exploration(runs):
    root, pbt, _, _ = runs
    lin = json.loads((root / "pbt" / "lineage.json").read_text())
    rows = lin["rows"]
    assert lin["rounds_done"] == (64 - 1) // EVERY and lin["explored"] == ["lr"]
    assert list(csv.DictReader(open(root / "pbt" / "lineage.csv")))[0].keys() >= {"update", "member", "parent", "lr"}
    metrics = {(int(r["member"]), int(r["update"])): float(r["pbt/lr"])
               for r in csv.DictReader(open(root / "pbt" / "metrics.csv"))}
    q = _cfg().truncation
    assert q == 2
    for update in sorted({r["update"] for r in rows}):
        rnd = sorted((r for r in rows if r["update"] == update), key=lambda r: r["member"])
        scores = np.asarray([r["score"] for r in rnd])
        order = np.argsort(-scores, kind="stable")
        copied = [r for r in rnd if r["copied"]]
        assert sorted(r["member"] for r in copied) == sorted(order[-q:].tolist())  # the bottom 25% copy ...
        for r in copied:
            assert r["parent"] in order[:q].tolist()  # ... from the top 25%
            assert r["parent_score"] == scores[r["parent"]]
            ratio = r["lr"] / metrics[(r["parent"], update)]  # the parent's value during that update
            clipped = r["lr"] in (pytest.approx(LOW), pytest.approx(HIGH))
            assert clipped or ratio == pytest.approx(0.8, rel=1e-5) or ratio == pytest.approx(1.25, rel=1e-5)
        for r in rnd:
            if not r["copied"]:
                assert r["parent"] == r["member"] and r["lr"] == pytest.approx(metrics[(r["member"], update)])


class _Killed(Exception):
    pass


def test_pbt_resumes_exactly_after_a_kill(runs, tmp_path, capsys):
    root, straight, _, _ = runs

    def kill(ctx):
        if ctx.update >= 40:  # after the checkpoint at 32, mid-run and between PBT rounds' chunks
            raise _Killed

    cfg = EXPERIMENT.make_config(overrides=OVERRIDES)
    killed = tmp_path / "killed"
    with pytest.raises(_Killed):
        pbt_runner(EXPERIMENT, cfg, str(killed), _cfg(), on_chunk_end=[kill]).run()
    assert not (killed / "summary.json").exists()
    resumed = resume_pbt(str(killed))
    summary = resumed.run()
    assert summary["resumed_from_update"] == 32
    assert same(resumed.state, straight.state)  # parameters, optimiser, scores, keys, lineage: exact on CPU
    assert (killed / "lineage.csv").read_text() == (root / "pbt" / "lineage.csv").read_text()
    # a plain `rljax run --resume` of a PBT run says how to continue it instead of failing deep inside
    assert main(["run", EXPERIMENT.name, "--resume", str(killed)]) == 2
    assert f"is a population-based training run; continue it with `rljax pbt --resume {killed}`" in capsys.readouterr().err


def test_pbt_bad_inputs_exit_2(capsys, tmp_path):
    out = str(tmp_path / "x")
    assert main(["pbt", "probe", "--members", "1", "--out", out]) == 2
    assert "--members must be >= 2" in capsys.readouterr().err
    assert main(["pbt", "probe", "--explore", "ppo.num_envs=1:8", "--out", out]) == 2
    assert "ppo.num_envs is not a vmappable hyperparameter" in capsys.readouterr().err
    assert main(["pbt", "probe", "--explore", "ppo.lr=0:1", "--out", out]) == 2
    assert "0 < low < high" in capsys.readouterr().err
    assert main(["pbt", "probe", "--every", "1000", "--out", out]) == 2
    assert "leaves no round" in capsys.readouterr().err
    assert main(["pbt", "--resume", str(tmp_path)]) == 2
    assert "is not a PBT run (no pbt.json)" in capsys.readouterr().err
