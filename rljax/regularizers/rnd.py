"""Random network distillation: an intrinsic reward for observations the agent rarely sees.

A frozen, randomly initialised target network and a trained predictor both map the flattened
observation to ``features`` numbers (MLPs ``obs_dim -> 128 -> 128 -> 64``, ReLU). The raw
intrinsic reward of an observation is the predictor's mean squared error there; it is large
where the predictor has not been trained, i.e. on novel observations. The reward handed to PPO
is

    coef * raw / sqrt(var + eps),

with ``var`` the running variance (Chan/Welford merge, :class:`rljax.normalize.RunningMeanStd`)
of the raw rewards handed out so far. Not centred: the reward stays positive, as in RND.

Order of operations within one PPO update (``rljax.ppo.PPO``):

1. ``reward`` scores the rollout with the statistics from the EARLIER rollouts only (so the
   reward of an observation is a function of the state and that observation alone, never of
   the rest of the batch; on the very first rollout the statistics are the empty prior,
   variance 1, so that rollout gets ``coef * raw``);
2. ``update`` then merges this rollout's raw rewards (from the predictor as it was during the
   rollout, i.e. exactly the raw values ``reward`` used) into the statistics, and trains the
   predictor for one shuffled pass over the rollout's observations with Adam.

So after ``k`` updates ``stats`` are the mean and variance of every raw reward given in those
``k`` rollouts, and ``reward(state, ...) * sqrt(stats.var + eps) / coef`` recovers the raw
rewards (:meth:`RND.raw_intrinsic`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from rljax.extensions import Extension
from rljax.normalize import RunningMeanStd

Array = jax.Array

EPS = 1e-8  # in sqrt(var + EPS), as rljax.normalize


class RNDNetwork(nn.Module):
    """``x[..., obs_dim] -> [..., features]``; ReLU hidden layers, linear output. Flax's
    default (LeCun-normal) initialiser: no QR, so members can be initialised under ``vmap``."""

    hidden: Sequence[int]
    features: int

    @nn.compact
    def __call__(self, x: Array) -> Array:
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.features)(x)


@struct.dataclass
class RNDState:
    """``target``/``predictor``: network parameters (the target is never trained);
    ``opt_state``: the predictor's Adam state; ``stats``: running mean/variance (scalar) of the
    raw intrinsic rewards handed out so far."""

    target: Any
    predictor: Any
    opt_state: Any
    stats: RunningMeanStd


@dataclass(frozen=True)
class RND(Extension):
    """RND intrinsic reward as a PPO reward extension; state in ``ts.ext[name]`` (:class:`RNDState`).

    ``coef``: weight of the normalised intrinsic reward (the seed's rnd_coef = 0.1);
    ``lr``: the predictor's Adam learning rate; ``hidden``/``features``: both networks' widths;
    ``minibatch``: predictor minibatch size (the seed trains every 256 steps).
    """

    name: str = "rnd"
    coef: float = 0.1
    lr: float = 1e-3
    hidden: tuple = (128, 128)
    features: int = 64
    minibatch: int = 256

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"RND.name must be a non-empty string, got {self.name!r}")
        if not self.coef >= 0:
            raise ValueError(f"RND.coef must be >= 0, got {self.coef}")
        if not self.lr > 0:
            raise ValueError(f"RND.lr must be > 0, got {self.lr}")
        hidden = tuple(self.hidden)
        if not all(isinstance(w, int) and w > 0 for w in hidden):
            raise ValueError(f"RND.hidden must be positive integer widths, got {list(hidden)}")
        object.__setattr__(self, "hidden", hidden)  # YAML gives lists; keep the config hashable
        if not (isinstance(self.features, int) and self.features > 0):
            raise ValueError(f"RND.features must be a positive integer, got {self.features!r}")
        if not (isinstance(self.minibatch, int) and self.minibatch > 0):
            raise ValueError(f"RND.minibatch must be a positive integer, got {self.minibatch!r}")

    # -- pieces --------------------------------------------------------------------------------
    @property
    def network(self) -> RNDNetwork:
        return RNDNetwork(self.hidden, self.features)

    @property
    def optimizer(self) -> optax.GradientTransformation:
        return optax.adam(self.lr)

    @staticmethod
    def _flat(x: Array, lead: int) -> Array:
        """``x[*lead dims, *obs_shape] -> float32 [*lead dims, obs_dim]``."""
        return x.reshape(x.shape[:lead] + (-1,)).astype(jnp.float32)

    def _errors(self, target: Any, predictor: Any, x: Array) -> Array:
        """Per-row mean squared prediction error of flattened observations ``x[..., obs_dim]``."""
        net = self.network
        t = jax.lax.stop_gradient(net.apply(target, x))
        return jnp.mean(jnp.square(net.apply(predictor, x) - t), axis=-1)

    def raw_intrinsic(self, state: RNDState, obs: Array, lead: int = 2) -> Array:
        """The unnormalised intrinsic reward ``mse(pred(obs), target(obs))`` of observations
        with ``lead`` leading batch axes (``[T, N, ...] -> [T, N]`` by default)."""
        return self._errors(state.target, state.predictor, self._flat(obs, lead))

    def scale(self, state: RNDState) -> Array:
        """The divisor in force: ``sqrt(stats.var + eps)``."""
        return jnp.sqrt(state.stats.var + EPS)

    # -- the extension protocol ------------------------------------------------------------
    def init(self, key: Array, params: Any, obs_shape: tuple[int, ...]) -> RNDState:
        obs_dim = 1
        for d in obs_shape:
            obs_dim *= int(d)
        dummy = jnp.zeros((1, obs_dim), jnp.float32)
        target_key, predictor_key = jax.random.split(key)
        target = self.network.init(target_key, dummy)
        predictor = self.network.init(predictor_key, dummy)
        return RNDState(target, predictor, self.optimizer.init(predictor), RunningMeanStd.create(()))

    def reward(self, state: RNDState, obs: Array, action: Array, next_obs: Array) -> Array:
        """``coef * raw(next_obs) / sqrt(var + eps)``, ``[T, N]`` from ``next_obs[T, N, ...]``,
        with ``var`` from ``state.stats`` as they are (the rollouts before this one)."""
        return self.coef * self.raw_intrinsic(state, next_obs) / self.scale(state)

    def update(self, state: RNDState, params: Any, obs: Array, next_obs: Array, key: Array) -> tuple[RNDState, dict[str, Array]]:
        """Merges the raw rewards of ``next_obs[B, ...]`` (the observations the rollout's
        rewards were given for, scored by the predictor before this update) into ``stats``,
        then trains the predictor for one pass over them: shuffled with ``key``, in
        ``B // minibatch`` minibatches of ``minibatch`` (the remainder of the shuffle is left
        out), or one minibatch of all ``B`` when ``B < minibatch``.

        Metrics: ``loss`` (mean predictor loss over the pass's minibatches, before each step),
        ``intrinsic_mean``/``intrinsic_std`` (raw rewards of this batch), ``running_std`` (the
        divisor after the merge, used for the next rollout).
        """
        x = self._flat(next_obs, 1)
        batch = x.shape[0]
        raw = self._errors(state.target, state.predictor, x)
        stats = state.stats.update(raw)

        size = min(self.minibatch, batch)
        count = batch // size
        idx = jax.random.permutation(key, batch)[: count * size].reshape(count, size)
        optimizer = self.optimizer

        def step(carry, rows):
            predictor, opt_state = carry
            loss_fn = lambda p: jnp.mean(self._errors(state.target, p, x[rows]))
            loss, grads = jax.value_and_grad(loss_fn)(predictor)
            updates, opt_state = optimizer.update(grads, opt_state, predictor)
            return (optax.apply_updates(predictor, updates), opt_state), loss

        (predictor, opt_state), losses = jax.lax.scan(step, (state.predictor, state.opt_state), idx)
        new_state = RNDState(state.target, predictor, opt_state, stats)
        metrics = {
            "loss": losses.mean(),
            "intrinsic_mean": raw.mean(),
            "intrinsic_std": raw.std(),
            "running_std": self.scale(new_state),
        }
        return new_state, metrics
