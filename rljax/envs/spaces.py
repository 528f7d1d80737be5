"""Action and observation space descriptions (static, hashable)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Discrete:
    """``n`` actions, integer in ``[0, n)``."""

    n: int


@dataclass(frozen=True)
class MultiDiscrete:
    """Several discrete heads; ``nvec[i]`` actions for head ``i``. Action shape ``(len(nvec),)``."""

    nvec: tuple[int, ...]


@dataclass(frozen=True)
class Box:
    """Continuous values of ``shape`` in ``[low, high]`` (floats, broadcast)."""

    low: float
    high: float
    shape: tuple[int, ...]
