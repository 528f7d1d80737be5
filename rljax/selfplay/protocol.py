"""The AMS-DRL phase schedule as a pure state machine (reference ``AMSDRLSelfPlay.run``).

Stages of one protocol, each a number of PPO updates:

* ``COLD`` (S0): the evader pre-trains alone (navigation) for ``cold_start_timesteps``;
* ``PHASE`` (S1, S2, ...): one role trains while the other acts frozen. The role alternates
  by parity (odd phase = pursuer, even = evader) unless ``evader_first_on_advance`` forces
  the evader in the phase after a curriculum advance. Phase lengths follow the warm-up
  (S1-S2 100K, S3-S4 200K, S5-S6 300K, then ``timesteps_per_phase``), times
  ``evader_training_multiplier`` for evader phases at obstacle levels;
* ``WARM``: after an advance with ``warm_start_evader``, the evader (reset to its latest
  milestone) trains ``warm_start_timesteps`` against the random pursuer at the new level;
* ``DONE``: converged (NE gap < ``eta`` at the curriculum's max level) or ``max_phases``
  phases trained; later updates of this member change nothing.

Lengths are counted in whole PPO updates of ``steps_per_update`` environment steps,
``ceil(steps / steps_per_update)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import struct

from rljax.errors import ConfigError

Array = jax.Array
COLD, PHASE, WARM, DONE = 0, 1, 2, 3
STAGES = ("cold", "phase", "warm", "done")
PURSUER, EVADER = 0, 1
DEFAULT_WARMUP = (100_000, 100_000, 200_000, 200_000, 300_000, 300_000)


@dataclass(frozen=True)
class ProtocolConfig:
    max_phases: int = 12
    timesteps_per_phase: int = 500_000
    cold_start_timesteps: int = 200_000
    phase_warmup: bool = True
    warmup_timesteps: tuple[int, ...] = DEFAULT_WARMUP  # phases 1, 2, ... (then timesteps_per_phase)
    evader_first_on_advance: bool = True
    warm_start_evader: bool = True
    warm_start_timesteps: int = 50_000
    evader_training_multiplier: float = 1.0
    eta: float = 0.10

    def validate(self, prefix: str = "protocol.") -> None:
        for name in ("max_phases", "cold_start_timesteps", "warm_start_timesteps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{prefix}{name} must be >= 0, got {getattr(self, name)}")
        if self.timesteps_per_phase <= 0:
            raise ConfigError(f"{prefix}timesteps_per_phase must be > 0, got {self.timesteps_per_phase}")
        if any(t <= 0 for t in self.warmup_timesteps):
            raise ConfigError(f"{prefix}warmup_timesteps must all be > 0, got {list(self.warmup_timesteps)}")
        if not self.evader_training_multiplier > 0:
            raise ConfigError(f"{prefix}evader_training_multiplier must be > 0, got {self.evader_training_multiplier}")
        if not 0.0 <= self.eta <= 1.0:
            raise ConfigError(f"{prefix}eta must be in [0, 1], got {self.eta}")
        if self.max_phases == 0 and self.cold_start_timesteps == 0:
            raise ConfigError(f"{prefix}max_phases=0 and cold_start_timesteps=0 leave nothing to train")


def updates_for(steps: int | Array, steps_per_update: int):
    """Whole updates covering ``steps`` environment steps (at least one when steps > 0)."""
    if isinstance(steps, (int, float)):
        return int(math.ceil(steps / steps_per_update))
    return ((steps + steps_per_update - 1) // steps_per_update).astype(jnp.int32)


def phase_timesteps(cfg: ProtocolConfig, phase: Array, role: Array, obstacles: Array) -> Array:
    """Environment steps of phase ``phase`` (1-based) trained by ``role`` at a task with
    ``obstacles`` obstacles."""
    base = jnp.asarray(cfg.timesteps_per_phase, jnp.float32)
    if cfg.phase_warmup and cfg.warmup_timesteps:
        table = jnp.asarray(cfg.warmup_timesteps, jnp.float32)
        idx = jnp.clip(phase - 1, 0, len(cfg.warmup_timesteps) - 1)
        base = jnp.where(phase <= len(cfg.warmup_timesteps), table[idx], base)
    mult = jnp.where((role == EVADER) & (obstacles > 0), cfg.evader_training_multiplier, 1.0)
    return jnp.floor(base * mult).astype(jnp.int32)


def max_total_updates(cfg: ProtocolConfig, steps_per_update: int, max_advances: int) -> int:
    """An upper bound on one protocol's updates (the run's static length): the cold start,
    every phase at its longest, and a warm start after each possible advance."""
    total = updates_for(cfg.cold_start_timesteps, steps_per_update)
    mult = max(1.0, cfg.evader_training_multiplier)
    for p in range(1, cfg.max_phases + 1):
        base = cfg.timesteps_per_phase
        if cfg.phase_warmup and p <= len(cfg.warmup_timesteps):
            base = cfg.warmup_timesteps[p - 1]
        total += updates_for(int(math.floor(base * mult)), steps_per_update)
    if cfg.warm_start_evader and cfg.warm_start_timesteps > 0:
        total += min(max_advances, cfg.max_phases) * updates_for(cfg.warm_start_timesteps, steps_per_update)
    return max(total, 1)


@struct.dataclass
class ProtocolState:
    """Where one member's protocol is (int32 / bool scalars)."""

    stage: Array
    phase: Array  # 0 during the cold start, then 1, 2, ...
    role: Array  # the role being trained
    step: Array  # updates done in the current stage
    length: Array  # updates of the current stage
    force_evader: Array  # the next phase trains the evader (evader-first on advance)
    converged: Array
    phases_done: Array


def parity_role(phase: Array) -> Array:
    """Odd phases train the pursuer, even phases the evader."""
    return jnp.where(phase % 2 == 1, PURSUER, EVADER).astype(jnp.int32)


def protocol_init(cfg: ProtocolConfig, steps_per_update: int, first_phase_updates: Array) -> ProtocolState:
    """The cold start if there is one, else phase 1 (``first_phase_updates`` long)."""
    i = lambda v: jnp.asarray(v, jnp.int32)  # noqa: E731
    cold = cfg.cold_start_timesteps > 0
    return ProtocolState(
        stage=i(COLD if cold else PHASE), phase=i(0 if cold else 1), role=i(EVADER if cold else PURSUER), step=i(0),
        length=i(updates_for(cfg.cold_start_timesteps, steps_per_update)) if cold else jnp.asarray(first_phase_updates, jnp.int32),
        force_evader=jnp.asarray(False), converged=jnp.asarray(False), phases_done=i(0))


def segment_end(cfg: ProtocolConfig, ps: ProtocolState, advanced: Array, converged: Array
                ) -> tuple[ProtocolState, Array]:
    """The stage after the current one ends; ``advanced``/``converged`` are this phase's
    curriculum and convergence results (ignored outside ``PHASE``). Returns the new state and
    whether the next stage is a training phase. Its ``length`` is left for the caller to set
    (a phase's length depends on the task; a warm start's on the batch)."""
    i = lambda v: jnp.asarray(v, jnp.int32)  # noqa: E731
    in_phase = ps.stage == PHASE
    advanced = advanced & in_phase
    converged = converged & in_phase
    phases_done = ps.phases_done + in_phase.astype(jnp.int32)
    last = (ps.stage != WARM) & (phases_done >= cfg.max_phases)
    done = converged | last
    warm = ~done & advanced & cfg.warm_start_evader & (cfg.warm_start_timesteps > 0)
    # evader-first applies to the phase after the advance (after any warm start)
    force = jnp.where(in_phase, advanced & cfg.evader_first_on_advance, ps.force_evader)
    next_phase = ps.phase + jnp.where(ps.stage == WARM, 1, jnp.where(warm, 0, 1))
    next_role = jnp.where(force, EVADER, parity_role(next_phase))
    stage = jnp.where(done, DONE, jnp.where(warm, WARM, PHASE))
    role = jnp.where(warm, EVADER, next_role)
    new = ProtocolState(
        stage=i(stage), phase=jnp.where(done | warm, ps.phase, next_phase).astype(jnp.int32), role=i(role), step=i(0),
        length=ps.length,
        force_evader=jnp.where(warm, force, False), converged=ps.converged | converged, phases_done=i(phases_done))
    return new, stage == PHASE
