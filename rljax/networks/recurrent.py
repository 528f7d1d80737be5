"""Recurrent actor-critics: an observation encoder, a GRU core, then the heads.

``RecurrentActorCritic(encoder, heads)`` maps ``(carry[..., C], obs[..., *obs_shape]) ->
(carry, (policy_out, value[...]))``; PPO drives it through :class:`rljax.ppo.policy.Policy`
(carry reset at episode starts, stored with the rollout, re-run over whole sequences in the
loss). Any feedforward trunk becomes recurrent by splitting it at its last hidden layer: the
encoder is everything up to it (``obs -> features[..., F]``), the heads everything after it
(``features -> (policy_out, value)``). So the MLP policy (:func:`recurrent_mlp`) and the
Goodhart CNN (:func:`recurrent_cnn`) take a memory without any change to their feedforward
forms. The FiLM policy's heads also read the context, so its GRU variant
(:class:`rljax.networks.film.RecurrentFiLMPolicy`) splits the same way inside its own module.

The layout follows PureJaxRL's ``ppo_rnn``: the memory sits on a shared embedding, actor and
critic heads branch after it.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rljax.envs.spaces import Box, Discrete, MultiDiscrete
from rljax.networks.cnn import FastConv
from rljax.networks.mlp import MLP, PolicyHead, ortho

Array = jax.Array


class RecurrentActorCritic(nn.Module):
    """``(carry[..., cell_size], obs) -> (carry, (policy_out, value[...]))`` with a GRU core."""

    encoder: nn.Module
    heads: nn.Module
    cell_size: int = 128

    recurrent = True  # read by rljax.ppo.policy.is_recurrent

    def initial_carry(self, batch_shape: tuple[int, ...]) -> Array:
        """The zero memory of an episode start, ``[*batch_shape, cell_size]``."""
        return jnp.zeros(tuple(batch_shape) + (self.cell_size,), jnp.float32)

    @nn.compact
    def __call__(self, carry: Array, obs: Array):
        features = self.encoder(obs)
        carry, memory = nn.GRUCell(self.cell_size, name="gru")(carry, features)
        return carry, self.heads(memory)


class FlatMLP(nn.Module):
    """Encoder: flattens the last ``obs_ndim`` axes, then an MLP."""

    hidden: Sequence[int] = (64,)
    activation: str = "tanh"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs: Array) -> Array:
        x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,)).astype(jnp.float32)
        return MLP(self.hidden, self.activation)(x)


class ActorCriticHeads(nn.Module):
    """Heads: separate actor and critic MLPs (``hidden``, may be empty) on shared features."""

    space: Discrete | MultiDiscrete | Box
    hidden: Sequence[int] = (64,)
    activation: str = "tanh"
    value_gain: float = 1.0

    @nn.compact
    def __call__(self, h: Array):
        pi = PolicyHead(self.space)(MLP(self.hidden, self.activation)(h))
        v = nn.Dense(1, kernel_init=ortho(self.value_gain), bias_init=nn.initializers.zeros)(
            MLP(self.hidden, self.activation)(h))
        return pi, v[..., 0]


class ConvEncoder(nn.Module):
    """Encoder: the Goodhart BaseCNN trunk (3x3 same convolutions, ReLU, flatten, Dense, ReLU)."""

    channels: Sequence[int] = (32, 64, 64)
    hidden: int = 512
    conv_impl: str = "patches"

    @nn.compact
    def __call__(self, obs: Array) -> Array:
        x = obs.astype(jnp.float32)
        lead = x.shape[:-3]
        for c in self.channels:
            x = nn.relu(FastConv(c, impl=self.conv_impl)(x))
        x = x.reshape(lead + (-1,))
        return nn.relu(nn.Dense(self.hidden, kernel_init=ortho(np.sqrt(2)), bias_init=nn.initializers.zeros)(x))


def recurrent_mlp(space: Discrete | MultiDiscrete | Box, obs_ndim: int = 1, embed: Sequence[int] = (64,),
                  cell_size: int = 64, head_hidden: Sequence[int] = (64,), activation: str = "tanh") -> RecurrentActorCritic:
    """The GRU variant of :class:`rljax.networks.mlp.ActorCriticMLP`."""
    return RecurrentActorCritic(FlatMLP(tuple(embed), activation, obs_ndim),
                                ActorCriticHeads(space, tuple(head_hidden), activation), cell_size)


def recurrent_cnn(num_actions: int, channels: Sequence[int] = (32, 64, 64), hidden: int = 512, cell_size: int = 256,
                  conv_impl: str = "patches") -> RecurrentActorCritic:
    """The GRU variant of :class:`rljax.networks.cnn.BaseCNN` (linear heads after the memory,
    policy gain 0.01, value gain sqrt 2 as there)."""
    return RecurrentActorCritic(ConvEncoder(tuple(channels), hidden, conv_impl),
                                ActorCriticHeads(Discrete(num_actions), (), value_gain=float(np.sqrt(2))), cell_size)
