"""The self-play health monitor: rolling capture window, entropy check, rollback trigger.

The reference's ``SelfPlayHealthMonitorCallback`` runs inside each phase's training: it
saves a rolling checkpoint every ``snapshot_every`` (10K) steps of the learner (at most
``ring_size`` = 15 kept), tracks the capture outcome of the last ``window`` (200) training
episodes, and rolls back when, outside a cooldown of ``cooldown`` (50K) steps since the last
rollback,

* the rolling capture rate over a FULL window is ``<= capture_collapse`` (0.02) or
  ``>= capture_domination`` (0.98) (here: once the window holds ``min_episodes``
  outcomes, see below), or
* the policy's total Gaussian entropy ``sum(1.4189 + log_std) < entropy_collapse`` (-2).

A rollback restores the learner (and, ``bilateral``, its frozen opponent) to the snapshot
``rollback_back`` (3) back, drops the newer snapshots and clears the window. Here the
snapshots are a :class:`~rljax.selfplay.pool.Ring` in the train state holding parameters AND
optimiser state, so a rollback restores both bit for bit. The monitor runs once per PPO
update (the reference checks every vectorised env step), so thresholds crossing inside an
update act at its end.

**Two departures from the reference, each an option** (S52 found both failures):

* ``min_episodes``: the reference judges the capture rate only over a full 200-episode window.
  When the evader dominates, episodes run to the time limit (1200 steps), so a 100K-step
  warm-up phase holds ~83 episodes and the collapse trigger can never fire. Here the rate is
  judged once the window holds ``min(window, min_episodes)`` outcomes; ``min_episodes=0``
  keeps the reference's full window.
* ``partial_rollback``: the reference restores the snapshot ``rollback_back`` back and skips
  a role holding fewer ("Cannot rollback"), so in S1 bilateral rollback never restores the
  evader, which holds one snapshot (the cold start's final, S52 Fix 1) or none (before it,
  ``cold_start_snapshot=false``). With ``partial_rollback`` a role holding fewer snapshots
  restores its oldest one; ``false`` keeps the reference's skip.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import struct

from rljax.errors import ConfigError

Array = jax.Array


@dataclass(frozen=True)
class HealthConfig:
    enabled: bool = True
    snapshot_every: int = 10_000  # learner env steps between rolling snapshots
    ring_size: int = 15
    rollback_back: int = 3
    window: int = 200
    capture_collapse: float = 0.02
    capture_domination: float = 0.98
    entropy_collapse: float = -2.0
    cooldown: int = 50_000  # learner env steps between rollbacks
    bilateral: bool = True
    min_episodes: int = 50  # judge the capture rate from this many outcomes (0: full window, the reference)
    partial_rollback: bool = True  # fewer than rollback_back snapshots: restore the oldest (False: skip, the reference)
    cold_start_snapshot: bool = True  # the cold start's final evader is a rolling snapshot (S52 Fix 1)

    def validate(self, prefix: str = "health.") -> None:
        for name in ("snapshot_every", "ring_size", "rollback_back", "window"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{prefix}{name} must be >= 1, got {getattr(self, name)}")
        if self.rollback_back > self.ring_size:
            raise ConfigError(f"{prefix}rollback_back={self.rollback_back} exceeds ring_size={self.ring_size}")
        if self.min_episodes < 0:
            raise ConfigError(f"{prefix}min_episodes must be >= 0, got {self.min_episodes}")
        if self.cooldown < 0:
            raise ConfigError(f"{prefix}cooldown must be >= 0, got {self.cooldown}")
        if not 0.0 <= self.capture_collapse <= self.capture_domination <= 1.0:
            raise ConfigError(f"{prefix}0 <= capture_collapse <= capture_domination <= 1 must hold, got "
                              f"{self.capture_collapse}, {self.capture_domination}")


@struct.dataclass
class CaptureWindow:
    """The last ``W`` episode outcomes (1.0 captured, 0.0 not) as a ring: ``outcomes[W]``,
    ``count`` valid entries (<= W), ``next`` the slot the next outcome goes to."""

    outcomes: Array
    count: Array
    next: Array

    @property
    def size(self) -> int:
        return int(self.outcomes.shape[-1])


def window_init(size: int) -> CaptureWindow:
    z = jnp.zeros((), jnp.int32)
    return CaptureWindow(jnp.zeros((size,), jnp.float32), z, z)


def window_clear(win: CaptureWindow, do: Array = True) -> CaptureWindow:
    z = jnp.zeros((), jnp.int32)
    return win.replace(count=jnp.where(do, z, win.count), next=jnp.where(do, z, win.next))


def window_push(win: CaptureWindow, done: Array, captured: Array, do: Array = True) -> CaptureWindow:
    """Appends the outcomes of the finished episodes in ``done[K]`` (in order) where ``do``;
    only the last ``W`` of them can matter, so earlier ones are skipped."""
    w = win.size
    done = done.reshape(-1) & jnp.asarray(do)
    captured = captured.reshape(-1).astype(jnp.float32)
    rank = jnp.cumsum(done.astype(jnp.int32)) - 1  # order among this batch's finished episodes
    total = rank[-1] + 1 if rank.shape[0] else jnp.zeros((), jnp.int32)
    keep = done & (rank >= total - w)
    slot = jnp.where(keep, (win.next + rank) % w, w)  # w = out of range: dropped
    outcomes = win.outcomes.at[slot].set(captured, mode="drop")
    return CaptureWindow(outcomes=outcomes, count=jnp.minimum(win.count + total, w), next=(win.next + total) % w)


def window_rate(win: CaptureWindow) -> Array:
    """Capture rate over the held outcomes (NaN when empty)."""
    valid = jnp.arange(win.size) < win.count  # once full every slot is valid; before, slots [0, count)
    n = win.count.astype(jnp.float32)
    return jnp.where(n > 0, jnp.sum(jnp.where(valid, win.outcomes, 0.0)) / jnp.maximum(n, 1.0), jnp.nan)


def judged_episodes(cfg: HealthConfig, size: int) -> int:
    """Outcomes the window must hold before its capture rate can trigger a rollback."""
    return size if cfg.min_episodes == 0 else min(size, cfg.min_episodes)


def should_rollback(cfg: HealthConfig, win: CaptureWindow, entropy: Array, steps: Array, last_rollback: Array
                    ) -> tuple[Array, Array, Array]:
    """``(trigger, capture_trigger, entropy_trigger)`` after an update: outside the cooldown,
    entropy collapse, or capture collapse/domination over a window holding at least
    :func:`judged_episodes` outcomes."""
    ready = steps - last_rollback >= cfg.cooldown
    rate = window_rate(win)
    full = win.count >= judged_episodes(cfg, win.size)
    capture = full & ((rate <= cfg.capture_collapse) | (rate >= cfg.capture_domination))
    low_entropy = entropy < cfg.entropy_collapse
    on = jnp.asarray(cfg.enabled)
    return on & ready & (capture | low_entropy), on & ready & capture, on & ready & low_entropy


def snapshot_due(cfg: HealthConfig, steps_before: Array, steps_after: Array) -> Array:
    """A rolling snapshot is due when the learner's step count crosses a multiple of
    ``snapshot_every`` (the reference saves at ``num_timesteps % 10_000 == 0``)."""
    return (steps_after // cfg.snapshot_every) > (steps_before // cfg.snapshot_every)
