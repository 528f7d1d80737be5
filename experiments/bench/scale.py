"""CartPole PPO at scale: rljax (as ``rljax run cartpole --seeds N`` runs it) against the
hand-fused single-function loop (:mod:`rljax.experiments.bench.handfused`) for several seed counts,
in one invocation on one machine.

For every seed count both run in a fresh subprocess (so device set-up and start-up are real).
It prints total env-steps/s while training and end to end, and rljax's wall time split into
start-up (process start to the first chunk launched: imports, members, the initialisation
program), compilation, training, evaluation, logging and checkpointing.

    python -m experiments.bench.scale                         # CPU: seeds 1, 64, 256
    python -m experiments.bench.scale --seeds 1,64,1024,4096  # on a GPU
    python -m experiments.bench.scale --seeds 1 --steps 100000 --repeats 3
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


def child_rljax(seeds: int, steps: int, t_start: float) -> dict:
    from rljax.devices import configure_devices

    configure_devices(None, seeds)  # what the CLI does: spread members over the host's cores on CPU
    t_imported = time.time()
    import jax

    from rljax.experiments.cartpole.experiment import EXPERIMENT
    from rljax.runner import Runner

    cfg = EXPERIMENT.make_config(overrides=[f"ppo.total_timesteps={steps}", f"runner.num_seeds={seeds}",
                                            "runner.progress=false"])
    with tempfile.TemporaryDirectory() as d:
        r = Runner(EXPERIMENT, cfg, d)
        summary = r.run()
    t_end = time.time()
    t = r.timings
    total = summary["env_steps_per_member"] * seeds
    return {
        "device": device_description(),
        "to_first_chunk": r.training_started_at - t_start,
        "imports": t_imported - t_start,
        "startup": r.training_started_at - t_start - t["compile"],
        "compile": t["compile"], "train": t["train"], "eval": t["eval"], "logging": t["logging"],
        "checkpoint": t["checkpoint"], "wall": t_end - t_start,
        "sps_train": total / t["train"], "sps_wall": total / (t_end - t_start),
        "eval_return": summary["eval_return_mean"],
    }


def child_handfused(seeds: int, steps: int, t_start: float) -> dict:
    from rljax.devices import configure_devices

    configure_devices(None, seeds)  # the same devices as rljax gets
    import jax
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    from rljax.experiments.bench.handfused import NUM_ENVS, NUM_STEPS, make_handfused

    from rljax import backend

    train, evaluate, init_for = make_handfused(steps)
    keys = jax.vmap(jax.random.PRNGKey)(np.arange(seeds, dtype=np.uint32))
    if jax.device_count() > 1 and seeds % jax.device_count() == 0:
        keys = jax.device_put(keys, NamedSharding(Mesh(np.array(jax.devices()), ("s",)), P("s")))
    # initial parameters as rljax makes them: no batched QR on CPU (see rljax.backend.init_loop)
    init = jax.vmap(init_for) if backend.init_loop("auto") == "vmap" else (lambda k: jax.lax.map(init_for, k))
    params0 = jax.block_until_ready(jax.jit(init)(keys))
    t0 = time.perf_counter()
    fn = jax.jit(jax.vmap(train)).lower(keys, params0).compile()
    compile_s = time.perf_counter() - t0
    t_first = time.time()
    t0 = time.perf_counter()
    params = jax.block_until_ready(fn(keys, params0))
    train_s = time.perf_counter() - t0
    t_end = time.time()
    ret = float(np.mean(jax.jit(jax.vmap(evaluate, in_axes=(0, None)))(params, jax.random.PRNGKey(1))))
    total = (steps // (NUM_ENVS * NUM_STEPS)) * NUM_ENVS * NUM_STEPS * seeds
    return {"to_first_chunk": t_first - t_start, "compile": compile_s, "train": train_s, "wall": t_end - t_start,
            "sps_train": total / train_s, "sps_wall": total / (t_end - t_start), "eval_return": ret}


def _child(kind: str, seeds: int, steps: int) -> dict | None:
    env = dict(os.environ, PYTHONPATH=ROOT)
    t_start = time.time()
    proc = subprocess.run([sys.executable, "-m", "rljax.experiments.bench.scale", "--child", kind, "--seeds", str(seeds),
                           "--steps", str(steps), "--t-start", repr(t_start)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        err = proc.stderr.strip().splitlines()
        print(f"  [{kind} x{seeds}] failed: {err[-1] if err else proc.returncode}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median(runs: list[dict]) -> dict | None:
    runs = [r for r in runs if r]
    return sorted(runs, key=lambda r: r["sps_train"])[len(runs) // 2] if runs else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default=None, help="comma-separated seed counts (default: 1,64,256 on CPU, "
                                                  "1,64,1024,4096 on an accelerator)")
    p.add_argument("--steps", type=int, default=500_000, help="environment steps per seed")
    p.add_argument("--repeats", type=int, default=1, help="median of this many runs per line")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--t-start", type=float, default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        fn = child_rljax if a.child == "rljax" else child_handfused
        print(json.dumps(fn(int(a.seeds), a.steps, a.t_start)))
        return 0

    from rljax.devices import accelerator_expected

    accel = accelerator_expected()
    seeds = [int(s) for s in (a.seeds or ("1,64,1024,4096" if accel else "1,64,256")).split(",")]
    print(f"CartPole PPO at scale: {a.steps:,} env-steps per seed, PureJaxRL settings; host: {host_description()}; "
          f"median of {a.repeats}")
    head = (f"{'seeds':>6} {'':<10} {'env-steps/s train':>18} {'end to end':>12} {'ratio':>6} | {'to 1st':>7} "
            f"{'startup':>7} {'compile':>7} {'train':>7} {'eval':>6} {'log':>6} {'ckpt':>6} {'wall':>7}  return")
    shown_device = False
    for s in seeds:
        ours, ref = [], []
        for _ in range(a.repeats):  # interleaved, so load changes hit both alike
            ours.append(_child("rljax", s, a.steps))
            ref.append(_child("handfused", s, a.steps))
        o, h = _median(ours), _median(ref)
        if o and not shown_device:
            print(f"device: {o['device']}\n{head}")
            shown_device = True
        if h:
            print(f"{s:>6} {'hand-fused':<10} {h['sps_train']:>18,.0f} {h['sps_wall']:>12,.0f} {'':>6} | "
                  f"{h['to_first_chunk']:>7.1f} {'':>7} {h['compile']:>7.1f} {h['train']:>7.1f} {'':>6} {'':>6} {'':>6} "
                  f"{h['wall']:>7.1f}  {h['eval_return']:.1f}")
        if o:
            ratio = f"{o['sps_train'] / h['sps_train']:.3f}" if h else ""
            print(f"{s:>6} {'rljax':<10} {o['sps_train']:>18,.0f} {o['sps_wall']:>12,.0f} {ratio:>6} | "
                  f"{o['to_first_chunk']:>7.1f} {o['startup']:>7.1f} {o['compile']:>7.1f} {o['train']:>7.1f} "
                  f"{o['eval']:>6.1f} {o['logging']:>6.2f} {o['checkpoint']:>6.2f} {o['wall']:>7.1f}  {o['eval_return']:.1f}")
    print("ratio: rljax / hand-fused env-steps/s while training (1.0 = no library overhead). Times in seconds; "
          "'to 1st' = process start to the first chunk launched (start-up + compile).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
