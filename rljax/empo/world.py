"""Worlds: where the phase-2 trainer acts, as the few pure operations it needs.

A *world* works on a *situation* (where one environment instance is, any pytree) through:

* ``reset(u)``, ``step(u, ws, a_r, a_h)``: acting (``a_r``/``a_h`` the robot/human joint
  actions; ``u`` a uniform in [0, 1) that picks the outcome, or the map of a pool, see
  :mod:`rljax.empo.draws`);
* ``successors(ws, a_h) -> ws'[A_r, K]`` and ``successors_all(ws) -> ws'[A_r, A_h, K]``: every
  listed outcome under every robot action, for the model-based targets; their probabilities are
  ``1/K`` each when ``uniform_outcomes``, else ``outcome_probs(ws, a_h)`` (``[A_r, K]``) and
  ``outcome_probs(ws)`` (``[A_r, A_h, K]``);
* ``achieved(ws) -> bool[n_h, G]``, ``prior(ws) -> float[n_h, G, A]`` (the phase-1 human
  prior), ``t(ws)`` (the step count; ``t >= horizon`` is terminal);
* ``features(ws) -> float[D]``: the network input (plus a one-hot of the step count when
  ``include_step_count``);
* optionally ``render(ws) -> uint8[H, W, 3]``: a picture of the situation (jittable), for
  ``rljax render``;
* the facts ``n_humans``, ``n_goals``, ``actions_per_human``, ``num_robot_actions``,
  ``num_human_actions`` (joint), ``num_outcomes``, ``horizon``, ``feature_size``, ``goal_probs``,
  ``goal_weights`` ``[n_h, G]``, ``goal_features`` ``[n_h, G, F]``, and ``exact`` (whether
  situations are ``(t, s)`` indices of an enumerated world, as the tabular representation and
  the oracle comparisons need).

:class:`TableWorld` is the world of any :class:`~rljax.empo.world_model.FiniteWorld` (a
situation is ``(t, s)``; stepping and successors are lookups). Environments too large to
enumerate provide their own world with the same operations on full states (e.g. multigrid's
random ensemble, ``rljax.environments.multigrid_worlds.ModelWorld``), deriving from
:class:`WorldBase` for the shared parts.

Every method works on ONE situation; the trainer vmaps them.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rljax.empo.draws import categorical, index
from rljax.empo.world_model import FiniteWorld, check_world, human_joint, reachable_steps, uniform_outcomes

Array = jax.Array


@struct.dataclass
class TableSituation:
    t: Array  # int32 step count
    s: Array  # int32 state index


class WorldBase:
    """What every world shares: goal sampling, joint actions and the step-count features.

    Subclasses set ``n_humans``, ``actions_per_human``, ``goal_probs``, ``horizon`` and
    ``include_step_count``."""

    n_humans: int
    actions_per_human: int
    goal_probs: Array
    horizon: int
    include_step_count: bool
    uniform_outcomes: bool = True

    @property
    def n_goals(self) -> int:
        return int(self.goal_probs.shape[1])

    @property
    def num_human_actions(self) -> int:
        return self.actions_per_human**self.n_humans

    def step_features(self, x: Array, t: Array) -> Array:
        """``x`` with a one-hot of the step count appended when ``include_step_count``."""
        if self.include_step_count:
            x = jnp.concatenate([x, jax.nn.one_hot(jnp.clip(t, 0, self.horizon), self.horizon + 1)])
        return x

    def step_feature_size(self) -> int:
        return self.horizon + 1 if self.include_step_count else 0

    def human_joint(self, per_human: Array) -> Array:
        """Human joint action of per-human actions ``[..., n_h]`` (first human most significant)."""
        return human_joint(per_human, self.actions_per_human)

    def sample_goals(self, u: Array) -> Array:
        """One goal index per human from the goal distribution, given a uniform per human
        ``u[n_h]``: ``int32[n_h]``."""
        return categorical(u, self.goal_probs)


class TableWorld(WorldBase):
    """The world of a :class:`~rljax.empo.world_model.FiniteWorld`: situations are ``(t, s)``.

    Args:
        model: the finite world (checked by :func:`~rljax.empo.world_model.check_world`).
        prior: the humans' phase-1 prior ``float32[S, n_h, G, A]`` (time-invariant, e.g.
            multigrid's heuristic) or ``float32[T, S, n_h, G, A]`` (layer ``t`` at step count
            ``t``, e.g. :func:`~rljax.empo.prior.boltzmann_prior`'s backward induction).
        include_step_count: append a one-hot of ``t`` to :meth:`features`.
    """

    exact = True
    # ``draw(ws) -> uint8[H, W, 3]`` (jittable): set by whoever builds the world from an
    # environment that can picture a state index (multigrid's table_world); see :meth:`render`.
    draw = None

    def render(self, ws: TableSituation) -> Array:
        """A picture of situation ``ws`` (``uint8[H, W, 3]``, jittable) where the world was given
        a ``draw``; ``NotImplementedError`` otherwise."""
        if self.draw is None:
            raise NotImplementedError("this TableWorld was built without a draw(ws) function")
        return self.draw(ws)

    def __init__(self, model: FiniteWorld, prior: Array, include_step_count: bool = True):
        check_world(model)
        want = (model.num_states, model.n_humans, model.n_goals, model.actions_per_human)
        if tuple(prior.shape) not in (want, (model.horizon,) + want):
            raise ValueError(f"TableWorld: prior shape {tuple(prior.shape)} is invalid: need [S, n_h, G, A] = {want} "
                             f"or [T, S, n_h, G, A] = {(model.horizon,) + want}")
        self.model = model
        self.prior_table = jnp.asarray(prior)
        self.achieved_table = jnp.asarray(model.achieved)
        self.next_state = jnp.asarray(model.next_state)
        self.next_prob = jnp.asarray(model.next_prob)
        self.grids = jnp.asarray(model.state_features)
        self.goal_probs, self.goal_weights = jnp.asarray(model.goal_probs), jnp.asarray(model.goal_weights)
        self.goal_features = jnp.asarray(model.goal_features, jnp.float32)
        self.horizon = int(model.horizon)
        self.n_humans, self.actions_per_human = model.n_humans, model.actions_per_human
        self.num_robot_actions, self.num_outcomes = model.num_robot_actions, model.num_outcomes
        self.uniform_outcomes = uniform_outcomes(model)
        self._reachable = reachable_steps(model)
        first = np.where(self._reachable.any(0), self._reachable.argmax(0), model.horizon).astype(np.int32)
        monotone = np.array_equal(self._reachable, np.arange(model.horizon)[:, None] >= first[None, :])
        self._first_step = jnp.asarray(first) if monotone else None
        self.include_step_count = include_step_count

    @property
    def num_states(self) -> int:
        return self.model.num_states

    @property
    def feature_size(self) -> int:
        return int(self.grids.shape[-1]) + self.step_feature_size()

    def with_step_count(self, include: bool) -> "TableWorld":
        other = object.__new__(TableWorld)
        other.__dict__.update(self.__dict__, include_step_count=include)
        return other

    def reset(self, u: Array) -> TableSituation:
        return TableSituation(t=jnp.int32(0), s=jnp.int32(0))

    def t(self, ws: TableSituation) -> Array:
        return ws.t

    def step(self, u: Array, ws: TableSituation, a_r: Array, a_h: Array) -> TableSituation:
        if self.uniform_outcomes:
            k = index(u, self.num_outcomes)
        else:
            k = categorical(u, self.next_prob[ws.s, a_r, a_h])
        return TableSituation(t=ws.t + 1, s=self.next_state[ws.s, a_r, a_h, k])

    def successors(self, ws: TableSituation, a_h: Array) -> TableSituation:
        s = self.next_state[ws.s, :, a_h, :]  # [A_r, K]
        return TableSituation(t=jnp.broadcast_to(ws.t + 1, s.shape), s=s)

    def successors_all(self, ws: TableSituation) -> TableSituation:
        s = self.next_state[ws.s]  # [A_r, A_h, K]
        return TableSituation(t=jnp.broadcast_to(ws.t + 1, s.shape), s=s)

    def outcome_probs(self, ws: TableSituation, a_h: Array | None = None) -> Array:
        """Probabilities of :meth:`successors` (``[A_r, K]``) or, without ``a_h``, of
        :meth:`successors_all` (``[A_r, A_h, K]``)."""
        return self.next_prob[ws.s] if a_h is None else self.next_prob[ws.s, :, a_h, :]

    def achieved(self, ws: TableSituation) -> Array:
        return self.achieved_table[ws.s]

    @property
    def prior_per_step(self) -> bool:
        """Whether the prior table has a leading step-count axis ``[T, ...]``."""
        return self.prior_table.ndim == 5

    def prior(self, ws: TableSituation) -> Array:
        if self.prior_per_step:  # terminal situations (t = T) act nowhere: any layer will do
            return self.prior_table[jnp.minimum(ws.t, self.horizon - 1), ws.s]
        return self.prior_table[ws.s]

    def features(self, ws: TableSituation) -> Array:
        return self.step_features(self.grids[ws.s].astype(jnp.float32), ws.t)

    def all_situations(self) -> TableSituation:
        """Every non-terminal ``(t, s)``, shaped ``[T, S]``."""
        t, s = jnp.meshgrid(jnp.arange(self.horizon, dtype=jnp.int32), jnp.arange(self.num_states, dtype=jnp.int32),
                            indexing="ij")
        return TableSituation(t=t, s=s)

    def reachable(self) -> Array:
        """``bool[T, S]``: state ``s`` can occur at step ``t`` (from state 0 at ``t = 0``)."""
        if self._first_step is not None:
            # Once reachable, always (e.g. a do-nothing self-loop, as in multigrid): the mask as
            # ``t >= first step``, the expression the evaluation compiled before the protocol
            # (a constant table changes XLA's fusion and the masked means' last bits).
            return jnp.arange(self.horizon)[:, None] >= self._first_step[None, :]
        return jnp.asarray(self._reachable)


def expect_outcomes(world: Any, x: Array, probs: Array | None, axis: int) -> Array:
    """The expectation of ``x`` over the outcome axis ``axis`` (``probs`` shaped like ``x`` up
    to that axis, ignored when the world's outcomes are uniform: then a plain mean)."""
    if world.uniform_outcomes:
        return x.mean(axis=axis)
    p = probs.reshape(probs.shape + (1,) * (x.ndim - probs.ndim))
    return (x * p).sum(axis=axis)


def vmap_over(fn: Any, ws: Any, *args: Any) -> Any:
    """``fn`` of one situation mapped over all leading dimensions of ``ws`` (and of ``args``,
    which share those leading dimensions)."""
    f = fn
    for _ in range(jax.tree.leaves(ws)[0].ndim):  # the first leaf (t or state.step) is scalar per situation
        f = jax.vmap(f)
    return f(ws, *args)
