"""PPO's learning step: epochs of shuffled minibatch gradient steps on one rollout.

A feedforward policy learns from transitions: the ``T x N`` samples are flattened and shuffled
one by one. A recurrent policy learns from whole environment sequences: the ``N`` sequences of
``T`` steps are shuffled (never the steps inside them), and the loss re-runs the network over
each sequence from its stored initial carry, resetting the carry at episode starts
(:meth:`rljax.ppo.policy.Policy.sequence`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import optax

from rljax.ppo.loss import Batch, make_optimizer, ppo_loss, ppo_objective

if TYPE_CHECKING:
    from rljax.ppo.ppo import PPO, TrainState

Array = jax.Array


def make_batch(ppo: "PPO", traj: dict[str, Any], adv: Array, targets: Array) -> Batch:
    """The rollout as training samples: ``[T*N]`` transitions, or ``[T, N]`` sequences with
    their initial carries and reset flags for a recurrent policy."""
    if ppo.policy.recurrent:
        done = traj["terminated"] | traj["truncated"]
        # the stored carry is already reset for step 0; step t > 0 starts an episode after done[t-1]
        reset = jnp.concatenate([jnp.zeros_like(done[:1]), done[:-1]], axis=0)
        return Batch(obs=traj["obs"], action=traj["action"], log_prob=traj["log_prob"], value=traj["value"],
                     advantage=adv, target=targets, carry=traj["carry"], reset=reset)
    flat = lambda x: x.reshape((ppo.cfg.batch_size,) + x.shape[2:])
    return Batch(
        obs=flat(traj["obs"]), action=flat(traj["action"]), log_prob=flat(traj["log_prob"]),
        value=flat(traj["value"]), advantage=flat(adv), target=flat(targets),
    )


def minibatches(ppo: "PPO", batch: Batch, key: Array) -> Batch:
    """One epoch's shuffled minibatches, stacked on a leading ``[num_minibatches]`` axis."""
    cfg = ppo.cfg
    m = cfg.num_minibatches
    if not ppo.policy.recurrent:
        perm = jax.random.permutation(key, cfg.batch_size)
        return jax.tree.map(lambda x: x[perm].reshape((m, cfg.minibatch_size) + x.shape[1:]), batch)
    n = cfg.num_envs // m
    perm = jax.random.permutation(key, cfg.num_envs)
    steps = lambda x: jnp.swapaxes(x[:, perm].reshape((x.shape[0], m, n) + x.shape[2:]), 0, 1)  # [m, T, n, ...]
    carry = jax.tree.map(lambda c: c[perm].reshape((m, n) + c.shape[1:]), batch.carry)
    return jax.tree.map(steps, batch.replace(carry=())).replace(carry=carry)


def learn(ppo: "PPO", ts: "TrainState", batch: Batch, key: Array) -> tuple[Any, Any, dict[str, Array]]:
    """``(params, opt_state, metrics)`` after ``num_epochs`` epochs of minibatch steps on
    ``batch``; metrics are means over all minibatch steps."""
    cfg, h, policy = ppo.cfg, ts.hparams, ppo.policy
    space = ppo.env.action_space(ts.env_params)
    optimizer = make_optimizer(h, cfg)

    def loss_fn(params, mb):
        if policy.recurrent:
            pi_out, value = policy.sequence(params, mb.carry, mb.obs, mb.reset)
            return ppo_objective(pi_out, value, space, cfg, h, mb)
        loss, metrics = ppo_loss(params, ppo.apply, space, cfg, h, mb)
        for e in ppo.extensions:
            extra, em = e.loss(ts.ext[e.name], params, ppo.apply, mb.obs, mb.action)
            loss = loss + extra
            metrics.update({f"{e.name}/{k}": v for k, v in em.items()})
        return loss, metrics

    def minibatch_step(carry, mb):
        params, opt_state = carry
        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, mb)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        metrics["loss"] = loss
        metrics["grad_norm"] = optax.tree.norm(grads)
        return (params, opt_state), metrics

    def epoch(carry, k):
        return jax.lax.scan(minibatch_step, carry, minibatches(ppo, batch, k))

    (params, opt_state), loss_metrics = jax.lax.scan(
        epoch, (ts.params, ts.opt_state), jax.random.split(key, cfg.num_epochs)
    )
    return params, opt_state, jax.tree.map(jnp.mean, loss_metrics)
