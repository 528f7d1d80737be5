"""Multi-process runs on JAX's own distributed runtime, and the member axis over all devices.

Every process runs the same program (SPMD); the leading "member" axis of the train state
(seeds x hyperparameter settings) is sharded over all devices of all processes. Configure with
arguments (the CLI's flags) or environment variables::

    RLJAX_COORDINATOR=host0:12355 RLJAX_NUM_PROCESSES=2 RLJAX_PROCESS_ID=0 rljax sweep ...

Without a coordinator nothing is initialised and a single process works unchanged. On CPU,
``local_device_count`` splits each process into several XLA host devices
(``jax_num_cpu_devices``), e.g. to keep both cores of a 2-core machine busy. Both must be set
before JAX creates its backends, i.e. before the first array or device query.
"""
from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from rljax.errors import ConfigError

MEMBER_AXIS = "members"


def initialize_from_env_or_flags(coordinator: str | None = None, num_processes: int | None = None,
                                 process_id: int | None = None, local_device_count: int | None = None) -> bool:
    """Starts ``jax.distributed`` when a coordinator is given (argument, else
    ``RLJAX_COORDINATOR``); ``num_processes``/``process_id`` fall back to ``RLJAX_NUM_PROCESSES``/
    ``RLJAX_PROCESS_ID``. Returns whether the distributed runtime was started.

    ``local_device_count`` (CPU only) sets the number of host devices of this process.
    """
    coordinator = coordinator or os.environ.get("RLJAX_COORDINATOR") or None
    if local_device_count is not None:
        if local_device_count < 1:
            raise ConfigError(f"local device count must be >= 1, got {local_device_count}")
        try:
            jax.config.update("jax_num_cpu_devices", int(local_device_count))
        except RuntimeError as e:  # raised once backends exist
            raise ConfigError(f"cannot set {local_device_count} CPU devices: JAX is already initialised ({e})") from None
    if not coordinator:
        return False
    try:
        num_processes = int(num_processes if num_processes is not None else os.environ["RLJAX_NUM_PROCESSES"])
        process_id = int(process_id if process_id is not None else os.environ["RLJAX_PROCESS_ID"])
    except KeyError as e:
        raise ConfigError(f"a coordinator was given but not {e.args[0]} (or --num-processes/--process-id)") from None
    except ValueError as e:
        raise ConfigError(f"bad process count or id: {e}") from None
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise ConfigError(f"process id {process_id} is not in [0, {num_processes})")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
    return True


# Older name kept for callers written against the first draft.
initialize = initialize_from_env_or_flags


def member_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh, axis ``"members"``, over the first ``num_devices`` global devices (default:
    all of them, every process, in ``jax.devices()`` order)."""
    devices = jax.devices()
    if num_devices is not None:
        if not 1 <= num_devices <= len(devices):
            raise ValueError(f"a member mesh of {num_devices} devices, but {len(devices)} exist")
        devices = devices[:num_devices]
    return Mesh(np.array(devices), (MEMBER_AXIS,))


def _leading_size(tree: Any, what: str) -> int:
    leaves = jax.tree.leaves(tree)
    if not leaves:
        raise ValueError(f"{what}: the tree has no leaves")
    sizes = {np.shape(x)[0] if np.ndim(x) else None for x in leaves}
    if None in sizes or len(sizes) != 1:
        raise ValueError(f"{what}: every leaf needs the same leading member axis, got leading sizes {sorted(map(str, sizes))}")
    return sizes.pop()


def shard_members(tree: Any, mesh: Mesh | None = None, *, process_local: bool = False) -> Any:
    """Places a pytree whose leaves share a leading member axis with
    ``NamedSharding(mesh, P("members"))``.

    ``process_local=False``: every process passes the full host data (e.g. built
    deterministically from the same seeds) and contributes the shards on its own devices
    (``jax.make_array_from_callback``). ``process_local=True``: each process passes only its own
    contiguous block of members, in process order (``jax.make_array_from_process_local_data``).
    The global member count must be divisible by the mesh's device count.
    """
    mesh = mesh or member_mesh()
    sharding = NamedSharding(mesh, P(MEMBER_AXIS))
    n_dev = mesh.devices.size
    local = _leading_size(tree, "shard_members")
    global_members = local * jax.process_count() if process_local else local
    if global_members % n_dev:
        raise ValueError(f"{global_members} members cannot be split evenly over {n_dev} devices "
                         f"({jax.process_count()} process(es)); use a multiple of {n_dev}")
    if process_local:
        def place(x):
            x = np.asarray(x)
            return jax.make_array_from_process_local_data(sharding, x, (global_members,) + x.shape[1:])
    elif jax.process_count() == 1:
        return jax.device_put(tree, sharding)
    else:
        def place(x):
            if isinstance(x, jax.Array) and not x.is_fully_addressable:
                return x  # already a global array (the output of a member-sharded program)
            x = np.asarray(x)
            return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])
    return jax.tree.map(place, tree)


def gather_members(tree: Any) -> Any:
    """Full host (numpy) copies of member-sharded arrays, on every process."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
    return jax.tree.map(np.asarray, tree)


def is_primary() -> bool:
    """Process 0 writes logs, tables and summaries."""
    return jax.process_index() == 0
