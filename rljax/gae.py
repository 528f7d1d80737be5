"""Generalised advantage estimation with termination and truncation kept apart."""
from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def gae(
    rewards: Array,
    values: Array,
    next_values: Array,
    terminated: Array,
    truncated: Array,
    gamma: Array | float,
    lam: Array | float,
) -> tuple[Array, Array]:
    """Advantages and returns for a rollout of shape ``[T, N]``.

    ``next_values[t]`` is the value of the state reached after step ``t`` *before* any
    auto-reset: ``V(obs[t+1])`` inside an episode and ``V(final_obs[t])`` where the episode was
    truncated. Termination never bootstraps (the ``1 - terminated`` factor); truncation
    bootstraps from the final observation but, like termination, cuts the trace so that no
    advantage leaks into the next episode.
    """
    done = jnp.logical_or(terminated, truncated)
    deltas = rewards + gamma * next_values * (1.0 - terminated) - values
    decay = gamma * lam * (1.0 - done)

    def backward(carry, x):
        delta, d = x
        carry = delta + d * carry
        return carry, carry

    _, adv = jax.lax.scan(backward, jnp.zeros_like(values[0]), (deltas, decay), reverse=True)
    return adv, adv + values
