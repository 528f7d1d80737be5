"""Speed of EMPO phase 2 in JAX: training steps/s of the neural trainer against the original's
~17/s, and the oracle's wall time on the trivial map (horizon 10) against 0.1 s.

    python -m experiments.empo.bench                   # trivial preset (the demo's trivial config)
    python -m experiments.empo.bench --members 1 16    # members vmapped in one program (the default)
    python -m experiments.empo.bench --quick           # fewer repeats

Training steps/s: the compiled update of the ``trivial`` preset (network mode; per update 10
environment steps and 1 training step, ``training_steps_per_env_step = 0.1``) timed in the
full-training stage (every network active, beta_r at its nominal value, a full replay buffer;
``--stages warmup`` adds warm-up stage 0), members vmapped over the runner's member axis (as in
a run: rare branches such as target copies stay branches), as medians over repeats of a jitted
scan of updates (``jax.block_until_ready``, compile time excluded). Every row is compiled first
and the rows are then timed in turns, so old and new see the same load. Rows: before issue 24
(networks evaluated per sample for the targets, the demo's estimator), each change alone, the
default (target networks tabulated over the enumerated ``(t, s)`` at each copy, exact
expectations), the model world (successors from the multigrid model: not enumerated, so never
tabulated) and the lookup-table representation. The original's figure
(about 17 training steps/s, sync mode of ``examples/phase2_robot_policy_demo.py`` on the
trivial map, PyTorch, CPU) is the number the task quotes for this machine; it was not re-measured
here. The oracle figures come from :mod:`rljax.experiments.empo.bench_oracle`.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp

from rljax.experiments.empo.experiment import EXPERIMENT, build
from rljax.machine import host_description
from rljax.runner import MEMBER_AXIS

ORIGINAL_STEPS_PER_S = 17.0


def _state_in_stage(trainer, state, train_step: int, fill: bool):
    """``state`` moved to ``train_step`` (the schedules' clock), with a full replay ring when
    ``fill`` (the data are the ring's first rows repeated: timing only)."""
    state = state.replace(train_step=jnp.int32(train_step))
    if fill:
        r = state.replay
        state = state.replace(replay=r.replace(size=jnp.int32(r.capacity), insert_pos=jnp.int32(0)))
    return state


# The trainer's estimator and target path before issue 24 (the demo's: sampled human profile,
# V_h^e for the stored goal, U_r from 5 goal samples, dropout 0.5, networks evaluated per sample).
BEFORE = ["empo.tabulate_targets=false", "empo.model_based_human_profile=sampled", "empo.v_h_e_all_goals=false",
          "empo.x_h_direct_goal_samples=5", "empo.x_h_all_goals=false", "empo.dropout=0.5", "empo.lr_v_h_e=1e-2"]
ROWS = (
    ("before: per-sample targets, demo estimator", BEFORE),
    ("per-sample targets, exact estimator", ["empo.tabulate_targets=false"]),
    ("tabulated targets, demo estimator", BEFORE[1:]),
    ("tabulated, exact (preset trivial, default)", []),
    ("model world (not tabulated), exact", ["env.dynamics=model"]),
    ("lookup tables", ["empo.representation=table", "empo.lr_v_h_e=0.5", "empo.lr_q_r=0.5"]),
)


def prepare(overrides: list[str], members: int, updates: int, stage: str):
    """The compiled chunk of ``updates`` updates of ``members`` members vmapped as the runner does
    (its member axis, so rare branches stay branches), and a state in ``stage``."""
    cfg = EXPERIMENT.make_config("trivial", overrides=overrides)
    trainer = build(cfg).algorithm.with_options(member_axis=MEMBER_AXIS)
    h = jax.tree.map(lambda x: jnp.stack([x] * members), trainer.hparams(None))
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(members))
    state = jax.jit(jax.vmap(trainer.init_state, in_axes=(0, None, 0)))(keys, None, h)

    def scan(n):
        return jax.vmap(lambda s: jax.lax.scan(lambda c, _: trainer.update(c), s, None, length=n), axis_name=MEMBER_AXIS)

    # a few real updates first, so the ring holds transitions of the actual dynamics
    state = jax.jit(scan(50))(state)[0]
    n = cfg.empo.num_training_steps
    if stage == "full":
        state = jax.vmap(lambda s: _state_in_stage(trainer, s, int(0.75 * n), True))(state)
    chunk = jax.jit(scan(updates), donate_argnums=0)
    t0 = time.perf_counter()
    state, m = jax.block_until_ready(chunk(state))
    stages = sorted(set(int(x) for x in jax.device_get(m["stage"]).reshape(-1)))
    return {"chunk": chunk, "state": state, "compile": time.perf_counter() - t0, "times": [], "stages": stages,
            "g": trainer.training_steps_per_update, "e": trainer.steps_per_update}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--updates", type=int, default=500, help="updates per timed call")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--stages", nargs="+", default=["full"], choices=["full", "warmup"])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.updates = 3, 200
    print("command:", " ".join(["python", "-m", "rljax.experiments.empo.bench", *sys.argv[1:]]))
    print(f"machine: {host_description()}; jax {jax.__version__}; devices: {', '.join(str(d) for d in jax.devices())}; "
          f"load average at start {os.getloadavg()[0]:.1f} (the machine is shared)")
    print(f"\n== training steps/s, preset 'trivial' (network, hidden 16, batch 32, 10 env steps per training step); "
          f"original: ~{ORIGINAL_STEPS_PER_S:g}/s. Demo budget 1e6 steps: minutes per seed = 1e6 / steps/s / 60")
    print("(all rows compiled first, then timed in turns, so a change of load hits every row alike)")
    cells = [(label, ov, stage, m) for label, ov in ROWS for stage in args.stages for m in args.members]
    runs = [prepare(ov, m, args.updates, stage) for _, ov, stage, m in cells]
    for _ in range(args.repeats):
        for r in runs:
            t0 = time.perf_counter()
            r["state"] = jax.block_until_ready(r["chunk"](r["state"]))[0]
            r["times"].append(time.perf_counter() - t0)
    print(f"load average after timing {os.getloadavg()[0]:.1f}")
    print(f"{'trainer':<44}{'stage':>6}{'members':>8}{'steps/s/member':>16}{'total steps/s':>15}"
          f"{'x original':>12}{'min/1e6/seed':>14}{'compile s':>11}")
    for (label, _, _, members), r in zip(cells, runs):
        med = statistics.median(r["times"])
        per = args.updates * r["g"] / med
        total = per * members
        print(f"{label:<44}{'/'.join(map(str, r['stages'])):>6}{members:>8}{per:>16,.0f}{total:>15,.0f}"
              f"{total / ORIGINAL_STEPS_PER_S:>11,.0f}x{1e6 / per / 60:>14,.1f}{r['compile']:>11.1f}", flush=True)
    print("\n== oracle (exact backward induction), trivial map, horizon 10")
    from rljax.environments.multigrid import trivial_task
    from rljax.experiments.empo.bench_oracle import bench

    bench(trivial_task(), 20 if not args.quick else 5, show_values=False)


if __name__ == "__main__":
    main()
