"""CartPole PPO at scale: rljax (``rljax run cartpole --seeds N``, through the CLI) against the
tightest single-function loop (:mod:`rljax.experiments.bench.handfused`, with and without the
truncation bootstrap) for several seed counts, in one invocation on one machine.

For every seed count all three run in a fresh subprocess each (so device set-up and start-up
are real), interleaved per repeat. It prints env-steps/s while training (rljax: read from the
run's own ``summary.json``, see :func:`rljax.runner.throughput`), per CPU second of the
process while training (steadier on a shared machine) and end to end, the ratios to both
references, and rljax's wall time split into start-up (process start to the first chunk
launched: imports, members, the initialisation program), compilation, training, evaluation,
logging and checkpointing. ``--hlo`` prints, instead, what one iteration of every loop of the
compiled programs runs (:mod:`rljax.experiments.bench.hlo_stats`; docs/performance.md).

    python -m experiments.bench.scale                         # CPU: seeds 1, 64, 256
    python -m experiments.bench.scale --seeds 1,64 --steps 500000 --repeats 3
    python -m experiments.bench.scale --seeds 1,64 --hlo
    python -m experiments.bench.scale --seeds 1,64,1024,4096  # on a GPU
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time

from rljax.machine import device_description, host_description
from rljax.experiments.bench.fresh_process import ROOT


def child_rljax(seeds: int, steps: int, t_start: float, out_dir: str | None = None, threefry: str = "auto") -> dict:
    """``rljax run cartpole --seeds N`` as the CLI runs it (its device set-up included); every
    figure is read from the run's ``summary.json``, so the throughput printed here IS the one
    the run reports (one definition: :func:`rljax.runner.throughput`)."""
    from rljax.cli import main as cli_main

    with tempfile.TemporaryDirectory() as d:
        out = out_dir or os.path.join(d, "run")
        with contextlib.redirect_stdout(io.StringIO()):
            cli_main(["run", "cartpole", "--seeds", str(seeds), "--out", out, "--set", f"ppo.total_timesteps={steps}",
                      "--set", "runner.progress=false", "--set", f"runner.threefry={threefry}"])
        with open(os.path.join(out, "summary.json")) as f:
            s = json.load(f)
    t_end = time.time()
    total = s["env_steps_per_member"] * seeds
    return {
        "device": device_description(),
        "to_first_chunk": s["train_started_unix"] - t_start,
        "startup": s["train_started_unix"] - t_start - s["compile_seconds"],
        "compile": s["compile_seconds"], "train": s["train_seconds"], "train_cpu": s["train_cpu_seconds"],
        "eval": s["eval_seconds"], "logging": s["logging_seconds"], "checkpoint": s["checkpoint_seconds"],
        "wall": t_end - t_start, "sps_train": s["total_steps_per_second"], "sps_wall": total / (t_end - t_start),
        "eval_return": s["eval_return_mean"],
    }


def handfused_program(seeds: int, steps: int, bootstrap: bool, threefry: str = "auto"):
    """``(compiled train, keys, initial params, evaluate)`` of the reference for ``seeds``
    seeds, with the rare-branch mode rljax's CartPole gets (:func:`rljax.backend.branch_mode`)
    and the seeds spread over the devices as rljax spreads its members."""
    import jax
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    from rljax.experiments.bench.handfused import make_handfused
    from rljax import backend

    mode = backend.threefry(threefry)
    backend.apply_threefry(mode)
    branch = backend.branch_mode("auto", members=seeds, cheap_reset=True, threefry_mode=mode)  # as rljax's CartPole
    train, evaluate, init_for = make_handfused(steps, bootstrap=bootstrap, branch=branch, axis="seeds")
    keys = jax.vmap(jax.random.PRNGKey)(np.arange(seeds, dtype=np.uint32))
    if jax.device_count() > 1 and seeds % jax.device_count() == 0:
        keys = jax.device_put(keys, NamedSharding(Mesh(np.array(jax.devices()), ("s",)), P("s")))
    # initial parameters as rljax makes them: no batched QR on CPU (see rljax.backend.init_loop)
    init = jax.vmap(init_for) if backend.init_loop("auto") == "vmap" else (lambda k: jax.lax.map(init_for, k))
    params0 = jax.block_until_ready(jax.jit(init)(keys))
    fn = jax.jit(jax.vmap(train, axis_name="seeds")).lower(keys, params0).compile()
    return fn, keys, params0, evaluate


def child_handfused(seeds: int, steps: int, t_start: float, bootstrap: bool = True, threefry: str = "auto") -> dict:
    from rljax.devices import configure_devices

    configure_devices(None)  # the devices `rljax run` gets
    import jax
    import numpy as np

    from rljax.experiments.bench.handfused import NUM_ENVS, NUM_STEPS

    t0 = time.perf_counter()
    fn, keys, params0, evaluate = handfused_program(seeds, steps, bootstrap, threefry)
    compile_s = time.perf_counter() - t0
    t_first = time.time()
    t0, c0 = time.perf_counter(), time.process_time()
    params = jax.block_until_ready(fn(keys, params0))
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    t_end = time.time()
    ret = float(np.mean(jax.jit(jax.vmap(evaluate, in_axes=(0, None)))(params, jax.random.PRNGKey(1))))
    total = (steps // (NUM_ENVS * NUM_STEPS)) * NUM_ENVS * NUM_STEPS * seeds
    return {"to_first_chunk": t_first - t_start, "compile": compile_s, "train": train_s, "train_cpu": train_cpu,
            "wall": t_end - t_start, "sps_train": total / train_s, "sps_wall": total / (t_end - t_start),
            "eval_return": ret}


def hlo_tables(seeds: int, steps: int) -> str:
    """Per-loop kernels, fusions and loop-carried state of rljax's chunk program and of both
    references (:mod:`rljax.experiments.bench.hlo_stats`)."""
    from rljax.devices import configure_devices

    configure_devices(None)

    from rljax.experiments.cartpole.experiment import EXPERIMENT
    from rljax.experiments.bench.hlo_stats import table
    from rljax.runner import Runner

    cfg = EXPERIMENT.make_config(overrides=[f"ppo.total_timesteps={steps}", f"runner.num_seeds={seeds}",
                                            "runner.progress=false"])
    with tempfile.TemporaryDirectory() as d:
        r = Runner(EXPERIMENT, cfg, d)
        k = min(r.chunk_updates, r.num_updates)
        out = [table(r.chunk_fn(k, *r.abstract_carry()).as_text(), f"rljax, {seeds} seed(s), chunk of {k} updates, "
                     f"{r.choices}")]
    for boot in (True, False):
        fn = handfused_program(seeds, steps, boot)[0]
        out.append(table(fn.as_text(), f"reference, bootstrap={boot}, {seeds} seed(s)"))
    return "\n".join(out)


KINDS = ("rljax", "tight", "classic")  # rljax; the reference with the truncation bootstrap; without it
LABELS = {"rljax": "rljax", "tight": "ref+boot", "classic": "ref classic"}


def _child(kind: str, seeds: int, steps: int, threefry: str = "auto") -> dict | None:
    env = dict(os.environ, PYTHONPATH=ROOT)
    t_start = time.time()
    proc = subprocess.run([sys.executable, "-m", "rljax.experiments.bench.scale", "--child", kind, "--seeds", str(seeds),
                           "--steps", str(steps), "--t-start", repr(t_start), "--threefry", threefry], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        err = proc.stderr.strip().splitlines()
        print(f"  [{kind} x{seeds}] failed: {err[-1] if err else proc.returncode}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median(runs: list[dict], key: str = "sps_train") -> dict | None:
    runs = [r for r in runs if r]
    return sorted(runs, key=lambda r: r[key])[len(runs) // 2] if runs else None


def _load() -> str:
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load average unknown"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default=None, help="comma-separated seed counts (default: 1,64,256 on CPU, "
                                                  "1,64,1024,4096 on an accelerator)")
    p.add_argument("--steps", type=int, default=500_000, help="environment steps per seed")
    p.add_argument("--repeats", type=int, default=1, help="median of this many runs per line (an odd number: "
                                                               "the median is one run)")
    p.add_argument("--threefry", default="auto", choices=("auto", "rolled", "unrolled"),
                   help="threefry lowering for rljax (runner.threefry) and the references alike")
    p.add_argument("--hlo", action="store_true", help="print per-loop kernel counts of the compiled programs instead")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--t-start", type=float, default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        if a.child == "rljax":
            out = child_rljax(int(a.seeds), a.steps, a.t_start, threefry=a.threefry)
        else:
            out = child_handfused(int(a.seeds), a.steps, a.t_start, bootstrap=a.child == "tight", threefry=a.threefry)
        print(json.dumps(out))
        return 0

    from rljax.devices import accelerator_expected

    accel = accelerator_expected()
    seeds = [int(s) for s in (a.seeds or ("1,64,1024,4096" if accel else "1,64,256")).split(",")]
    if a.hlo:
        for s in seeds:
            print(hlo_tables(s, a.steps))
        return 0
    print(f"CartPole PPO at scale: {a.steps:,} env-steps per seed, PureJaxRL settings; host: {host_description()}; "
          f"median of {a.repeats}; threefry {a.threefry}; {_load()} at start")
    head = (f"{'seeds':>6} {'':<11} {'env-steps/s train':>18} {'per CPU-s':>10} {'end to end':>11} {'vs boot':>8} "
            f"{'(CPU)':>6} {'vs classic':>10} | {'to 1st':>6} {'startup':>7} {'compile':>7} {'train':>6} "
            f"{'eval':>5} {'log':>5} {'ckpt':>5} {'wall':>6}  return")
    shown_device = False
    for s in seeds:
        runs = {k: [] for k in KINDS}
        for _ in range(a.repeats):  # interleaved, so load changes hit all alike
            for k in KINDS:
                runs[k].append(_child(k, s, a.steps, a.threefry))
        med = {k: _median(v) for k, v in runs.items()}
        cpu = {k: _median(v, "train_cpu") for k, v in runs.items()}
        if med["rljax"] and not shown_device:
            print(f"device: {med['rljax']['device']}\n{head}")
            shown_device = True
        rate_cpu = lambda k: cpu[k]["sps_train"] * cpu[k]["train"] / cpu[k]["train_cpu"] if cpu[k] else None
        for k in KINDS:
            r = med[k]
            if not r:
                continue
            ratios = f"{'':>8} {'':>6} {'':>10}"
            if k == "rljax":
                t, c = med["tight"], med["classic"]
                ratios = (f"{r['sps_train'] / t['sps_train']:>8.3f} {rate_cpu('rljax') / rate_cpu('tight'):>6.3f} "
                          if t else f"{'':>8} {'':>6} ") + (f"{r['sps_train'] / c['sps_train']:>10.3f}" if c else f"{'':>10}")
            elif k == "tight" and med["classic"]:
                ratios = (f"{'':>8} {'':>6} {r['sps_train'] / med['classic']['sps_train']:>10.3f}")
            opt = lambda key, w, f: f"{r[key]:>{w}{f}}" if key in r else " " * w
            print(f"{s:>6} {LABELS[k]:<11} {r['sps_train']:>18,.0f} {rate_cpu(k):>10,.0f} {r['sps_wall']:>11,.0f} {ratios} | "
                  f"{r['to_first_chunk']:>6.1f} {opt('startup', 7, '.1f')} {r['compile']:>7.1f} {r['train']:>6.1f} "
                  f"{opt('eval', 5, '.1f')} {opt('logging', 5, '.2f')} {opt('checkpoint', 5, '.2f')} {r['wall']:>6.1f}  "
                  f"{r['eval_return']:.1f}")
        if med["tight"] and med["classic"]:
            print(f"{'':>6} {'':<11} per CPU-s: rljax / ref classic {rate_cpu('rljax') / rate_cpu('classic'):.3f}, "
                  f"ref+boot / ref classic {rate_cpu('tight') / rate_cpu('classic'):.3f}")
        print(f"  ({_load()})")
    print("env-steps/s train: steps / training seconds (rljax: summary.json's total_steps_per_second, the same run); "
          "per CPU-s: steps / CPU seconds of the process while training (median run by CPU seconds; steadier on a "
          "loaded machine); "
          "vs boot / vs classic: rljax (or ref+boot) / the reference with / without the truncation bootstrap "
          "((CPU): the same by CPU seconds). Times in seconds; 'to 1st' = process start to the first chunk "
          "launched (start-up + compile).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
