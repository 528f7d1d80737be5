"""Throughput of the communities system: the substrate alone and end-to-end training.

**Environment only** (``--env-envs``): the 16-player substrate with the 15 residents inside every
step and a uniformly random ego, ``N`` instances vmapped in a VecEnv (auto-reset, a community
drawn per instance at every reset), measured by ``rljax.experiments.communities.bench_env`` (compile
excluded, medians). Target: >= 6,600 ego-steps/s on 2 CPU cores.

**Training**:

Builds the experiment's runner exactly as ``python -m experiments.communities`` does (default
config unless ``--preset``/``--set`` say otherwise: both arms, ``--seeds`` seeds each), compiles
one chunk of ``--chunk`` updates ahead of time (compile time printed apart, not counted), runs it
once to warm up, then times ``--repeats`` chunks: ego-steps/s = members x updates x
(num_envs x num_steps) / seconds, every member's environment steps counted (rollout, GAE and
the PPO epochs included; evaluation, logging and checkpoints excluded). Each configuration runs
in a fresh subprocess because the number of XLA CPU devices is fixed when JAX starts; with
``d`` devices the members are split over them (the CLI does the same: ``--devices``).

    python -m experiments.communities.bench                       # env only, then training, 1 and 2 devices
    python -m experiments.communities.bench --devices 2 --set network.trunk=full
    python -m experiments.communities.bench --devices 2 --env-envs --epochs 4 10   # both arms, 4 and 10 epochs, FLOP bound
    python -m experiments.communities.bench --preset cpu_study --seeds 3 --devices 2 --env-envs --chunk 1 --repeats 2
                                                                      # sizes the cpu_study preset (docs)

Target: >= 3,000 ego-steps/s training on 2 CPU cores; the network's updates dominate. Each row
also prints the matrix FLOPs of one member's update per ego-step (``rljax.flops``) and the FLOP
bound (the measured ``jnp.dot`` peak / that count). Last measured on a quiet machine (2026-12-07
16:00-16:07 UTC, ``--devices 2 --env-envs 1024 --epochs 4 10``, state-only residents):
environment 131,861 ego-steps/s; training 7,249 ego-steps/s at 4 epochs (23.7 MFLOP/ego-step, 44%
of the bound; 7,471 with 3 seeds per arm, 49%) and 3,202 at 10 epochs (53.9 MFLOP, 47%);
docs/communities.md has the table.
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time

from rljax.experiments.bench.fresh_process import call

TARGET = 3000.0
ENV_TARGET = 6600.0


def measure(devices: int, preset: str | None, overrides: list[str], seeds: int, chunk: int, repeats: int) -> dict:
    import jax

    if devices > 1:
        jax.config.update("jax_num_cpu_devices", devices)
    import numpy as np

    from rljax.experiments.communities.experiment import EXPERIMENT
    from rljax.runner import Runner

    cfg = EXPERIMENT.make_config(preset, None, list(overrides) + [f"runner.num_seeds={seeds}", "runner.progress=false"])
    with tempfile.TemporaryDirectory() as tmp:
        runner = Runner(EXPERIMENT, cfg, tmp)
        t0 = time.perf_counter()
        state, frozen = runner.init_state(), runner.initial_frozen()
        init_s = time.perf_counter() - t0
        from rljax.flops import jaxpr_flops

        # one member's update as traced: rollout forwards, GAE, every epoch's minibatch gradients
        member = jax.tree.map(lambda x: x[0], state)
        counted = jaxpr_flops(runner.algorithm.update, member)
        fn = runner.chunk_fn(chunk, state, frozen)
        (state, frozen), metrics = fn(state, frozen)  # warm-up
        jax.block_until_ready(state)
        rates, cpu_rates = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            (state, frozen), metrics = fn(state, frozen)
            jax.block_until_ready((state, metrics))
            steps = runner.num_members * chunk * runner.steps_per_update
            rates.append(steps / (time.perf_counter() - t0))
            cpu_rates.append(steps / (time.process_time() - c0))
    ppo = cfg.ppo
    return {"devices": jax.device_count(), "members": runner.num_members, "chunk_updates": chunk,
            "steps_per_update": runner.steps_per_update, "num_envs": ppo.num_envs, "num_steps": ppo.num_steps,
            "num_epochs": ppo.num_epochs, "num_minibatches": ppo.num_minibatches, "trunk": cfg.network.trunk,
            "member_loop": runner.choices.member_loop, "compile_seconds": runner.compile_seconds, "init_seconds": init_s,
            "steps_per_second": float(np.median(rates)), "all": rates,
            "steps_per_cpu_second": float(np.median(cpu_rates)),
            "flops_per_step": counted.flops / runner.steps_per_update, "uncounted_loops": counted.while_loops}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seeds", type=int, default=1, help="seeds per arm (members = arms x seeds)")
    ap.add_argument("--preset", default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--epochs", type=int, nargs="*", default=[],
                    help="PPO epochs to measure in turn (e.g. 4 10); none: the config's")
    ap.add_argument("--chunk", type=int, default=2, help="updates per timed chunk")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--env-envs", type=int, nargs="*", default=[256, 1024],
                    help="instance counts for the environment-only figures (none: skip them)")
    ap.add_argument("--env-steps", type=int, default=200, help="steps per compiled chunk (environment only)")
    args = ap.parse_args(argv)

    import jax

    from rljax.machine import host_description

    print(f"machine: {host_description()}, jax {jax.__version__}, python {platform.python_version()}")
    print("command: python -m experiments.communities.bench " + " ".join(sys.argv[1:] if argv is None else argv))
    if args.env_envs:

        print(f"\nenvironment only: 15 residents + random ego, target {ENV_TARGET:,.0f} ego-steps/s on 2 CPU cores")
        print(f"{'devices':>8}{'num_envs':>10}{'ego-steps/s':>14}{'x target':>10}{'compile s':>11}")
        for d in args.devices:
            for n in args.env_envs:
                r = call("rljax.experiments.communities.bench_env", "measure_throughput", num_envs=n, steps=args.env_steps,
                         devices=d, repeats=args.repeats)
                sps = r["steps_per_second"]
                print(f"{r['devices']:>8}{n:>10}{sps:>14,.0f}{sps / ENV_TARGET:>10.2f}{r['compile_seconds']:>11.1f}", flush=True)
    from rljax.flops import matmul_peak_gflops

    peak = matmul_peak_gflops()
    print(f"\ntraining: target {TARGET:,.0f} ego-steps/s on 2 CPU cores (compile excluded); "
          f"float32 jnp.dot peak here {peak:.0f} GFLOP/s")
    print(f"{'devices':>8}{'members':>8}{'trunk':>9}{'envs x steps':>14}{'epochs x mb':>12}{'loop':>6}"
          f"{'ego-steps/s':>13}{'x target':>9}{'per CPU-s':>11}{'MFLOP/step':>11}{'bound':>8}{'of bound':>9}{'compile s':>10}")
    for epochs in args.epochs or [None]:
        extra = [] if epochs is None else [f"ppo.num_epochs={epochs}"]
        for d in args.devices:
            r = call("rljax.experiments.communities.bench", "measure", devices=d, preset=args.preset,
                     overrides=args.overrides + extra, seeds=args.seeds, chunk=args.chunk, repeats=args.repeats)
            sps, bound = r["steps_per_second"], peak * 1e9 / r["flops_per_step"]
            print(f"{r['devices']:>8}{r['members']:>8}{r['trunk']:>9}{r['num_envs']:>7} x {r['num_steps']:<4}"
                  f"{r['num_epochs']:>6} x {r['num_minibatches']:<3}{r['member_loop']:>6}{sps:>13,.0f}{sps / TARGET:>9.2f}"
                  f"{r['steps_per_cpu_second']:>11,.0f}{r['flops_per_step'] / 1e6:>11.1f}{bound:>8,.0f}"
                  f"{sps / bound:>9.0%}{r['compile_seconds']:>10.1f}", flush=True)
            if r["uncounted_loops"]:
                print(f"  ({r['uncounted_loops']} while loop(s) counted once: the bound is an upper limit)")
    print("(MFLOP/step: matrix-product and convolution FLOPs of one member's update as traced, rljax.flops,\n"
          " per ego-step; bound = peak / that: the rate if every multiply-add ran at the dot's speed)")
    print("(medians of repeats; the machine may be shared with other jobs while measuring. 'per CPU-s': ego-steps\n"
          " per second of this process's CPU time (all its threads); on an idle machine the wall-clock figure can\n"
          " approach it times the cores XLA keeps busy, so it separates the program's cost from the load)")


if __name__ == "__main__":
    main()
