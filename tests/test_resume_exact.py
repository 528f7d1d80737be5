"""What a user does after a crash: the CLI in a subprocess with the members sharded over 2 CPU
devices, SIGKILL right after checkpoint N is complete, ``--resume``; every CSV row and the final
state equal an uninterrupted run's, bit for bit, for each algorithm family (PPO, EMPO,
self-play, the communities arms). Resuming onto another device count says so in one line and
``run.json`` records the layout of each segment."""
import glob
import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The child is the CLI (rljax.cli.main) plus two test hooks: with KILL_AFTER_CHECKPOINT=N it
# SIGKILLs itself at the end of the chunk that saved update N, once that checkpoint is complete
# on disk; at the end it writes the final member-batched state to <out>/final_state.npz.
CHILD = textwrap.dedent("""
    import os, signal, sys, time
    import numpy as np
    from rljax import runner as R
    from rljax.cli import main

    kill_after = int(os.environ.get("KILL_AFTER_CHECKPOINT", "0"))
    init, run = R.Runner.__init__, R.Runner.run

    def kill(ctx):
        if ctx.update == kill_after:
            done = os.path.join(ctx.runner.out_dir, "checkpoints", "latest", str(kill_after))
            deadline = time.monotonic() + 120
            while not os.path.isdir(done) and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGKILL)

    def hooked_init(self, *a, **k):
        init(self, *a, **k)
        if kill_after:
            self.on_chunk_end.append(kill)

    def hooked_run(self):
        import jax
        from rljax.sharding import to_host
        summary = run(self)
        leaves = jax.tree.leaves_with_path(to_host(self.state))
        np.savez(os.path.join(self.out_dir, "final_state.npz"),
                 **{jax.tree_util.keystr(p): np.asarray(x) for p, x in leaves})
        return summary

    R.Runner.__init__, R.Runner.run = hooked_init, hooked_run
    sys.exit(main(sys.argv[1:]))
""")


def cli(args: list[str], cache: str, kill_after: int = 0) -> subprocess.CompletedProcess:
    """The CLI in a fresh process. The runs of one test share a persistent compilation cache:
    it only skips compiling a program already compiled, so a resume that lowered another
    program (another placement of the members) still compiles, and runs, that other program."""
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu", KILL_AFTER_CHECKPOINT=str(kill_after),
               JAX_COMPILATION_CACHE_DIR=cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"{' '.join(args[:2])}{' killed' if kill_after else ''}: {now.ru_utime - cpu.ru_utime + now.ru_stime - cpu.ru_stime:.1f} s CPU")
    return proc


def kill_and_resume(tmp_path, experiment: str, args: list[str], kill_after: int,
                    before_resume=lambda killed: None) -> tuple[str, str, str]:
    """Runs ``experiment`` uninterrupted, and killed after checkpoint ``kill_after`` then
    resumed; returns both run directories and the resume's stderr. ``before_resume(killed)``
    runs between the kill and the resume."""
    straight, killed, cache = (str(tmp_path / n) for n in ("straight", "killed", "xla_cache"))
    run = ["run", experiment, "--devices", "2", *args]
    proc = cli(run + ["--out", straight], cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = cli(run + ["--out", killed], cache, kill_after=kill_after)
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert not os.path.exists(os.path.join(killed, "summary.json"))
    before_resume(killed)
    proc = cli(["run", experiment, "--resume", killed], cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return straight, killed, proc.stderr


def assert_same_run(straight: str, resumed: str) -> None:
    """Every CSV (metrics, evaluations, episodes; all members) byte for byte, and the final
    state leaf for leaf."""
    names = sorted(os.path.relpath(p, straight) for p in glob.glob(os.path.join(straight, "*.csv")))
    assert "metrics.csv" in names and "eval.csv" in names, names
    assert names == sorted(os.path.relpath(p, resumed) for p in glob.glob(os.path.join(resumed, "*.csv")))
    for name in names:
        a, b = (open(os.path.join(d, name)).read().splitlines() for d in (straight, resumed))
        assert len(a) == len(b), (name, len(a), len(b))
        bad = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        assert not bad, f"{name}: {len(bad)} of {len(a)} rows differ, first:\n{a[bad[0]]}\n{b[bad[0]]}"
    a, b = np.load(os.path.join(straight, "final_state.npz")), np.load(os.path.join(resumed, "final_state.npz"))
    assert sorted(a.files) == sorted(b.files)
    differ = [k for k in a.files if not np.array_equal(a[k], b[k], equal_nan=True)]
    assert not differ, f"{len(differ)} of {len(a.files)} state leaves differ: {differ[:5]}"


def assert_sharded_segments(run_dir: str, kill_after: int, members: int) -> None:
    segments = json.load(open(os.path.join(run_dir, "run.json")))["segments"]
    assert [s["start_update"] for s in segments] == [0, kill_after]
    for s in segments:
        assert s["layout"]["device_count"] == 2 and s["layout"]["member_groups"] == 2, s
        assert s["layout"]["members"] == members and s["layout"]["platform"] == "cpu"
    assert segments[1]["bitwise"] is True


def _set(items: list[str]) -> list[str]:
    return [x for kv in items for x in ("--set", kv)]


@pytest.mark.timeout(900)
def test_ppo_cartpole_resumes_exactly_and_says_when_a_resume_cannot(tmp_path):
    args = ["--seeds", "2"] + _set(["ppo.total_timesteps=4096", "runner.chunk_updates=2", "runner.checkpoint_every=2",
                                    "runner.eval_every=4", "runner.eval_episodes=2", "runner.eval_max_steps=50",
                                    "runner.progress=false"])
    elsewhere = str(tmp_path / "elsewhere")  # a copy of the killed run goes on on 1 device instead
    straight, killed, err = kill_and_resume(tmp_path, "cartpole", args, kill_after=4,
                                            before_resume=lambda killed: shutil.copytree(killed, elsewhere))
    assert "not bit-identical" not in err, err
    assert_same_run(straight, killed)
    assert_sharded_segments(killed, 4, members=2)

    proc = cli(["run", "cartpole", "--resume", elsewhere, "--devices", "1"], str(tmp_path / "xla_cache"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [l for l in proc.stderr.splitlines() if "not bit-identical" in l]
    assert len(lines) == 1 and "device_count: 2 -> 1" in lines[0] and "member_groups: 2 -> 1" in lines[0], proc.stderr
    segments = json.load(open(os.path.join(elsewhere, "run.json")))["segments"]
    assert [(s["start_update"], s["layout"]["device_count"], s.get("bitwise")) for s in segments] == \
        [(0, 2, None), (4, 1, False)]


@pytest.mark.timeout(900)
def test_empo_resumes_exactly(tmp_path):
    args = ["--preset", "smoke", "--seeds", "2"] + _set(["empo.num_training_steps=60", "runner.chunk_updates=10",
                                                          "runner.checkpoint_every=20", "runner.eval_every=30",
                                                          "runner.eval_episodes=1", "runner.progress=false"])
    straight, killed, err = kill_and_resume(tmp_path, "empo", args, kill_after=20)
    assert "not bit-identical" not in err, err
    assert_same_run(straight, killed)
    assert_sharded_segments(killed, 20, members=2)


@pytest.mark.timeout(900)
def test_selfplay_pursuit_resumes_exactly(tmp_path):
    args = ["--seeds", "2"] + _set([
        "ppo.num_envs=8", "ppo.num_steps=16", "ppo.num_minibatches=2", "ppo.num_epochs=2", "network.hidden=[16,16]",
        "env.max_steps=40", "protocol.cold_start_timesteps=256", "protocol.max_phases=2",
        "protocol.timesteps_per_phase=512", "protocol.warmup_timesteps=[512]", "protocol.warm_start_timesteps=128",
        "curriculum.ne_gap_threshold=1.0", "curriculum.ne_gap_consecutive=1", "curriculum.increment=5.0",
        "health.snapshot_every=128", "health.cooldown=256", "health.window=8", "health.entropy_collapse=10.0",
        "selfplay.eval_episodes=4", "selfplay.pool_lanes=2", "selfplay.pool_size=4", "selfplay.nav_max_steps=40",
        "runner.chunk_updates=1", "runner.checkpoint_every=1", "runner.eval_episodes=1", "runner.eval_max_steps=40",
        "runner.progress=false"])
    straight, killed, err = kill_and_resume(tmp_path, "pursuit", args, kill_after=5)
    assert "not bit-identical" not in err, err
    assert_same_run(straight, killed)
    assert_sharded_segments(killed, 5, members=2)


@pytest.mark.timeout(900)
def test_communities_arms_resume_exactly(tmp_path):
    # Both arms x 1 seed: one member per device.
    args = _set(["env.episode_length=64", "ppo.num_envs=16", "ppo.num_steps=32", "ppo.num_epochs=2",
                 "ppo.num_minibatches=2", "ppo.total_timesteps=2048", "sampling.mode=curriculum",
                 "sampling.curriculum_updates=1", "runner.chunk_updates=1", "runner.checkpoint_every=2",
                 "runner.eval_episodes=1", "runner.eval_max_steps=64", "runner.progress=false"])
    straight, killed, err = kill_and_resume(tmp_path, "communities", args, kill_after=2)
    assert "not bit-identical" not in err, err
    assert_same_run(straight, killed)
    assert_sharded_segments(killed, 2, members=2)


def test_experiment_modules_leave_the_device_count_open_and_members_split_evenly():
    """Importing an experiment must not start JAX: ``python -m experiments.NAME`` imports it
    before the CLI sets the number of CPU devices (which must precede JAX's start). With 4
    devices, members split over the most devices that divide them."""
    code = textwrap.dedent("""
        import jax, jax.numpy as jnp
        import rljax.experiments.cartpole.experiment, rljax.experiments.empo.experiment, rljax.experiments.pursuit.experiment, rljax.experiments.communities.experiment
        jax.config.update("jax_num_cpu_devices", 4)
        assert jax.device_count() == 4, jax.device_count()
        from rljax.sharding import member_groups, member_sharding, place_members
        assert [member_groups(m) for m in (1, 2, 3, 4, 5, 6, 8, 9)] == [1, 2, 3, 4, 1, 3, 4, 3]
        x = place_members(jnp.arange(6.0))
        assert x.sharding == member_sharding(6) and len(x.sharding.device_set) == 3
        assert [s.data.shape for s in x.addressable_shards] == [(2,)] * 3
    """)
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_resumed_logs_keep_the_rows_before_the_checkpoint_byte_for_byte(tmp_path):
    """Truncating on resume keeps the kept rows as written (a ``nan`` stays ``nan``) and drops
    a row the kill cut off, so the resumed files equal the uninterrupted ones."""
    from rljax.logger import RunLogger

    names = ["seed0", "seed1"]
    chunks = [{"loss": np.array([[np.nan, 1.5, 2.0], [0.25, np.nan, 3.0]]), "episode_return": np.ones((2, 3))},
              {"loss": np.array([[4.0, np.nan, 5.0], [6.0, 7.0, np.nan]]), "episode_return": np.full((2, 3), np.nan)}]

    def write(run_dir, chunk_list, resume_from=None, start=0):
        run_dir.mkdir(exist_ok=True)
        log = RunLogger(str(run_dir), names, steps_per_update=8, per_member=True, resume_from=resume_from)
        for c, chunk in enumerate(chunk_list):
            log.log_updates(start + 3 * c, chunk)
        log.close()

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    write(straight, chunks)
    write(resumed, chunks)
    for name in ("metrics.csv", "metrics_seed0.csv"):
        with open(resumed / name, "a") as f:
            f.write('0,"seed0",7,5')  # a row the kill cut off
    write(resumed, chunks[1:], resume_from=3, start=3)
    for name in ("metrics.csv", "metrics_seed0.csv", "metrics_seed1.csv"):
        assert (resumed / name).read_bytes() == (straight / name).read_bytes(), name
    assert b"nan" in (straight / "metrics.csv").read_bytes()


def test_runs_recorded_before_segments_resume_on_their_device_count():
    from rljax.sharding import layout_changes, recorded_layout

    old = {"devices": ["cpu:0"], "members": [{}] * 4, "backend": {"platform": "cpu"}}
    assert recorded_layout(old)["local_device_count"] == 1 and recorded_layout(old)["member_groups"] == 1
    many = dict(old, devices=[f"cpu:{i}" for i in range(16)] + ["... 32 in all"])
    assert recorded_layout(many)["device_count"] == 32 and recorded_layout(many)["member_groups"] == 1
    now = {"platform": "cpu", "device_count": 2, "member_groups": 2, "jax_version": "x"}
    assert layout_changes(recorded_layout(old), now) == ["device_count: 1 -> 2", "member_groups: 1 -> 2"]
