"""``rljax pbt EXPERIMENT --members N [--every K] [--explore SECTION.KEY=LOW:HIGH ...]``."""
from __future__ import annotations

import argparse
import os
import time

from rljax.config import with_seeds
from rljax.errors import ConfigError


def add_pbt_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pbt", help="population-based training inside one compiled program (exploit + explore)")
    p.add_argument("experiment", nargs="?", default=None)
    p.add_argument("--members", type=int, default=8, help="members per population (default 8)")
    p.add_argument("--every", type=int, default=10, help="updates between exploit/explore rounds (0: never)")
    p.add_argument("--explore", action="append", default=[], metavar="SECTION.KEY=LOW:HIGH",
                   help="an explored vmappable hyperparameter and its bounds; members start spread over them "
                        "(log scale); repeat. Default for PPO: ppo.lr within x/10 of its configured value")
    p.add_argument("--fraction", type=float, default=0.25, help="truncation: the bottom fraction copies the top")
    p.add_argument("--factors", default="0.8,1.25", help="explore multipliers (default 0.8,1.25)")
    p.add_argument("--metric", default="episode_return", help="the update metric members are ranked by")
    p.add_argument("--smoothing", type=float, default=0.1, help="weight of the newest value in the score's average")
    p.add_argument("--seeds", type=int, default=None, help="independent populations (one per seed) in one program")
    p.add_argument("--variant", default=None, help="the task variant to train (multi-variant experiments)")
    p.add_argument("--preset", default=None)
    p.add_argument("--config", default=None, help="YAML file with config overrides")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", default=None, help="run directory (default checkpoints/pbt-<experiment>-<time>)")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue the PBT run in DIR from its latest checkpoint")
    p.add_argument("--devices", type=int, default=None, help="CPU only: XLA devices to spread members over")
    p.set_defaults(handler=pbt_main)


def parse_explore(items: list[str], section: str, cfg_section) -> tuple:
    """``SECTION.KEY=LOW:HIGH`` items -> ``Explored``; none: PPO's ``lr`` within x/10."""
    from rljax.pbt.population import Explored

    if not items:
        if section == "ppo" and hasattr(cfg_section, "lr"):
            return (Explored("lr", cfg_section.lr / 10, cfg_section.lr * 10),)
        raise ConfigError(f"pbt: give --explore {section}.KEY=LOW:HIGH (no default for section {section!r})")
    out = []
    for item in items:
        key, sep, spec = item.partition("=")
        bounds = spec.split(":")
        if not sep or len(bounds) != 2:
            raise ConfigError(f"--explore {item!r} is not of the form SECTION.KEY=LOW:HIGH")
        name = key.removeprefix(f"{section}.")
        try:
            out.append(Explored(name, float(bounds[0]), float(bounds[1])))
        except ValueError:
            raise ConfigError(f"--explore {key}: bounds must be numbers, got {spec!r}") from None
    return tuple(out)


def pbt_main(args: argparse.Namespace) -> int:
    from rljax.devices import configure_devices
    from rljax.summary import print_summary
    from rljax.experiment import load_experiment
    from rljax.pbt.population import PBTConfig
    from rljax.pbt.run import pbt_experiment, pbt_runner, resume_pbt

    if args.resume:
        from rljax.checkpoint import read_run_json
        from rljax.pbt.run import PBT_FILE

        if not os.path.isfile(os.path.join(args.resume, PBT_FILE)):
            raise ConfigError(f"{args.resume} is not a PBT run (no {PBT_FILE})")

        from rljax.sharding import recorded_layout

        # the device count the run was trained on, set before anything can start JAX (issue 21)
        recorded = recorded_layout(read_run_json(args.resume))
        configure_devices(args.devices, default=recorded["local_device_count"] if recorded["platform"] == "cpu" else None)
        runner = resume_pbt(args.resume)
    else:
        if args.experiment is None:
            raise ConfigError("pbt: name an EXPERIMENT (or --resume DIR)")
        configure_devices(args.devices)  # before the experiment's modules and config can start JAX
        exp = load_experiment(args.experiment)
        overrides = with_seeds(args.overrides, args.seeds)
        run_cfg = exp.make_config(args.preset, args.config, overrides)
        inner = exp.build(run_cfg).algorithm
        try:
            factors = tuple(float(f) for f in args.factors.split(","))
        except ValueError:
            raise ConfigError(f"--factors must be comma-separated numbers, got {args.factors!r}") from None
        cfg = PBTConfig(members=args.members, every=args.every, fraction=args.fraction, factors=factors,
                        metric=args.metric, smoothing=args.smoothing,
                        explore=parse_explore(args.explore, inner.config_section,
                                              getattr(run_cfg, inner.config_section, None)))
        pbt_experiment(exp, cfg, args.variant).build(run_cfg)  # every setting checked before training
        out = args.out or os.path.join("checkpoints", f"pbt-{exp.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        if os.path.exists(os.path.join(out, "run.json")):
            raise ConfigError(f"{out} already holds a run; use --resume {out} or another --out")
        runner = pbt_runner(exp, run_cfg, out, cfg, args.variant)
    summary = runner.run()
    print_summary(summary, runner.out_dir)
    print(f"lineage: {os.path.join(runner.out_dir, 'lineage.csv')}")
    return 0
