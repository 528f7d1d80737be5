"""Wall time of the exact phase-2 oracle (backward induction of eqs 4-9) on the trivial map at
horizon 10, after compilation (target: < 0.1 s), plus the oracle's values at the initial state.

    python -m experiments.empo.bench_oracle                 # trivial map, 20 repeats
    python -m experiments.empo.bench_oracle --small         # also the small map (10384 states, horizon 15)

The human prior is the demo's heuristic potential policy (beta = 1000); the values are also
printed under the tabular Boltzmann prior (beta_h = 10). Timings are medians of ``--repeats``
runs of the compiled solver (``jax.block_until_ready``), compile time printed apart.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import jax
import numpy as np

from rljax.environments.multigrid import (
    ACTION_NAMES,
    enumerate_states,
    finite_world,
    num_reachable_pairs,
    small_task,
    transition_table,
    transition_tensor,
    trivial_task,
)
from rljax.environments.multigrid_prior import heuristic_policy_table, path_table
from rljax.empo.oracle import solve_phase2
from rljax.empo.prior import boltzmann_prior

THEORY = dict(gamma_r=0.99, gamma_h=0.99, zeta=2.0, xi=1.0, eta=1.1)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    devices = ", ".join(str(d) for d in jax.devices())
    return f"{platform.node()} | {cpu} | {os.cpu_count()} CPUs | python {platform.python_version()} | jax {jax.__version__} | devices: {devices}"


def timed(fn, repeats: int) -> tuple[float, list[float]]:
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return first, times


def bench(task, repeats: int, show_values: bool) -> None:
    env, horizon = task.env, int(task.params.max_steps)
    t0 = time.perf_counter()
    space = enumerate_states(env, task.params, task.initial_state)
    t_enum = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = jax.block_until_ready(transition_table(env, task.params, space))
    t_table = time.perf_counter() - t0
    world = finite_world(env, task.params, task.goals, space, table)
    prior = jax.block_until_ready(
        heuristic_policy_table(env, space, task.params, task.goals, path_table(task.params.walls), 1000.0)
    )
    print(f"\n== {task.name} map: {space.num_states} reachable configurations "
          f"({num_reachable_pairs(space, horizon)} (t, s) pairs within horizon {horizon}), "
          f"{env.num_joint_actions} joint actions, K = {env.num_outcomes} outcomes")
    print(f"enumeration {t_enum:.2f} s, transition table {t_table:.2f} s (both include compilation)")
    if space.num_states <= 4096:
        dense = jax.block_until_ready(transition_tensor(table))
        print(f"dense P[s, a, s']: {dense.shape}, max |row sum - 1| = {float(abs(dense.sum(-1) - 1).max()):.1e}")

    for beta_r in (10.0, 1000.0):
        run = lambda: solve_phase2(world, prior, beta_r=beta_r, **THEORY)  # noqa: E731
        first, times = timed(run, repeats)
        med = statistics.median(times)
        print(f"oracle beta_r={beta_r:g}: first call {first:.2f} s (compile + run), "
              f"median of {repeats} = {med * 1e3:.2f} ms (min {min(times) * 1e3:.2f}, max {max(times) * 1e3:.2f})"
              + (f"; target < 100 ms: {'met' if med < 0.1 else 'MISSED'} ({0.1 / med:.0f}x margin)" if task.name == "trivial" else ""))
        if show_values:
            show(env, task, run(), f"heuristic prior (beta=1000), beta_r={beta_r:g}")
    if show_values:
        bp, _ = boltzmann_prior(world, 10.0, 0.99)
        for beta_r in (10.0, 1000.0):
            res = solve_phase2(world, bp, beta_r=beta_r, **THEORY)
            show(env, task, res, f"Boltzmann prior (beta_h=10), beta_r={beta_r:g}")


def show(env, task, res, label: str) -> None:
    np.set_printoptions(precision=6, suppress=True)
    goals = [tuple(int(v) for v in np.argwhere(np.asarray(c))[0][::-1]) for c in np.asarray(task.goals.cells)[0]]
    names = [" ".join(ACTION_NAMES[int(d)] for d in np.unravel_index(a, [4] * env.n_robots)) for a in range(4**env.n_robots)]
    print(f"  [{label}] initial state (t=0, s=0):")
    print(f"    V_r = {float(res.v_r[0, 0]):.6f}   U_r = {float(res.u_r[0, 0]):.6f}   X_h = {float(res.x_h[0, 0, 0]):.6f}")
    print("    pi_r: " + ", ".join(f"{n}={float(p):.6f}" for n, p in zip(names, np.asarray(res.pi_r[0, 0]))))
    print("    Q_r:  " + ", ".join(f"{n}={float(q):.6f}" for n, q in zip(names, np.asarray(res.q_r[0, 0]))))
    print("    V_h^e: " + ", ".join(f"{g}={float(v):.6f}" for g, v in zip(goals, np.asarray(res.v_h_e[0, 0, 0]))))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--small", action="store_true", help="also time the small map")
    args = ap.parse_args(argv)
    print("command:", " ".join([os.path.basename(sys.executable), "-m", "rljax.experiments.empo.bench_oracle", *sys.argv[1:]]))
    print("machine:", machine())
    bench(trivial_task(), args.repeats, show_values=True)
    if args.small:
        bench(small_task(), max(3, args.repeats // 4), show_values=False)


if __name__ == "__main__":
    main()
