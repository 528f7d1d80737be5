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
    sw = sub.add_parser("sweep", help="random-search an algorithm's vmappable hyperparameters, trials vmapped in batches")
    sw.add_argument("experiment")
    sw.add_argument("--space", default=None,
                    help="a named search space (default: ppo6 for PPO-based experiments, empo_lr for EMPO)")
    sw.add_argument("--param", action="append", default=[], metavar="SECTION.KEY=log:LOW:HIGH",
                    help="instead of --space: sweep this vmappable key (log: log-scale, or uniform:LOW:HIGH); repeat")
    sw.add_argument("--trials", type=int, default=32)
    sw.add_argument("--batch", type=int, default=16, help="trials per compiled program")
    sw.add_argument("--steps", type=int, default=None, help="env steps per trial (ppo.total_timesteps)")
    sw.add_argument("--seed", type=int, default=0, help="sampling seed (which hyperparameters each trial gets)")
    sw.add_argument("--train-seeds", default="1", metavar="N|S1,S2",
                    help="training seeds of every trial: a count N (the selection stream's first N, 1000000 + i) "
                         "or a list of seeds >= 1000000 (default 1)")
    sw.add_argument("--variant", default=None,
                    help="train only this task variant (default: all variants of a job in one program, scored per variant)")
    sw.add_argument("--sampler", choices=("random", "tpe"), default="random",
                    help="tpe: Optuna's TPE through ask/tell after 20 random trials (pip install -e '.[sweep]')")
    sw.add_argument("--preset", default=None)
    sw.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    sw.add_argument("--out", default=None)
    _distributed_args(sw)
    sw.set_defaults(handler=_sweep)

    va = sub.add_parser("validate", help="rerun a sweep's top configurations over many seeds, with statistics")
    va.add_argument("sweep_dir")
    va.add_argument("--top", type=int, default=5)
    va.add_argument("--seeds", default=None,
                    help="validation seeds (below 1000000, never a selection seed): a comma-separated list, or a "
                         "count N (seeds 0..N-1); default: the seed document's ten")
    va.add_argument("--extra-seeds", default=None, help="phase-2 seeds for the top 3 (default: the document's ten more; 'none' to skip)")
    va.add_argument("--extra-top", type=int, default=3)
    va.add_argument("--baseline", default=None,
                    help="YAML file of the swept section's hyperparameters (default: the experiment's defaults)")
    va.add_argument("--batch", type=int, default=64, help="members (configurations x seeds) per compiled program")
    _distributed_args(va)
    va.set_defaults(handler=_validate)

    from rljax.pbt.cli import add_pbt_command

    add_pbt_command(sub)  # registered here so rljax/cli.py needs no change


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
    from rljax.devices import configure_devices
    from rljax.distributed import initialize

    if args.coordinator or os.environ.get("RLJAX_COORDINATOR"):
        initialize(args.coordinator, args.num_processes, args.process_id, local_device_count=args.devices)
    else:
        configure_devices(args.devices, members)


# The search space a sweep uses when none is named, by the algorithm's vmappable section.
DEFAULT_SPACES = {"ppo": "ppo6", "empo": "empo_lr"}


def _train_seeds(text: str) -> list[int]:
    from rljax.sweep.seeds import check_selection, selection_seeds

    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--train-seeds must be a count or a comma-separated list of integers, got {text!r}") from None
    if len(values) == 1 and "," not in text:
        return selection_seeds(values[0])
    return check_selection(values)


def _sweep(args: argparse.Namespace) -> int:
    from rljax.config import to_dict
    from rljax.experiment import load_experiment
    from rljax.sweep.engine import check_keys, only_variant
    from rljax.sweep.space import get_space, parse_params

    if args.trials <= 0 or args.batch <= 0:
        raise ConfigError(f"--trials and --batch must be > 0, got {args.trials} and {args.batch}")
    _setup_devices(args, args.batch)  # before the experiment's config can start JAX
    exp = load_experiment(args.experiment)
    if args.param and args.space:
        raise ConfigError("give either --space or --param, not both")
    train_seeds = _train_seeds(args.train_seeds)
    overrides = list(args.overrides) + (["ppo.total_timesteps=%d" % args.steps] if args.steps else [])
    cfg = exp.make_config(args.preset, None, overrides + ["runner.checkpoint_minutes=1000", "runner.keep_best=0"])
    built = exp if args.variant is None else only_variant(exp, args.variant)
    section = built.build(cfg).algorithm.config_section
    if args.steps and section != "ppo":
        raise ConfigError(f"--steps sets ppo.total_timesteps, but {exp.name} sweeps section {section!r}; use --set")
    if args.param:
        space = parse_params(args.param)
    else:
        name = args.space or DEFAULT_SPACES.get(section)
        if name is None:
            raise ConfigError(f"no default search space for section {section!r}; give --space or --param")
        space = get_space(name)
    check_keys(list(space.params), space.section, built, cfg)
    from rljax.sweep.engine import make_train_fn
    from rljax.sweep.scheduler import run_sweep

    out = args.out or os.path.join("checkpoints", f"sweep-{exp.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    t0 = time.perf_counter()
    sweep = run_sweep(exp.name, to_dict(cfg), space, args.trials, args.batch, args.seed, out,
                      make_train_fn(exp, cfg, os.path.join(out, "runs"), variant=args.variant),
                      train_seeds=train_seeds, sampler=args.sampler, variant=args.variant)
    print(f"\nsweep finished in {time.perf_counter() - t0:.0f}s; selection seeds {train_seeds}; best trials:")
    for r in sweep["ranked"][:5]:
        hp = ", ".join(f"{k}={v:.3g}" for k, v in r["hparams"].items())
        print(f"  trial {r['trial']:>3}  eval_return {r['eval_return']:9.2f}  {hp}")
    print(f"results: {os.path.join(out, 'sweep.json')}  (next: rljax validate {out})")
    return 0


def _validate(args: argparse.Namespace) -> int:
    import json

    from rljax.config import from_dict, load_yaml
    from rljax.experiment import load_experiment
    from rljax.sweep.engine import check_keys, only_variant
    from rljax.sweep.scheduler import PHASE1_SEEDS, PHASE2_SEEDS, run_validation
    from rljax.sweep.seeds import check_validation, recorded_selection_seeds

    path = os.path.join(args.sweep_dir, "sweep.json")
    if not os.path.isfile(path):
        raise ConfigError(f"{args.sweep_dir} is not a sweep directory (no sweep.json)")
    with open(path) as f:
        sweep = json.load(f)
    seeds = parse_seeds(args.seeds, PHASE1_SEEDS)
    extra = parse_seeds(args.extra_seeds, PHASE2_SEEDS)
    selection = recorded_selection_seeds(sweep)
    check_validation(seeds + extra, selection)  # before anything trains
    _setup_devices(args, args.batch)  # before the experiment's config can start JAX
    exp = load_experiment(sweep["experiment"])
    cfg = from_dict(exp.config_cls, sweep["base_config"])
    variant = sweep.get("variant")
    section = sweep.get("section", "ppo")
    baseline = {}
    if args.baseline:
        data = load_yaml(args.baseline)
        data = data.get(section, data)
        check_keys(list(data), section, exp if variant is None else only_variant(exp, variant), cfg)
        baseline = {k: float(v) for k, v in data.items()}
    from rljax.sweep.engine import make_train_fn
    from rljax.sweep.report import build_report

    t0 = time.perf_counter()
    val = run_validation(args.sweep_dir, args.top, seeds, baseline,
                         make_train_fn(exp, cfg, os.path.join(args.sweep_dir, "runs"), variant=variant),
                         extra_seeds_top=args.extra_top, extra_seeds=extra, batch=args.batch)
    import jax

    if jax.process_index() == 0:
        report = build_report(args.sweep_dir)
        print(f"\nvalidation finished in {time.perf_counter() - t0:.0f}s; selected on seeds {selection}, "
              f"validated on {val['phase1_seeds']} (+ {val['phase2_seeds']} for {', '.join(val['phase2']) or 'none'})")
        for name, r in report["configs"].items():
            s = r["summary"]
            verdict = "" if name == "baseline" else ("  PASS" if r["pass"] else "  FAIL")
            print(f"  {name:<10} n={s['n']:>2} mean {s['mean']:8.2f} std {s['std']:7.2f} IQM {s['iqm']:8.2f} "
                  f"CI [{s['ci_low']:.1f}, {s['ci_high']:.1f}]{verdict}")
        print(f"report: {os.path.join(args.sweep_dir, 'report.md')}")
    return 0
