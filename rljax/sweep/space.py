"""Search spaces: named distributions over engine hyperparameters.

Distributions
-------------
``Uniform(low, high)``
    Uniform on ``[low, high]``.

``LogNormal(low, high, median=None, bound_sigmas=2.0)`` -- "log-normal in [low, high] around m"
    A normal distribution in ``log10`` space, truncated to ``[log10 low, log10 high]``:

    * location ``mu = log10(median)``; without a median, the geometric midpoint
      ``(log10 low + log10 high) / 2``. ``median`` is the median of the *untruncated* normal;
      an off-centre median makes the truncation asymmetric, which moves the median of the
      samples towards the wider side (for ``ppo6``'s learning rate, 1e-3 in [1e-5, 1e-2], the
      sampled median is ``10**-3.08``).
    * scale ``sigma = (log10 high - log10 low) / (2 * bound_sigmas)``: with the default
      ``bound_sigmas = 2`` the range spans four sigmas, i.e. the bounds sit two sigmas either
      side of the geometric midpoint whatever the median.
    * truncation is exact, by inverse-CDF sampling: ``u ~ U(Phi(a), Phi(b))``,
      ``x = 10 ** (mu + sigma * Phi^-1(u))``, with ``a, b`` the standardised bounds. There is no
      clipping, so no probability mass piles up at a bound, and every draw takes exactly one
      uniform number.

Reproducibility
---------------
Parameter ``name`` of trial ``i`` in a sweep seeded ``s`` is drawn from its own stream
``numpy.random.default_rng([s, i, crc32(name)])``. A trial therefore never depends on the batch
size, on the order trials are run in, or on which other parameters the space holds (adding a
parameter to a space leaves the existing parameters' values unchanged).
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol

import numpy as np
from scipy import special

from rljax.errors import ConfigError


class Distribution(Protocol):
    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float: ...


@dataclass(frozen=True)
class Uniform:
    """Uniform on ``[low, high]``."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ConfigError(f"Uniform needs low < high, got [{self.low}, {self.high}]")

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class LogNormal:
    """Truncated normal in ``log10`` space on ``[low, high]``; see the module docstring."""

    low: float
    high: float
    median: float | None = None
    bound_sigmas: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.low < self.high:
            raise ConfigError(f"LogNormal needs 0 < low < high, got [{self.low}, {self.high}]")
        if self.median is not None and not self.low <= self.median <= self.high:
            raise ConfigError(f"LogNormal median {self.median} is outside [{self.low}, {self.high}]")
        if self.bound_sigmas <= 0:
            raise ConfigError(f"LogNormal bound_sigmas must be > 0, got {self.bound_sigmas}")

    @property
    def mu(self) -> float:
        """Location in log10 space."""
        if self.median is not None:
            return math.log10(self.median)
        return 0.5 * (math.log10(self.low) + math.log10(self.high))

    @property
    def sigma(self) -> float:
        """Scale in log10 space (decades)."""
        return (math.log10(self.high) - math.log10(self.low)) / (2.0 * self.bound_sigmas)

    @property
    def standardised_bounds(self) -> tuple[float, float]:
        """The bounds in units of sigma from ``mu`` (for scipy.stats.truncnorm)."""
        return ((math.log10(self.low) - self.mu) / self.sigma, (math.log10(self.high) - self.mu) / self.sigma)

    def sample(self, rng: np.random.Generator) -> float:
        a, b = self.standardised_bounds
        u = rng.uniform(special.ndtr(a), special.ndtr(b))
        x = 10.0 ** (self.mu + self.sigma * float(special.ndtri(u)))
        # exp/log round-off may step a hair outside; the bound itself is a legitimate value.
        return float(min(max(x, self.low), self.high))


@dataclass(frozen=True)
class Space:
    """A named set of distributions; keys are engine config keys (e.g. ``lr``) of the config
    section ``section`` (a trial's values are merged into ``config[section]``)."""

    name: str
    params: Mapping[str, Distribution] = field(hash=False)
    section: str = "ppo"

    def sample(self, seed: int, trial: int) -> dict[str, float]:
        """Hyperparameters of trial ``trial`` of a sweep seeded ``seed`` (always the same)."""
        if seed < 0 or trial < 0:
            raise ConfigError(f"seed and trial must be >= 0, got seed={seed}, trial={trial}")
        return {name: dist.sample(np.random.default_rng([int(seed), int(trial), zlib.crc32(name.encode())]))
                for name, dist in self.params.items()}

    def sample_trials(self, seed: int, trials: int, start: int = 0) -> list[dict[str, float]]:
        """Trials ``start .. start + trials - 1``."""
        return [self.sample(seed, i) for i in range(start, start + trials)]


def ppo6() -> Space:
    """The seed document's six PPO parameters, named by rljax's ``ppo`` config keys."""
    return Space("ppo6", {
        "lr": LogNormal(1e-5, 1e-2, median=1e-3),
        "clip_eps": Uniform(0.05, 0.3),
        "ent_coef": LogNormal(1e-4, 1e-2),
        "gae_lambda": Uniform(0.8, 0.99),
        "vf_coef": Uniform(0.1, 1.0),
        "adam_eps": LogNormal(1e-8, 1e-4),
    })


def empo_lr() -> Space:
    """EMPO phase 2: the learning rates of its five learned quantities and ``beta_r``."""
    return Space("empo_lr", {
        **{f"lr_{n}": LogNormal(1e-5, 1e-1) for n in ("q_r", "v_r", "v_h_e", "x_h", "u_r")},
        "beta_r": LogNormal(1.0, 1000.0),
    }, section="empo")


# Name -> factory. Add a space by adding an entry here (or with ``register_space``).
SPACES: dict[str, Callable[[], Space]] = {"ppo6": ppo6, "empo_lr": empo_lr}


def parse_params(items: list[str]) -> Space:
    """A space from ``SECTION.KEY=log:LOW:HIGH`` (log-uniform-like ``LogNormal``) or
    ``SECTION.KEY=uniform:LOW:HIGH`` items (``--param``); every item names the same section."""
    params: dict[str, Distribution] = {}
    sections = set()
    for item in items:
        key, sep, spec = item.partition("=")
        section, dot, name = key.partition(".")
        parts = spec.split(":")
        if not sep or not dot or len(parts) != 3 or parts[0] not in ("log", "uniform"):
            raise ConfigError(f"--param {item!r} is not of the form SECTION.KEY=log:LOW:HIGH or "
                              f"SECTION.KEY=uniform:LOW:HIGH")
        try:
            low, high = float(parts[1]), float(parts[2])
        except ValueError:
            raise ConfigError(f"--param {key}: bounds must be numbers, got {parts[1]!r}, {parts[2]!r}") from None
        params[name] = LogNormal(low, high) if parts[0] == "log" else Uniform(low, high)
        sections.add(section)
    if len(sections) != 1:
        raise ConfigError(f"--param keys must all be in one config section, got {sorted(sections)}")
    return Space("custom", params, section=sections.pop())


def register_space(name: str, factory: Callable[[], Space]) -> None:
    """Makes ``get_space(name)`` return ``factory()``; refuses to replace an existing name."""
    if name in SPACES:
        raise ConfigError(f"search space {name!r} is already registered")
    SPACES[name] = factory


def get_space(name: str) -> Space:
    """The registered space ``name``; an unknown name raises ``ConfigError`` (a ``ValueError``)."""
    if name not in SPACES:
        raise ConfigError(f"unknown search space {name!r}; available: {', '.join(sorted(SPACES))}")
    return SPACES[name]()
