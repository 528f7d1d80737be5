"""``rljax`` command line: run, eval, render, list (and the sweep commands).

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

    ev = sub.add_parser("eval", help="evaluate a run with its experiment's own evaluation")
    ev.add_argument("checkpoint_dir", help="a run directory (or its checkpoints/ folder)")
    _add_trained_args(ev, episodes="episodes per evaluated unit (default: the evaluation's own)")
    ev.add_argument("--out", default=None, help="folder for the evaluation's files (default: its own, in the run)")
    ev.add_argument("--best", action="store_true", help="same as --checkpoint best")

    rd = sub.add_parser("render", help="write episodes of a trained run as a GIF or MP4")
    rd.add_argument("checkpoint_dir", help="a run directory (or its checkpoints/ folder)")
    _add_trained_args(rd, episodes="episodes, one after another (default 1)")
    rd.add_argument("--out", default=None, help="episode.gif or episode.mp4 (default RUN_DIR/episode_<member>.mp4 where imageio-ffmpeg is "
                                           "installed, else .gif)")
    rd.add_argument("--seed", default="0", help="seed of the episodes' keys (default 0)")
    rd.add_argument("--max-steps", default=None, help="cut episodes at this many steps (default: the environment's limit)")
    rd.add_argument("--fps", default="20", help="frames per second (default 20)")
    rd.add_argument("--sample", action="store_true", help="sample actions instead of the greedy mode")
    rd.add_argument("--every", default="1", help="draw every k-th step (default 1)")

    sub.add_parser("list", help="list experiments and their presets")

    from rljax.sweep.cli import add_sweep_commands

    add_sweep_commands(sub)
    return p


def _add_trained_args(p: argparse.ArgumentParser, episodes: str) -> None:
    """The flags ``eval`` and ``render`` share (numbers parsed by :func:`_int`, so a bad value
    is one line, not argparse's usage text)."""
    p.add_argument("--episodes", default=None, help=episodes)
    p.add_argument("--checkpoint", default="latest", help="latest (default), best, or a step number")
    p.add_argument("--member", default=None, help="a member's name (e.g. seed1) or index; default every member "
                                                 "(eval) or the only one (render)")


def _int(flag: str, value: str | None, minimum: int = 1) -> int | None:
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        raise ConfigError(f"{flag} must be an integer, got {value!r}") from None
    if n < minimum:
        raise ConfigError(f"{flag} must be >= {minimum}, got {n}")
    return n


def _member(value: str | None) -> str | int | None:
    """``--member``: an index when it is a number, else a name."""
    return int(value) if value is not None and value.isdigit() else value


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
    from rljax.evaluate import evaluate_run
    from rljax.experiment import EvalRequest
    from rljax.trained import parse_checkpoint

    checkpoint = parse_checkpoint(args.checkpoint)
    if args.best:
        if args.checkpoint != "latest":
            raise ConfigError("--best and --checkpoint are the same choice; give one")
        checkpoint = "best"
    return evaluate_run(EvalRequest(args.checkpoint_dir, _int("--episodes", args.episodes), checkpoint,
                                    _member(args.member), args.out))


def _render(args: argparse.Namespace) -> int:
    from rljax.render import check_output, render_run
    from rljax.runner import find_run_dir
    from rljax.trained import parse_checkpoint

    checkpoint = parse_checkpoint(args.checkpoint)
    if args.out is not None:
        check_output(args.out)  # before anything is loaded
    if args.out is None:  # mp4 where its writer is installed, else a GIF (Pillow, always there)
        from rljax.optional import installed

        ext = ".mp4" if installed("imageio") and installed("imageio_ffmpeg") else ".gif"
    out = args.out or os.path.join(find_run_dir(args.checkpoint_dir), f"episode_{args.member or 'member'}{ext}")
    r = render_run(args.checkpoint_dir, out, checkpoint, _member(args.member), _int("--episodes", args.episodes) or 1,
                   seed=_int("--seed", args.seed, 0), max_steps=_int("--max-steps", args.max_steps),
                   fps=_int("--fps", args.fps), deterministic=not args.sample,
                   every=_int("--every", args.every))
    played = ", ".join(f"{e['steps']} steps" for e in r["episodes"])
    print(f"{r['member']} (checkpoint {r['checkpoint']['which']}/{r['checkpoint']['step']}): {played}; "
          f"{r['frames']} frames written to {r['path']}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from rljax.experiment import list_experiments

    for exp in list_experiments():
        presets = ", ".join(sorted(exp.presets)) or "-"
        print(f"{exp.name:<14} presets: {presets:<28} {exp.description}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and getattr(args, "command", None) not in ("eval", "render"):
        args = parser.parse_args(argv)  # argparse's own message for the other commands
    try:
        if unknown:
            raise ConfigError(f"rljax {args.command}: unknown argument(s) {' '.join(unknown)}")
        if args.command == "run":
            return _run(args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "render":
            return _render(args)
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
