"""Phase-2 schedules as pure jnp functions of the training step (usable inside ``jit``/``scan``).

The config is static (python numbers); ``step`` may be a traced int32 scalar or array.

Stages (the original's numbering; durations from :attr:`Phase2Config.warmup_steps`, stages of
networks not in use last 0 steps and are skipped)::

    0  V_h^e only                 [0, vhe_end)
    1  + X_h (network)            [vhe_end, xh_end)
    2  + U_r (network)            [xh_end, ur_end)
    3  + Q_r                      [ur_end, qr_end)
    4  + V_r (network)            [qr_end, vr_end)
    5  beta_r ramp-up             [vr_end, vr_end + T)
    6  full training              [vr_end + T, ...)

with ``vhe_end = W_vhe``, ``xh_end = vhe_end + W_xh``, ``ur_end = xh_end + W_ur``,
``qr_end = ur_end + W_qr``, ``vr_end = qr_end + W_vr`` and ``T = beta_r_rampup_steps``.
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from rljax.empo.config import NETWORKS, Phase2Config

Array = jax.Array

_S3 = 1.0 / (1.0 + math.exp(3.0))  # sigmoid(-3)


@dataclasses.dataclass(frozen=True)
class StageEnds:
    """Cumulative ends of the warm-up stages and of the ramp (python ints)."""

    v_h_e: int
    x_h: int
    u_r: int
    q_r: int
    v_r: int
    ramp: int  # vr_end + beta_r_rampup_steps


def stage_ends(cfg: Phase2Config) -> StageEnds:
    w = cfg.warmup_steps
    vhe = w["v_h_e"]
    xh = vhe + w["x_h"]
    ur = xh + w["u_r"]
    qr = ur + w["q_r"]
    vr = qr + w["v_r"]
    return StageEnds(vhe, xh, ur, qr, vr, vr + cfg.beta_r_rampup_steps)


def _step(step) -> Array:
    return jnp.asarray(step, jnp.int32)


def warmup_stage(cfg: Phase2Config, step) -> Array:
    """The stage number 0..6 (int32)."""
    e, t = stage_ends(cfg), _step(step)
    bounds = jnp.asarray([e.v_h_e, e.x_h, e.u_r, e.q_r, e.v_r, e.ramp], jnp.int32)
    return (t[..., None] >= bounds).sum(-1).astype(jnp.int32)


def active_networks(cfg: Phase2Config, step) -> Array:
    """``bool[..., 5]`` over :data:`~rljax.empo.config.NETWORKS` (v_h_e, x_h, u_r, q_r, v_r):
    v_h_e always; x_h from vhe_end, u_r from xh_end, v_r from qr_end (each only if it is a
    network); q_r from ur_end."""
    e, t = stage_ends(cfg), _step(step)
    use = cfg.network_in_use
    starts = {"v_h_e": 0, "x_h": e.v_h_e, "u_r": e.x_h, "q_r": e.u_r, "v_r": e.q_r}
    return jnp.stack([(t >= starts[n]) & use[n] for n in NETWORKS], axis=-1)


def active_mask_bits(cfg: Phase2Config, step) -> Array:
    """The active networks as a bitmask (bit i = ``NETWORKS[i]``), for logging."""
    bits = jnp.asarray([1 << i for i in range(len(NETWORKS))], jnp.int32)
    return (active_networks(cfg, step).astype(jnp.int32) * bits).sum(-1)


def is_in_warmup(cfg: Phase2Config, step) -> Array:
    return _step(step) < stage_ends(cfg).v_r


def is_in_rampup(cfg: Phase2Config, step) -> Array:
    e, t = stage_ends(cfg), _step(step)
    return (t >= e.v_r) & (t < e.ramp)


def is_fully_trained(cfg: Phase2Config, step) -> Array:
    return _step(step) >= stage_ends(cfg).ramp


def effective_beta_r(cfg: Phase2Config, step) -> Array:
    """0 before vr_end; then ``beta_r * clip((sigmoid(6 (tau/T - 1/2)) - sigmoid(-3)) /
    (sigmoid(3) - sigmoid(-3)), 0, 1)`` with ``tau = step - vr_end``; nominal for ``tau >= 3T``
    or at once if ``T = 0``."""
    e, t = stage_ends(cfg), _step(step)
    ramp = cfg.beta_r_rampup_steps
    tau = (t - e.v_r).astype(jnp.float32)
    if ramp == 0:
        frac = jnp.ones_like(tau)
    else:
        sig = jax.nn.sigmoid(6.0 * (tau / ramp - 0.5))
        frac = jnp.clip((sig - _S3) / (1.0 - 2.0 * _S3), 0.0, 1.0)
        frac = jnp.where(tau >= 3 * ramp, 1.0, frac)
    return jnp.where(t < e.v_r, 0.0, cfg.beta_r * frac).astype(jnp.float32)


def lr_decay_start(cfg: Phase2Config) -> int:
    """``max(vr_end + T, floor(lr_constant_fraction * num_training_steps))``."""
    return max(stage_ends(cfg).ramp, int(cfg.lr_constant_fraction * cfg.num_training_steps))


def learning_rate(cfg: Phase2Config, network: str, step) -> Array:
    """Base lr until the decay start, then ``base * d / t`` (``constant_lr_then_1_over_t``) or
    ``base * sqrt(d / t)``; constant throughout if ``use_sqrt_lr_decay`` is False.

    A decay start of 0 is treated as 1 (the original divides 0 by 0 there).
    """
    base = cfg.base_lr(network)
    t = _step(step)
    if not cfg.use_sqrt_lr_decay:
        return jnp.full(t.shape, base, jnp.float32)
    d = max(lr_decay_start(cfg), 1)
    ratio = d / jnp.maximum(t, 1).astype(jnp.float32)
    decayed = base * ratio if cfg.constant_lr_then_1_over_t else base * jnp.sqrt(ratio)
    return jnp.where(t < d, base, decayed).astype(jnp.float32)


def learning_rates(cfg: Phase2Config, step) -> dict[str, Array]:
    return {n: learning_rate(cfg, n, step) for n in NETWORKS}


def grad_clip(cfg: Phase2Config, network: str, step) -> Array:
    """The gradient-norm clip: ``grad_clip`` (times ``lr / reference_lr`` when ``auto_grad_clip``);
    0 means no clipping."""
    if not cfg.auto_grad_clip:
        return jnp.full(_step(step).shape, cfg.grad_clip, jnp.float32)
    return cfg.grad_clip * learning_rate(cfg, network, step) / cfg.auto_grad_clip_reference_lr


def _linear(start: float, end: float, steps: int, step) -> Array:
    t = _step(step).astype(jnp.float32)
    if steps <= 0:
        return jnp.full(t.shape, end, jnp.float32)
    return jnp.where(t >= steps, end, start - (start - end) / steps * t).astype(jnp.float32)


def epsilon_r(cfg: Phase2Config, step) -> Array:
    """Robot exploration rate: linear from ``epsilon_r_start`` to ``_end`` over ``_decay_steps``."""
    return _linear(cfg.epsilon_r_start, cfg.epsilon_r_end, cfg.epsilon_r_decay_steps, step)


def epsilon_h(cfg: Phase2Config, step) -> Array:
    """Human exploration rate: linear from ``epsilon_h_start`` to ``_end`` over ``_decay_steps``."""
    return _linear(cfg.epsilon_h_start, cfg.epsilon_h_end, cfg.epsilon_h_decay_steps, step)


def should_clear_replay(cfg: Phase2Config, step) -> Array:
    """True at the training step that enters stage 5 (ramp start) from an earlier stage, and at
    the one that enters stage 6 from stage 5 (ramp end): the original clears the buffer on these
    two stage transitions only (so neither happens without a ramp, and none at step 0)."""
    e, t = stage_ends(cfg), _step(step)
    ramp = cfg.beta_r_rampup_steps
    start = (t == e.v_r) & (e.v_r > 0) & (ramp > 0)
    end = (t == e.ramp) & (ramp > 0)
    return start | end
