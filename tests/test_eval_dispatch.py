"""``rljax eval RUN_DIR`` dispatches to the evaluation of the experiment that trained the run
(read from its run.json), passing the common flags on as one EvalRequest; unknown flags and
experiments without an evaluation are one-line errors.

The evaluations themselves are tested beside their experiments (and the PPO returns and the
pursuit evaluation on tiny runs in test_load.py / test_selfplay.py); here they are replaced by
recorders, so no run needs to train."""
import json

import pytest

import rljax.experiments.communities.evaluation as communities_eval
import rljax.experiments.goodhart.verify as goodhart_verify
import rljax.experiments.pursuit.evaluation as pursuit_eval
import rljax.empo.compare as empo_compare
from rljax.cli import main
from rljax.experiment import EvalRequest, load_experiment

FLAGS = ["--episodes", "3", "--checkpoint", "7", "--member", "seed1", "--out", "OUT"]


def fake_run(tmp_path, experiment, config=None):
    d = tmp_path / experiment
    d.mkdir()
    (d / "run.json").write_text(json.dumps({"experiment": experiment, "config": config or {}}))
    return str(d)


def recorder(calls, report):
    def record(*args, **kwargs):
        calls.append((args, kwargs))
        return report

    return record


def test_every_experiment_has_an_evaluation():
    for name in ("cartpole", "communities", "empo", "goodhart", "memory", "probe", "pursuit"):
        assert load_experiment(name).evaluate is not None, name


@pytest.mark.parametrize("experiment, module, attr, report, expected", [
    ("goodhart", goodhart_verify, "run_verification", {"table": "T", "out_dir": "O", "starvation_check": {"passed": True}},
     {"out_dir": "OUT", "runs": 3, "checkpoint": 7, "member": "seed1"}),
    ("communities", communities_eval, "evaluate_runs", {"table": "T", "out_dir": "O"},
     {"episodes": 3, "out_dir": "OUT", "checkpoint": 7, "member": "seed1"}),
    ("pursuit", pursuit_eval, "evaluate_run", {"table": "T", "out_dir": "O"},
     {"episodes": 3, "checkpoint": 7, "member": "seed1", "out_dir": "OUT"}),
])
def test_dispatch_passes_the_common_flags(tmp_path, monkeypatch, capsys, experiment, module, attr, report, expected):
    calls = []
    monkeypatch.setattr(module, attr, recorder(calls, report))
    run = fake_run(tmp_path, experiment)
    assert main(["eval", run, *FLAGS]) == 0
    (args, kwargs), = calls
    assert args[0] in (run, [run])
    assert {k: kwargs[k] for k in expected} == expected
    assert "T" in capsys.readouterr().out


def test_goodhart_eval_exit_status_is_the_starvation_check(tmp_path, monkeypatch):
    report = {"table": "T", "out_dir": "O", "starvation_check": {"passed": False}}
    monkeypatch.setattr(goodhart_verify, "run_verification", recorder([], report))
    assert main(["eval", fake_run(tmp_path, "goodhart")]) == 1


def test_empo_eval_is_the_oracle_comparison_on_enumerable_maps(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(empo_compare, "compare_run", recorder(calls, {"table": "T", "out_dir": "O"}))
    run = fake_run(tmp_path, "empo", {"env": {"map": "small"}})
    assert main(["eval", run, "--checkpoint", "best", "--member", "2", "--out", "OUT"]) == 0
    (args, kwargs), = calls
    assert args == (run,) and kwargs == {"out_dir": "OUT", "checkpoint": "best", "member": 2}
    # exact over every reachable state: --episodes is refused, in one line
    assert main(["eval", run, "--episodes", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--episodes does not apply" in err


def test_an_experiment_without_an_evaluation_is_one_line(tmp_path, monkeypatch, capsys):
    import dataclasses

    import rljax.experiment as experiment

    probe = load_experiment("probe")
    monkeypatch.setattr(experiment, "load_experiment", lambda name: dataclasses.replace(probe, evaluate=None))
    assert main(["eval", fake_run(tmp_path, "probe")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rljax: error: experiment 'probe' has no evaluation") and len(err.splitlines()) == 1


@pytest.mark.parametrize("argv, needle", [
    (["eval", "RUN", "--bogus", "1"], "rljax eval: unknown argument(s) --bogus 1"),
    (["eval", "RUN", "--episodes", "0"], "--episodes must be >= 1, got 0"),
    (["eval", "RUN", "--episodes", "many"], "--episodes must be an integer, got 'many'"),
    (["eval", "RUN", "--checkpoint", "newest"], "--checkpoint must be latest, best or a step number, got 'newest'"),
    (["eval", "RUN", "--best", "--checkpoint", "3"], "--best and --checkpoint are the same choice"),
    (["eval", "RUN", "--member", "seed9"], "member='seed9' is not in the run"),
    (["render", "RUN", "--out", "x.avi"], "--out must end in .gif or .mp4, got 'x.avi'"),
    (["render", "RUN", "--fps", "0"], "--fps must be >= 1, got 0"),
    (["render", "RUN", "--nope"], "rljax render: unknown argument(s) --nope"),
])
def test_bad_flags_are_one_line(tmp_path, monkeypatch, capsys, argv, needle):
    calls = []
    monkeypatch.setattr(pursuit_eval, "evaluate_run", recorder(calls, {"table": "T", "out_dir": "O"}))
    if "--member" in argv:  # reaches the member lookup: a real (tiny) selection
        from rljax import trained

        monkeypatch.setattr(pursuit_eval, "evaluate_run",
                            lambda *a, member=None, **k: trained.member_index(_Members(["seed0", "seed1"]), member))
    run = fake_run(tmp_path, "pursuit")
    assert main([a if a != "RUN" else run for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("rljax: error: ") and needle in err, err
    assert not calls


class _Members:
    def __init__(self, names):
        self.members = [type("M", (), {"name": n})() for n in names]


def test_eval_request_defaults():
    assert EvalRequest("d") == EvalRequest("d", None, "latest", None, None)
