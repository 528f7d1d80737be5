"""Fixed-capacity stores of parameter pytrees inside the compiled program.

* :class:`Pool`: a FIFO opponent pool (the reference's ``OpponentPool``: milestones in,
  oldest out once full, sampled uniformly together with a random-policy sentinel).
* :class:`Ring`: the health monitor's rolling snapshots, a stack with a capacity that drops
  its oldest entry when full and can be cut back to an earlier entry (rollback).

Both hold their items as leaves with a leading ``[capacity]`` axis plus a few int32 counters.
Writes touch ONE slot (a masked dynamic update: ``slot <- where(do, item, slot)``), so a
write that does not happen costs a slot copy, not a copy of the store; that keeps rare
protocol events cheap when they run as selects under the member vmap.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

Array = jax.Array
RANDOM = -1  # pool index of the random-policy sentinel


def _stack_zeros(item: Any, capacity: int) -> Any:
    return jax.tree.map(lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.result_type(x)), item)


def write_slot(items: Any, slot: Array, item: Any, do: Array) -> Any:
    """``items[slot] <- item`` where ``do``, leaf by leaf (one slot touched)."""

    def one(store, x):
        old = jax.lax.dynamic_index_in_dim(store, slot, keepdims=False)
        return jax.lax.dynamic_update_index_in_dim(store, jnp.where(do, x, old).astype(store.dtype), slot, 0)

    return jax.tree.map(one, items, item)


def read_slot(items: Any, slot: Array) -> Any:
    return jax.tree.map(lambda store: jax.lax.dynamic_index_in_dim(store, slot, keepdims=False), items)


@struct.dataclass
class Pool:
    """FIFO pool: ``items`` leaves ``[P, ...]``; slots ``[0, count)`` are filled (all once
    full); ``next`` is the slot the next insert overwrites; ``tags[P]`` label the items
    (e.g. the phase they were taken at; -1 when empty)."""

    items: Any
    tags: Array
    count: Array
    next: Array

    @property
    def capacity(self) -> int:
        return int(self.tags.shape[-1])


def pool_init(item: Any, capacity: int) -> Pool:
    """An empty pool for items shaped like ``item``."""
    if capacity < 1:
        raise ValueError(f"pool capacity={capacity!r} is invalid: must be >= 1")
    z = jnp.zeros((), jnp.int32)
    return Pool(items=_stack_zeros(item, capacity), tags=jnp.full((capacity,), -1, jnp.int32), count=z, next=z)


def pool_insert(pool: Pool, item: Any, tag: Array, do: Array = True) -> Pool:
    """Adds ``item`` (evicting the oldest when full) where ``do``."""
    do = jnp.asarray(do)
    cap = pool.capacity
    items = write_slot(pool.items, pool.next, item, do)
    tags = write_slot(pool.tags, pool.next, jnp.asarray(tag, jnp.int32), do)
    return Pool(items=items, tags=tags, count=jnp.where(do, jnp.minimum(pool.count + 1, cap), pool.count),
                next=jnp.where(do, (pool.next + 1) % cap, pool.next))


def pool_sample(key: Array, pool: Pool, n: int, include_random: bool = True) -> Array:
    """``n`` i.i.d. uniform draws ``int32[n]`` over the filled slots plus :data:`RANDOM`
    (the reference's ``random.choice(checkpoints + [None])``); an empty pool gives RANDOM."""
    lo = RANDOM if include_random else 0
    hi = jnp.maximum(pool.count, lo + 1)
    draw = jax.random.randint(key, (n,), lo, hi).astype(jnp.int32)
    return jnp.where(pool.count > 0, draw, RANDOM)


def pool_gather(pool: Pool, index: Array) -> Any:
    """Items ``[n, ...]`` at ``index[n]`` (RANDOM reads slot 0; mask it yourself)."""
    return jax.tree.map(lambda store: store[jnp.clip(index, 0, pool.capacity - 1)], pool.items)


@struct.dataclass
class Ring:
    """Rolling snapshots: a stack of at most ``R`` items, ``items`` leaves ``[R, ...]``;
    ``head`` is the slot of the oldest, ``count`` how many are held (newest at
    ``head + count - 1`` mod R)."""

    items: Any
    count: Array
    head: Array

    @property
    def capacity(self) -> int:
        return int(jax.tree.leaves(self.items)[0].shape[0])


def ring_init(item: Any, capacity: int) -> Ring:
    if capacity < 1:
        raise ValueError(f"ring capacity={capacity!r} is invalid: must be >= 1")
    z = jnp.zeros((), jnp.int32)
    return Ring(items=_stack_zeros(item, capacity), count=z, head=z)


def ring_push(ring: Ring, item: Any, do: Array = True) -> Ring:
    """Pushes ``item`` as the newest where ``do``; when full the oldest is dropped (the
    reference's rolling checkpoints: ``max_rolling`` kept)."""
    do = jnp.asarray(do)
    cap = ring.capacity
    full = ring.count >= cap
    slot = jnp.where(full, ring.head, (ring.head + ring.count) % cap)
    items = write_slot(ring.items, slot, item, do)
    head = jnp.where(do & full, (ring.head + 1) % cap, ring.head)
    count = jnp.where(do, jnp.minimum(ring.count + 1, cap), ring.count)
    return Ring(items=items, count=count, head=head)


def ring_newest(ring: Ring, back: int = 1) -> tuple[Any, Array]:
    """The ``back``-th newest item (1 = newest) and whether it exists."""
    slot = (ring.head + ring.count - back) % ring.capacity
    return read_slot(ring.items, jnp.maximum(slot, 0)), ring.count >= back


def ring_rollback(ring: Ring, back: int, do: Array = True, partial: bool = False) -> tuple[Ring, Any, Array]:
    """Rollback to the ``back``-th newest snapshot (the reference's ``rollback_steps=3``):
    returns ``(ring, item, ok)``; where ``do & ok`` the newer snapshots are dropped so
    ``item`` becomes the newest. With fewer than ``back`` held, ``ok`` is False and nothing
    changes (the reference's "Cannot rollback" case), unless ``partial``: then the oldest
    held snapshot is restored (``ok`` False only for an empty ring)."""
    if partial:
        back = jnp.clip(ring.count, 1, back)
    item, ok = ring_newest(ring, back)
    cut = jnp.asarray(do) & ok
    return ring.replace(count=jnp.where(cut, ring.count - back + 1, ring.count)), item, ok
