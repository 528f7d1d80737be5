"""Job ids, the results table, skip-on-rerun, and sweep -> validation -> report end to end
with a fake deterministic train_fn (no engine)."""
import json
import math
import os

import numpy as np
import pytest

from rljax.sweep.jobs import Job, ResultsTable, canonical_json, pending
from rljax.sweep.report import DETERMINISM, build_report
from rljax.sweep.scheduler import PHASE1_SEEDS, PHASE2_SEEDS, run_sweep, run_validation
from rljax.errors import ConfigError
from rljax.sweep.seeds import SELECTION_BASE, selection_seeds
from rljax.sweep.space import get_space, parse_params

BASE = {"ppo": {"num_envs": 4, "lr": 3e-4}, "runner": {"total_steps": 1000, "seeds": [1, 2], "progress": True}}


# ----------------------------------------------------------------------------- job ids

def test_job_id_stable_under_key_order_and_float_spelling():
    a = Job("cartpole", {"ppo": {"lr": 1e-3, "clip_eps": 0.2}, "runner": {"total_steps": 100}}, seed=1)
    b = Job("cartpole", {"runner": {"total_steps": 100}, "ppo": {"clip_eps": 0.2, "lr": 0.001}}, seed=1,
            kind="validate")
    c = Job("cartpole", {"runner": {"total_steps": 100}, "ppo": {"clip_eps": np.float64(0.2), "lr": np.float64(1e-3)}},
            seed=np.int64(1))
    assert a.id == b.id == c.id
    assert len(a.id) == 16 and int(a.id, 16) >= 0
    assert canonical_json({"b": 1e-3, "a": (1, 2)}) == '{"a":[1,2],"b":0.001}'


def test_job_id_changes_with_what_matters():
    a = Job("cartpole", {"ppo": {"lr": 1e-3}}, seed=1)
    assert Job("cartpole", {"ppo": {"lr": 1e-3}}, seed=2).id != a.id
    assert Job("pursuit", {"ppo": {"lr": 1e-3}}, seed=1).id != a.id
    assert Job("cartpole", {"ppo": {"lr": 1.0001e-3}}, seed=1).id != a.id
    # how a run is driven (logging, progress, chunking) is not part of its identity
    assert (Job("e", {"runner": {"total_steps": 5, "progress": True, "chunk_updates": 3}}, 0).id
            == Job("e", {"runner": {"total_steps": 5}}, 0).id)


# ----------------------------------------------------------------------------- results table

def test_table_append_read_and_torn_line(tmp_path):
    table = ResultsTable(str(tmp_path / "sub" / "results.jsonl"))
    assert table.records() == [] and table.done_ids() == set()
    j1, j2, j3 = (Job("e", {"x": i}, seed=0) for i in range(3))
    rec = table.append(j1, {"eval_return": 1.5}, wall_seconds=0.25)
    for key in ("id", "experiment", "config", "seed", "rljax_version", "jax_version", "status", "metrics",
                "wall_seconds", "timestamp", "kind"):
        assert key in rec
    table.append(j2, {"eval_return": 2.0}, 0.1, status="failed")
    assert table.done_ids() == {j1.id}  # failed jobs are retried
    assert [j.id for j in pending([j1, j2, j3, j3], table)] == [j2.id, j3.id]
    # a crash tore the last line
    with open(table.path, "a") as f:
        f.write('{"id": "' + j3.id + '", "status": "do')
    assert table.done_ids() == {j1.id}
    table.append(j3, {"eval_return": 3.0}, 0.1)  # starts on a fresh line
    assert table.done_ids() == {j1.id, j3.id}
    assert len(table.records()) == 3


# ----------------------------------------------------------------------------- sweep / validate

class FakeTrain:
    """Deterministic stand-in for the engine: return = 10 - (log10 lr + 3)^2 + noise(seed)."""

    def __init__(self):
        self.calls: list[tuple[list[dict], list[int]]] = []

    def __call__(self, configs, seeds):
        self.calls.append((configs, seeds))
        assert len({tuple(sorted(c)) for c in configs}) == 1, "one key set per call"
        out = []
        for c in configs:
            lr = c.get("lr", 3e-4)
            for s in seeds:
                noise = np.random.default_rng(s).normal(0.0, 0.05)
                out.append({"eval_return": float(10.0 - (math.log10(lr) + 3.0) ** 2 + noise), "seed": s})
        return out

    @property
    def members(self) -> int:
        return sum(len(c) * len(s) for c, s in self.calls)


def _quiet(_msg):
    pass


def test_sweep_batches_and_skips_on_rerun(tmp_path):
    fake = FakeTrain()
    out = str(tmp_path / "sweep")
    s1 = run_sweep("fake", BASE, "ppo6", trials=10, batch=4, seed=42, out_dir=out, train_fn=fake, log=_quiet,
                   primary=True)
    assert [len(c) * len(s) for c, s in fake.calls] == [4, 4, 2]
    assert all(s == [SELECTION_BASE] for _, s in fake.calls)  # the selection stream, not the sampling seed
    space = get_space("ppo6")
    assert [c for call, _ in fake.calls for c in call] == space.sample_trials(42, 10)
    ranked = s1["ranked"]
    assert [r["objective"] for r in ranked] == sorted((r["objective"] for r in ranked), reverse=True)
    best_lr = ranked[0]["hparams"]["lr"]
    assert abs(math.log10(best_lr) + 3) == min(abs(math.log10(r["hparams"]["lr"]) + 3) for r in ranked)
    assert json.load(open(os.path.join(out, "sweep.json")))["ranked"] == json.loads(json.dumps(ranked))

    fake2 = FakeTrain()
    s2 = run_sweep("fake", BASE, "ppo6", trials=10, batch=4, seed=42, out_dir=out, train_fn=fake2, log=_quiet,
                   primary=True)
    assert fake2.calls == [] and s2["ranked"] == ranked and s2["trained_now"] == 0
    # extending the sweep trains only the new trials
    run_sweep("fake", BASE, "ppo6", trials=13, batch=4, seed=42, out_dir=out, train_fn=fake2, log=_quiet, primary=True)
    assert fake2.members == 3

    # a crash mid-write of the last record: that one job is trained again, nothing else
    path = os.path.join(out, "results.jsonl")
    data = open(path).read()
    open(path, "w").write(data[: len(data) - 40])
    fake3 = FakeTrain()
    run_sweep("fake", BASE, "ppo6", trials=13, batch=4, seed=42, out_dir=out, train_fn=fake3, log=_quiet, primary=True)
    assert fake3.members == 1


def test_sweep_objective_is_mean_over_train_seeds(tmp_path):
    fake = FakeTrain()
    s = run_sweep("fake", BASE, get_space("ppo6"), trials=3, batch=8, seed=0, out_dir=str(tmp_path), train_fn=fake,
                  train_seeds=selection_seeds(3), log=_quiet, primary=True)
    assert [len(c) * len(x) for c, x in fake.calls] == [6, 3]  # 8 // 3 = 2 trials per call
    for r in s["ranked"]:
        assert r["objective"] == pytest.approx(np.mean(r["eval_returns"]))


def test_bad_train_fn_results_are_errors(tmp_path):
    with pytest.raises(RuntimeError, match="returned 1 results"):
        run_sweep("fake", BASE, "ppo6", 2, 2, 0, str(tmp_path), lambda c, s: [{"eval_return": 0.0}], log=_quiet,
                  primary=True)
    with pytest.raises(RuntimeError, match="eval_return"):
        run_sweep("fake", BASE, "ppo6", 1, 2, 0, str(tmp_path), lambda c, s: [{"ret": 0.0}], log=_quiet, primary=True)
    with pytest.raises(ValueError, match="no sweep.json"):
        run_validation(str(tmp_path / "nothing"), 3, None, None, FakeTrain(), log=_quiet, primary=True)


def test_sweep_then_validate_then_report(tmp_path):
    out = str(tmp_path / "sweep")
    fake = FakeTrain()
    sweep = run_sweep("fake", BASE, "ppo6", trials=12, batch=6, seed=42, out_dir=out, train_fn=fake, log=_quiet,
                      primary=True)
    n_sweep, n_calls = fake.members, len(fake.calls)
    val = run_validation(out, top_k=3, seeds=None, baseline_config={}, train_fn=fake, log=_quiet, primary=True)
    best = f"trial{sweep['ranked'][0]['trial']}"
    assert list(val["configs"]) == [f"trial{r['trial']}" for r in sweep["ranked"][:3]] + ["baseline"]
    assert val["phase1_seeds"] == list(PHASE1_SEEDS) and val["phase2_seeds"] == list(PHASE2_SEEDS)
    assert len(val["phase2"]) == 4 and val["phase2"][0] == best  # top 3 + baseline get 20 seeds
    for name, c in val["configs"].items():
        assert len(c["scores"]) == (20 if name in val["phase2"] else 10)
    # Validation seeds never include a selection seed, so no sweep job is reused: every
    # validation job is trained anew (4 configurations x 10 seeds, then 4 x 10 more).
    assert sweep["selection_seeds"] == [SELECTION_BASE] and val["selection_seeds"] == [SELECTION_BASE]
    assert fake.members - n_sweep == 4 * 10 + 4 * 10
    assert all(s < SELECTION_BASE for _, seeds in fake.calls[n_calls:] for s in seeds)
    assert all(s == SELECTION_BASE for _, seeds in fake.calls[:n_calls] for s in seeds)

    rerun = FakeTrain()
    val2 = run_validation(out, top_k=3, seeds=None, baseline_config={}, train_fn=rerun, log=_quiet, primary=True)
    assert rerun.calls == [] and val2["configs"] == val["configs"]

    report = build_report(out, seed=0)
    for f in ("report.md", "report.json", "scores.png", "profile.png", "validation.json", "sweep.json"):
        assert os.path.getsize(os.path.join(out, f)) > 0, f
    row = report["configs"][best]
    assert row["verdict"] == "PASS", row["criteria"]
    assert row["p_improvement"] == 1.0 and row["welch_p"] < 1e-6
    md = open(os.path.join(out, "report.md")).read()
    assert "| config | mean vs sweep |" in md and "**PASS**" in md and "--xla_gpu_deterministic_ops=true" in md
    assert DETERMINISM in md
    # the report is deterministic given its seed
    assert build_report(out, seed=0)["configs"] == report["configs"]


def test_tpe_sampler_is_reproducible_and_resumable(tmp_path):
    pytest.importorskip("optuna")
    fake = FakeTrain()
    kw = dict(trials=16, batch=4, seed=3, train_fn=fake, sampler="tpe", startup_trials=6, log=_quiet, primary=True)
    a = run_sweep("fake", BASE, "ppo6", out_dir=str(tmp_path / "a"), **kw)
    assert [len(c) for c, _ in fake.calls] == [4, 4, 4, 4]
    trials = {r["trial"]: r["hparams"] for r in a["ranked"]}
    assert [trials[i] for i in range(6)] == get_space("ppo6").sample_trials(3, 6)  # random start-up
    for hp in trials.values():
        for k, d in get_space("ppo6").params.items():
            assert d.low <= hp[k] <= d.high
    rerun = FakeTrain()
    b = run_sweep("fake", BASE, "ppo6", out_dir=str(tmp_path / "a"), **{**kw, "train_fn": rerun})
    assert rerun.calls == [] and b["ranked"] == a["ranked"]
    c = run_sweep("fake", BASE, "ppo6", out_dir=str(tmp_path / "c"), **{**kw, "train_fn": FakeTrain()})
    assert c["ranked"] == a["ranked"]  # a fresh directory gives the same sweep
    with pytest.raises(ValueError, match="'grid'"):
        run_sweep("fake", BASE, "ppo6", 2, 2, 0, str(tmp_path / "d"), FakeTrain(), sampler="grid", log=_quiet)


# ----------------------------------------------------------------------------- seed streams

def test_selection_and_validation_seeds_never_meet(tmp_path):
    out = str(tmp_path / "sweep")
    with pytest.raises(ConfigError, match="sweep training seed 0 is in the validation stream"):
        run_sweep("fake", BASE, "ppo6", 2, 2, 0, out, FakeTrain(), train_seeds=[0], log=_quiet, primary=True)
    run_sweep("fake", BASE, "ppo6", 2, 2, 0, out, FakeTrain(), train_seeds=selection_seeds(2), log=_quiet,
              primary=True)
    with pytest.raises(ConfigError, match=f"validation seed {SELECTION_BASE + 1} was a selection seed"):
        run_validation(out, 1, [1, SELECTION_BASE + 1], None, FakeTrain(), log=_quiet, primary=True)
    with pytest.raises(ConfigError, match=f"validation seed {SELECTION_BASE + 5} is outside the validation stream"):
        run_validation(out, 1, [SELECTION_BASE + 5], None, FakeTrain(), log=_quiet, primary=True)
    # a sweep directory from before the streams (trained on seed 0): its recorded seed is refused
    legacy = json.load(open(os.path.join(out, "sweep.json")))
    for k in ("selection_seeds", "train_seeds"):
        legacy.pop(k)
    legacy["seed"] = 0
    json.dump(legacy, open(os.path.join(out, "sweep.json"), "w"))
    fake = FakeTrain()
    with pytest.raises(ConfigError, match="validation seed 0 was a selection seed"):
        run_validation(out, 1, [0, 1, 2], None, fake, log=_quiet, primary=True)
    assert fake.calls == []  # refused before training anything


def test_validate_cli_refuses_a_selection_seed_with_one_line(tmp_path, capsys):
    from rljax.cli import main

    out = str(tmp_path / "sweep")
    run_sweep("probe", {"ppo": {}}, "ppo6", 1, 1, 0, out, FakeTrain(), log=_quiet, primary=True)
    assert main(["validate", out, "--seeds", f"3,{SELECTION_BASE}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"validation seed {SELECTION_BASE} was a selection seed" in err[0]


def test_variant_is_part_of_the_job_and_scored_per_variant(tmp_path):
    a = Job("communities", {"ppo": {"lr": 1e-3}}, seed=1)
    b = Job("communities", {"ppo": {"lr": 1e-3}}, seed=1, variant="treatment")
    assert a.id != b.id and b.id != Job("communities", {"ppo": {"lr": 1e-3}}, seed=1, variant="control").id

    def two_arms(configs, seeds):
        rows = []
        for c in configs:
            for s in seeds:
                lr = c.get("lr", 3e-4)
                t, k = -abs(math.log10(lr) + 3), -abs(math.log10(lr) + 4)
                rows.append({"eval_return": (t + k) / 2, "eval_return_by_variant": {"treatment": t, "control": k}})
        return rows

    out = str(tmp_path / "sweep")
    sweep = run_sweep("fake", BASE, "ppo6", 4, 4, 0, out, two_arms, log=_quiet, primary=True)
    r = sweep["ranked"][0]
    assert sweep["variant"] is None and set(r["eval_returns_by_variant"]) == {"treatment", "control"}
    val = run_validation(out, 2, [1, 2, 3], None, two_arms, extra_seeds=[], log=_quiet, primary=True)
    c = val["configs"][f"trial{r['trial']}"]
    assert c["scores"] == pytest.approx(np.mean([c["scores_by_variant"]["treatment"],
                                                 c["scores_by_variant"]["control"]], axis=0))
    report = build_report(out, seed=0)
    assert set(report["configs"]["baseline"]["by_variant"]) == {"treatment", "control"}
    md = open(os.path.join(out, "report.md")).read()
    assert "## Per task variant" in md and f"Selected (the sweep's trials trained on): [{SELECTION_BASE}]" in md


def test_param_items_make_a_space():
    space = parse_params(["empo.lr_q_r=log:1e-4:1e-2", "empo.beta_r=uniform:1:100"])
    assert space.section == "empo" and set(space.params) == {"lr_q_r", "beta_r"}
    hp = space.sample(0, 0)
    assert 1e-4 <= hp["lr_q_r"] <= 1e-2 and 1 <= hp["beta_r"] <= 100
    with pytest.raises(ConfigError, match="one config section"):
        parse_params(["empo.lr_q_r=log:1e-4:1e-2", "ppo.lr=log:1e-4:1e-2"])
    with pytest.raises(ConfigError, match="is not of the form"):
        parse_params(["lr=log:1e-4:1e-2"])
