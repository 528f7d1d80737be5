"""Environment-only throughput of the pursuit-evasion arena (no policy network, no PPO).

Three measurements per batch size ``N`` (vmapped instances), each a jitted ``lax.scan`` of
``--steps`` steps whose uniform random actions are drawn inside the scan:

* ``step_both``: the two-agent step alone (``vmap(env.step_both)``), no resets;
* ``view``: what PPO sees: ``VecEnv(OpponentView(...))`` for the evader with the built-in
  random opponent (index -1), auto-reset and episode statistics included;
* ``view_pool``: the same with a pool of 4 scripted chasers, each instance bound to one
  member (the per-step gather of the opponent's parameters included).

One env-step is one arena step (both agents move), i.e. one learner transition. Compile time
is excluded (printed apart); figures are the median of ``--repeats`` timed runs, measured
with ``jax.block_until_ready``.

    python -m experiments.pursuit.bench_env
    python -m experiments.pursuit.bench_env --batch 1 64 1024 --obs partial full --steps 200

On the shared 2-core VM the load average of other processes is printed with the results.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp

from rljax.environments.pursuit_evasion import PursuitEvasion, pursuit_params, stack_params
from rljax.environments.pursuit_opponents import OpponentView, chaser_params, make_chaser_policy, view_params
from rljax.envs.vec_env import VecEnv


def random_actions(key, n: int, a_dim: int, shape_lead: tuple[int, ...] = ()):
    u = jax.random.uniform(key, shape_lead + (n, a_dim))
    if a_dim == 1:
        return (2.0 * u - 1.0) * 2.84
    return jnp.stack([u[..., 0], (2.0 * u[..., 1] - 1.0) * 2.84], axis=-1)


def build_step_both(env: PursuitEvasion, params, n: int, steps: int):
    def run(key):
        k0, k1 = jax.random.split(key)
        _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k0, n), params)

        def body(state, k):
            ka, ks = jax.random.split(k)
            actions = random_actions(ka, n, env.action_dim, (2,)).transpose(1, 0, 2)  # [n, 2, A]
            obs, state, rewards, term, trunc, _ = jax.vmap(env.step_both, in_axes=(0, 0, 0, None))(
                jax.random.split(ks, n), state, actions, params)
            return state, rewards.sum() + obs[:, 0, -1].sum()

        state, out = jax.lax.scan(body, state, jax.random.split(k1, steps))
        return out.sum() + state.pose.sum()

    return jax.jit(run)


def build_view(view: OpponentView, vparams, n: int, steps: int):
    venv = VecEnv(view, n, batched_params=True)

    def run(key):
        k0, k1 = jax.random.split(key)
        _, vs = venv.reset(k0, vparams)

        def body(vs, k):
            ka, ks = jax.random.split(k)
            obs, vs, reward, term, trunc, info = venv.step(ks, vs, random_actions(ka, n, view.env.action_dim), vparams)
            return vs, reward.sum() + info["episode_done"].sum() + obs[:, -1].sum()

        vs, out = jax.lax.scan(body, vs, jax.random.split(k1, steps))
        return out.sum()

    return jax.jit(run)


def time_it(fn, repeats: int) -> tuple[float, float]:
    """(compile + first run seconds, median seconds of ``repeats`` timed runs)."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(jax.random.key(0)))
    first = time.perf_counter() - t0
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(jax.random.key(r + 1)))
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 16, 64, 256, 1024])
    ap.add_argument("--steps", type=int, default=200, help="scan length per timed run")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--obs", nargs="+", default=["partial"], choices=["partial", "full"])
    ap.add_argument("--modes", nargs="+", default=["step_both", "view", "view_pool"],
                    choices=["step_both", "view", "view_pool"])
    ap.add_argument("--obstacles", type=int, default=3)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)

    dev = jax.devices()[0]
    print(f"machine: {platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()} "
          f"python {platform.python_version()} jax {jax.__version__} device={dev.platform}:{dev.device_kind}")
    if hasattr(os, "getloadavg"):
        print(f"load average before: {os.getloadavg()[0]:.2f} (other processes share this machine)")
    print(f"steps per run {args.steps}, median of {args.repeats}; {args.obstacles} obstacles; random actions")
    print(f"{'obs':8s} {'mode':10s} {'N':>6s} {'compile+1st s':>14s} {'run s':>8s} {'env-steps/s':>13s}")
    results = []
    for obs_mode in args.obs:
        env = PursuitEvasion(observation=obs_mode)
        params = pursuit_params(n_obstacles=args.obstacles, min_init_d=2.0, max_init_d=15.0)
        chase = make_chaser_policy(env)
        pool = stack_params([chaser_params(speed=s) for s in (0.6, 0.8, 0.9, 1.0)])
        for mode in args.modes:
            for n in args.batch:
                if mode == "step_both":
                    fn = build_step_both(env, params, n, args.steps)
                elif mode == "view":
                    vp = stack_params([view_params(params, -1)] * n)
                    fn = build_view(OpponentView(env, "evader"), vp, n, args.steps)
                else:
                    vp = stack_params([view_params(params, i % 4, pool_size=4) for i in range(n)])
                    fn = build_view(OpponentView(env, "evader", chase, pool), vp, n, args.steps)
                first, run_s = time_it(fn, args.repeats)
                sps = n * args.steps / run_s
                results.append(dict(obs=obs_mode, mode=mode, n=n, compile_first_s=first, run_s=run_s, env_steps_per_s=sps))
                print(f"{obs_mode:8s} {mode:10s} {n:6d} {first:14.2f} {run_s:8.4f} {sps:13,.0f}", flush=True)
    if hasattr(os, "getloadavg"):
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    for obs_mode in args.obs:
        for mode in args.modes:
            rows = [r for r in results if r["obs"] == obs_mode and r["mode"] == mode]
            if len(rows) > 1:
                print(f"{obs_mode}/{mode}: N={rows[-1]['n']} vs N={rows[0]['n']}: "
                      f"{rows[-1]['env_steps_per_s'] / rows[0]['env_steps_per_s']:.1f}x the env-steps/s")
    out = {"device": f"{dev.platform}:{dev.device_kind}", "jax": jax.__version__, "cpus": os.cpu_count(),
           "steps": args.steps, "repeats": args.repeats, "results": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
