"""Speed of EMPO phase 2 in JAX: training steps/s of the neural trainer against the original's
~17/s, and the oracle's wall time on the trivial map (horizon 10) against 0.1 s.

    python -m experiments.empo.bench                   # trivial preset (the demo's trivial config)
    python -m experiments.empo.bench --members 1 8 32  # members vmapped in one program
    python -m experiments.empo.bench --quick           # fewer repeats

Training steps/s: the compiled update of the ``trivial`` preset (network mode; per update 10
environment steps and 1 training step, ``training_steps_per_env_step = 0.1``) timed in the
full-training stage (every network active, beta_r at its nominal value, a full replay buffer)
and in warm-up stage 0 (only V_h^e trains), as medians over repeats of a jitted scan of
updates (``jax.block_until_ready``, compile time excluded). Rows: the table world (exact
transition table, the default on enumerable maps), the model world (successors from
``MultiGrid.robot_action_successors``), and the tabular representation. The original's figure
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

ORIGINAL_STEPS_PER_S = 17.0


def _state_in_stage(trainer, state, train_step: int, fill: bool):
    """``state`` moved to ``train_step`` (the schedules' clock), with a full replay ring when
    ``fill`` (the data are the ring's first rows repeated: timing only)."""
    state = state.replace(train_step=jnp.int32(train_step))
    if fill:
        r = state.replay
        state = state.replace(replay=r.replace(size=jnp.int32(r.capacity), insert_pos=jnp.int32(0)))
    return state


def time_training(overrides: list[str], members: int, updates: int, repeats: int, stage: str) -> dict:
    cfg = EXPERIMENT.make_config("trivial", overrides=overrides)
    trainer = build(cfg).algorithm
    h = jax.tree.map(lambda x: jnp.stack([x] * members), trainer.hparams(None))
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(members))
    state = jax.jit(jax.vmap(trainer.init_state, in_axes=(0, None, 0)))(keys, None, h)
    # a few real updates first, so the ring holds transitions of the actual dynamics
    warm = jax.jit(jax.vmap(lambda s: jax.lax.scan(lambda c, _: trainer.update(c), s, None, length=50)[0]))
    state = warm(state)
    n = cfg.empo.num_training_steps
    if stage == "full":
        state = jax.vmap(lambda s: _state_in_stage(trainer, s, int(0.75 * n), True))(state)
    chunk = jax.jit(jax.vmap(lambda s: jax.lax.scan(lambda c, _: trainer.update(c), s, None, length=updates)),
                    donate_argnums=0)
    t0 = time.perf_counter()
    state, m = jax.block_until_ready(chunk(state))
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        state, m = jax.block_until_ready(chunk(state))
        times.append(time.perf_counter() - t0)
    g = trainer.training_steps_per_update
    med = statistics.median(times)
    stages = sorted(set(int(x) for x in jax.device_get(m["stage"]).reshape(-1)))
    return {"members": members, "seconds": med, "per_member": updates * g / med, "total": members * updates * g / med,
            "env_per_member": updates * trainer.steps_per_update / med, "compile": compile_s, "stages": stages}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--updates", type=int, default=500, help="updates per timed call")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.updates = 3, 200
    print("command:", " ".join(["python", "-m", "rljax.experiments.empo.bench", *sys.argv[1:]]))
    print(f"machine: {host_description()}; jax {jax.__version__}; devices: {', '.join(str(d) for d in jax.devices())}; "
          f"load average at start {os.getloadavg()[0]:.1f} (the machine is shared)")
    print(f"\n== training steps/s, preset 'trivial' (network, hidden 16, batch 32, 10 env steps per training step); "
          f"original: ~{ORIGINAL_STEPS_PER_S:g}/s, target >= 100x = {100 * ORIGINAL_STEPS_PER_S:g}/s")
    rows = [("table world (default)", []), ("model world", ["env.dynamics=model"]),
            ("tabular representation", ["empo.representation=table", "empo.lr_v_h_e=0.5", "empo.lr_q_r=0.5"])]
    print(f"{'world / representation':<26}{'stage':>6}{'members':>8}{'steps/s/member':>16}{'total steps/s':>15}"
          f"{'x original':>12}{'env steps/s':>13}{'compile s':>11}")
    for label, overrides in rows:
        for stage in ("full", "warmup"):
            for members in args.members:
                r = time_training(overrides, members, args.updates, args.repeats, stage)
                print(f"{label:<26}{'/'.join(map(str, r['stages'])):>6}{members:>8}{r['per_member']:>16,.0f}"
                      f"{r['total']:>15,.0f}{r['total'] / ORIGINAL_STEPS_PER_S:>11,.0f}x{r['env_per_member'] * members:>13,.0f}"
                      f"{r['compile']:>11.1f}", flush=True)
    print("\n== oracle (exact backward induction), trivial map, horizon 10")
    from rljax.environments.multigrid import trivial_task
    from rljax.experiments.empo.bench_oracle import bench

    bench(trivial_task(), 20 if not args.quick else 5, show_values=False)


if __name__ == "__main__":
    main()
