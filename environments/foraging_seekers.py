"""Scripted baselines for the foraging gridworld: ``act(key, obs[V, V, 6]) -> action``.

* :func:`omniscient_seeker` reads the ground-truth one-hot view: it moves toward the nearest
  food within a circular radius of 5, never steps onto poison when another move exists
  (side-step), and walks randomly (still avoiding poison) when no food is visible.
* :func:`proxy_seeker` sees only interestingness (``max`` of channels 2..5, the proxy view):
  it moves toward the nearest cell with interestingness > 0.5 (food *and* poison alike) and
  walks randomly otherwise.

Both score the 8 moves (distance from the move's destination to the target, a large penalty on
avoided cells, and a tiny random tie-break), so they are pure, jittable and vmappable.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rljax.environments.foraging import ACTIONS, FOOD, POISON

Array = jax.Array
SEEK_RADIUS = 5.0


def _act(key: Array, obs: Array, target: Array, avoid: Array) -> Array:
    """Best move toward the nearest ``target`` cell (``[V, V]`` bools) avoiding ``avoid`` cells."""
    v = obs.shape[-2]
    r = v // 2
    off = np.arange(v) - r
    dy, dx = np.meshgrid(off, off, indexing="ij")
    dist = np.sqrt(dx**2 + dy**2)
    k_tie, k_walk = jax.random.split(key)
    visible = target & jnp.asarray(dist <= SEEK_RADIUS)
    # Nearest target; ties between equally near targets broken at random.
    d = jnp.where(visible, jnp.asarray(dist), jnp.inf) + jax.random.uniform(k_tie, (v, v), maxval=1e-3)
    flat = jnp.argmin(d.reshape(-1))
    ty, tx = flat // v - r, flat % v - r
    has_target = jnp.any(visible)

    ax, ay = jnp.asarray(ACTIONS[:, 0]), jnp.asarray(ACTIONS[:, 1])
    to_target = jnp.sqrt(((ax - tx) ** 2 + (ay - ty) ** 2).astype(jnp.float32))
    lands_on_avoided = avoid[r + ay, r + ax]
    score = (
        -jnp.where(has_target, to_target, 0.0)
        - 1000.0 * lands_on_avoided
        + jax.random.uniform(k_walk, (len(ACTIONS),), maxval=0.01)  # random walk / tie-break
    )
    return jnp.argmax(score).astype(jnp.int32)


def omniscient_seeker(key: Array, obs: Array) -> Array:
    """``obs[V, V, 6]`` one-hot ground-truth view -> action (int32 scalar)."""
    return _act(key, obs, obs[..., FOOD] > 0.5, obs[..., POISON] > 0.5)


def proxy_seeker(key: Array, obs: Array) -> Array:
    """``obs[V, V, 6]`` proxy view (interestingness in channels 2..5) -> action (int32 scalar)."""
    interest = jnp.max(obs[..., FOOD:], axis=-1)
    return _act(key, obs, interest > 0.5, jnp.zeros(obs.shape[:-1], bool))


def random_policy(key: Array, obs: Array) -> Array:
    """Uniform random move (the baseline the seekers are tested against)."""
    return jax.random.randint(key, (), 0, len(ACTIONS)).astype(jnp.int32)


SEEKERS = {"omniscient": omniscient_seeker, "proxy": proxy_seeker, "random": random_policy}
