"""Random draws for the phase-2 trainer with few PRNG call sites.

Every ``jax.random`` call site compiles to its own threefry computation (about 0.1-0.2 s of
compile time each on the 2-core CPU), and an update of the phase-2 trainer consumes randomness
in dozens of places (exploration, human and robot actions, execution orders, goals, replay
indices, dropout masks, goal samples for a direct X_h). So an update draws a few threefry arrays
up front (uniforms for the environment steps, one 32-bit seed per training-step consumer), and
consumers turn a uniform into a draw (:func:`categorical`, :func:`index`) or a seed into as
many uniforms as they need (:func:`hash_uniform`: a counter-based hash, the murmur3 finaliser
of ``seed + golden * position``). Everything stays a pure function of the member's key, so
vmapped members give the same bits as single runs.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

_GOLDEN = np.uint32(0x9E3779B9)


def _fmix32(x: Array) -> Array:
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def hash_uniform(seed: Array, shape: tuple) -> Array:
    """``float32[shape]`` uniforms in [0, 1) from a ``uint32`` seed (counter-based hash)."""
    n = int(np.prod(shape)) if shape else 1
    pos = jnp.arange(n, dtype=jnp.uint32)
    bits = _fmix32(_fmix32(jnp.asarray(seed, jnp.uint32) ^ jnp.uint32(0x5BD1E995)) + pos * _GOLDEN)
    return ((bits >> 8).astype(jnp.float32) * (1.0 / (1 << 24))).reshape(shape)


def derive(seed: Array, i: int) -> Array:
    """An independent-looking seed number ``i`` from ``seed``."""
    return _fmix32(jnp.asarray(seed, jnp.uint32) + jnp.uint32((i + 1) * int(_GOLDEN) & 0xFFFFFFFF))


def seeds(key: Array, shape: tuple) -> Array:
    """``uint32[shape]`` seeds from one threefry call."""
    return jax.random.bits(key, shape, jnp.uint32)


def index(u: Array, n: int | Array) -> Array:
    """A uniform integer in ``[0, n)`` from a uniform ``u`` in [0, 1)."""
    return jnp.minimum(jnp.floor(u * n), jnp.asarray(n) - 1).astype(jnp.int32)


def categorical(u: Array, probs: Array) -> Array:
    """A draw from ``probs[..., K]`` (rows summing to 1) by inverting the CDF at ``u[...]``;
    outcomes of probability 0 are never drawn."""
    cdf = jnp.cumsum(probs, axis=-1)
    k = (u[..., None] * cdf[..., -1:] >= cdf).sum(-1)
    return jnp.minimum(k, probs.shape[-1] - 1).astype(jnp.int32)


def hash_normal(seed: Array, shape: tuple) -> Array:
    """``float32[shape]`` standard normals from a ``uint32`` seed (Box-Muller on
    :func:`hash_uniform`)."""
    u = hash_uniform(seed, (2,) + tuple(shape))
    return jnp.sqrt(-2.0 * jnp.log1p(-u[0])) * jnp.cos(2.0 * jnp.pi * u[1])
