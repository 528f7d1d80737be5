"""Placement of the member axis over all visible devices (seeds/trials spread over devices)."""
from __future__ import annotations

from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import numpy as np


def member_mesh() -> Mesh:
    return Mesh(np.array(jax.devices()), ("members",))


def place_members(tree: Any) -> Any:
    """Shards leaves with a leading member axis over all devices when it divides evenly;
    with one device (or an uneven split) the tree is returned unchanged."""
    n = jax.device_count()
    leaves = jax.tree.leaves(tree)
    if n == 1 or not leaves:
        return tree
    m = leaves[0].shape[0]
    if m % n:
        return tree
    sharding = NamedSharding(member_mesh(), P("members"))
    return jax.device_put(tree, sharding)
