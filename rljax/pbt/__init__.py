"""Population-based training inside the compiled program (:mod:`rljax.pbt.population`), its
lineage record (:mod:`rljax.pbt.lineage`) and runs (:mod:`rljax.pbt.run`, ``rljax pbt``).

Names are imported lazily so that building the CLI parser does not import JAX."""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"PBT": "population", "Explored": "population", "PBTConfig": "population", "PBTState": "population",
            "pbt_experiment": "run", "pbt_runner": "run", "resume_pbt": "run"}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rljax.pbt' has no attribute {name!r}")
    return getattr(importlib.import_module(f"rljax.pbt.{_EXPORTS[name]}"), name)
