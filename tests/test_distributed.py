"""Member sharding over devices and processes: single process in-process, two processes on
loopback in subprocesses (each with 2 CPU devices, 4 global devices)."""
import json
import os
import socket
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax import distributed
from rljax.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 120

# The computation each test shards: a small per-member function, vmapped over 8 members.
WORKER = textwrap.dedent("""
    import json, sys
    import numpy as np
    from rljax import distributed

    def data():
        x = np.arange(8 * 5, dtype=np.float32).reshape(8, 5) / 7.0
        return {"x": x, "w": np.linspace(-1.0, 1.0, 8, dtype=np.float32)}

    def member(d):
        import jax.numpy as jnp
        h = jnp.tanh(d["x"] * d["w"]) @ jnp.ones((5, 3), jnp.float32)
        return {"y": h, "s": jnp.sum(h ** 2)}

    if __name__ == "__main__":
        mode, out = sys.argv[1], sys.argv[2]
        if mode == "multi":
            distributed.initialize_from_env_or_flags(local_device_count=2)
        elif mode == "local4":
            distributed.initialize_from_env_or_flags(local_device_count=4)
        import jax
        mesh = distributed.member_mesh()
        d = data()
        sharded = distributed.shard_members(d, mesh)
        y = jax.jit(jax.vmap(member))(sharded)
        got = distributed.gather_members(y)
        # The process-local placement path: each process passes only its block of members.
        if jax.process_count() > 1:
            k = 8 // jax.process_count()
            i = jax.process_index()
            block = {key: v[i * k:(i + 1) * k] for key, v in d.items()}
            got_local = distributed.gather_members(jax.jit(jax.vmap(member))(
                distributed.shard_members(block, mesh, process_local=True)))
        else:
            got_local = got
        info = {"process": jax.process_index(), "processes": jax.process_count(),
                "devices": jax.device_count(), "local_devices": jax.local_device_count(),
                "shards": len(sharded["x"].addressable_shards),
                "y": got["y"].tolist(), "s": got["s"].tolist(),
                "y_local": got_local["y"].tolist()}
        with open(out, "w") as f:
            json.dump(info, f)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLJAX_")}
    env.update(JAX_PLATFORMS="cpu", PYTHONPATH=ROOT + os.pathsep + env.get("PYTHONPATH", ""), **extra)
    env.pop("XLA_FLAGS", None)
    return env


def _reference():
    ns: dict = {}
    exec(WORKER, ns)  # defines data() and member() without running __main__
    return jax.tree.map(np.asarray, jax.jit(jax.vmap(ns["member"]))(ns["data"]()))


@pytest.fixture()
def worker(tmp_path):
    path = tmp_path / "worker.py"
    path.write_text(WORKER)
    return str(path)


def test_single_process_untouched():
    assert distributed.initialize_from_env_or_flags() is False
    mesh = distributed.member_mesh()
    assert mesh.axis_names == ("members",)
    tree = {"a": np.arange(6.0).reshape(6, 1) * np.ones((6, 2)), "b": np.arange(6)}
    placed = distributed.shard_members(tree, mesh)
    back = distributed.gather_members(placed)
    np.testing.assert_array_equal(back["a"], tree["a"])
    np.testing.assert_array_equal(back["b"], tree["b"])
    assert distributed.is_primary()


def test_bad_inputs(monkeypatch):
    with pytest.raises(ValueError, match="same leading member axis"):
        distributed.shard_members({"a": np.zeros((4, 2)), "b": np.zeros((3,))})
    with pytest.raises(ValueError, match="no leaves"):
        distributed.shard_members({})
    monkeypatch.delenv("RLJAX_NUM_PROCESSES", raising=False)
    with pytest.raises(ConfigError, match="RLJAX_NUM_PROCESSES"):
        distributed.initialize_from_env_or_flags(coordinator="127.0.0.1:1")
    with pytest.raises(ConfigError, match="not in"):
        distributed.initialize_from_env_or_flags(coordinator="127.0.0.1:1", num_processes=2, process_id=2)
    jnp.zeros(1).block_until_ready()  # backends exist now
    with pytest.raises(ConfigError, match="already initialised"):
        distributed.initialize_from_env_or_flags(local_device_count=3)


def test_uneven_split_is_a_clear_error(worker, tmp_path):
    code = ("from rljax import distributed; import numpy as np\n"
            "distributed.initialize_from_env_or_flags(local_device_count=4)\n"
            "try:\n    distributed.shard_members({'a': np.zeros((6, 2))})\n"
            "except ValueError as e:\n    print('ERR', e)\n")
    r = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert "ERR 6 members cannot be split evenly over 4 devices" in r.stdout, r.stderr


def test_one_process_four_cpu_devices(worker, tmp_path):
    out = tmp_path / "local4.json"
    subprocess.run([sys.executable, worker, "local4", str(out)], env=_env(), check=True, timeout=TIMEOUT,
                   capture_output=True)
    info = json.loads(out.read_text())
    assert (info["devices"], info["shards"]) == (4, 4)
    ref = _reference()
    np.testing.assert_allclose(np.asarray(info["y"], np.float32), ref["y"], rtol=1e-6, atol=1e-6)


def test_two_processes_on_loopback(worker, tmp_path):
    port = _free_port()
    procs = []
    for pid in range(2):
        env = _env(RLJAX_COORDINATOR=f"127.0.0.1:{port}", RLJAX_NUM_PROCESSES="2", RLJAX_PROCESS_ID=str(pid))
        procs.append(subprocess.Popen([sys.executable, worker, "multi", str(tmp_path / f"p{pid}.json")], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        for p in procs:
            _, err = p.communicate(timeout=TIMEOUT)
            assert p.returncode == 0, err[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    ref = _reference()
    for pid in range(2):
        info = json.loads((tmp_path / f"p{pid}.json").read_text())
        assert (info["process"], info["processes"], info["devices"], info["local_devices"]) == (pid, 2, 4, 2)
        assert info["shards"] == 2  # this process holds 2 of the 4 member shards
        np.testing.assert_allclose(np.asarray(info["y"], np.float32), ref["y"], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(np.asarray(info["s"], np.float32), ref["s"], rtol=1e-6)
        np.testing.assert_allclose(np.asarray(info["y_local"], np.float32), ref["y"], rtol=1e-6, atol=1e-6)
