"""The policy interface PPO trains: feedforward or recurrent, one set of calls for both.

A feedforward network maps ``obs[..., *obs_shape] -> (policy_out, value[...])``. A recurrent
network (``network.recurrent = True``, e.g. :class:`rljax.networks.recurrent.RecurrentActorCritic`)
maps ``(carry, obs) -> (carry, (policy_out, value))`` and gives its initial carry with
``network.initial_carry(batch_shape)``. :class:`Policy` hides the difference: the carry of a
feedforward policy is ``()`` (no leaves), so a feedforward rollout carries, stores and compiles
nothing extra.

Carry semantics (the same in the rollout, the loss and evaluation): the carry that enters a
step is the one for that step's observation. Where an episode ends the carry is reset to the
initial carry *before* the next observation (:meth:`Policy.reset`), so a new episode never sees
the previous one's memory. A stored sequence is re-run from its stored initial carry with
``reset[t] = done[t - 1]`` (and ``reset[0] = False``: the stored carry is already reset).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array


def is_recurrent(network: nn.Module) -> bool:
    return bool(getattr(network, "recurrent", False))


@dataclass(frozen=True)
class Policy:
    """A network behind PPO's calls. ``carry`` leaves have the batch shape as leading axes."""

    network: nn.Module

    @property
    def recurrent(self) -> bool:
        return is_recurrent(self.network)

    def initial_carry(self, batch_shape: tuple[int, ...]) -> Any:
        """The carry at an episode start, for a batch ``batch_shape`` (``()`` for one env)."""
        return self.network.initial_carry(tuple(batch_shape)) if self.recurrent else ()

    def init(self, key: Array, obs_shape: tuple[int, ...]) -> Any:
        """Network parameters, from a dummy batch of one observation."""
        dummy = jnp.zeros((1,) + tuple(obs_shape), jnp.float32)
        if self.recurrent:
            return self.network.init(key, self.initial_carry((1,)), dummy)
        return self.network.init(key, dummy)

    def apply(self, params: Any, carry: Any, obs: Array) -> tuple[Any, Any, Array]:
        """One step: ``(carry, obs[B, ...]) -> (carry, policy_out, value[B])``."""
        if not self.recurrent:
            pi_out, value = self.network.apply(params, obs)
            return carry, pi_out, value
        carry, (pi_out, value) = self.network.apply(params, carry, obs)
        return carry, pi_out, value

    def reset(self, carry: Any, done: Array) -> Any:
        """``carry`` with the entries of finished episodes (``done[B]``) set to the initial carry."""
        if not self.recurrent:
            return carry
        init = self.initial_carry(done.shape)
        return jax.tree.map(lambda c0, c: jnp.where(done.reshape(done.shape + (1,) * (c.ndim - done.ndim)), c0, c),
                            init, carry)

    def sequence(self, params: Any, carry: Any, obs: Array, reset: Any) -> tuple[Any, Array]:
        """Re-runs a stored sequence ``obs[T, B, ...]`` from ``carry[B, ...]`` with the carry
        reset where ``reset[T, B]``; returns ``(policy_out[T, B, ...], value[T, B])``. A
        feedforward policy ignores ``carry`` and ``reset`` and applies the network to ``obs``."""
        if not self.recurrent:
            return self.network.apply(params, obs)

        def step(c, x):
            o, r = x
            c, pi_out, value = self.apply(params, self.reset(c, r), o)
            return c, (pi_out, value)

        _, (pi_out, value) = jax.lax.scan(step, carry, (obs, reset))
        return pi_out, value
