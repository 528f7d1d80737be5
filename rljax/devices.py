"""How many XLA devices a CPU host is split into, decided before JAX starts.

Lives apart from the CLI so that every entry point (``rljax run``, ``rljax sweep``, ``rljax pbt``,
the benchmarks) sets devices the same way without importing the CLI (issue 17: no import cycles).
"""
from __future__ import annotations

import os

from rljax.errors import ConfigError


def accelerator_expected() -> bool:
    """Whether JAX will run on a GPU/TPU, decided without initialising its backends: the
    platforms asked for (``JAX_PLATFORMS`` / ``jax_platforms``), else whether an accelerator
    plugin is installed."""
    import importlib.metadata
    import importlib.util
    import pkgutil

    import jax

    asked = os.environ.get("JAX_PLATFORMS") or jax.config.jax_platforms or ""
    if asked:
        return any(p.strip() not in ("cpu", "") for p in asked.split(","))
    if importlib.util.find_spec("libtpu") is not None:
        return True
    try:
        plugins = list(importlib.metadata.entry_points(group="jax_plugins"))
    except Exception:  # pragma: no cover - broken metadata
        plugins = []
    if plugins:
        return True
    try:
        import jax_plugins
    except ImportError:
        return False
    return any(True for _ in pkgutil.iter_modules(jax_plugins.__path__))


def configure_devices(requested: int | None, members: int | None = None, default: int | None = None) -> None:
    """On CPU, expose several host devices so members spread over cores (one XLA CPU device
    keeps only about one core busy on small ops); the runner splits the members over the most
    of them that divide the member count (:func:`rljax.sharding.member_groups`). Never on a
    GPU/TPU host. Must run before JAX creates any array, so before an experiment is built.

    ``requested`` (``--devices``) is honoured or refused with a ConfigError; otherwise
    ``default`` (a resumed run's recorded count, so it continues on the same program), else a
    count the environment already sets (``JAX_NUM_CPU_DEVICES``, XLA's
    ``--xla_force_host_platform_device_count``), else the most devices up to the core count
    that divide ``members`` when known, else the core count. Where JAX already runs (a
    notebook, a test) an unrequested count keeps what exists."""
    import jax

    if accelerator_expected():
        return
    cores = os.cpu_count() or 1
    if requested is not None:
        if requested <= 0:
            raise ConfigError(f"--devices must be > 0, got {requested}")
        n = requested
    elif default is not None:
        n = default
    elif jax.config.jax_num_cpu_devices >= 0 or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    elif members is not None:
        n = max([d for d in range(1, cores + 1) if members % d == 0] or [1])
    else:
        n = cores
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # JAX's backends already exist
        if requested is not None and jax.local_device_count() != requested:
            raise ConfigError(f"--devices {requested}: JAX already runs with {jax.local_device_count()} device(s) "
                              "in this process; set it before the first JAX array") from None
