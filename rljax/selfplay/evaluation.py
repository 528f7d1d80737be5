"""Head-to-head evaluation of two policies in a two-player game, and the NE gap.

Policies are batched act functions ``act(keys[E], obs[E, D]) -> action[E, A]`` (one key per
episode): a network (:func:`network_act`) or the game's random policy (:func:`random_batch_act`);
or a :class:`StateAct` reading the true states (a scripted baseline, :func:`baseline_act`); or a
:class:`MemoryAct` carrying a recurrent network's memory through the episode (:func:`policy_act`).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from rljax.distributions import PolicyApply, make_distribution
from rljax.ppo.policy import Policy
from rljax.selfplay.game import TwoPlayerGame

Array = jax.Array
BatchAct = Callable[[Array, Array], Array]
PURSUER, EVADER = 0, 1


def network_act(policy_apply: PolicyApply, space: Any, params: Any, deterministic: bool = True) -> BatchAct:
    """``act(keys[E], obs[E, D]) -> action[E, A]`` of a policy network (greedy, or sampled with
    each episode's own key)."""

    def act(keys: Array, obs: Array) -> Array:
        if deterministic:
            return make_distribution(space, policy_apply(params, obs)).mode()
        return jax.vmap(lambda k, o: make_distribution(space, policy_apply(params, o[None])).sample(k)[0])(keys, obs)

    return act


class MemoryAct(NamedTuple):
    """A batched policy with memory: ``fn(keys[E], obs[E, D], carry) -> (action[E, A], carry)``,
    starting each episode from ``init(E) -> carry`` (leaves ``[E, ...]``)."""

    fn: Callable[[Array, Array, Any], tuple[Array, Any]]
    init: Callable[[int], Any]


def policy_act(policy: Policy, space: Any, params: Any, deterministic: bool = True) -> MemoryAct:
    """:func:`network_act` of a (possibly recurrent) :class:`~rljax.ppo.policy.Policy`: its carry
    rides through the episode from the initial carry."""

    def act(keys: Array, obs: Array, carry: Any) -> tuple[Array, Any]:
        carry, pi_out, _ = policy.apply(params, carry, obs)
        if deterministic:
            return make_distribution(space, pi_out).mode(), carry
        one = lambda k, p: make_distribution(space, jax.tree.map(lambda x: x[None], p)).sample(k)[0]  # noqa: E731
        return jax.vmap(one)(keys, pi_out), carry

    return MemoryAct(act, lambda e: policy.initial_carry((e,)))


class StateAct(NamedTuple):
    """A batched policy of the true states: ``fn(keys[E], states[E], params) -> action[E, A]``."""

    fn: Callable[[Array, Any, Any], Array]


def baseline_act(act: Callable[[Array, Any, Any], Array]) -> StateAct:
    """A scripted baseline's ``act(key, state, params)`` (one instance) as a :class:`StateAct`."""
    return StateAct(lambda keys, states, params: jax.vmap(act, in_axes=(0, 0, None))(keys, states, params))


Act = BatchAct | StateAct | MemoryAct


def _act(act: Act, keys: Array, obs: Array, state: Any, params: Any, carry: Any) -> tuple[Array, Any]:
    if isinstance(act, MemoryAct):
        return act.fn(keys, obs, carry)
    return (act.fn(keys, state, params) if isinstance(act, StateAct) else act(keys, obs)), carry


def _initial_carry(act: Act, e: int) -> Any:
    return act.init(e) if isinstance(act, MemoryAct) else ()


def random_batch_act(game: TwoPlayerGame, params: Any, role: int) -> BatchAct:
    """The game's uniform random policy of ``role`` as a batched act function."""

    def act(keys: Array, obs: Array) -> Array:
        return jax.vmap(lambda k: game.random_action(k, params, role))(keys)

    return act


def head_to_head(game: TwoPlayerGame, params: Any, keys: Array, max_steps: int, pursuer_act: Act, evader_act: Act,
                 chunk: int = 100) -> dict[str, Array]:
    """``E = len(keys)`` episodes of two policies in ``game.env`` at ``params``, one per key, at
    most ``max_steps`` steps each (and the game's own limit).

    Steps run in chunks of ``chunk`` inside a ``while_loop`` that stops once every episode has
    ended (captures end episodes early; evaluations of short tasks finish fast). Per-step keys
    are ``fold_in(run key, t)`` (``reset key, run key = split(episode key)``), so results do not
    depend on ``chunk``. Returns per-episode ``captured`` and ``escaped`` (the game's
    :meth:`~rljax.selfplay.game.TwoPlayerGame.outcome`, 1.0/0.0; an episode cut by
    ``max_steps`` below the game's limit is neither), ``length`` and the pursuer's ``return``.
    A :class:`MemoryAct`'s carry starts each episode at its initial carry (``()`` for the others:
    no leaves, so a memoryless match compiles as before).
    """
    env = game.env
    e = keys.shape[0]
    reset_keys, keys = jnp.moveaxis(jax.vmap(jax.random.split)(keys), 1, 0)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, params)
    zeros = jnp.zeros((e,), jnp.float32)

    def one_step(carry, _):
        obs, state, alive, t, cap, esc, length, ret, memory = carry
        k_p, k_e, k_env = jnp.moveaxis(jax.vmap(lambda k: jax.random.split(jax.random.fold_in(k, t), 3))(keys), 1, 0)
        a_p, m_p = _act(pursuer_act, k_p, obs[:, PURSUER], state, params, memory[PURSUER])
        a_e, m_e = _act(evader_act, k_e, obs[:, EVADER], state, params, memory[EVADER])
        actions = jnp.stack([a_p, a_e], axis=1)
        new_obs, new_state, rewards, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(k_env, state, actions, params)
        won_p, won_e = game.outcome(term, trunc, info)
        live = alive.astype(jnp.float32)
        cap = cap + live * won_p
        esc = esc + live * won_e
        ret = ret + live * rewards[:, PURSUER]
        length = length + alive.astype(jnp.int32)
        alive = alive & ~(term | trunc) & (t + 1 < max_steps)
        keep = lambda a, b: jnp.where(alive.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)  # noqa: E731
        return (keep(new_obs, obs), jax.tree.map(keep, new_state, state), alive, t + 1, cap, esc, length, ret,
                (m_p, m_e)), None

    def body(carry):
        return jax.lax.scan(one_step, carry, None, length=chunk)[0]

    def cond(carry):
        return jnp.any(carry[2]) & (carry[3] < max_steps)

    init = (obs, state, jnp.ones((e,), bool), jnp.zeros((), jnp.int32), zeros, zeros, jnp.zeros((e,), jnp.int32), zeros,
            (_initial_carry(pursuer_act, e), _initial_carry(evader_act, e)))
    _, _, _, _, cap, esc, length, ret, _ = jax.lax.while_loop(cond, body, init)
    return {"captured": cap, "escaped": esc, "length": length, "return": ret}


def ne_gap(capture_rate: Array, escape_rate: Array) -> Array:
    """``|SR_P - SR_E|``; with every episode a capture or a timeout, ``|2 SR_P - 1|``."""
    return jnp.abs(capture_rate - escape_rate)
