"""Running statistics for observation and reward normalisation, carried in the train state.

Both are pure: ``update`` returns new statistics, so an exact resume only needs the state.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

Array = jax.Array


@struct.dataclass
class RunningMeanStd:
    """Mean and variance over all samples seen (Chan et al. parallel merge)."""

    mean: Array
    var: Array
    count: Array

    @classmethod
    def create(cls, shape: tuple[int, ...]) -> "RunningMeanStd":
        # count starts at a tiny epsilon so the first merge is well defined.
        return cls(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32), jnp.asarray(1e-4, jnp.float32))

    def update(self, batch: Array) -> "RunningMeanStd":
        """``batch``: ``[B, *shape]``."""
        b_mean = batch.mean(axis=0)
        b_var = batch.var(axis=0)
        b_count = jnp.asarray(batch.shape[0], jnp.float32)
        delta = b_mean - self.mean
        total = self.count + b_count
        mean = self.mean + delta * b_count / total
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        return RunningMeanStd(mean, m2 / total, total)

    def normalize(self, x: Array, clip: float = 10.0) -> Array:
        return jnp.clip((x - self.mean) / jnp.sqrt(self.var + 1e-8), -clip, clip)


@struct.dataclass
class RewardNormalizer:
    """Scales rewards by the running std of the discounted return (as SB3's VecNormalize).

    ``returns[N]`` is the per-environment discounted return so far, reset at episode ends.
    """

    returns: Array
    stats: RunningMeanStd

    @classmethod
    def create(cls, num_envs: int) -> "RewardNormalizer":
        return cls(jnp.zeros((num_envs,), jnp.float32), RunningMeanStd.create(()))

    def step(self, reward: Array, done: Array, gamma: Array | float, clip: Array | float) -> tuple["RewardNormalizer", Array]:
        """Updates with one vector step of rewards ``[N]`` and returns the scaled, clipped rewards."""
        returns = self.returns * gamma + reward
        stats = self.stats.update(returns)
        scaled = jnp.clip(reward / jnp.sqrt(stats.var + 1e-8), -clip, clip)
        return RewardNormalizer(jnp.where(done, 0.0, returns), stats), scaled
