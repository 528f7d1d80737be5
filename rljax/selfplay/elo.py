"""Elo ratings against fixed opponents (the reference's ``FixedBaselineEvalCallback``).

An agent with rating ``r_a`` meeting an opponent rated ``r_b`` is expected to score
``E = 1 / (1 + 10 ** ((r_b - r_a) / 400))``; after scoring ``S`` (its win rate over the
match, in [0, 1]) its rating moves by ``k (S - E)``. The reference starts the agent and every
baseline at 1200, keeps the baselines' ratings fixed, uses ``k = 32`` and applies one update per
baseline match, in order.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array
ELO_START = 1200.0
ELO_K = 32.0


def elo_expected(rating: Array | float, opponent: Array | float) -> Array:
    """Expected score of ``rating`` against ``opponent``."""
    return 1.0 / (1.0 + 10.0 ** ((jnp.asarray(opponent, jnp.float32) - jnp.asarray(rating, jnp.float32)) / 400.0))


def elo_update(rating: Array | float, opponent: Array | float, score: Array | float, k: float = ELO_K) -> Array:
    """The rating after a match with score ``score`` (win rate) against a fixed ``opponent``."""
    return jnp.asarray(rating, jnp.float32) + k * (jnp.asarray(score, jnp.float32) - elo_expected(rating, opponent))


def elo_matches(rating: Array | float, scores: Array, opponents: Array | float = ELO_START, k: float = ELO_K,
                do: Array | bool = True) -> Array:
    """``rating`` after matches against fixed opponents, one update per entry of ``scores[M]``
    in order (``opponents``: ``[M]`` ratings or one for all); unchanged where ``do`` is False
    or a score is NaN (a match not played)."""
    scores = jnp.asarray(scores, jnp.float32)
    opponents = jnp.broadcast_to(jnp.asarray(opponents, jnp.float32), scores.shape)
    r = jnp.asarray(rating, jnp.float32)
    for i in range(scores.shape[0]):
        r = jnp.where(jnp.isnan(scores[i]), r, elo_update(r, opponents[i], scores[i], k))
    return jnp.where(do, r, jnp.asarray(rating, jnp.float32))
