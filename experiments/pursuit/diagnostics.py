"""Why does a trained pursuer capture less in the evaluation than in training? Measurements on
a finished (or checkpointed) pursuit self-play run, per member at its current task:

* head-to-head capture rate with both policies deterministic (the spec's evaluation, the
  Gaussian's mean) and with both sampled (``selfplay.eval_stochastic``), on the same episodes;
* how each role moves under its deterministic policy: the mean speed command (clipped to
  ``[0, v_max]`` by the arena) and the share of steps at which it is clipped to 0 (the robot
  stands still: the "mean near the speed clip" failure), beside the sampled policy's;
* the win rates against the scripted baselines (deterministic agents).

    python -m experiments.pursuit.diagnostics RUN_DIR [--episodes 100]
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def motion(trainer, params, arena, key, episodes: int = 32, steps: int = 300) -> dict[str, jax.Array]:
    """Mean speed command and the share of steps with the speed clipped to 0, per role, of the
    deterministic and the sampled policies, over ``steps`` steps of ``episodes`` head-to-head
    episodes (the deterministic pair's trajectories; auto-reset after an episode ends)."""
    from rljax.distributions import make_distribution
    from rljax.selfplay.trainer import row_of

    env = trainer.env
    space = env.action_space(arena, 0)
    vmax = arena.v_max()
    expand = jax.vmap(lambda a: env.expand_actions(a, arena))
    k_reset, k_run = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, episodes), arena)

    def dist(role, o):
        return make_distribution(space, trainer.policy_apply(row_of(params, role), o))

    def speed(a, r):
        return jnp.clip(expand(jnp.stack([a, a], 1))[:, r, 0], 0.0, vmax[r])

    def step(carry, k):
        obs, state = carry
        k_s, k_a, k_r = jax.random.split(k, 3)
        det = [dist(r, obs[:, r]).mode() for r in (0, 1)]
        sto = [dist(r, obs[:, r]).sample(jax.random.fold_in(k_a, r)) for r in (0, 1)]
        rec = {f"{kind}_v{r}": speed(a[r], r) for kind, a in (("det", det), ("sto", sto)) for r in (0, 1)}
        obs2, state2, _, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_s, episodes), state, jnp.stack(det, axis=1), arena)
        done = term | trunc
        r_obs, r_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_r, episodes), arena)
        sel = lambda a, b: jnp.where(done.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)  # noqa: E731
        return (sel(r_obs, obs2), jax.tree.map(sel, r_state, state2)), rec

    _, rec = jax.lax.scan(step, (obs, state), jax.random.split(k_run, steps))
    out = {}
    for kind in ("det", "sto"):
        for r, name in ((0, "pursuer"), (1, "evader")):
            v = rec[f"{kind}_v{r}"]
            out[f"{name}_{kind}_mean_speed"] = v.mean()
            out[f"{name}_{kind}_standstill"] = (v <= 1e-6).mean()
    return out


def diagnose(runner, state, episodes: int = 100, seed: int = 7) -> list[dict]:
    """One row of measurements per member of ``runner`` at ``state`` (see the module docstring):
    one compiled program, vmapped over the members."""
    from rljax.selfplay.evaluation import head_to_head, network_act
    from rljax.selfplay.trainer import row_of

    trainer = runner.algorithm

    def one(member):
        arena = trainer.task_params(member.task, member.curriculum)
        space = trainer.env.action_space(arena, 0)
        keys = jax.random.split(jax.random.key(seed), episodes)
        out = {}
        for det in (True, False):
            acts = [network_act(trainer.policy_apply, space, row_of(member.params, r), deterministic=det) for r in (0, 1)]
            r = head_to_head(trainer.game, arena, keys, trainer.env.max_steps(arena), acts[0], acts[1])
            out["capture_" + ("deterministic" if det else "sampled")] = r["captured"].mean()
        out.update(motion(trainer, member.params, arena, jax.random.key(seed + 1)))
        rates = trainer.baseline_rates(member.params, arena, jax.random.key(seed + 2))
        out.update({f"vs_{b.name}": rates[i] for i, b in enumerate(trainer.rated_baselines)})
        return out

    res = jax.jit(jax.vmap(one))(state)
    rows = []
    for i, m in enumerate(runner.members):
        row = {"member": m.name, "phase": int(state.protocol.phase[i])}
        row.update({k: round(float(v[i]), 4) for k, v in res.items()})
        rows.append(row)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.pursuit.diagnostics")
    p.add_argument("run_dir")
    p.add_argument("--episodes", type=int, default=100)
    args = p.parse_args(argv)
    from rljax.runner import load_run

    rows = diagnose(*load_run(args.run_dir), episodes=args.episodes)
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
