"""Two revisions of this repository side by side: did a change cost speed?

For each run, both revisions (``--base``, a git revision, checked out into a temporary
worktree; and this checkout) are measured in fresh processes, alternating base/head/base/head
so that a change in the machine's load hits both alike:

* the compiled training chunk's StableHLO (lowered, not compiled; no source locations):
  identical text means the two revisions run the same program, whatever the timing says;
* training throughput, ``rljax run`` as a user runs it: the summary's env-steps per second of
  training (compilation, evaluation and logging excluded), median over ``--repeats``.

    python -m experiments.bench.revisions --base 165611b
    python -m experiments.bench.revisions --base HEAD~3 --runs cartpole:1,cartpole:64 --repeats 3

A revision from before experiments were packages (``experiments/cartpole.py``) registered
them under other module names: its entry points are written next to its worktree (an
``rljax.egg-info`` that Python finds first on its PYTHONPATH), from its own pyproject.toml.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

from rljax.experiments.bench.fresh_process import ROOT
from rljax.machine import host_description

# name -> (experiment, preset, overrides): budgets of 30-90 s each on 2 CPU cores
RUNS: dict[str, tuple[str, str, list[str]]] = {
    "cartpole:1": ("cartpole", "default", ["ppo.total_timesteps=200000"]),
    "cartpole:64": ("cartpole", "default", ["ppo.total_timesteps=65536", "runner.num_seeds=64"]),
    "communities": ("communities", "smoke", []),
    "pursuit": ("pursuit", "smoke", []),
    "empo": ("empo", "smoke", []),
}

_HLO = """
import hashlib, json, sys, tempfile
from rljax.experiment import load_experiment
from rljax.runner import Runner
name, preset, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
exp = load_experiment(name)
cfg = exp.make_config(preset=preset, overrides=overrides)
runner = Runner(exp, cfg, tempfile.mkdtemp())
import jax
text = jax.jit(runner._batched_chunk(1)).lower(*runner.abstract_carry()).as_text()
print("RESULT" + json.dumps({"hlo": hashlib.sha256(text.encode()).hexdigest()[:16], "ops": text.count(" = ")}))
"""


def _entry_points_for(checkout: str) -> None:
    """Writes ``checkout``'s own experiment entry points where its PYTHONPATH finds them first."""
    with open(os.path.join(checkout, "pyproject.toml")) as f:
        text = f.read()
    block = re.search(r'\[project\.entry-points\."rljax\.experiments"\]\n((?:[^\[\n].*\n)+)', text)
    info = os.path.join(checkout, "rljax.egg-info")
    os.makedirs(info, exist_ok=True)
    with open(os.path.join(info, "PKG-INFO"), "w") as f:
        f.write("Metadata-Version: 2.1\nName: rljax\nVersion: 0.0.0\n")
    with open(os.path.join(info, "entry_points.txt"), "w") as f:
        f.write("[rljax.experiments]\n" + (block.group(1).replace('"', "") if block else ""))


def _env(checkout: str) -> dict:
    return dict(os.environ, PYTHONPATH=checkout, JAX_PLATFORMS="cpu")


def _hlo(checkout: str, run: tuple[str, str, list[str]]) -> dict:
    name, preset, overrides = run
    proc = subprocess.run([sys.executable, "-c", _HLO, name, preset, json.dumps(overrides)], cwd=checkout,
                          env=_env(checkout), capture_output=True, text=True)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


def _train(checkout: str, run: tuple[str, str, list[str]]) -> float | None:
    name, preset, overrides = run
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "rljax.cli", "run", name, "--preset", preset, "--out", out]
        for o in overrides:
            cmd += ["--set", o]
        proc = subprocess.run(cmd, cwd=checkout, env=_env(checkout), capture_output=True, text=True)
        if proc.returncode:
            print(f"  {checkout}: {' '.join(cmd[2:])} failed:\n{proc.stderr[-1500:]}", file=sys.stderr)
            return None
        with open(os.path.join(out, "summary.json")) as f:
            s = json.load(f)
    steps = s.get("env_steps_per_member", 0) * s.get("num_members", 1)
    return steps / s["train_seconds"] if s.get("train_seconds") else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.bench.revisions", description=__doc__.split("\n\n")[0])
    p.add_argument("--base", required=True, help="git revision to compare this checkout with")
    p.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, from {', '.join(RUNS)}")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)
    runs = args.runs.split(",")
    unknown = [r for r in runs if r not in RUNS]
    if unknown or args.repeats < 1:
        p.error(f"unknown run {unknown[0]!r}; choose from {', '.join(RUNS)}" if unknown else "--repeats must be >= 1")
    base_dir = tempfile.mkdtemp(prefix="rljax-base-")
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", "-q", base_dir, args.base], check=True)
    try:
        _entry_points_for(base_dir)
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", ROOT, "status", "--porcelain"], capture_output=True, text=True).stdout.strip())
        print(f"{host_description()}; load {os.getloadavg()[0]:.1f} at start")
        print(f"base {args.base} vs head {head}{' + uncommitted changes' if dirty else ''}; {args.repeats} repeats, alternating\n")
        rows = []
        for r in runs:
            hlo = {k: _hlo(d, RUNS[r]) for k, d in (("base", base_dir), ("head", ROOT))}
            speed = {"base": [], "head": []}
            for _ in range(args.repeats):
                for k, d in (("base", base_dir), ("head", ROOT)):
                    v = _train(d, RUNS[r])
                    if v is not None:
                        speed[k].append(v)
            med = {k: statistics.median(v) if v else float("nan") for k, v in speed.items()}
            same = hlo["base"].get("hlo") is not None and hlo["base"].get("hlo") == hlo["head"].get("hlo")
            rows.append({"run": r, "base": med["base"], "head": med["head"], "ratio": med["head"] / med["base"],
                         "same_program": same, "hlo": hlo, "samples": speed})
            print(f"{r:14s} base {med['base']:>10,.0f}  head {med['head']:>10,.0f} env-steps/s  head/base {rows[-1]['ratio']:.3f}  "
                  f"program {'identical' if same else 'DIFFERENT'} ({hlo['head'].get('ops', '?')} ops)", flush=True)
        print(f"\nload {os.getloadavg()[0]:.1f} at end")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"base": args.base, "head": head, "dirty": dirty, "rows": rows}, f, indent=1)
    finally:
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", base_dir], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
