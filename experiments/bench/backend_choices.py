"""Measures the backend-dependent choices of :mod:`rljax.backend` on this machine, so the
``"auto"`` defaults rest on figures (``docs/backend_choices.md`` records them).

- rare branches: CartPole PPO updates with the auto-reset and truncation bootstrap as
  ``cond`` vs ``select`` (1 member and 64 members), compiled chunks timed alone;
- initialisation: all members' initial states in one program with ``lax.map`` vs ``vmap``
  (the vmap in a subprocess under a time limit: batched QR once hung XLA's CPU pool);
- member loop: ``vmap`` vs ``map`` for CartPole's MLP (Goodhart's CNN: ``bench_goodhart_cnn
  --compare-vmap``).

    python -m experiments.bench.backend_choices
    python -m experiments.bench.backend_choices --init-members 1024 --repeats 7
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from rljax.machine import device_description, host_description
from rljax.experiments.bench.fresh_process import ROOT


def _runner(members: int, overrides: list[str]):
    from rljax.experiments.cartpole.experiment import EXPERIMENT
    from rljax.runner import Runner

    cfg = EXPERIMENT.make_config(overrides=["ppo.total_timesteps=20480", "runner.progress=false",
                                            f"runner.num_seeds={members}", *overrides])
    return Runner(EXPERIMENT, cfg, tempfile.mkdtemp())


def time_chunks(variants: dict[str, list[str]], members: int, updates: int, repeats: int) -> dict[str, float]:
    """Median seconds per update of each variant's compiled chunk, interleaved repeats."""
    import jax
    import numpy as np

    progs = {}
    for name, overrides in variants.items():
        r = _runner(members, overrides)
        state, frozen = r.init_state(), r.initial_frozen()
        progs[name] = (jax.jit(r._members(r._member_chunk(updates))), state, frozen)
        jax.block_until_ready(progs[name][0](state, frozen))
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name, (fn, state, frozen) in progs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn(state, frozen))
            times[name].append((time.perf_counter() - t0) / updates)
    return {name: float(np.median(v)) for name, v in times.items()}


def init_seconds(members: int, loop: str) -> dict:
    """Wall time of building ``members`` initial states (compile + run), in this process."""
    t0 = time.perf_counter()
    r = _runner(members, [f"runner.init_loop={loop}"])
    r.init_state()
    return {"seconds": time.perf_counter() - t0, "init": r.timings["init"]}


def _init_child(members: int, loop: str, limit: float) -> str:
    cmd = [sys.executable, "-m", "rljax.experiments.bench.backend_choices", "--child-init", loop, "--init-members", str(members)]
    try:
        out = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True,
                             timeout=limit)
    except subprocess.TimeoutExpired:
        return f"did not finish in {limit:.0f} s (hang?)"
    if out.returncode != 0:
        return "failed: " + (out.stderr.strip().splitlines() or ["?"])[-1]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return f"{r['init']:.1f} s (runner construction + init program, compile included: {r['seconds']:.1f} s)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--updates", type=int, default=20)
    p.add_argument("--init-members", type=int, default=1024)
    p.add_argument("--init-limit", type=float, default=300.0, help="seconds before an init attempt counts as hung")
    p.add_argument("--child-init", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child_init:
        print(json.dumps(init_seconds(a.init_members, a.child_init)))
        return 0
    print(f"host: {host_description()}; device: {device_description()}")
    branches = {mode: [f"runner.reset_branch={mode}", f"runner.bootstrap_branch={mode}"] for mode in ("cond", "select")}
    branches["reset select, bootstrap cond"] = ["runner.reset_branch=select", "runner.bootstrap_branch=cond"]
    for members in (1, 64):
        t = time_chunks(branches, members, a.updates, a.repeats)
        base = t["cond"]
        print(f"rare branches, CartPole, {members} member(s), ms per update (median of {a.repeats}):")
        for name, v in t.items():
            print(f"  {name:<30} {v * 1e3:8.2f}   x{base / v:5.2f} vs cond")
    loops = {"vmap": ["runner.member_loop=vmap"], "map": ["runner.member_loop=map"]}
    t = time_chunks(loops, 64, a.updates, a.repeats)
    print(f"member loop, CartPole MLP, 64 members, ms per update: vmap {t['vmap'] * 1e3:.2f}, map {t['map'] * 1e3:.2f}")
    print(f"initialisation of {a.init_members} CartPole members (fresh process each):")
    for loop in ("map", "vmap"):
        print(f"  init_loop={loop:<5} {_init_child(a.init_members, loop, a.init_limit)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
