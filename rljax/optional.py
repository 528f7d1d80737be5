"""Optional back-ends: which ``pyproject.toml`` extra brings each one, and the one-line error
when a config asks for a back-end that is not installed.

Checked when the config is validated, before anything compiles: a run that asked for
TensorBoard should not train for an hour and then fail in the logger. The table is also what
``tests/test_dependencies.py`` reads to know which imports may stay out of the core
dependencies (and must then be declared in the named extra).
"""
from __future__ import annotations

import importlib.util

from rljax.errors import ConfigError

# import name -> the extra of rljax that installs it
EXTRAS: dict[str, str] = {
    "tensorboardX": "tensorboard",
    "wandb": "wandb",
    "optuna": "sweep",
    "IPython": "notebooks",
    # ``rljax render --out x.mp4`` (GIFs need only Pillow, a core dependency)
    "imageio": "video",
    "imageio_ffmpeg": "video",
    # the reference stacks that the benchmarks measure rljax against
    "torch": "bench",
    "stable_baselines3": "bench",
    "gymnasium": "bench",
}


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    return importlib.util.find_spec(module) is not None


def require(module: str, wanted_by: str) -> None:
    """Raises :class:`ConfigError` naming the extra to install when ``module`` is missing.

    ``wanted_by`` is what asked for it, as the user wrote it (``runner.tensorboard=true``).
    """
    if installed(module):
        return
    extra = EXTRAS[module]
    raise ConfigError(f"{wanted_by} needs {module}, which is not installed: "
                      f"pip install -e '.[{extra}]' (or pip install 'rljax[{extra}]')")
