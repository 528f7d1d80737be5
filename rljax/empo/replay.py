"""A fixed-capacity replay ring buffer as a JAX pytree (pure functions, usable inside ``jit``).

The buffer holds any pytree of items (e.g. state, goals, sampled actions, the successor indices
of every robot action) stacked along a leading ``capacity`` axis. ``add`` overwrites the oldest
entries once full; ``sample`` draws uniformly with replacement from the valid entries;
``clear`` forgets everything (the data stay in memory but are never sampled again), as the
phase-2 trainer does at the two ends of the beta_r ramp.

flashbax 0.1.3 installs and runs with jax 0.10.2, but it has no clear operation and would be a
new dependency; this ring is a few lines and has exactly the operations phase 2 needs.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

Array = jax.Array


@struct.dataclass
class ReplayState:
    data: Any  # pytree, every leaf [capacity, ...]
    insert_pos: Array  # int32: where the next item goes
    size: Array  # int32: number of valid items (<= capacity)

    @property
    def capacity(self) -> int:
        return jax.tree.leaves(self.data)[0].shape[0]


def init(example_item: Any, capacity: int) -> ReplayState:
    """An empty buffer for items shaped like ``example_item`` (a pytree of arrays)."""
    if not isinstance(capacity, int) or capacity < 1:
        raise ValueError(f"replay: capacity={capacity!r} is invalid: must be an integer >= 1")
    data = jax.tree.map(lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), example_item)
    return ReplayState(data=data, insert_pos=jnp.int32(0), size=jnp.int32(0))


def add_batch(state: ReplayState, items: Any) -> ReplayState:
    """Appends ``B`` items (every leaf ``[B, ...]``, ``B <= capacity``) in order."""
    cap = state.capacity
    b = jax.tree.leaves(items)[0].shape[0]
    if b > cap:
        raise ValueError(f"replay: batch of {b} items is invalid: exceeds capacity={cap}")
    slots = (state.insert_pos + jnp.arange(b)) % cap
    data = jax.tree.map(lambda buf, x: buf.at[slots].set(x.astype(buf.dtype)), state.data, items)
    return ReplayState(
        data=data,
        insert_pos=((state.insert_pos + b) % cap).astype(jnp.int32),
        size=jnp.minimum(state.size + b, cap).astype(jnp.int32),
    )


def add(state: ReplayState, item: Any) -> ReplayState:
    """Appends one item."""
    return add_batch(state, jax.tree.map(lambda x: jnp.asarray(x)[None], item))


def sample(state: ReplayState, key: Array, batch_size: int) -> Any:
    """``batch_size`` items drawn uniformly with replacement from the valid entries.

    On an empty buffer this returns slot 0 (zeros); check ``state.size`` before using it.
    """
    i = jax.random.randint(key, (batch_size,), 0, jnp.maximum(state.size, 1))
    # Valid entries are the `size` slots ending just before insert_pos (ring order).
    slots = (state.insert_pos - state.size + i) % state.capacity
    return jax.tree.map(lambda buf: buf[slots], state.data)


def sample_at(state: ReplayState, u: Any) -> Any:
    """Items at uniforms ``u[...]`` in [0, 1) (one item per uniform, uniformly over the valid
    entries): :func:`sample` with the randomness supplied by the caller."""
    i = jnp.minimum(jnp.floor(u * state.size), jnp.maximum(state.size - 1, 0)).astype(jnp.int32)
    slots = (state.insert_pos - state.size + i) % state.capacity
    return jax.tree.map(lambda buf: buf[slots], state.data)


def clear(state: ReplayState) -> ReplayState:
    return state.replace(insert_pos=jnp.int32(0), size=jnp.int32(0))


def clear_if(state: ReplayState, flag: Array) -> ReplayState:
    """``clear(state)`` where ``flag`` is true (branch-free, for use inside ``scan``)."""
    flag = jnp.asarray(flag)
    return state.replace(
        insert_pos=jnp.where(flag, 0, state.insert_pos).astype(jnp.int32),
        size=jnp.where(flag, 0, state.size).astype(jnp.int32),
    )
