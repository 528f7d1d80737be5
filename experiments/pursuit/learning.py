"""What a PPO pursuer learns against the uniformly random evader at a tiny budget, and what stops it.

The engine's PPO (:class:`rljax.ppo.PPO`) on the single-agent view of the arena
(:class:`rljax.environments.pursuit_opponents.OpponentView`, the evader acting uniformly at random),
full observation, no obstacles, 1-3 m starts, 200-step episodes. Each variant changes one thing
against the set-up that learns (``shaped``): the action parametrisation, the reward, the learning
rate. Reports the trained greedy policy's capture rate and a uniformly random pursuer's on the
same evaluation episodes.

    python -m experiments.pursuit.learning                          # every variant, seed 0
    python -m experiments.pursuit.learning --variants shaped --seeds 0 1 2 3

``tests/test_pursuit_learning.py`` is the ``shaped`` variant as a test.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from rljax.environments.pursuit_evasion import PursuitEvasion, pursuit_params
from rljax.environments.pursuit_opponents import OpponentView, view_params
from rljax.distributions import make_distribution
from rljax.networks.mlp import ActorCriticMLP
from rljax.ppo import PPOConfig
from rljax.ppo import PPO

# The closing distance x100 (about 0.18 per step at full speed), +10 at capture, no timeout penalty.
SHAPED = {"distance_scale": 100.0, "capture_bonus": 10.0, "timeout_penalty": 0.0}
SPEC_REWARD = {"distance_scale": 1.0, "capture_bonus": 100.0, "timeout_penalty": -100.0}
EASY_ARENA = {"max_steps": 200, "min_init_d": 1.0, "max_init_d": 3.0}


@dataclass(frozen=True)
class Variant:
    """One set-up: the arena's reward, the action parametrisation and the PPO learning rate."""

    reward: dict[str, float] = field(default_factory=lambda: dict(SHAPED))
    unit_actions: bool = True
    fixed_speed: bool = False
    lr: float = 3e-3
    normalize_reward: bool = False
    what: str = ""


VARIANTS: dict[str, Variant] = {
    "shaped": Variant(what="unit actions, shaped reward, lr 3e-3"),
    "spec_reward": Variant(reward=dict(SPEC_REWARD), what="the spec's reward (x1 shaping, +-100 at the end)"),
    "spec_reward_norm": Variant(reward=dict(SPEC_REWARD), normalize_reward=True, what="the spec's reward, normalised"),
    "spec_lr": Variant(lr=3e-4, what="the spec's learning rate 3e-4"),
    "clipped_box": Variant(unit_actions=False, what="raw [v, omega] box, clipped Gaussian"),
    "fixed_speed": Variant(unit_actions=False, fixed_speed=True, what="steering only (v = v_max)"),
}


def pursuer_view(v: Variant) -> tuple[OpponentView, Any]:
    """The single-agent pursuer view against the random evader and its params."""
    env = OpponentView(PursuitEvasion(observation="full", unit_actions=v.unit_actions, fixed_speed=v.fixed_speed), "pursuer")
    return env, view_params(pursuit_params(**EASY_ARENA, **v.reward))


def pursuer_episodes(env: OpponentView, params: Any, keys: jax.Array,
                     act: Callable[[jax.Array, jax.Array], jax.Array] | None = None) -> dict[str, np.ndarray]:
    """Per-episode ``captured`` (0/1) and ``length`` (``[E]`` each), one episode per key in
    ``keys[E]``, for a pursuer acting by ``act(key, obs) -> action`` (default: uniformly over its
    action box).

    The keys are used exactly as :meth:`rljax.ppo.PPO.evaluate` uses them (same reset, same
    step keys, so the random evader makes the same moves): with the same keys, a policy's greedy
    ``act`` reproduces its evaluation episode for episode, and any other pursuer plays the same
    starts against the same evader."""
    space = env.action_space(params)
    low, high = jnp.asarray(space.low, jnp.float32), jnp.asarray(space.high, jnp.float32)
    if not env.env.unit_actions and not env.env.fixed_speed:  # the physical box: v in [0, v_max]
        arena = params.arena
        low = jnp.stack([jnp.zeros(()), -arena.pursuer_omega_max])
        high = jnp.stack([arena.pursuer_v_max, arena.pursuer_omega_max])
    if act is None:
        def act(key, obs):
            return jax.random.uniform(key, space.shape, minval=low, maxval=high)
    max_steps = env.max_steps(params)

    def episode(key):
        _, rkey, skey = jax.random.split(key, 3)
        obs, state = env.reset(rkey, params)

        def step(carry, k):
            obs, state, alive, captured, length = carry
            action = act(jax.random.fold_in(k, 1), obs)  # the step key itself goes to the env, as in evaluate
            obs, state, _, term, trunc, info = env.step(k, state, action, params)
            captured, length = captured + alive * info["ep_captured"], length + alive.astype(jnp.int32)
            return (obs, state, alive * (1.0 - jnp.logical_or(term, trunc)), captured, length), None

        init = (obs, state, jnp.ones(()), jnp.zeros(()), jnp.zeros((), jnp.int32))
        (_, _, _, captured, length), _ = jax.lax.scan(step, init, jax.random.split(skey, max_steps))
        return {"captured": captured, "length": length}

    return {k: np.asarray(v) for k, v in jax.jit(jax.vmap(episode))(keys).items()}


def train_pursuer(v: Variant, seed: int = 0, total_timesteps: int = 40_960, episodes: int = 400) -> dict[str, float]:
    """Trains the pursuer of variant ``v`` and returns greedy capture rates: ``trained``,
    ``untrained`` (the initial policy's mean action) and ``random`` (uniform actions), all on the
    same ``episodes`` evaluation episodes; ``same_episodes`` says whether replaying the trained
    policy through :func:`pursuer_episodes` reproduced its evaluation (captures and lengths)
    episode for episode."""
    env, params = pursuer_view(v)
    cfg = PPOConfig(num_envs=16, num_steps=64, num_minibatches=4, num_epochs=4, total_timesteps=total_timesteps, lr=v.lr,
                    ent_coef=0.0, normalize_reward=v.normalize_reward)
    tr = PPO(env, ActorCriticMLP(env.action_space(params), hidden=(64, 64)), cfg)
    ts, _ = jax.jit(tr.train)(jax.random.PRNGKey(seed), tr.hparams(params), params)
    keys = jax.random.split(jax.random.PRNGKey(7), episodes)
    greedy = jax.jit(lambda p, stats: tr.evaluate(p, stats, params, keys, env.max_steps(params)))
    init = tr.init_state(jax.random.PRNGKey(seed), params, tr.hparams(params))
    trained = {k: np.asarray(v) for k, v in greedy(ts.params, ts.obs_stats).items()}
    space = env.action_space(params)

    def greedy_act(key, obs):  # the policy's mean action, as evaluate plays it (observations are not normalised)
        return make_distribution(space, tr.apply(ts.params, obs[None])[0]).mode()[0]

    replayed = pursuer_episodes(env, params, keys, greedy_act)
    return {
        "trained": float(np.mean(trained["ep_captured"])),
        "same_episodes": bool(np.array_equal(trained["ep_captured"], replayed["captured"])
                              and np.array_equal(trained["length"], replayed["length"])),
        "untrained": float(np.mean(greedy(init.params, init.obs_stats)["ep_captured"])),
        "random": float(np.mean(pursuer_episodes(env, params, keys)["captured"])),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--steps", type=int, default=40_960)
    ap.add_argument("--episodes", type=int, default=400)
    args = ap.parse_args(argv)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__}, "
          f"{jax.devices()[0].platform}")
    print("command: python -m experiments.pursuit.learning " + " ".join(sys.argv[1:] if argv is None else argv))
    print(f"{'variant':<18}{'seed':>5}{'trained':>9}{'untrained':>11}{'random':>8}{'wall s':>8}  what")
    for name in args.variants:
        for seed in args.seeds:
            t0 = time.perf_counter()
            r = train_pursuer(VARIANTS[name], seed, args.steps, args.episodes)
            print(f"{name:<18}{seed:>5}{r['trained']:>9.3f}{r['untrained']:>11.3f}{r['random']:>8.3f}"
                  f"{time.perf_counter() - t0:>8.0f}  {VARIANTS[name].what}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
