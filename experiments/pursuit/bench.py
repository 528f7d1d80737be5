"""Throughput of pursuit-evasion self-play: the partial-observation arena alone and the whole
AMS-DRL protocol end to end, plus the wall time of a 12-phase protocol for one seed.

* ``env``: ``vmap(env.step_both)`` of the partial-observation arena (FOV, 36-ray lidar,
  10-frame history, 3 obstacles) with random actions inside a jitted scan (no policy, no PPO).
* ``protocol``: a real run of the ``study`` preset (cold start, 12 phases, curriculum, health
  monitor, pool, per-phase 100-episode evaluations) through the runner, ``--seeds`` members
  vmapped; env-steps/s = training env-steps / training seconds (compile and initialisation
  excluded, per-phase evaluations included). ``--scale`` shrinks every stage's budget.
* ``12-phase``: the spec's ``amsdrl`` protocol (200K cold start, 12 phases of 100K-500K with
  warm-up, warm starts; since issue 19 at the spec's learner, ``--preset fast`` for the earlier
  one) for ``--amsdrl-seeds`` seeds (1): run with ``--amsdrl``; otherwise extrapolated from the
  measured throughput of the ``study`` protocol (clearly labelled as such).

The original (Stable-Baselines3 phases driven from Python) ran about 220 env-steps/s on this
machine; the target is 100x that (22,000 env-steps/s) on 2 CPU cores.

    python -m experiments.pursuit.bench                      # env + protocol (4 and 8 seeds, study budget)
    python -m experiments.pursuit.bench --seeds 1 8 --scale 0.25
    python -m experiments.pursuit.bench --skip-env --seeds 4 --amsdrl   # + RUN the 12-phase protocol, 1 seed
    python -m experiments.pursuit.bench --flop-bound 8                 # least wall time of 8 seeds' 12 phases here

Last measured on a quiet machine (2026-11-23 19:08-19:29 UTC, ``--skip-env --scale 1``): 2 seeds
23,281, 4 seeds 28,012, 8 seeds 20,651, 16 seeds 17,037 trained env-steps/s (target 22,000); the
spec's 12-phase ``amsdrl`` protocol for one seed ran in 5.4 min wall (19,018 env-steps/s).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import jax
import numpy as np

ORIGINAL = 220.0
TARGET = 100 * ORIGINAL


def bench_env(batch: list[int], steps: int, repeats: int) -> dict[int, float]:
    from rljax.environments.pursuit_evasion import PursuitEvasion, pursuit_params
    from rljax.experiments.pursuit.bench_env import build_step_both, time_it

    env = PursuitEvasion(observation="partial", max_obstacles=3)
    params = pursuit_params(max_obstacles=3, n_obstacles=3)
    out = {}
    for n in batch:
        first, med = time_it(build_step_both(env, params, n, steps), repeats)
        out[n] = n * steps / med
        print(f"  env  partial obs, {n:5d} instances: {out[n]:12,.0f} env-steps/s   (compile+first {first:.1f} s)", flush=True)
    return out


def study_overrides(scale: float) -> list[str]:
    s = lambda x: max(2048, int(x * scale) // 2048 * 2048)  # noqa: E731
    warm = [s(x) for x in (16384, 16384, 24576, 24576, 32768, 32768)]
    return [f"protocol.timesteps_per_phase={s(32768)}", f"protocol.cold_start_timesteps={s(32768)}",
            f"protocol.warmup_timesteps=[{','.join(map(str, warm))}]", f"protocol.warm_start_timesteps={s(8192)}",
            "runner.progress=false", "runner.checkpoint_minutes=1000"]


def bench_protocol(seeds: int, scale: float) -> dict:
    from rljax.experiments.pursuit.experiment import EXPERIMENT
    from rljax.runner import Runner

    cfg = EXPERIMENT.make_config(preset="study", overrides=study_overrides(scale) + [f"runner.num_seeds={seeds}"])
    with tempfile.TemporaryDirectory() as out:
        runner = Runner(EXPERIMENT, cfg, out)
        summary = runner.run()
        # env-steps actually trained (members that finish early idle through the static length)
        steps = int(np.asarray(runner.state.learner_steps).sum())
    rate = steps / summary["train_seconds"]
    print(f"  protocol ({seeds} seed(s), scale {scale}): {steps:,} env-steps in {summary['train_seconds']:.1f} s "
          f"-> {rate:,.0f} env-steps/s  ({rate / ORIGINAL:.0f}x the original; compile {summary['compile_seconds']:.0f} s, "
          f"init {summary['init_seconds']:.0f} s)", flush=True)
    return {"seeds": seeds, "rate": rate, "per_seed_rate": rate / seeds, "train_seconds": summary["train_seconds"],
            "steps": steps}


def flop_bound(runner, seeds: int, target_minutes: float = 10.0) -> dict:
    """The least wall time the protocol's learning can take on this machine: matrix FLOPs per
    trained env-step (the learner's actor and critic forward in the rollout, the opponent's
    forward, ``num_epochs`` forward+backward passes over the sample; counted by
    :func:`rljax.flops.jaxpr_flops` on the preset's own network), times the protocol's env-steps,
    divided by the measured float32 ``jnp.dot`` peak. Environment, GAE, evaluations: not counted."""
    import jax.numpy as jnp

    from rljax.flops import jaxpr_flops, matmul_peak_gflops

    alg = runner.algorithm
    state = runner.init_state()
    params = jax.tree.map(lambda x: x[0, 0], state.params)  # member 0, role 0
    obs = jnp.zeros((64,) + state.obs.shape[2:], jnp.float32)
    fwd = jaxpr_flops(alg.network.apply, params, obs).flops / 64
    actor = jaxpr_flops(alg.policy_apply, params, obs).flops / 64
    loss = lambda p, o: sum(jnp.sum(x) for x in jax.tree.leaves(alg.network.apply(p, o)))
    grad = jaxpr_flops(jax.grad(loss), params, obs).flops / 64
    epochs = runner.cfg.ppo.num_epochs
    per_step = fwd + actor + epochs * grad
    steps = runner.num_updates * runner.steps_per_update * seeds
    peak = matmul_peak_gflops()
    least = steps * per_step / (peak * 1e9)
    print(f"FLOP bound, {runner.cfg.ppo.num_epochs} epochs, network forward {fwd / 1e6:.2f} MFLOP (actor {actor / 1e6:.2f}), "
          f"forward+backward {grad / 1e6:.2f}: {per_step / 1e6:.1f} MFLOP per trained env-step; {steps:,} env-steps "
          f"for {seeds} seed(s); float32 jnp.dot peak here {peak:.0f} GFLOP/s -> at least {least / 60:.1f} min of "
          f"matrix arithmetic at 100% of the peak (target {target_minutes:.0f} min: "
          f"{'reachable' if least / 60 <= target_minutes else 'NOT reachable on this machine'})")
    return {"mflop_per_step": per_step / 1e6, "env_steps": steps, "peak_gflops": peak, "least_minutes": least / 60}


def main(argv: list[str] | None = None) -> int:
    from rljax.machine import host_description

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--scale", type=float, default=1.0, help="budget of the study protocol (1 = the study preset)")
    ap.add_argument("--skip-env", action="store_true")
    ap.add_argument("--amsdrl", action="store_true", help="also RUN the spec's 12-phase amsdrl protocol")
    ap.add_argument("--preset", default="amsdrl", help="preset of the 12-phase run (amsdrl: the spec's learner; fast: "
                    "the earlier 32 x 64, 4-epoch, (64, 64) learner)")
    ap.add_argument("--amsdrl-seeds", type=int, default=1, help="seeds vmapped in the 12-phase run")
    ap.add_argument("--flop-bound", type=int, default=0, metavar="SEEDS",
                    help="only print the FLOP bound of the --preset protocol for SEEDS seeds (nothing runs)")
    args = ap.parse_args(argv)
    print(f"machine: {host_description()}, jax {jax.__version__} on {jax.default_backend()}; "
          f"load average {os.getloadavg()[0]:.1f} (shared with other processes)")
    print("command: python -m experiments.pursuit.bench " + " ".join(sys.argv[1:] if argv is None else argv))
    if args.flop_bound:
        from rljax.experiments.pursuit.experiment import EXPERIMENT
        from rljax.runner import Runner

        with tempfile.TemporaryDirectory() as out:
            cfg = EXPERIMENT.make_config(preset=args.preset, overrides=["runner.progress=false", "runner.num_seeds=1"])
            flop_bound(Runner(EXPERIMENT, cfg, out), args.flop_bound)
        return 0
    if not args.skip_env:
        bench_env(args.batch, args.steps, args.repeats)
    results = [bench_protocol(n, args.scale) for n in args.seeds]
    best = max(results, key=lambda r: r["rate"])
    print(f"protocol end to end: best {best['rate']:,.0f} env-steps/s = {best['rate'] / TARGET:.2f} of the target "
          f"{TARGET:,.0f} (100x the original's ~{ORIGINAL:.0f})")
    from rljax.experiments.pursuit.experiment import EXPERIMENT
    from rljax.runner import Runner

    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        overrides = ["runner.progress=false", f"runner.num_seeds={args.amsdrl_seeds}"]
        full = Runner(EXPERIMENT, EXPERIMENT.make_config(preset=args.preset, overrides=overrides), out)
        amsdrl_steps = full.num_updates * full.steps_per_update
        if args.amsdrl:
            summary = full.run()
            wall = time.perf_counter() - t0
            print(f"12-phase {args.preset} protocol, {args.amsdrl_seeds} seed(s), RUN: "
                  f"{summary['env_steps_trained']['mean']:,.0f} env-steps trained per seed "
                  f"at {summary['total_steps_per_second']:,.0f} env-steps/s; {wall / 60:.1f} min wall including "
                  f"{summary['compile_seconds']:.0f} s compile")
            return 0
    one = [r for r in results if r["seeds"] == 1]
    per_seed = one[0]["rate"] if one else min(results, key=lambda r: r["seeds"])["per_seed_rate"]
    label = "measured with 1 seed" if one else f"per seed of the {min(r['seeds'] for r in results)}-seed run"
    print(f"12-phase amsdrl protocol, one seed: at most {amsdrl_steps:,} env-steps; EXTRAPOLATED at {per_seed:,.0f} "
          f"env-steps/s ({label}): {amsdrl_steps / per_seed / 60:.1f} min (+ compile); not run here")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
