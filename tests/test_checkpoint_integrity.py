"""Damaged checkpoints are noticed before Orbax reads them and skipped with one line; a resume
must name the run's experiment, keep its members and seeds, and change its computation only
when asked to (then recorded in run.json).

One tiny CartPole run (4 updates, a checkpoint after each, the newest 3 kept) is trained once
per module; each case damages a copy of it.
"""
import json
import os
import random
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from rljax.experiments.cartpole.experiment import EXPERIMENT
from rljax.checkpoint import Checkpointer, CheckpointError, abstract_like, record_steps
from rljax.cli import main
from rljax.runner import Runner, load_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["ppo.total_timesteps=2048", "runner.chunk_updates=1", "runner.checkpoint_every=1", "runner.keep_latest=3",
        "runner.progress=false", "runner.eval_episodes=2", "runner.eval_max_steps=50"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``(run directory, abstract restore target)`` of a finished 4-update run."""
    out = tmp_path_factory.mktemp("integrity") / "run"
    runner = Runner(EXPERIMENT, EXPERIMENT.make_config(overrides=TINY), str(out))
    runner.run()
    target = abstract_like({"state": runner.state, "frozen": jnp.zeros((runner.num_members,), bool)})
    return out, target


def copy_of(run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(run[0], dst)
    return dst


def restore(run_dir, target, order=("latest",)):
    lines = []
    ckpt = Checkpointer(str(run_dir), 3, 1)
    try:
        state, info = ckpt.restore_verified(target, order, warn=lines.append)
    finally:
        ckpt.close()
    return state, info, lines


def overwrite_data_file(step_dir, seed=0):
    """The issue's damage: 100 random bytes over one data file of the step (the largest,
    at a random offset; Orbax itself reads such a file back as wrong numbers, silently)."""
    d = step_dir / "default" / "ocdbt.process_0" / "d"
    f = max(d.iterdir(), key=lambda p: p.stat().st_size)
    rng = random.Random(seed)
    with open(f, "r+b") as h:
        h.seek(rng.randrange(f.stat().st_size - 100))
        h.write(rng.randbytes(100))
    return f


def test_intact_run_is_sealed_and_restores_its_newest_step(run):
    ckpts = run[0] / "checkpoints"
    assert sorted(record_steps(str(ckpts), "latest")) == [2, 3, 4]  # records of removed steps pruned
    assert sorted(int(p.name) for p in (ckpts / "latest").iterdir() if p.name.isdigit()) == [2, 3, 4]
    _, info, lines = restore(run[0], run[1])
    assert info == {"which": "latest", "step": 4, "checksum": True, "skipped": []} and lines == []


def test_corrupt_data_file_falls_back_to_previous_step_with_one_line(run, tmp_path):
    d = copy_of(run, tmp_path)
    f = overwrite_data_file(d / "checkpoints" / "latest" / "4")
    _, info, lines = restore(d, run[1])
    assert (info["which"], info["step"], info["checksum"]) == ("latest", 3, True)
    assert info["skipped"] == [{"which": "latest", "step": 4, "reason": f"default/ocdbt.process_0/d/{f.name} fails its checksum"}]
    assert len(lines) == 1 and "latest/4 is damaged" in lines[0] and "restored latest/3" in lines[0]


def test_truncated_metadata_file_falls_back(run, tmp_path):
    d = copy_of(run, tmp_path)
    meta = d / "checkpoints" / "latest" / "4" / "default" / "_METADATA"
    size = meta.stat().st_size
    os.truncate(meta, 100)
    _, info, lines = restore(d, run[1])
    assert info["step"] == 3
    assert info["skipped"][0]["reason"] == f"default/_METADATA is truncated (100 of {size} bytes)"
    assert len(lines) == 1


def test_missing_step_directory_is_named_not_skipped_silently(run, tmp_path):
    d = copy_of(run, tmp_path)
    shutil.rmtree(d / "checkpoints" / "latest" / "4")
    _, info, lines = restore(d, run[1])
    assert info["step"] == 3 and info["skipped"] == [{"which": "latest", "step": 4, "reason": "step directory missing"}]
    assert len(lines) == 1 and "latest/4" in lines[0]


def test_unsealed_step_is_checked_by_orbax_metadata_and_errors_become_one_reason(run, tmp_path):
    """A step without a record (saved just before a crash) gets the metadata check, and an
    Orbax read error is caught into the reason."""
    d = copy_of(run, tmp_path)
    os.remove(d / "checkpoints" / "integrity" / "latest" / "4.json")
    for f in (d / "checkpoints" / "latest" / "4" / "default" / "ocdbt.process_0" / "d").iterdir():
        with open(f, "r+b") as h:
            h.write(b"X" * 32)  # every data file's header
    _, info, _ = restore(d, run[1])
    assert info["step"] == 3
    reason = info["skipped"][0]["reason"]
    assert reason.startswith("orbax could not read it (") and "\n" not in reason


def test_a_target_of_another_shape_is_refused_before_orbax_reads(run):
    """Orbax's metadata is checked against the target: 2 members where the run has 1."""
    wrong = jax.tree.map(lambda x: jax.ShapeDtypeStruct((2,) + x.shape[1:], x.dtype), run[1])
    with pytest.raises(CheckpointError, match=r"latest/4 is damaged: array \S+ has shape \(1,"):
        restore(run[0], wrong)


def test_best_is_the_last_fallback_for_evaluation(run, tmp_path):
    d = copy_of(run, tmp_path)
    for step in (2, 3, 4):
        overwrite_data_file(d / "checkpoints" / "latest" / str(step), seed=step)
    _, info, lines = restore(d, run[1], order=("latest", "best"))
    assert (info["which"], info["step"]) == ("best", 4)
    assert [s["step"] for s in info["skipped"]] == [4, 3, 2] and len(lines) == 1


def test_all_damaged_exits_2_with_one_line_and_no_traceback(run, tmp_path):
    """In a real process: Orbax's asynchronous reader must not print anything either (one
    step is unsealed, so Orbax itself hits the damaged files)."""
    d = copy_of(run, tmp_path)
    ckpts = d / "checkpoints"
    os.truncate(ckpts / "latest" / "4" / "default" / "_METADATA", 100)
    os.remove(ckpts / "integrity" / "latest" / "3.json")
    for f in (ckpts / "latest" / "3" / "default" / "ocdbt.process_0" / "d").iterdir():
        with open(f, "r+b") as h:
            h.write(b"X" * 32)
    shutil.rmtree(ckpts / "latest" / "2")
    overwrite_data_file(ckpts / "best" / "4")
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-m", "rljax.cli", "eval", str(d)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("rljax: error: no intact latest or best checkpoint")
    for what in ("latest/4", "latest/3", "latest/2", "best/4"):
        assert f"checkpoint {what} is damaged" in err, err


@pytest.mark.parametrize("argv, needle", [
    (["run", "goodhart"], "is a run of experiment 'cartpole', not 'goodhart'"),
    (["run", "cartpole", "--set", "ppo.lr=1e-3"], "changed config (ppo.lr 0.00025 -> 0.001) would change its computation"),
    (["run", "cartpole", "--seeds", "2"], "the run has 1 member(s) [seed0], seeds [0], this command asks for 2 member(s)"),
])
def test_resume_mismatch_exit_2_one_line_naming_both(run, argv, needle, capsys):
    assert main(argv[:2] + ["--resume", str(run[0])] + argv[2:]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("rljax: error: ") and needle in err, err


def test_resume_with_allowed_change_falls_back_and_records_everything(run, tmp_path, capsys):
    """A resume from a damaged newest step with an accepted ``ppo.lr`` change: the step is set
    aside, update 4 is trained again, run.json and summary.json say what happened."""
    d = copy_of(run, tmp_path)
    overwrite_data_file(d / "checkpoints" / "latest" / "4")
    argv = ["run", "cartpole", "--resume", str(d), "--set", "ppo.lr=1e-3", "--set", "runner.eval_episodes=3",
            "--allow-changed-config"]
    assert main(argv) == 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "latest/4 is damaged" in err, err
    meta = json.loads((d / "run.json").read_text())
    assert meta["config"]["ppo"]["lr"] == 1e-3
    assert meta["config_changes"] == [{"update": 3, "changes": {"ppo.lr": [0.00025, 0.001],
                                                                "runner.eval_episodes": [2, 3]}}]
    (resume,) = meta["resumes"]
    assert resume["update"] == 3 and resume["restored_from"]["step"] == 3
    assert resume["restored_from"]["skipped"][0]["step"] == 4
    summary = json.loads((d / "summary.json").read_text())
    assert summary["restored_from"] == resume["restored_from"] and summary["resumed_from_update"] == 3
    ckpts = d / "checkpoints"
    assert (ckpts / "damaged" / "latest-4").is_dir()
    assert 4 in record_steps(str(ckpts), "latest")  # step 4 saved again, and sealed
    _, info, _ = restore(d, run[1])
    assert (info["step"], info["checksum"], info["skipped"]) == (4, True, [])
    # The runner's own view of the run agrees (the same verified restore as `rljax eval`).
    runner, _ = load_run(str(d))
    assert runner.restored_from["step"] == 4


def test_a_state_with_a_zero_size_array_saves_verifies_and_restores(tmp_path):
    """Orbax refuses zero-size arrays; pursuit's full observation keeps an empty history leaf,
    so its runs could not checkpoint. The Checkpointer leaves them out and puts them back."""
    from flax import struct

    @struct.dataclass
    class State:
        params: jax.Array
        history: jax.Array
        step: jax.Array

    state = State(params=jnp.arange(6.0).reshape(2, 3), history=jnp.zeros((2, 4, 0, 43)), step=jnp.int32(7))
    ckpt = Checkpointer(str(tmp_path / "ckpt"))
    ckpt.save(3, state)
    ckpt.wait()
    assert ckpt.verify("latest", 3, abstract_like(state))[0] is None
    back = ckpt.restore(abstract_like(state))
    ckpt.close()
    assert isinstance(back, State) and back.history.shape == (2, 4, 0, 43) and back.history.dtype == jnp.float32
    assert (back.params == state.params).all() and int(back.step) == 7
