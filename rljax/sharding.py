"""Placement of the member axis (seeds x trials x variants) over all devices of all processes.

One process: members are sharded over its devices. Several processes
(``jax.distributed.initialize``, see :mod:`rljax.distributed`): every process builds the same
host-side state (initialisation is deterministic), and each contributes the shards of the global
array that live on its own devices.
"""
from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def member_mesh() -> Mesh:
    return Mesh(np.array(jax.devices()), ("members",))


def place_members(tree: Any) -> Any:
    """Shards leaves with a leading member axis over all global devices when it divides evenly;
    with one device (or an uneven split in a single process) the tree is returned unchanged."""
    n = jax.device_count()
    leaves = jax.tree.leaves(tree)
    if n == 1 or not leaves:
        return tree
    m = leaves[0].shape[0]
    if m % n:
        if jax.process_count() > 1:
            raise ValueError(f"{m} members cannot be split evenly over {n} devices in {jax.process_count()} processes")
        return tree
    sharding = NamedSharding(member_mesh(), P("members"))
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def to_global(x):
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])

    return jax.tree.map(to_global, tree)


def to_host(tree: Any) -> Any:
    """Full numpy copies of (possibly multi-process sharded) arrays, on every process."""
    if jax.process_count() > 1:
        return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
    return jax.tree.map(np.asarray, tree)


def is_primary() -> bool:
    """Only process 0 writes logs and summaries."""
    return jax.process_index() == 0
