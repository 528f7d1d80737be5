"""Two processes x 2 CPU devices on loopback train 8 members sharded over the 4 global devices
(jax.distributed); the result equals a single-process run."""
import os
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from rljax.experiments.probe.experiment import EXPERIMENT
from rljax.runner import Runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OVERRIDES = ["runner.num_seeds=8", "runner.progress=false", "ppo.total_timesteps=4096"]

CHILD = textwrap.dedent("""
    import sys, numpy as np
    from rljax.distributed import initialize
    pid, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    initialize(f"127.0.0.1:{port}", 2, pid, local_device_count=2)
    import jax
    from rljax.experiments.probe.experiment import EXPERIMENT
    from rljax.runner import Runner
    from rljax.sharding import to_host
    r = Runner(EXPERIMENT, EXPERIMENT.make_config(overrides=%r), out)
    r.run()
    assert jax.device_count() == 4 and jax.process_count() == 2
    leaf = jax.tree.leaves(r.state.params)[0]
    assert len(leaf.addressable_shards) == 2  # this process holds half of the members
    host = to_host(r.state.params)  # a collective: every process calls it
    if pid == 0:
        np.savez(out + "/params.npz", *[np.asarray(x) for x in jax.tree.leaves(host)])
""" % OVERRIDES)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(300)
def test_two_processes_on_loopback_match_one_process(tmp_path):
    port = str(free_port())
    out = str(tmp_path / "mp")
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(i), port, out], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    logs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(l[-2000:] for l in logs)
    assert os.path.exists(os.path.join(out, "summary.json"))  # written once, by process 0
    assert not os.path.exists(os.path.join(out, "process1", "summary.json"))
    ref = Runner(EXPERIMENT, EXPERIMENT.make_config(overrides=OVERRIDES), str(tmp_path / "ref"))
    ref.run()
    got = np.load(os.path.join(out, "params.npz"))
    for i, leaf in enumerate(jax.tree.leaves(ref.state.params)):
        np.testing.assert_allclose(got[f"arr_{i}"], np.asarray(leaf), atol=1e-5, rtol=1e-4)
