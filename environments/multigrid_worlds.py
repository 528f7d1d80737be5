"""Multigrid maps as the worlds EMPO's phase-2 trainer acts in, by name.

``trivial`` and ``small`` are the phase-2 demo's fixed maps (enumerable: 256 and 10384
configurations): :func:`table_world` hands them to :mod:`rljax.empo` as a
:class:`~rljax.empo.world.TableWorld` of their :func:`~rljax.environments.multigrid.finite_world`.
``ensemble`` is a pool of random 7x7 maps with 2 humans and 2 robots
(:class:`~rljax.environments.multigrid.EnsembleConfig`) and the small-rectangle goals of the
original's ``SmallGoalSampler``, too large to enumerate: :class:`ModelWorld` steps full
multigrid states (it also serves the fixed maps with ``dynamics="model"``). The human prior is
the demo's heuristic potential policy (:mod:`rljax.environments.multigrid_prior`).

Enumerations are cached per process (the trivial map's BFS takes a few seconds including its
compilation), so every runner, test and command of one process shares them.
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rljax.environments.multigrid import (
    NUM_ACTIONS,
    EnsembleConfig,
    GoalSet,
    MultiGrid,
    MultiGridParams,
    MultiGridState,
    MultiGridTask,
    StateSpace,
    TransitionTable,
    enumerate_states,
    finite_world,
    random_ensemble_map,
    reach_cell_goals,
    small_rectangle_goals,
    small_task,
    transition_table,
    trivial_task,
)
from rljax.environments.multigrid_prior import PathTable, heuristic_policy, heuristic_policy_table, path_table
from rljax.empo.draws import index
from rljax.empo.prior import boltzmann_prior
from rljax.empo.world_model import FiniteWorld
from rljax.empo.world import TableWorld, WorldBase

Array = jax.Array

MAPS = ("trivial", "small", "ensemble")
ENUMERABLE = ("trivial", "small")
DYNAMICS = ("auto", "table", "model")
PRIOR_BETA = 1000.0  # the demo's HeuristicPotentialPolicy
PRIORS = ("heuristic", "boltzmann")
BETA_H = 2.0  # the Boltzmann prior's inverse temperature in the original's phase2_backward_induction example
GOAL_SETS = ("map", "original")
# The goal cells of the original's phase2_backward_induction example (its TrivialGoalGenerator:
# weight 1 each, X_h their weighted sum): the demo's set with (4,1) instead of the wall (1,2).
ORIGINAL_GOALS = {"trivial": [(1, 1), (2, 1), (3, 1), (4, 1), (2, 2)]}


@struct.dataclass
class ModelSituation:
    state: MultiGridState  # step count included
    map_id: Array  # int32 index into the world's map pool


class ModelWorld(WorldBase):
    """Any map, or a pool of maps of one size and roles: situations are full states, successors
    come from ``MultiGrid.robot_action_successors`` (``K = n!`` equally likely execution orders)
    and the heuristic prior is computed per state (so random maps come from a pool drawn when the
    world is built, with their host-side shortest-path tables; each episode draws one map).

    Args:
        env: the maps' common structure.
        walls: ``bool[M, H, W]`` and ``initial_states`` (leaves ``[M, ...]``): the pool.
        paths: the pool's :class:`~rljax.environments.multigrid_prior.PathTable` (leaves ``[M, ...]``).
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
        self.n_humans, self.actions_per_human = env.n_humans, NUM_ACTIONS
        self.num_robot_actions, self.num_outcomes = env.num_robot_actions, env.num_outcomes
        self.goal_probs, self.goal_weights = goals.probs, goals.weights
        n_g = int(goals.probs.shape[1])
        self.goal_features = np.asarray(goals.cells).reshape(self.n_humans, n_g, -1).astype(np.float32)

    @property
    def feature_size(self) -> int:
        return self.env.height * self.env.width * self.env.num_channels + self.step_feature_size()

    def with_step_count(self, include: bool) -> "ModelWorld":
        return ModelWorld(self.env, self.walls, self.initial_states, self.paths, self.goals, self.horizon,
                          self.prior_beta, include)

    def params(self, map_id: Array) -> MultiGridParams:
        return MultiGridParams(walls=self.walls[map_id], max_steps=jnp.int32(self.horizon))

    def render(self, ws: ModelSituation) -> Array:
        """``uint8[24 H, 24 W, 3]`` picture of the situation on its map (:meth:`MultiGrid.render`);
        jittable."""
        return self.env.render(ws.state, self.params(ws.map_id))

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
        return self.step_features(self.env.encode(ws.state, self.params(ws.map_id)).reshape(-1), ws.state.step)


def task(name: str) -> MultiGridTask:
    """The fixed map ``name`` (``trivial`` or ``small``)."""
    if name == "trivial":
        return trivial_task()
    if name == "small":
        return small_task()
    raise ValueError(f"map={name!r} is invalid: a fixed map is one of {', '.join(ENUMERABLE)}")


@functools.lru_cache(maxsize=None)
def enumeration(name: str) -> tuple[StateSpace, TransitionTable]:
    """The enumerated configurations and exact transitions of a fixed map (cached)."""
    t = task(name)
    space = enumerate_states(t.env, t.params, t.initial_state)
    return space, transition_table(t.env, t.params, space)


def goal_set(name: str, goals: str = "map") -> GoalSet:
    """The goal set ``goals`` of fixed map ``name``: ``"map"`` (the phase-2 demo's, the task's
    own) or ``"original"`` (the original's ``phase2_backward_induction`` example: trivial map
    only, :data:`ORIGINAL_GOALS`)."""
    t = task(name)
    if goals == "map":
        return t.goals
    if goals == "original" and name in ORIGINAL_GOALS:
        return reach_cell_goals(t.env, [ORIGINAL_GOALS[name]])
    raise ValueError(f"goals={goals!r} is invalid for map={name!r}: must be one of "
                     f"{', '.join(g for g in GOAL_SETS if g == 'map' or name in ORIGINAL_GOALS)}")


@functools.lru_cache(maxsize=None)
def map_world(name: str, goals: str = "map", horizon: int = 0) -> FiniteWorld:
    """The :class:`~rljax.empo.world_model.FiniteWorld` of a fixed map with the goal set
    ``goals`` (:func:`goal_set`) and ``horizon`` steps (0: the map's ``max_steps``; at most that,
    since the enumeration holds the configurations reachable within it). Cached."""
    t = task(name)
    max_steps = int(t.params.max_steps)
    if not 0 <= horizon <= max_steps:
        raise ValueError(f"horizon={horizon} is invalid for map={name!r}: must be in [1, {max_steps}] (0: {max_steps})")
    space, table = enumeration(name)
    fw = finite_world(t.env, t.params, goal_set(name, goals), space, table)
    return fw.replace(horizon=horizon) if horizon else fw


@functools.lru_cache(maxsize=None)
def table_world(name: str, prior_beta: float = PRIOR_BETA, include_step_count: bool = True, prior: str = "heuristic",
                beta_h: float = BETA_H, gamma_h: float = 0.99, goals: str = "map", horizon: int = 0) -> TableWorld:
    """The enumerated world of a fixed map (cached) with the human prior ``prior``: the
    heuristic potential policy at ``prior_beta`` (the demo's) or the goal-conditioned Boltzmann
    prior by backward induction (:func:`rljax.empo.prior.boltzmann_prior`, inverse temperature
    ``beta_h``, discount ``gamma_h``, uniform beliefs about the robot; one policy per step
    count). ``goals`` and ``horizon``: see :func:`map_world`."""
    if prior not in PRIORS:
        raise ValueError(f"prior={prior!r} is invalid: must be one of {', '.join(PRIORS)}")
    if include_step_count is False:
        return table_world(name, prior_beta, True, prior, beta_h, gamma_h, goals, horizon).with_step_count(False)
    t = task(name)
    fw = map_world(name, goals, horizon)
    if prior == "boltzmann":
        policy = boltzmann_prior(fw, beta_h, gamma_h)[0]
    else:
        space, _ = enumeration(name)
        policy = heuristic_policy_table(t.env, space, t.params, goal_set(name, goals), path_table(t.params.walls),
                                        prior_beta)
    tw = TableWorld(fw, policy, include_step_count)
    tw.draw = functools.partial(draw_table_situation, name)
    return tw


def draw_table_situation(name: str, ws: Any) -> Array:
    """The picture of an enumerated situation ``(t, s)`` of fixed map ``name``: configuration
    ``s`` of its enumeration at step ``t`` (:meth:`MultiGrid.render`); jittable."""
    t = task(name)
    space, _ = enumeration(name)
    state = jax.tree.map(lambda x: x[ws.s], space.states).replace(step=ws.t)
    return t.env.render(state, t.params)


@functools.lru_cache(maxsize=None)
def model_world(name: str, prior_beta: float = PRIOR_BETA, include_step_count: bool = True, pool_size: int = 16,
                pool_seed: int = 0, ensemble: EnsembleConfig = EnsembleConfig()) -> ModelWorld:
    """A world stepped by ``MultiGrid.robot_action_successors``: a fixed map, or for
    ``"ensemble"`` a pool of ``pool_size`` random maps drawn from ``pool_seed`` (cached)."""
    if name == "ensemble":
        env = ensemble.env()
        keys = jax.random.split(jax.random.PRNGKey(pool_seed), pool_size)
        params, states = jax.vmap(lambda k: random_ensemble_map(k, ensemble))(keys)
        walls = np.asarray(params.walls)
        paths = [path_table(w) for w in walls]
        paths = jax.tree.map(lambda *xs: jnp.stack(xs), *paths)
        return ModelWorld(env, jnp.asarray(walls), states, paths, small_rectangle_goals(env), ensemble.max_steps,
                          prior_beta, include_step_count)
    t = task(name)
    states = jax.tree.map(lambda x: jnp.asarray(x)[None], t.initial_state)
    paths = jax.tree.map(lambda x: x[None], path_table(t.params.walls))
    return ModelWorld(t.env, jnp.asarray(t.params.walls)[None], states, paths, t.goals, int(t.params.max_steps),
                      prior_beta, include_step_count)


def world(name: str, dynamics: str = "auto", prior_beta: float = PRIOR_BETA, include_step_count: bool = True,
          table_options: dict | None = None, **ensemble_options: Any) -> TableWorld | ModelWorld:
    """The world a trainer acts in: ``dynamics="auto"`` is the enumerated :class:`TableWorld`
    on the fixed maps and a :class:`ModelWorld` on the ensemble; ``"model"`` forces stepping
    through ``robot_action_successors`` (same distribution, no enumeration). ``table_options``:
    keyword arguments of :func:`table_world` (prior, beta_h, gamma_h, goals, horizon), for the
    enumerated worlds only."""
    if name not in MAPS:
        raise ValueError(f"map={name!r} is invalid: must be one of {', '.join(MAPS)}")
    if dynamics not in DYNAMICS:
        raise ValueError(f"dynamics={dynamics!r} is invalid: must be one of {', '.join(DYNAMICS)}")
    if dynamics == "table" and name not in ENUMERABLE:
        raise ValueError(f"dynamics='table' is invalid for map={name!r}: only {', '.join(ENUMERABLE)} are enumerable")
    if name in ENUMERABLE and dynamics != "model":
        return table_world(name, prior_beta, include_step_count, **(table_options or {}))
    if table_options:
        raise ValueError(f"{', '.join(sorted(table_options))} need an enumerated world (map trivial or small, "
                         f"dynamics auto or table), got map={name!r}, dynamics={dynamics!r}")
    return model_world(name, prior_beta, include_step_count, **ensemble_options)
