"""What machine a figure was measured on (benchmarks print it next to every number)."""
from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def host_description() -> str:
    """E.g. ``"2 CPU cores (AMD EPYC 7B13)"``."""
    return f"{os.cpu_count()} CPU cores ({cpu_model()})"


def device_description() -> str:
    """The JAX devices in use, e.g. ``"gpu: NVIDIA H100 80GB HBM3 x1"`` (initialises JAX)."""
    import jax

    d = jax.devices()[0]
    return f"{d.platform}: {d.device_kind} x{jax.device_count()}"
