"""Worlds: the exact multigrid model as the phase-2 trainer sees it.

A *world* turns the environment model of :mod:`environments.multigrid` into the few pure
operations phase 2 needs, on a *situation* (where one environment instance is):

* ``reset(u)``, ``step(u, ws, a_r, a_h)``: acting (``a_r``/``a_h`` are robot/human joint
  actions, see ``MultiGrid.joint_action_of``; ``u`` is a uniform in [0, 1) that picks the map
  of a pool or the execution order, see :mod:`rljax.empo.draws`);
* ``successors(ws, a_h) -> ws'[A_r, K]`` and ``successors_all(ws) -> ws'[A_r, A_h, K]``: every
  outcome (probability ``1/K`` each, one per execution order) under every robot action, for the
  model-based targets;
* ``achieved(ws) -> bool[n_h, G]``, ``prior(ws) -> float[n_h, G, 4]`` (the phase-1 heuristic
  potential prior), ``t(ws)`` (the step count; ``t >= T`` is terminal);
* ``features(ws) -> float[D]``: the network input, ``MultiGrid.encode`` flattened plus a one-hot
  of the step count (``include_step_count``). The table world reads the grid encodings of its
  configurations from a precomputed boolean table (no scatter per state).

Two implementations with the same distribution of outcomes:

* :class:`TableWorld` (enumerable maps: trivial, small): a situation is ``(t, s)`` with ``s`` the
  index of the configuration in the enumerated :class:`~environments.multigrid.StateSpace`;
  stepping and successors are lookups in the exact :class:`~environments.multigrid.TransitionTable`
  and the prior is a precomputed table. Cheapest, and required by the tabular representation and
  by the oracle comparisons.
* :class:`ModelWorld` (any map, e.g. the random ensemble): a situation is the full
  ``MultiGridState`` plus the index of its map in a pool; successors come from
  ``MultiGrid.robot_action_successors`` and the prior is computed per state. The heuristic prior
  needs host-side shortest-path tables (:func:`rljax.empo.prior.path_table`), so random maps come
  from a pool drawn when the world is built (each episode draws one map of the pool).

Every method works on ONE situation; the trainer vmaps them.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from environments.multigrid import (
    NUM_ACTIONS,
    GoalSet,
    MultiGrid,
    MultiGridParams,
    MultiGridState,
    StateSpace,
    TransitionTable,
)
from rljax.empo.draws import categorical, index
from rljax.empo.prior import PathTable, heuristic_policy

Array = jax.Array


@struct.dataclass
class TableSituation:
    t: Array  # int32 step count
    s: Array  # int32 index into the enumerated configurations


@struct.dataclass
class ModelSituation:
    state: MultiGridState  # step count included
    map_id: Array  # int32 index into the world's map pool


class _Common:
    """What both worlds share: shapes, goals, goal masks and the network input."""

    env: MultiGrid
    goals: GoalSet
    horizon: int
    include_step_count: bool

    @property
    def n_humans(self) -> int:
        return self.env.n_humans

    @property
    def n_goals(self) -> int:
        return int(self.goals.probs.shape[1])

    @property
    def num_robot_actions(self) -> int:
        return self.env.num_robot_actions

    @property
    def num_human_actions(self) -> int:
        return self.env.num_human_actions

    @property
    def num_outcomes(self) -> int:
        return self.env.num_outcomes

    @property
    def cells(self) -> int:
        return self.env.height * self.env.width

    @property
    def feature_size(self) -> int:
        return self.cells * self.env.num_channels + (self.horizon + 1 if self.include_step_count else 0)

    def goal_masks(self) -> Array:
        """``float32[n_h, G, H*W]``: the cells of each goal (the goal encoder's input)."""
        return np.asarray(self.goals.cells).reshape(self.n_humans, self.n_goals, -1).astype(np.float32)

    def _features(self, state: MultiGridState | None, params: MultiGridParams | None, t: Array,
                  grid: Array | None = None) -> Array:
        x = self.env.encode(state, params).reshape(-1) if grid is None else grid.astype(jnp.float32)
        if self.include_step_count:
            x = jnp.concatenate([x, jax.nn.one_hot(jnp.clip(t, 0, self.horizon), self.horizon + 1)])
        return x

    def human_joint(self, per_human: Array) -> Array:
        """Human joint action of per-human actions ``[..., n_h]`` (first human most significant)."""
        w = jnp.asarray(NUM_ACTIONS ** np.arange(self.n_humans - 1, -1, -1), jnp.int32)
        return (per_human.astype(jnp.int32) * w).sum(-1)

    def sample_goals(self, u: Array) -> Array:
        """One goal index per human from the goal sampler's distribution, given a uniform per
        human ``u[n_h]``: ``int32[n_h]``."""
        return categorical(u, self.goals.probs)


class TableWorld(_Common):
    """An enumerable map: situations are ``(t, s)`` indices (see the module docstring).

    Args:
        env, params, goals: the map.
        space, table: its enumerated configurations and exact transitions.
        achieved: ``bool[S, n_h, G]``; prior: ``float32[S, n_h, G, 4]`` (time-invariant).
        include_step_count: append a one-hot of ``t`` to :meth:`features`.
    """

    exact = True

    def __init__(self, env: MultiGrid, params: MultiGridParams, goals: GoalSet, space: StateSpace,
                 table: TransitionTable, achieved: Array, prior: Array, include_step_count: bool = True):
        self.env, self.params, self.goals = env, params, goals
        self.space, self.table = space, table
        self.achieved_table, self.prior_table = jnp.asarray(achieved), jnp.asarray(prior)
        self.horizon = int(params.max_steps)
        self.include_step_count = include_step_count
        # next_idx[s, a_r, a_h, k]: the robot/human split of the joint actions, once.
        self.next_idx = table.next_idx[:, jnp.asarray(env.joint_action_of)]
        # The grid encoding of every configuration, once (bool[S, H*W*C]).
        enc = jax.jit(jax.vmap(lambda st: env.encode(st, params).reshape(-1) > 0))
        self.grids = jnp.asarray(np.concatenate([np.asarray(enc(jax.tree.map(lambda x: x[i:i + 4096], space.states)))
                                                 for i in range(0, space.num_states, 4096)]))

    @property
    def num_states(self) -> int:
        return self.space.num_states

    def with_step_count(self, include: bool) -> "TableWorld":
        other = object.__new__(TableWorld)
        other.__dict__.update(self.__dict__, include_step_count=include)
        return other

    def reset(self, u: Array) -> TableSituation:
        return TableSituation(t=jnp.int32(0), s=jnp.int32(0))

    def t(self, ws: TableSituation) -> Array:
        return ws.t

    def step(self, u: Array, ws: TableSituation, a_r: Array, a_h: Array) -> TableSituation:
        return TableSituation(t=ws.t + 1, s=self.next_idx[ws.s, a_r, a_h, index(u, self.num_outcomes)])

    def successors(self, ws: TableSituation, a_h: Array) -> TableSituation:
        s = self.next_idx[ws.s, :, a_h, :]  # [A_r, K]
        return TableSituation(t=jnp.broadcast_to(ws.t + 1, s.shape), s=s)

    def successors_all(self, ws: TableSituation) -> TableSituation:
        s = self.next_idx[ws.s]  # [A_r, A_h, K]
        return TableSituation(t=jnp.broadcast_to(ws.t + 1, s.shape), s=s)

    def achieved(self, ws: TableSituation) -> Array:
        return self.achieved_table[ws.s]

    def prior(self, ws: TableSituation) -> Array:
        return self.prior_table[ws.s]

    def state_of(self, ws: TableSituation) -> MultiGridState:
        return jax.tree.map(lambda x: x[ws.s], self.space.states).replace(step=ws.t)

    def features(self, ws: TableSituation) -> Array:
        return self._features(None, None, ws.t, grid=self.grids[ws.s])

    def all_situations(self) -> TableSituation:
        """Every non-terminal ``(t, s)``, shaped ``[T, S]``."""
        t, s = jnp.meshgrid(jnp.arange(self.horizon, dtype=jnp.int32), jnp.arange(self.num_states, dtype=jnp.int32),
                            indexing="ij")
        return TableSituation(t=t, s=s)

    def reachable(self) -> Array:
        """``bool[T, S]``: configuration ``s`` occurs at step ``t`` (``t >= first_step[s]``)."""
        return jnp.arange(self.horizon)[:, None] >= self.space.first_step[None, :]


class ModelWorld(_Common):
    """Any map, or a pool of maps of one size and roles: situations are full states.

    Args:
        env: the maps' common structure.
        walls: ``bool[M, H, W]`` and ``initial_states`` (leaves ``[M, ...]``): the pool.
        paths: the pool's :class:`PathTable` (leaves ``[M, ...]``) for the heuristic prior.
        goals: the goal set (the same for every map).
        horizon: ``max_steps`` (the same for every map).
        prior_beta: the heuristic prior's inverse temperature.
    """

    exact = False

    def __init__(self, env: MultiGrid, walls: Array, initial_states: MultiGridState, paths: PathTable, goals: GoalSet,
                 horizon: int, prior_beta: float, include_step_count: bool = True):
        self.env, self.goals = env, goals
        self.walls, self.initial_states, self.paths = jnp.asarray(walls), initial_states, paths
        self.horizon, self.prior_beta = int(horizon), float(prior_beta)
        self.include_step_count = include_step_count
        self.num_maps = int(self.walls.shape[0])

    def with_step_count(self, include: bool) -> "ModelWorld":
        return ModelWorld(self.env, self.walls, self.initial_states, self.paths, self.goals, self.horizon,
                          self.prior_beta, include)

    def params(self, map_id: Array) -> MultiGridParams:
        return MultiGridParams(walls=self.walls[map_id], max_steps=jnp.int32(self.horizon))

    def reset(self, u: Array) -> ModelSituation:
        m = index(u, self.num_maps) if self.num_maps > 1 else jnp.int32(0)
        return ModelSituation(state=jax.tree.map(lambda x: x[m], self.initial_states), map_id=jnp.int32(m))

    def t(self, ws: ModelSituation) -> Array:
        return ws.state.step

    def step(self, u: Array, ws: ModelSituation, a_r: Array, a_h: Array) -> ModelSituation:
        """``MultiGrid.step`` with the execution order picked by ``u`` (uniform over the orders)."""
        joint = jnp.asarray(self.env.joint_action_of)[a_r, a_h]
        order = jnp.asarray(self.env.orders)[index(u, self.num_outcomes)]
        return ws.replace(state=self.env.execute(ws.state, self.env.agent_actions(joint), order, self.params(ws.map_id)))

    def successors(self, ws: ModelSituation, a_h: Array) -> ModelSituation:
        _, nxt = self.env.robot_action_successors(ws.state, a_h, self.params(ws.map_id))  # [A_r, K]
        return ModelSituation(state=nxt, map_id=jnp.broadcast_to(ws.map_id, nxt.step.shape))

    def successors_all(self, ws: ModelSituation) -> ModelSituation:
        nxt = jax.vmap(lambda a: self.successors(ws, a), out_axes=1)(jnp.arange(self.num_human_actions))
        return nxt  # [A_r, A_h, K]

    def achieved(self, ws: ModelSituation) -> Array:
        return self.env.achieved(ws.state, self.goals)

    def prior(self, ws: ModelSituation) -> Array:
        paths = jax.tree.map(lambda x: x[ws.map_id], self.paths)
        return heuristic_policy(self.env, ws.state, self.params(ws.map_id), self.goals, paths, self.prior_beta)

    def features(self, ws: ModelSituation) -> Array:
        return self._features(ws.state, self.params(ws.map_id), ws.state.step)


def vmap_over(fn: Any, ws: Any, *args: Any) -> Any:
    """``fn`` of one situation mapped over all leading dimensions of ``ws`` (and of ``args``,
    which share those leading dimensions)."""
    f = fn
    for _ in range(jax.tree.leaves(ws)[0].ndim):  # the first leaf (t or state.step) is scalar per situation
        f = jax.vmap(f)
    return f(ws, *args)
