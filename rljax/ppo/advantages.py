"""PPO's advantages: GAE over a rollout, bootstrapping through truncation, never termination."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rljax.gae import gae
from rljax.ppo.config import HParams, PPOConfig

Array = jax.Array


def advantages(traj: dict[str, Any], rewards: Array, last_value: Array, h: HParams, cfg: PPOConfig) -> tuple[Array, Array]:
    """``(advantage[T, N], target[T, N])`` of a rollout ``traj`` (:func:`rljax.ppo.rollout.rollout`)
    trained on ``rewards[T, N]``; ``last_value[N]`` is the critic's value of the observation the
    rollout ended on. Where an episode ended, the next value is the truncation bootstrap
    ``traj["boot"]`` (zero or unused on termination: :func:`rljax.gae.gae` drops it)."""
    done = traj["terminated"] | traj["truncated"]
    next_values = jnp.concatenate([traj["value"][1:], last_value[None]], axis=0)
    next_values = jnp.where(done, traj["boot"], next_values)
    adv, targets = gae(
        rewards, traj["value"], next_values, traj["terminated"].astype(jnp.float32),
        traj["truncated"].astype(jnp.float32), h.gamma, h.gae_lambda,
    )
    if cfg.advantage_norm == "batch":
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    return adv, targets
