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
