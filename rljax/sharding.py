"""How the runner places its member axis (seeds x trials x variants) on devices, and the
record of that placement.

The mechanics (meshes, multi-process placement, gathering) live in :mod:`rljax.distributed`;
this adds the runner's policy. In one process the members are split over the most devices
that divide them (``member_groups``; the first devices, in ``jax.devices()`` order), so a
process that has more devices than a run can use still shards it evenly; with several
processes the members are split over all devices of all processes.

The placement decides the compiled program (each device runs its own block of members, so
the width of the member batch and the order of cross-member reductions follow it). The same
state on the same placement gives the same bits on CPU; another placement gives the same
maths to float tolerance only. :func:`layout` is what a run records of it (``run.json``
``segments``) so a resume can tell whether it continues bit for bit.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
from jax.sharding import NamedSharding, PartitionSpec as P, Sharding, SingleDeviceSharding

from rljax.distributed import MEMBER_AXIS, is_primary, member_mesh, shard_members
from rljax.distributed import gather_members as to_host

__all__ = ["place_members", "member_groups", "member_sharding", "to_host", "is_primary", "member_mesh",
           "layout", "layout_changes", "recorded_layout"]


def member_groups(num_members: int) -> int:
    """Over how many devices :func:`place_members` spreads ``num_members`` members (1: not
    sharded): in one process the most devices that divide the members, else all devices."""
    n = jax.device_count()
    if jax.process_count() > 1:
        return n
    return max(d for d in range(1, n + 1) if num_members % d == 0)


def member_sharding(num_members: int) -> Sharding:
    """Where arrays with a leading axis of ``num_members`` members live: split over the member
    mesh of :func:`member_groups` devices, or whole on the first device."""
    groups = member_groups(num_members)
    if groups == 1:
        return SingleDeviceSharding(jax.local_devices()[0])
    return NamedSharding(member_mesh(groups), P(MEMBER_AXIS))


def place_members(tree: Any) -> Any:
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return tree
    groups = member_groups(leaves[0].shape[0])
    if groups == 1:
        return tree
    return shard_members(tree, member_mesh(groups))


class EmptyLeavesPlaced:
    """``compiled`` (an ahead-of-time compiled program of the arguments ``like``: arrays or
    ``ShapeDtypeStruct`` with shardings) called with every zero-size argument leaf moved to the
    sharding it was compiled for; its other attributes (``as_text``, ``cost_analysis``, ...)
    are the compiled program's.

    Why: XLA hands back a zero-size output replicated (``P()``) whatever the program's input
    said, and a compiled program checks its arguments' shardings strictly, so the next chunk
    rejected the previous chunk's state (pursuit's full observation keeps an empty history
    ``[M, E, 2, 0, 43]``: it failed at the second chunk on 2 CPU devices). Moving an empty array
    costs nothing."""

    def __init__(self, compiled: Callable, like: Any):
        self.compiled = compiled
        self.shardings = [getattr(x, "sharding", None) for x in jax.tree.leaves(like)]

    def __call__(self, *args: Any) -> Any:
        leaves, tree = jax.tree.flatten(args)
        leaves = [jax.device_put(x, s) if s is not None and x.size == 0 and x.sharding != s else x
                  for x, s in zip(leaves, self.shardings)]
        return self.compiled(*jax.tree.unflatten(tree, leaves))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.compiled, name)


def layout(num_members: int) -> dict:
    """What decides a run's compiled program besides its config: the backend, the devices and
    processes, how the members are split over them, and the JAX version."""
    d = jax.devices()[0]
    return {"platform": d.platform, "device_kind": d.device_kind, "process_count": jax.process_count(),
            "device_count": jax.device_count(), "local_device_count": jax.local_device_count(),
            "members": num_members, "member_groups": member_groups(num_members), "jax_version": jax.__version__}


def layout_changes(before: dict, now: dict) -> list[str]:
    """``"key: before -> now"`` for every entry of :func:`layout` that differs (entries missing
    from an older record are not compared)."""
    return [f"{k}: {before[k]} -> {now[k]}" for k in now if k in before and before[k] != now[k]]


def recorded_layout(meta: dict) -> dict:
    """The layout the latest segment of a run was trained on, from its ``run.json``. Runs
    recorded before segments existed: their device count (``devices``) and how the runner then
    split the members (over all devices or none)."""
    if meta.get("segments"):
        return meta["segments"][-1]["layout"]
    devices = meta.get("devices", [])
    count = int(devices[-1].split()[1]) if devices and devices[-1].startswith("...") else max(len(devices), 1)
    members = len(meta.get("members", [])) or 1
    return {"platform": meta.get("backend", {}).get("platform", "cpu"), "process_count": 1, "device_count": count,
            "local_device_count": count, "member_groups": count if members % count == 0 else 1}
