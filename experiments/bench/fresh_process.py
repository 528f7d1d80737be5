"""Run one benchmark measurement in a fresh Python process.

The XLA CPU device count (``jax_num_cpu_devices``) is fixed when jax starts, and compiled
programs and caches from earlier measurements would colour later ones, so the benchmarks call
each measuring function in its own interpreter and read back its JSON result.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import rljax

# The directory that holds the ``rljax`` package (the checkout, or site-packages when installed):
# children put it first on PYTHONPATH so they run the same code as the parent.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(rljax.__file__)))
_MARK = "RESULT"


def call(module: str, fn: str, **kwargs: Any) -> dict:
    """``module.fn(**kwargs)`` in a fresh interpreter on the CPU backend; returns its result,
    which must be JSON-serialisable. Raises ``RuntimeError`` with the tail of the child's stderr
    if it fails."""
    code = f"import json; from {module} import {fn}; print({_MARK!r} + json.dumps({fn}(**{kwargs!r})))"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{module}.{fn} failed in its subprocess:\n{out.stderr[-3000:]}")
    line = next(line for line in out.stdout.splitlines() if line.startswith(_MARK))
    return json.loads(line[len(_MARK):])
