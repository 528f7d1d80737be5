"""Curricula of AMS-DRL as pure state machines over per-phase evaluation results.

After every self-play phase the head-to-head evaluation gives a capture rate ``SR_P`` and
an escape rate ``SR_E``; :func:`curriculum_step` decides whether the task advances,
regresses or stays. Everything is ``jnp`` arithmetic on scalars, so one member's curriculum
lives in its train state and each vmapped seed follows its own.

Kinds (``CurriculumConfig.kind``):

* ``"smooth"`` (the rljax default): ``min_d`` fixed at ``initial_min`` (2 m); ``max_d``
  starts at ``initial_max`` (5 m) and grows by ``increment`` (0.5 m) per advance up to
  ``final_max`` (15 m); ``n_obstacles`` obstacles once ``max_d >= obstacles_after`` (8 m).
  Regression lowers ``max_d`` by one increment (floor ``initial_max``). It is at its max
  level once ``max_d >= final_max``.
* ``"discrete"``: the six levels of ``LEVELS`` (min_d, max_d, obstacles), distances clamped
  to 0.8 of the arena diagonal; regression goes one level down (not below L1).
* ``"none"``: a fixed task (the arena's own distances and obstacles), always "at max".

Advancement (one of):

* NE-gap (``ne_gap_advancement``, S52 Fix 3): a streak counts consecutive phases with
  ``|SR_P - SR_E| < ne_gap_threshold``; the task advances when the streak reaches
  ``ne_gap_consecutive`` (and it is not at max), and the streak restarts.
* capture threshold: ``SR_P > advancement_threshold`` and ``SR_E >= min_escape_rate`` and
  ``phases_at_level >= min_phases_per_level``.

Every phase counts towards ``phases_at_level`` (reset by an advance or a regression). A phase
that does not advance runs the regression check: below the minimum level nothing happens;
otherwise a streak counts consecutive phases with ``SR_E < regression_floor`` and the task
regresses when it reaches ``regression_patience``. This is the reference's order exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import struct

from rljax.errors import ConfigError

Array = jax.Array
KINDS = ("smooth", "discrete", "none")
ARENA_DIAGONAL = math.hypot(20.0, 20.0)
# (min_d, max_d, n_obstacles) of the reference's six levels (training/curriculum.py)
LEVELS: tuple[tuple[float, float, int], ...] = (
    (2.0, 5.0, 0),
    (5.0, 15.0, 0),
    (2.0, 5.0, 3),
    (5.0, 8.0, 3),
    (5.0, 12.0, 3),
    (2.0, 15.0, 3),
)


@dataclass(frozen=True)
class CurriculumConfig:
    kind: str = "smooth"
    increment: float = 0.5
    initial_min: float = 2.0
    initial_max: float = 5.0
    final_max: float = 15.0
    obstacles_after: float = 8.0
    n_obstacles: int = 3
    ne_gap_advancement: bool = True
    ne_gap_threshold: float = 0.15
    ne_gap_consecutive: int = 2
    advancement_threshold: float = 0.70
    min_escape_rate: float = 0.0
    min_phases_per_level: int = 1
    regression_floor: float = 0.02
    regression_patience: int = 3

    def validate(self, prefix: str = "curriculum.") -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"{prefix}kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not self.increment > 0:
            raise ConfigError(f"{prefix}increment must be > 0, got {self.increment}")
        if not 0 <= self.initial_min <= self.initial_max <= self.final_max:
            raise ConfigError(f"{prefix}initial_min <= initial_max <= final_max must hold, got "
                              f"{self.initial_min}, {self.initial_max}, {self.final_max}")
        for name in ("n_obstacles", "ne_gap_consecutive", "min_phases_per_level", "regression_patience"):
            if getattr(self, name) < (0 if name == "n_obstacles" else 1):
                raise ConfigError(f"{prefix}{name} must be >= {0 if name == 'n_obstacles' else 1}, got {getattr(self, name)}")
        for name in ("ne_gap_threshold", "advancement_threshold", "min_escape_rate", "regression_floor"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{prefix}{name} must be in [0, 1], got {getattr(self, name)}")

    @property
    def max_level(self) -> int:
        """Number of levels (1-based index of the last one)."""
        if self.kind == "discrete":
            return len(LEVELS)
        if self.kind == "smooth":
            return 1 + max(0, math.ceil((self._final() - self._initial()) / self.increment - 1e-9))
        return 1

    def _clamp(self, d: float) -> float:
        return min(d, 0.8 * ARENA_DIAGONAL)

    def _initial(self) -> float:
        return self._clamp(self.initial_max)

    def _final(self) -> float:
        return self._clamp(self.final_max)


@struct.dataclass
class CurriculumState:
    """One member's curriculum (int32/float32 scalars)."""

    level: Array  # 0-based: discrete level index; smooth: increments above initial_max
    max_d: Array  # smooth: the current max start distance
    advances: Array  # advances so far (the reference's smooth "level" is advances + 1)
    phases_at_level: Array
    floor_streak: Array  # consecutive phases with SR_E < regression_floor
    ne_streak: Array  # consecutive phases with NE gap < ne_gap_threshold


def curriculum_init(cfg: CurriculumConfig) -> CurriculumState:
    i = lambda v: jnp.asarray(v, jnp.int32)  # noqa: E731
    return CurriculumState(level=i(0), max_d=jnp.asarray(cfg._initial(), jnp.float32), advances=i(0),
                           phases_at_level=i(0), floor_streak=i(0), ne_streak=i(0))


def _levels() -> tuple[Array, Array, Array]:
    table = jnp.asarray([(a, b, c) for a, b, c in LEVELS], jnp.float32)
    clamp = 0.8 * ARENA_DIAGONAL
    return jnp.minimum(table[:, 0], 0.4 * clamp), jnp.minimum(table[:, 1], clamp), table[:, 2].astype(jnp.int32)


def curriculum_task(cfg: CurriculumConfig, state: CurriculumState, default: tuple[float, float, int] = (3.0, 15.0, 0)
                    ) -> tuple[Array, Array, Array]:
    """``(min_d, max_d, n_obstacles)`` of the current task; ``default`` for kind ``"none"``."""
    if cfg.kind == "discrete":
        lo, hi, obs = _levels()
        return lo[state.level], hi[state.level], obs[state.level]
    if cfg.kind == "smooth":
        obs = jnp.where(state.max_d >= cfg.obstacles_after, cfg.n_obstacles, 0).astype(jnp.int32)
        return jnp.asarray(cfg.initial_min, jnp.float32), state.max_d, obs
    return (jnp.asarray(default[0], jnp.float32), jnp.asarray(default[1], jnp.float32),
            jnp.asarray(default[2], jnp.int32))


def previous_distances(cfg: CurriculumConfig, state: CurriculumState, default: tuple[float, float, int] = (3.0, 15.0, 0)
                       ) -> tuple[Array, Array]:
    """The start distances of mixed-level replay: smooth ``(min_d, max_d - increment)``
    (the reference's fix for its smooth manager), discrete the previous level's (L1's own
    at L1)."""
    if cfg.kind == "discrete":
        lo, hi, _ = _levels()
        prev = jnp.maximum(state.level - 1, 0)
        return lo[prev], hi[prev]
    lo, hi, _ = curriculum_task(cfg, state, default)
    if cfg.kind == "smooth":
        hi = jnp.maximum(hi - cfg.increment, lo)
    return lo, hi


def mixed_level_active(cfg: CurriculumConfig, state: CurriculumState) -> Array:
    """The reference replays the previous level once ``current_level > 1``: discrete, above
    L1; smooth, after any advance (its level counts advances and never goes down)."""
    if cfg.kind == "discrete":
        return state.level > 0
    if cfg.kind == "smooth":
        return state.advances > 0
    return jnp.asarray(False)


def at_max_level(cfg: CurriculumConfig, state: CurriculumState) -> Array:
    if cfg.kind == "discrete":
        return state.level >= len(LEVELS) - 1
    if cfg.kind == "smooth":
        return state.max_d >= cfg._final()
    return jnp.asarray(True)


def display_level(cfg: CurriculumConfig, state: CurriculumState) -> Array:
    """1-based level for logs: discrete L1..L6; smooth 1 + increments above ``initial_max``
    (it goes down on regression, unlike the reference's advance counter)."""
    if cfg.kind == "discrete":
        return state.level + 1
    if cfg.kind == "smooth":
        return 1 + jnp.round((state.max_d - cfg._initial()) / cfg.increment).astype(jnp.int32)
    return jnp.asarray(1, jnp.int32)


def _advance(cfg: CurriculumConfig, state: CurriculumState) -> CurriculumState:
    if cfg.kind == "smooth":
        max_d = jnp.minimum(state.max_d + cfg.increment, cfg._final())
    else:
        max_d = state.max_d
    level = jnp.minimum(state.level + 1, cfg.max_level - 1)
    return state.replace(level=level, max_d=max_d, advances=state.advances + 1, phases_at_level=jnp.zeros_like(state.level),
                         floor_streak=jnp.zeros_like(state.level))


def _regress(cfg: CurriculumConfig, state: CurriculumState) -> CurriculumState:
    if cfg.kind == "smooth":
        max_d = jnp.maximum(state.max_d - cfg.increment, cfg._initial())
    else:
        max_d = state.max_d
    return state.replace(level=jnp.maximum(state.level - 1, 0), max_d=max_d, phases_at_level=jnp.zeros_like(state.level),
                         floor_streak=jnp.zeros_like(state.level))


def _above_minimum(cfg: CurriculumConfig, state: CurriculumState) -> Array:
    if cfg.kind == "discrete":
        return state.level > 0
    if cfg.kind == "smooth":
        return state.max_d > cfg._initial()
    return jnp.asarray(False)


def curriculum_step(cfg: CurriculumConfig, state: CurriculumState, capture_rate: Array, escape_rate: Array
                    ) -> tuple[CurriculumState, Array, Array]:
    """One phase's evaluation result -> ``(state, advanced, regressed)`` (bool scalars)."""
    if cfg.kind == "none":
        return state.replace(phases_at_level=state.phases_at_level + 1), jnp.asarray(False), jnp.asarray(False)
    capture_rate = jnp.asarray(capture_rate, jnp.float32)
    escape_rate = jnp.asarray(escape_rate, jnp.float32)
    state = state.replace(phases_at_level=state.phases_at_level + 1)
    not_max = ~at_max_level(cfg, state)
    if cfg.ne_gap_advancement:
        balanced = jnp.abs(capture_rate - escape_rate) < cfg.ne_gap_threshold
        streak = jnp.where(balanced, state.ne_streak + 1, 0)
        advanced = (streak >= cfg.ne_gap_consecutive) & not_max
        state = state.replace(ne_streak=jnp.where(advanced, 0, streak))
    else:
        advanced = ((capture_rate > cfg.advancement_threshold) & (escape_rate >= cfg.min_escape_rate)
                    & (state.phases_at_level >= cfg.min_phases_per_level) & not_max)
    up = _advance(cfg, state)
    # Regression check on phases that did not advance; nothing happens at the minimum level
    # (the streak is not even counted there, as in the reference).
    can_fall = ~advanced & _above_minimum(cfg, state)
    floor = jnp.where(escape_rate < cfg.regression_floor, state.floor_streak + 1, 0)
    regressed = can_fall & (floor >= cfg.regression_patience)
    stay = state.replace(floor_streak=jnp.where(can_fall, floor, state.floor_streak))
    down = _regress(cfg, stay)
    new = jax.tree.map(lambda a, r, s: jnp.where(advanced, a, jnp.where(regressed, r, s)), up, down, stay)
    return new, advanced, regressed
