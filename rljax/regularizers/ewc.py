"""Elastic weight consolidation: a quadratic pull of the policy towards an anchor snapshot.

The self-play protocol takes a snapshot when the curriculum advances: the anchor ``theta*`` is
the policy's parameters at that moment and ``F`` their diagonal Fisher information on a batch
of observations (:func:`fisher_diagonal`). From then on every PPO minibatch loss gets

    penalty = 0.5 * lam * sum(F * (theta - theta*)^2),

whose gradient is exactly ``lam * F * (theta - theta*)``: the term the original added to the
gradients with backward hooks. Here it goes through the engine's loss extension, so it passes
through PPO's gradient clipping and Adam like the hooked gradient did.

Everything is pure and has fixed shapes (the state is two parameter-shaped trees and a 0/1
flag), so the snapshot can be taken inside the compiled program under ``lax.cond`` and the
state vmaps over members and checkpoints with the train state.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from rljax.distributions import PolicyApply, make_distribution
from rljax.extensions import Extension

Array = jax.Array


@struct.dataclass
class EWCState:
    """``fisher`` and ``anchor``: pytrees shaped like the network parameters; ``active``: a
    float32 scalar, 1 once a snapshot was taken (the penalty is multiplied by it)."""

    fisher: Any
    anchor: Any
    active: Array


def fisher_diagonal(policy_apply: PolicyApply, space: Any, params: Any, obs: Array, key: Array, minibatch: int = 128) -> Any:
    """The batch-level diagonal Fisher approximation of the seed document.

    ``policy_apply(params, obs) -> policy_out``: the policy WITHOUT its value head (the Fisher
    is the policy's alone), exactly what :func:`~rljax.distributions.make_distribution` takes
    (:data:`~rljax.distributions.PolicyApply`); from an actor-critic ``apply -> (policy_out,
    value)`` pass ``lambda p, o: apply(p, o)[0]``. An actor-critic's ``(policy_out, value)``
    tuple is rejected with a ``TypeError`` while tracing, never silently misread.
    ``obs[B, ...]``: observations as the network sees them (normalised if the trainer
    normalises). One action per observation is drawn from the current policy with ONE call
    ``make_distribution(space, policy_apply(params, obs)).sample(key)`` over the whole batch.
    The batch is then cut, in order, into minibatches of ``minibatch`` (the last one shorter
    when ``B`` is not a multiple); for each, the gradient of the SUM of ``log pi(a|s)`` over the
    minibatch is squared; the squares are summed over minibatches and divided by ``B``.

    This is not the per-sample Fisher (the mean of squared per-sample gradients): cross terms
    between samples of one minibatch stay in. Returns a pytree shaped like ``params``. Pure,
    jittable and vmappable (the minibatches run in a ``lax.scan``, so memory does not grow
    with ``B``).
    """
    if minibatch <= 0:
        raise ValueError(f"fisher_diagonal: minibatch must be > 0, got {minibatch}")
    if obs.ndim < 1 or obs.shape[0] == 0:
        raise ValueError(f"fisher_diagonal: obs must have a non-empty leading batch axis, got shape {obs.shape}")
    batch = obs.shape[0]
    actions = jax.lax.stop_gradient(_distribution(policy_apply, space, params, obs).sample(key))

    def sq_grad(o: Array, a: Array) -> Any:
        def total_log_prob(p):
            return jnp.sum(_distribution(policy_apply, space, p, o).log_prob(a))

        return jax.tree.map(jnp.square, jax.grad(total_log_prob)(params))

    full, rest = divmod(batch, minibatch)
    acc = jax.tree.map(jnp.zeros_like, params)
    if full:
        cut = lambda x: x[: full * minibatch].reshape((full, minibatch) + x.shape[1:])

        def body(acc, mb):
            return jax.tree.map(jnp.add, acc, sq_grad(*mb)), None

        acc, _ = jax.lax.scan(body, acc, (cut(obs), cut(actions)))
    if rest:
        acc = jax.tree.map(jnp.add, acc, sq_grad(obs[full * minibatch:], actions[full * minibatch:]))
    return jax.tree.map(lambda f: f / batch, acc)


def _distribution(policy_apply: PolicyApply, space: Any, params: Any, obs: Array):
    """``make_distribution(space, policy_apply(params, obs))``, refusing an actor-critic's output.

    A ``(policy_out, value)`` pair is told apart by its second item: a value ``[B]`` is an array
    of rank 1 with the batch's length, which no policy output of a batch is (logits and
    Gaussian parameters are ``[B, n]``, a Box's ``(mean, log_std)`` both ``[B, d]``)."""
    out = policy_apply(params, obs)
    if isinstance(out, tuple) and len(out) == 2 and hasattr(out[1], "shape") and out[1].shape == obs.shape[:1]:
        raise TypeError("fisher_diagonal: policy_apply returned (policy_out, value[B]); pass the policy without "
                        "its value head, e.g. lambda p, o: apply(p, o)[0]")
    return make_distribution(space, out)


@dataclass(frozen=True)
class EWC(Extension):
    """EWC penalty as a PPO loss extension; state in ``ts.ext[name]`` (:class:`EWCState`).

    ``lam``: the penalty strength (the seed's lambda = 1000). The state starts inactive (zero
    Fisher, zero anchor, ``active = 0``), so the extension adds nothing until
    :meth:`snapshot` is called (by the self-play protocol, on a curriculum advance).
    ``update`` leaves the state unchanged: only a snapshot changes it.
    """

    name: str = "ewc"
    lam: float = 1000.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"EWC.name must be a non-empty string, got {self.name!r}")
        if not self.lam >= 0:
            raise ValueError(f"EWC.lam must be >= 0, got {self.lam}")

    def init(self, key: Array, params: Any, obs_shape: tuple[int, ...]) -> EWCState:
        zeros = jax.tree.map(jnp.zeros_like, params)
        return EWCState(fisher=zeros, anchor=zeros, active=jnp.zeros((), jnp.float32))

    @staticmethod
    def snapshot(state: EWCState, params: Any, fisher: Any) -> EWCState:
        """A new anchor: ``anchor = params``, the given ``fisher``, ``active = 1``. Replaces any
        earlier snapshot (one anchor at a time, as the original). Same structure and dtypes as
        ``state``, so it can be one branch of a ``lax.cond``."""
        return EWCState(
            fisher=jax.tree.map(lambda f, old: jnp.asarray(f, old.dtype), fisher, state.fisher),
            anchor=jax.tree.map(lambda p, old: jnp.asarray(p, old.dtype), params, state.anchor),
            active=jnp.ones_like(state.active),
        )

    def penalty(self, state: EWCState, params: Any) -> Array:
        """``active * 0.5 * lam * sum(F * (params - anchor)^2)``, a scalar."""
        terms = jax.tree.map(lambda f, p, a: jnp.sum(f * jnp.square(p - a)), state.fisher, params, state.anchor)
        return state.active * (0.5 * self.lam) * sum(jax.tree.leaves(terms), jnp.zeros(()))

    def loss(self, state: EWCState, params: Any, apply_fn: Callable, obs: Array, action: Array) -> tuple[Array, dict[str, Array]]:
        """The penalty and ``{"penalty": penalty}``; its gradient w.r.t. ``params`` is
        ``active * lam * F * (params - anchor)``."""
        p = self.penalty(state, params)
        return p, {"penalty": p}

    def update(self, state: EWCState, params: Any, obs: Array, next_obs: Array, key: Array) -> tuple[EWCState, dict[str, Array]]:
        return state, {"active": state.active}
