"""How the runner places its member axis (seeds x trials x variants) on devices.

The mechanics (meshes, multi-process placement, gathering) live in :mod:`rljax.distributed`;
this adds the runner's policy: with one device, or a member count that does not divide the
devices of a single process, the state simply stays where it is.
"""
from __future__ import annotations

from typing import Any

import jax

from rljax.distributed import gather_members as to_host
from rljax.distributed import is_primary, member_mesh, shard_members

__all__ = ["place_members", "member_groups", "to_host", "is_primary", "member_mesh"]


def member_groups(num_members: int) -> int:
    """Over how many devices :func:`place_members` spreads ``num_members`` members (1: not
    sharded)."""
    if jax.device_count() == 1 or (num_members % jax.device_count() and jax.process_count() == 1):
        return 1
    return jax.device_count()


def place_members(tree: Any) -> Any:
    leaves = jax.tree.leaves(tree)
    if not leaves or member_groups(leaves[0].shape[0]) == 1:
        return tree
    return shard_members(tree)
