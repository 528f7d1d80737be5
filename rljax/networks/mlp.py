"""MLP actor-critic with separate actor and critic torsos (PPO's usual shape)."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rljax.envs.spaces import Box, Discrete, MultiDiscrete

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "gelu": nn.gelu}


def ortho(gain: float) -> nn.initializers.Initializer:
    return nn.initializers.orthogonal(gain)


class MLP(nn.Module):
    hidden: Sequence[int]
    activation: str = "tanh"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for width in self.hidden:
            x = act(nn.Dense(width, kernel_init=ortho(np.sqrt(2)), bias_init=nn.initializers.zeros)(x))
        return x


class PolicyHead(nn.Module):
    """Maps features to the policy output :func:`rljax.distributions.make_distribution` expects."""

    space: Discrete | MultiDiscrete | Box
    gain: float = 0.01

    @nn.compact
    def __call__(self, h: jax.Array):
        dense = lambda n: nn.Dense(n, kernel_init=ortho(self.gain), bias_init=nn.initializers.zeros)
        if isinstance(self.space, Discrete):
            return dense(self.space.n)(h)
        if isinstance(self.space, MultiDiscrete):
            return tuple(dense(n)(h) for n in self.space.nvec)
        dim = int(np.prod(self.space.shape))
        log_std = self.param("log_std", nn.initializers.zeros, (dim,))
        return dense(dim)(h), jnp.broadcast_to(log_std, h.shape[:-1] + (dim,))


class ActorCriticMLP(nn.Module):
    """``obs[..., *obs_shape] -> (policy_out, value[...])``; the observation is flattened."""

    space: Discrete | MultiDiscrete | Box
    obs_ndim: int = 1
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs: jax.Array):
        x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,)).astype(jnp.float32)
        pi = PolicyHead(self.space)(MLP(self.hidden, self.activation)(x))
        v = nn.Dense(1, kernel_init=ortho(1.0), bias_init=nn.initializers.zeros)(MLP(self.hidden, self.activation)(x))
        return pi, v[..., 0]
