"""The self-play policy: an actor-critic MLP over a fixed-scaled observation.

The partial observation of the pursuit arena is a stack of raw frames (metres, radians,
m/s); the network divides it by fixed per-feature scales (:func:`environments.
pursuit_evasion.observation_scale`) instead of running normalisation statistics, so a frozen
opponent, a pool member or a snapshot is its parameters alone. The rljax decision for the
partial-observation policy is an MLP over the stacked 10-frame history.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rljax.envs.spaces import Box, Discrete, MultiDiscrete
from rljax.networks.mlp import ActorCriticMLP


class ScaledActorCritic(nn.Module):
    """``obs[..., D] -> (policy_out, value[...])``: :class:`ActorCriticMLP` on ``obs /
    scale`` (``scale``: ``D`` divisors, a tuple so the module stays hashable)."""

    space: Discrete | MultiDiscrete | Box
    scale: tuple[float, ...]
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs: jax.Array):
        x = obs.astype(jnp.float32) / jnp.asarray(self.scale, jnp.float32)
        return ActorCriticMLP(self.space, hidden=tuple(self.hidden), activation=self.activation)(x)


def clamp_log_std(params, floor: float):
    """``params`` with every leaf named ``log_std`` raised to at least ``floor`` (the
    reference's ``EntropyMonitorCallback``: ``policy.log_std.clamp_(min=-2)``)."""

    def one(path, x):
        named = any(getattr(k, "key", None) == "log_std" for k in path)
        return jnp.maximum(x, jnp.asarray(floor, x.dtype)) if named else x

    return jax.tree_util.tree_map_with_path(one, params)
