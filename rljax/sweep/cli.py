"""``rljax sweep`` and ``rljax validate``."""
from __future__ import annotations

import argparse
import os
import time

from rljax.errors import ConfigError


def _distributed_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("multi-process (jax.distributed; or RLJAX_COORDINATOR/..._NUM_PROCESSES/..._PROCESS_ID)")
    g.add_argument("--coordinator", default=None, metavar="HOST:PORT")
    g.add_argument("--num-processes", type=int, default=None)
    g.add_argument("--process-id", type=int, default=None)
    g.add_argument("--devices", type=int, default=None, help="CPU only: XLA devices per process (default: cores)")


def add_sweep_commands(sub: argparse._SubParsersAction) -> None:
    sw = sub.add_parser("sweep", help="random-search PPO hyperparameters, trials vmapped in batches")
    sw.add_argument("experiment")
    sw.add_argument("--space", default="ppo6")
    sw.add_argument("--trials", type=int, default=32)
    sw.add_argument("--batch", type=int, default=16, help="trials per compiled program")
    sw.add_argument("--steps", type=int, default=None, help="env steps per trial (ppo.total_timesteps)")
    sw.add_argument("--seed", type=int, default=0, help="sampling seed and the trials' training seed")
    sw.add_argument("--sampler", choices=("random", "tpe"), default="random",
                    help="tpe: Optuna's TPE through ask/tell after 20 random trials (pip install optuna)")
    sw.add_argument("--preset", default=None)
    sw.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    sw.add_argument("--out", default=None)
    _distributed_args(sw)
    sw.set_defaults(handler=_sweep)

    va = sub.add_parser("validate", help="rerun a sweep's top configurations over many seeds, with statistics")
    va.add_argument("sweep_dir")
    va.add_argument("--top", type=int, default=5)
    va.add_argument("--seeds", default=None,
                    help="comma-separated seed list, or a count N (seeds 0..N-1); default: the seed document's ten")
    va.add_argument("--extra-seeds", default=None, help="phase-2 seeds for the top 3 (default: the document's ten more; 'none' to skip)")
    va.add_argument("--extra-top", type=int, default=3)
    va.add_argument("--baseline", default=None, help="YAML file of ppo hyperparameters (default: the experiment's defaults)")
    va.add_argument("--batch", type=int, default=64, help="members (configurations x seeds) per compiled program")
    _distributed_args(va)
    va.set_defaults(handler=_validate)


def parse_seeds(text: str | None, default: tuple[int, ...]) -> list[int]:
    if text is None:
        return list(default)
    if text.strip().lower() == "none":
        return []
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--seeds must be a number or a comma-separated list of integers, got {text!r}") from None
    if len(values) == 1 and "," not in text:
        if values[0] <= 0:
            raise ConfigError(f"--seeds must be > 0, got {values[0]}")
        return list(range(values[0]))
    return values


def _setup_devices(args: argparse.Namespace, members: int) -> None:
    from rljax.cli import configure_devices
    from rljax.distributed import initialize

    if args.coordinator or os.environ.get("RLJAX_COORDINATOR"):
        initialize(args.coordinator, args.num_processes, args.process_id, local_device_count=args.devices)
    else:
        configure_devices(args.devices, members)


def _sweep(args: argparse.Namespace) -> int:
    from rljax.config import to_dict
    from rljax.experiment import load_experiment
    from rljax.sweep.space import get_space

    if args.trials <= 0 or args.batch <= 0:
        raise ConfigError(f"--trials and --batch must be > 0, got {args.trials} and {args.batch}")
    _setup_devices(args, args.batch)  # before the experiment's config can start JAX
    exp = load_experiment(args.experiment)
    space = get_space(args.space)
    overrides = list(args.overrides) + (["ppo.total_timesteps=%d" % args.steps] if args.steps else [])
    cfg = exp.make_config(args.preset, None, overrides + ["runner.checkpoint_minutes=1000", "runner.keep_best=0"])
    from rljax.sweep.engine import make_train_fn
    from rljax.sweep.scheduler import run_sweep

    out = args.out or os.path.join("checkpoints", f"sweep-{exp.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    t0 = time.perf_counter()
    sweep = run_sweep(exp.name, to_dict(cfg), space, args.trials, args.batch, args.seed, out,
                      make_train_fn(exp, cfg, os.path.join(out, "runs")), sampler=args.sampler)
    print(f"\nsweep finished in {time.perf_counter() - t0:.0f}s; best trials:")
    for r in sweep["ranked"][:5]:
        hp = ", ".join(f"{k}={v:.3g}" for k, v in r["hparams"].items())
        print(f"  trial {r['trial']:>3}  eval_return {r['eval_return']:9.2f}  {hp}")
    print(f"results: {os.path.join(out, 'sweep.json')}  (next: rljax validate {out})")
    return 0


def _validate(args: argparse.Namespace) -> int:
    import json

    from rljax.config import from_dict, load_yaml
    from rljax.experiment import load_experiment
    from rljax.ppo import NUMERIC_FIELDS
    from rljax.sweep.scheduler import PHASE1_SEEDS, PHASE2_SEEDS, run_validation

    path = os.path.join(args.sweep_dir, "sweep.json")
    if not os.path.isfile(path):
        raise ConfigError(f"{args.sweep_dir} is not a sweep directory (no sweep.json)")
    with open(path) as f:
        sweep = json.load(f)
    seeds = parse_seeds(args.seeds, PHASE1_SEEDS)
    extra = parse_seeds(args.extra_seeds, PHASE2_SEEDS)
    baseline = {}
    if args.baseline:
        data = load_yaml(args.baseline)
        data = data.get("ppo", data)
        bad = [k for k in data if k not in NUMERIC_FIELDS]
        if bad:
            raise ConfigError(f"--baseline: {bad[0]!r} is not a PPO hyperparameter the sweep can vary")
        baseline = {k: float(v) for k, v in data.items()}
    _setup_devices(args, args.batch)  # before the experiment's config can start JAX
    exp = load_experiment(sweep["experiment"])
    cfg = from_dict(exp.config_cls, sweep["base_config"])
    from rljax.sweep.engine import make_train_fn
    from rljax.sweep.report import build_report

    t0 = time.perf_counter()
    run_validation(args.sweep_dir, args.top, seeds, baseline, make_train_fn(exp, cfg, os.path.join(args.sweep_dir, "runs")),
                   extra_seeds_top=args.extra_top, extra_seeds=extra, batch=args.batch)
    import jax

    if jax.process_index() == 0:
        report = build_report(args.sweep_dir)
        print(f"\nvalidation finished in {time.perf_counter() - t0:.0f}s")
        for name, r in report["configs"].items():
            s = r["summary"]
            verdict = "" if name == "baseline" else ("  PASS" if r["pass"] else "  FAIL")
            print(f"  {name:<10} n={s['n']:>2} mean {s['mean']:8.2f} std {s['std']:7.2f} IQM {s['iqm']:8.2f} "
                  f"CI [{s['ci_low']:.1f}, {s['ci_high']:.1f}]{verdict}")
        print(f"report: {os.path.join(args.sweep_dir, 'report.md')}")
    return 0
