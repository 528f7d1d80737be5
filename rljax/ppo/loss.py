"""PPO's optimiser and clipped loss."""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import struct

from rljax.distributions import make_distribution
from rljax.ppo.config import HParams, PPOConfig

Array = jax.Array


def make_optimizer(h: HParams, cfg: PPOConfig) -> optax.GradientTransformation:
    """Adam with global-norm clipping; the learning rate anneals linearly per update.

    Built from traced hyperparameters inside the update; its state's structure does not
    depend on their values, so one initial state serves every member.
    """
    steps_per_update = cfg.num_epochs * cfg.num_minibatches

    def schedule(count):
        if not cfg.anneal_lr:
            return h.lr
        return h.lr * (1.0 - (count // steps_per_update) / cfg.num_updates)

    return optax.chain(
        optax.clip_by_global_norm(h.max_grad_norm),
        optax.scale_by_adam(eps=h.adam_eps),
        optax.scale_by_learning_rate(schedule),
    )


@struct.dataclass
class Batch:
    """Training samples: flattened transitions ``[B]`` for a feedforward policy; whole sequences
    ``[T, B]`` for a recurrent one, with each sequence's initial ``carry[B, ...]`` and its
    ``reset[T, B]`` flags (:mod:`rljax.ppo.policy`). Both are ``()`` for a feedforward policy."""

    obs: Array
    action: Array
    log_prob: Array
    value: Array
    advantage: Array
    target: Array
    carry: Any = ()
    reset: Any = ()


def ppo_loss(
    params: Any,
    apply_fn: Callable,
    space: Any,
    cfg: PPOConfig,
    h: HParams,
    mb: Batch,
) -> tuple[Array, dict[str, Array]]:
    """Clipped surrogate + (optionally clipped) value loss - per-head entropy bonus, for a
    feedforward ``apply_fn(params, obs) -> (policy_out, value)``."""
    pi_out, value = apply_fn(params, mb.obs)
    return ppo_objective(pi_out, value, space, cfg, h, mb)


def ppo_objective(pi_out: Any, value: Array, space: Any, cfg: PPOConfig, h: HParams, mb: Batch) -> tuple[Array, dict[str, Array]]:
    """The loss of the network outputs ``(pi_out, value)`` for the samples ``mb`` (any leading
    sample axes: ``[B]`` or ``[T, B]``); means are over all samples."""
    dist = make_distribution(space, pi_out)
    log_prob = dist.log_prob(mb.action)
    log_ratio = log_prob - mb.log_prob
    ratio = jnp.exp(log_ratio)
    adv = mb.advantage
    if cfg.advantage_norm == "minibatch":
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg_loss = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1.0 - h.clip_eps, 1.0 + h.clip_eps) * adv).mean()
    v_err = jnp.square(value - mb.target)
    if cfg.clip_value:
        v_clipped = mb.value + jnp.clip(value - mb.value, -h.clip_eps, h.clip_eps)
        v_err = jnp.maximum(v_err, jnp.square(v_clipped - mb.target))
    v_loss = 0.5 * v_err.mean()
    entropy = dist.entropy()
    entropy = entropy.reshape((-1, entropy.shape[-1])).mean(axis=0)  # [heads]
    loss = pg_loss + h.vf_coef * v_loss - jnp.sum(h.ent_coef * entropy)
    metrics = {
        "pg_loss": pg_loss,
        "v_loss": v_loss,
        "entropy": entropy.sum(),
        "approx_kl": ((ratio - 1.0) - log_ratio).mean(),
        "clip_frac": (jnp.abs(ratio - 1.0) > h.clip_eps).mean(),
    }
    if entropy.shape[0] > 1:
        metrics.update({f"entropy_head{i}": entropy[i] for i in range(entropy.shape[0])})
    return loss, metrics
