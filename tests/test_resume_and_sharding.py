"""Resume after SIGKILL gives the uninterrupted result; sharding members over 4 CPU devices
gives the unsharded result."""
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.experiments.cartpole.experiment import EXPERIMENT
from rljax.runner import Runner, resume_runner
from tests.bits import same

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OVERRIDES = ["ppo.total_timesteps=10240", "runner.chunk_updates=2", "runner.checkpoint_every=4", "runner.progress=false",
             "runner.eval_episodes=2", "runner.eval_max_steps=50", "runner.num_seeds=2"]


def run_child(code: str, env_extra: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu", **(env_extra or {}))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(600)
def test_resume_after_sigkill_matches_uninterrupted(tmp_path):
    killed = tmp_path / "killed"
    proc = run_child(f"""
        import os, signal
        from rljax.experiments.cartpole.experiment import EXPERIMENT
        from rljax.runner import Runner
        cfg = EXPERIMENT.make_config(overrides={OVERRIDES!r})
        def kill(ctx):
            if ctx.update >= 10:  # several checkpoints in, mid-run
                os.kill(os.getpid(), signal.SIGKILL)
        Runner(EXPERIMENT, cfg, {str(killed)!r}, on_chunk_end=[kill]).run()
    """)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not (killed / "summary.json").exists()
    resumed = resume_runner(str(killed))
    summary = resumed.run()
    assert 0 < summary["resumed_from_update"] <= 10
    straight = Runner(EXPERIMENT, EXPERIMENT.make_config(overrides=OVERRIDES), str(tmp_path / "straight"))
    straight.run()
    assert same(resumed.state, straight.state)  # exact on CPU (tests/bits.py)
    # The metrics CSV has each update exactly once after the resume.
    rows = (killed / "metrics_seed0.csv").read_text().strip().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, 21))


@pytest.mark.timeout(600)
def test_sharded_members_match_unsharded(tmp_path):
    overrides = OVERRIDES[:-1] + ["runner.num_seeds=8", "ppo.total_timesteps=4096"]
    out = tmp_path / "sharded.npz"
    proc = run_child(f"""
        import jax, numpy as np
        jax.config.update("jax_num_cpu_devices", 4)
        from rljax.experiments.cartpole.experiment import EXPERIMENT
        from rljax.runner import Runner
        cfg = EXPERIMENT.make_config(overrides={overrides!r})
        r = Runner(EXPERIMENT, cfg, {str(tmp_path / 'run_sharded')!r})
        r.run()
        assert jax.device_count() == 4
        leaf = jax.tree.leaves(r.state.params)[0]
        assert len(leaf.sharding.device_set) == 4, leaf.sharding
        np.savez({str(out)!r}, *[np.asarray(x) for x in jax.tree.leaves(r.state.params)])
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ref = Runner(EXPERIMENT, EXPERIMENT.make_config(overrides=overrides), str(tmp_path / "run_ref"))
    ref.run()
    sharded = np.load(out)
    for i, leaf in enumerate(jax.tree.leaves(ref.state.params)):
        np.testing.assert_allclose(sharded[f"arr_{i}"], np.asarray(leaf), atol=1e-5, rtol=1e-4)


GOODHART_TINY = ["env.grid_size=12", "env.min_food=4", "env.max_food=8", "env.min_poison=2", "env.max_poison=4",
                 "env.modes=[ground_truth,proxy]", "network.channels=[4]", "network.hidden=8", "ppo.num_envs=2",
                 "ppo.num_steps=8", "ppo.num_minibatches=1", "ppo.num_epochs=1", "ppo.total_timesteps=32",
                 "runner.eval_episodes=1", "runner.eval_max_steps=4", "runner.progress=false"]


@pytest.mark.timeout(600)
def test_goodhart_members_shard_over_two_devices(tmp_path):
    """`rljax run goodhart` picks 2 devices for its members on a 2-core host. Foraging places its
    items in a while_loop whose initial carry is a constant, which shard_map's varying-axis check
    rejected inside the member-sharded init (the run crashed before training). The sharded init
    must equal the unsharded one, and the sharded run must train."""
    from rljax.experiments.goodhart.experiment import EXPERIMENT as GOODHART

    out = tmp_path / "init.npz"
    proc = run_child(f"""
        import json, jax, numpy as np
        jax.config.update("jax_num_cpu_devices", 2)
        from rljax.cli import experiment_main
        from rljax.experiments.goodhart.experiment import EXPERIMENT
        from rljax.runner import Runner
        r = Runner(EXPERIMENT, EXPERIMENT.make_config(overrides={GOODHART_TINY!r}), {str(tmp_path / 'init_run')!r})
        state = r.init_state()
        assert len(jax.tree.leaves(state.params)[0].sharding.device_set) == 2
        np.savez({str(out)!r}, *[np.asarray(x) for x in jax.tree.leaves(state)])
        args = ["--out", {str(tmp_path / 'run')!r}] + [x for kv in {GOODHART_TINY!r} for x in ("--set", kv)]
        assert experiment_main("goodhart", args) == 0
        assert len(json.load(open({str(tmp_path / "run" / "run.json")!r}))["devices"]) == 2
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ref = Runner(GOODHART, GOODHART.make_config(overrides=GOODHART_TINY), str(tmp_path / "ref")).init_state()
    sharded = np.load(out)
    for i, leaf in enumerate(jax.tree.leaves(ref)):
        assert np.array_equal(sharded[f"arr_{i}"], np.asarray(leaf)), i


@pytest.mark.timeout(300)
def test_a_zero_size_state_leaf_survives_chunk_after_chunk_on_two_devices():
    """XLA hands a zero-size output back replicated, and the runner's ahead-of-time compiled
    chunk checks shardings strictly: pursuit's full observation (an empty history leaf) failed
    at its second chunk on 2 CPU devices. ``EmptyLeavesPlaced`` moves such leaves back."""
    proc = run_child("""
        import jax, jax.numpy as jnp
        jax.config.update("jax_num_cpu_devices", 2)
        from rljax.sharding import EmptyLeavesPlaced, member_sharding
        s = member_sharding(4)
        x = {"a": jax.device_put(jnp.zeros((4, 3)), s), "empty": jax.device_put(jnp.zeros((4, 0, 5)), s)}
        like = jax.tree.map(lambda v: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=v.sharding), x)
        step = jax.jit(lambda t: jax.tree.map(lambda v: v + 1, t), donate_argnums=0).lower(like).compile()
        chunk = EmptyLeavesPlaced(step, (like,))
        for _ in range(3):
            x = chunk(x)
        assert float(x["a"].sum()) == 36.0 and x["empty"].shape == (4, 0, 5)
        assert "while" not in chunk.as_text() and "HloModule" in chunk.as_text()  # the compiled program's own attributes
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
