"""``rljax`` command line: run, eval, list (and the sweep commands).

Every user error (unknown experiment, key, bad value, missing directory) ends with exit code 2
and one line naming the problem; tracebacks are reserved for bugs.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Sequence

from rljax.config import with_seeds
from rljax.devices import configure_devices
from rljax.errors import ConfigError, DivergenceError
from rljax.summary import print_summary


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rljax", description="End-to-end compiled RL in JAX.")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train an experiment")
    run.add_argument("experiment")
    _add_run_args(run)

    ev = sub.add_parser("eval", help="evaluate a run's checkpoint")
    ev.add_argument("checkpoint_dir", help="a run directory (or its checkpoints/ folder)")
    ev.add_argument("--episodes", type=int, default=None)
    ev.add_argument("--best", action="store_true", help="use the best checkpoint instead of the latest")

    sub.add_parser("list", help="list experiments and their presets")

    from rljax.sweep.cli import add_sweep_commands

    add_sweep_commands(sub)
    return p


def _add_run_args(run: argparse.ArgumentParser) -> None:
    run.add_argument("--preset", default=None)
    run.add_argument("--config", default=None, help="YAML file with config overrides")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2,...",
                     help="a vmapped hyperparameter axis (ppo numeric keys); several --vary form a grid")
    run.add_argument("--seeds", type=int, default=None, help="number of seeds, vmapped in one program")
    run.add_argument("--out", default=None, help="run directory (default checkpoints/<experiment>-<time>)")
    run.add_argument("--resume", default=None, metavar="DIR",
                     help="continue the run in DIR (of this experiment) from its newest intact checkpoint")
    run.add_argument("--allow-changed-config", action="store_true",
                     help="with --resume: accept overrides that change the computation (recorded in run.json)")
    run.add_argument("--dashboard", action="store_true",
                     help="draw a multi-panel figure per member between chunks (<run>/dashboard_<member>.png)")
    run.add_argument("--devices", type=int, default=None,
                     help="CPU only: split the host into this many XLA devices to spread members over cores")


def parse_grid(items: Sequence[str], section: str = "ppo", vary_keys: Sequence[str] | None = None) -> list[dict]:
    """``["ppo.lr=1e-3,3e-4", "ppo.ent_coef=0,0.01"]`` -> Cartesian product of settings.

    ``section``/``vary_keys``: the algorithm's config section and its vmappable keys."""
    import itertools

    if vary_keys is None:
        from rljax.ppo import NUMERIC_FIELDS as vary_keys

    axes = []
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--vary {item!r} is not of the form key=v1,v2")
        key, raw = item.split("=", 1)
        name = key.removeprefix(f"{section}.")
        if name not in vary_keys:
            raise ConfigError(f"--vary: {key!r} is not a vmappable hyperparameter; use one of "
                              + ", ".join(f"{section}.{k}" for k in vary_keys))
        try:
            values = [float(v) for v in raw.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"--vary {key}: values must be numbers, got {raw!r}") from None
        if not values:
            raise ConfigError(f"--vary {key}: no values given")
        axes.append([(name, v) for v in values])
    return [dict(c) for c in itertools.product(*axes)] if axes else []


def _run(args: argparse.Namespace) -> int:
    from rljax.experiment import load_experiment

    # The CPU device count is fixed before the experiment's modules or its config can start JAX
    # (a later change is silently impossible); a resume reuses the count its run recorded.
    if args.resume:
        from rljax.checkpoint import read_run_json
        from rljax.sharding import recorded_layout

        meta = read_run_json(args.resume)
        recorded = recorded_layout(meta)
        configure_devices(args.devices, default=recorded["local_device_count"] if recorded["platform"] == "cpu" else None)
    else:
        if args.allow_changed_config:
            raise ConfigError("--allow-changed-config only applies with --resume")
        configure_devices(args.devices)
    exp = load_experiment(args.experiment)
    overrides = with_seeds(args.overrides, args.seeds)
    if args.resume:
        from rljax.resume import check_experiment, resumed_config

        check_experiment(meta, exp.name, args.resume)
        # Overrides on resume apply on top of the run's own config (rljax.resume says which may change).
        cfg = resumed_config(exp, meta, args.preset, args.config, overrides)
        grid = None
        if args.vary:
            algorithm = exp.build(cfg).algorithm
            grid = parse_grid(args.vary, algorithm.config_section, algorithm.vary_keys)
        from rljax.runner import resume_runner

        runner = resume_runner(args.resume, cfg=cfg, grid=grid, allow_changed_config=args.allow_changed_config)
    else:
        cfg = exp.make_config(args.preset, args.config, overrides)
        algorithm = exp.build(cfg).algorithm
        grid = parse_grid(args.vary, algorithm.config_section, algorithm.vary_keys)
        out = args.out or os.path.join("checkpoints", f"{exp.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        if os.path.exists(os.path.join(out, "run.json")):
            raise ConfigError(f"{out} already holds a run; use --resume {out} or another --out")
        from rljax.runner import Runner

        runner = Runner(exp, cfg, out, grid=grid)
    if args.dashboard:
        from rljax.dashboard import Dashboard

        runner.on_chunk_end.append(Dashboard(obs_to_image=exp.obs_to_image))
    summary = runner.run()
    print_summary(summary, runner.out_dir)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from rljax.runner import load_run

    if args.episodes is not None and args.episodes <= 0:
        raise ConfigError(f"--episodes must be > 0, got {args.episodes}")
    extra = {} if args.episodes is None else {"eval_episodes": args.episodes}
    runner, state = load_run(args.checkpoint_dir, best=args.best, **extra)
    returns = runner.evaluate(state)["return"]
    src = runner.restored_from
    print(f"{runner.experiment.name} @ update {runner.update_count(state)} (checkpoint {src['which']}/{src['step']}), "
          f"{returns.shape[1]} episodes per member")
    for m, r in zip(runner.members, returns):
        print(f"  {m.name:<32} return {r.mean():9.2f} +- {r.std():.2f}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from rljax.experiment import list_experiments

    for exp in list_experiments():
        presets = ", ".join(sorted(exp.presets)) or "-"
        print(f"{exp.name:<14} presets: {presets:<28} {exp.description}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "list":
            return _list(args)
        return args.handler(args)
    except ConfigError as e:
        print(f"rljax: error: {e}", file=sys.stderr)
        return 2
    except DivergenceError as e:
        print(f"rljax: diverged: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("rljax: interrupted; resume with --resume <run dir>", file=sys.stderr)
        return 130


def experiment_main(name: str, argv: Sequence[str] | None = None) -> int:
    """``python -m experiments.NAME [run options] | NAME-specific command``."""
    from rljax.experiment import load_experiment

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        exp = load_experiment(name)
    except ConfigError as e:
        print(f"rljax: error: {e}", file=sys.stderr)
        return 2
    if argv and argv[0] in exp.commands:
        try:
            return exp.commands[argv[0]](argv[1:])
        except ConfigError as e:
            print(f"rljax: error: {e}", file=sys.stderr)
            return 2
        except DivergenceError as e:
            print(f"rljax: diverged: {e}", file=sys.stderr)
            return 3
    return main(["run", name, *argv])


if __name__ == "__main__":
    raise SystemExit(main())
