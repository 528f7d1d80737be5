"""The self-play policy: an actor-critic MLP over a fixed-scaled observation.

The partial observation of the pursuit arena is a stack of raw frames (metres, radians,
m/s); the network divides it by fixed per-feature scales (:func:`environments.
pursuit_evasion.observation_scale`) instead of running normalisation statistics, so a frozen
opponent, a pool member or a snapshot is its parameters alone. The rljax decision for the
partial-observation policy is an MLP over the stacked 10-frame history; ``encoder="history"``
puts :class:`HistoryFeatures` (the original's features extractor, without its mixture head)
in front of it. :func:`recurrent_scaled_actor_critic` is the same MLP with a GRU memory
(e.g. on the newest frame alone instead of the stacked history).
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rljax.envs.spaces import Box, Discrete, MultiDiscrete
from rljax.networks.mlp import MLP, ActorCriticMLP
from rljax.networks.recurrent import ActorCriticHeads, RecurrentActorCritic


ENCODERS = ("mlp", "history")


class Conv1D(nn.Module):
    """``x[B, L, C_in] -> [B, L - kernel + 1, features]``: a VALID 1-D convolution written as
    one matmul over the unfolded windows. Why not ``nn.Conv``: with members vmapped, XLA CPU
    runs the batched convolution far slower (measured: 10 epochs x 8 minibatches of 256 samples
    x 4 members of the history encoder's gradient took 140 s with ``nn.Conv`` and 8 s with this;
    4.8 s with no convolution at all; 2-core AMD EPYC, 2026-12-07)."""

    features: int
    kernel: int = 5

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        w = self.param("kernel", nn.initializers.lecun_normal(), (self.kernel, x.shape[-1], self.features))
        b = self.param("bias", nn.initializers.zeros, (self.features,))
        n = x.shape[-2] - self.kernel + 1
        windows = jnp.concatenate([x[..., i:i + n, :] for i in range(self.kernel)], -1)  # [B, n, k * C_in]
        return windows @ w.reshape(-1, self.features) + b


class HistoryFeatures(nn.Module):
    """``obs[..., history * frame] -> features[..., 256]`` for the partial observation (frames
    ``[state(state_dim), lidar(n_rays)]``, newest last), shaped after the original's
    ``MultiInputPolicy`` features extractor (spec section 2.5):

    * lidar of the newest frame: Conv1d(1->32, k5) -> ReLU -> Conv1d(32->64, k5) -> ReLU ->
      average pool to 4 bins -> 256;
    * state of the newest frame: MLP state_dim -> 64 -> 64 (ReLU);
    * the whole history: a bidirectional LSTM (hidden 64 each way) -> Dense 32, tanh. The
      original's BiMDN also fits 5 Gaussian mixtures over the opponent's (x, y) to that
      encoding; their training signal is not in the spec, so that head is left out;
    * concatenation -> Dense 256 -> ReLU -> Dense 256 -> ReLU.
    """

    history: int
    state_dim: int = 7

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        lead = x.shape[:-1]
        frames = x.reshape((-1, self.history, x.shape[-1] // self.history))
        state, lidar = frames[:, -1, : self.state_dim], frames[:, -1, self.state_dim:, None]
        c = nn.relu(Conv1D(32)(lidar))
        c = nn.relu(Conv1D(64)(c))  # [B, R - 8, 64]
        bins = np.array_split(np.arange(c.shape[1]), 4)  # static bounds (numpy: traced under jit otherwise)
        c = jnp.stack([c[:, int(b[0]): int(b[-1]) + 1].mean(1) for b in bins], 1).reshape(c.shape[0], -1)
        s = nn.relu(nn.Dense(64)(state))
        s = nn.relu(nn.Dense(64)(s))
        fwd = nn.RNN(nn.OptimizedLSTMCell(64))(frames)[:, -1]
        bwd = nn.RNN(nn.OptimizedLSTMCell(64), reverse=True, keep_order=True)(frames)[:, 0]
        z = jnp.tanh(nn.Dense(32)(jnp.concatenate([fwd, bwd], -1)))
        f = nn.relu(nn.Dense(256)(jnp.concatenate([c, s, z], -1)))
        f = nn.relu(nn.Dense(256)(f))
        return f.reshape(lead + (256,))


class ScaledActorCritic(nn.Module):
    """``obs[..., D] -> (policy_out, value[...])``: :class:`ActorCriticMLP` on ``obs /
    scale`` (``scale``: ``D`` divisors, a tuple so the module stays hashable), or with
    ``encoder="history"`` on the :class:`HistoryFeatures` of it (``history`` frames), shared
    by actor and critic as SB3's default on-policy extractor is."""

    space: Discrete | MultiDiscrete | Box
    scale: tuple[float, ...]
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    encoder: str = "mlp"
    history: int = 10

    @nn.compact
    def __call__(self, obs: jax.Array):
        x = obs.astype(jnp.float32) / jnp.asarray(self.scale, jnp.float32)
        if self.encoder == "history":
            x = HistoryFeatures(self.history)(x)
        return ActorCriticMLP(self.space, hidden=tuple(self.hidden), activation=self.activation)(x)


class ScaledMLP(nn.Module):
    """``obs[..., D] -> features[..., hidden[-1]]``: an MLP (``hidden``, may be empty) on
    ``obs / scale``, the encoder of :func:`recurrent_scaled_actor_critic`."""

    scale: tuple[float, ...]
    hidden: Sequence[int] = ()
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = obs.astype(jnp.float32) / jnp.asarray(self.scale, jnp.float32)
        return MLP(tuple(self.hidden), self.activation)(x)


def recurrent_scaled_actor_critic(space: Discrete | MultiDiscrete | Box, scale: tuple[float, ...],
                                  hidden: Sequence[int] = (64, 64), activation: str = "tanh",
                                  cell_size: int = 128) -> RecurrentActorCritic:
    """The GRU variant of :class:`ScaledActorCritic` (``encoder="mlp"``), split at its last
    hidden layer as :mod:`rljax.networks.recurrent` does: ``obs / scale`` -> shared MLP
    ``hidden[:-1]`` -> GRU (``cell_size``) -> separate actor and critic layers ``hidden[-1:]``
    -> the policy head and the value. ``(carry[..., cell_size], obs[..., D]) -> (carry,
    (policy_out, value[...]))``."""
    return RecurrentActorCritic(ScaledMLP(tuple(scale), tuple(hidden[:-1]), activation),
                                ActorCriticHeads(space, tuple(hidden[-1:]), activation), cell_size)


def clamp_log_std(params, floor: float):
    """``params`` with every leaf named ``log_std`` raised to at least ``floor`` (the
    reference's ``EntropyMonitorCallback``: ``policy.log_std.clamp_(min=-2)``)."""

    def one(path, x):
        named = any(getattr(k, "key", None) == "log_std" for k in path)
        return jnp.maximum(x, jnp.asarray(floor, x.dtype)) if named else x

    return jax.tree_util.tree_map_with_path(one, params)
