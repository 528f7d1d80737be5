"""CartPole PPO throughput: rljax vs a hand-fused JAX loop vs Stable-Baselines3, and 16 seeds
vmapped vs one after another. Every measurement runs in a fresh subprocess (so the XLA device
count can differ) on the same machine in the same invocation; compile time is excluded from
env-steps/s and printed apart. Single-seed JAX figures are the median of ``--repeats`` runs
(this VM's run-to-run spread is about +-15%).

    python -m experiments.cartpole.bench            # everything (SB3 needs torch, see README)
    python -m experiments.cartpole.bench --skip-sb3 --steps 200000

SB3 and torch are benchmark-only dependencies: ``pip install torch==2.13.0 stable-baselines3``
(on these machines 2.13.0 is a local CPU wheel; other versions pull a multi-GB CUDA build).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from rljax.machine import host_description


from rljax.experiments.bench.handfused import EPOCHS, ENT, GAMMA, LAMBDA, LR, MAX_GRAD, MINIBATCHES, NUM_ENVS, NUM_STEPS, VF, CLIP
from rljax.experiments.bench.fresh_process import ROOT


# ----------------------------------------------------------------------------------------
# Measurements (each runs inside its own subprocess)
# ----------------------------------------------------------------------------------------
def measure_rljax(steps: int, seeds: int, devices: int, repeats: int) -> dict:
    """The library path users take: Runner with default cartpole config (median of repeats;
    the compiled chunks are reused between repeats)."""
    import jax

    if devices > 1:
        jax.config.update("jax_num_cpu_devices", devices)
    import tempfile

    from rljax.experiments.cartpole.experiment import EXPERIMENT
    from rljax.runner import Runner

    cfg = EXPERIMENT.make_config(overrides=[f"ppo.total_timesteps={steps}", f"runner.num_seeds={seeds}",
                                            "runner.progress=false", "runner.eval_episodes=20"])
    runs = []
    with tempfile.TemporaryDirectory() as d:
        runner = Runner(EXPERIMENT, cfg, d)
        for i in range(repeats):
            runner.out_dir = os.path.join(d, str(i))
            runs.append(runner.run())
    s = sorted(runs, key=lambda r: r["total_steps_per_second"])[len(runs) // 2]
    return {"steps_per_second": s["total_steps_per_second"], "compile_seconds": runs[0]["compile_seconds"],
            "eval_return": s["eval_return_mean"], "devices": jax.device_count(),
            "all_steps_per_second": [r["total_steps_per_second"] for r in runs]}


def measure_sequential(steps: int, seeds: int) -> dict:
    """The same seeds one after another, reusing one compiled single-member program."""
    import tempfile
    from functools import partial

    import jax
    import numpy as np

    from rljax.experiments.cartpole.experiment import EXPERIMENT
    from rljax.runner import Runner

    cfg = EXPERIMENT.make_config(overrides=[f"ppo.total_timesteps={steps}", "runner.progress=false"])
    with tempfile.TemporaryDirectory() as d:
        runner = Runner(EXPERIMENT, cfg, d)
        t0 = time.perf_counter()
        run = jax.jit(jax.vmap(partial(runner.algorithm.chunk, num_updates=runner.num_updates))).lower(runner.init_state()).compile()
        compile_s = time.perf_counter() - t0
        total, returns = 0.0, []
        for seed in range(seeds):
            r = Runner(EXPERIMENT, cfg.__class__(ppo=cfg.ppo, runner=cfg.runner.__class__(seed=seed, progress=False)), d)
            ts = r.init_state()
            t0 = time.perf_counter()
            ts, _ = run(ts)
            jax.block_until_ready(ts)
            total += time.perf_counter() - t0
            returns.append(float(r.evaluate(ts)["return"].mean()))
    return {"steps_per_second": seeds * runner.num_updates * cfg.ppo.batch_size / total,
            "compile_seconds": compile_s, "eval_return": float(np.mean(returns))}


def measure_handfused(steps: int, repeats: int) -> dict:
    """The hand-fused reference loop (:mod:`rljax.experiments.bench.handfused`)."""
    import jax

    from rljax.experiments.bench.handfused import make_handfused

    train, evaluate, _ = make_handfused(steps)
    num_updates = steps // (NUM_ENVS * NUM_STEPS)
    batch = NUM_ENVS * NUM_STEPS
    t0 = time.perf_counter()
    fn = jax.jit(train).lower(jax.random.PRNGKey(0)).compile()
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        params = jax.block_until_ready(fn(jax.random.PRNGKey(0)))
        times.append(time.perf_counter() - t0)
    rates = [num_updates * batch / t for t in times]
    return {"steps_per_second": sorted(rates)[len(rates) // 2], "compile_seconds": compile_s,
            "eval_return": float(jax.jit(evaluate)(params, jax.random.PRNGKey(1))), "all_steps_per_second": rates}


def measure_sb3(steps: int) -> dict:
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    torch.set_num_threads(os.cpu_count() or 1)
    venv = make_vec_env("CartPole-v1", n_envs=NUM_ENVS, seed=0)
    model = PPO("MlpPolicy", venv, n_steps=NUM_STEPS, batch_size=NUM_ENVS * NUM_STEPS // MINIBATCHES,
                n_epochs=EPOCHS, learning_rate=lambda frac: LR * frac, gamma=GAMMA, gae_lambda=LAMBDA,
                clip_range=CLIP, clip_range_vf=CLIP, ent_coef=ENT, vf_coef=VF, max_grad_norm=MAX_GRAD,
                policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64]), activation_fn=torch.nn.Tanh),
                seed=0, device="cpu", verbose=0)
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    secs = time.perf_counter() - t0
    mean, _ = evaluate_policy(model, gym.make("CartPole-v1"), n_eval_episodes=20, deterministic=True)
    return {"steps_per_second": steps / secs, "compile_seconds": 0.0, "eval_return": float(mean),
            "torch": torch.__version__}


# ----------------------------------------------------------------------------------------
def _child(kind: str, args: list[str]) -> dict | None:
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-m", "rljax.experiments.cartpole.bench", "--child", kind, *args],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"  [{kind}] failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _row(name: str, r: dict | None, ref: float | None = None) -> None:
    if r is None:
        print(f"  {name:<44} (skipped)")
        return
    ratio = f"  x{r['steps_per_second'] / ref:6.2f}" if ref else ""
    print(f"  {name:<44} {r['steps_per_second']:>11,.0f} steps/s{ratio}   eval return {r['eval_return']:6.1f}"
          f"   compile {r['compile_seconds']:4.1f}s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=500_000)
    p.add_argument("--seeds", type=int, default=16)
    p.add_argument("--sb3-steps", type=int, default=None, help="default: --steps")
    p.add_argument("--skip-sb3", action="store_true")
    p.add_argument("--repeats", type=int, default=3, help="JAX measurements: median of this many runs")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--devices", type=int, default=1, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        fn = {"rljax": lambda: measure_rljax(a.steps, a.seeds, a.devices, a.repeats),
              "sequential": lambda: measure_sequential(a.steps, a.seeds),
              "handfused": lambda: measure_handfused(a.steps, a.repeats),
              "sb3": lambda: measure_sb3(a.steps)}[a.child]
        print(json.dumps(fn()))
        return 0

    print(f"CartPole PPO benchmark: {a.steps:,} steps, {NUM_ENVS} envs x {NUM_STEPS} steps, "
          f"{host_description()}")
    print("single seed:")
    rep = ["--repeats", str(a.repeats)]
    ours = _child("rljax", ["--steps", str(a.steps), "--seeds", "1", *rep])
    fused = _child("handfused", ["--steps", str(a.steps), *rep])
    sb3 = None if a.skip_sb3 else _child("sb3", ["--steps", str(a.sb3_steps or a.steps)])
    ref = sb3["steps_per_second"] if sb3 else None
    _row("Stable-Baselines3 PPO (reference)", sb3)
    _row("hand-fused single-function JAX loop", fused, ref)
    _row("rljax runner (rljax run cartpole)", ours, ref)
    if ours and fused:
        print(f"  rljax / hand-fused: {ours['steps_per_second'] / fused['steps_per_second']:.3f} "
              f"(library overhead {100 * (1 - ours['steps_per_second'] / fused['steps_per_second']):+.1f}%)")
    print(f"{a.seeds} seeds:")
    seq = _child("sequential", ["--steps", str(a.steps), "--seeds", str(a.seeds)])
    vm1 = _child("rljax", ["--steps", str(a.steps), "--seeds", str(a.seeds), "--devices", "1", "--repeats", "1"])
    cores = os.cpu_count() or 1
    vmn = _child("rljax", ["--steps", str(a.steps), "--seeds", str(a.seeds), "--devices", str(cores), "--repeats", "1"]) if cores > 1 else None
    base = seq["steps_per_second"] if seq else None
    _row(f"{a.seeds} seeds one after another (reference)", seq)
    _row(f"{a.seeds} seeds vmapped, 1 XLA device", vm1, base)
    _row(f"{a.seeds} seeds vmapped, sharded over {cores} CPU devices", vmn, base)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
