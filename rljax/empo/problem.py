"""Phase-2 problems by map name: the worlds the trainer acts in and the exact oracle.

``trivial`` and ``small`` are the phase-2 demo's fixed maps (enumerable: 256 and 10384
configurations); ``ensemble`` is a pool of random 7x7 maps with 2 humans and 2 robots
(:class:`~environments.multigrid.EnsembleConfig`) and the small-rectangle goals of the
original's ``SmallGoalSampler``. The human prior is the demo's heuristic potential policy.

Enumerations are cached per process (the trivial map's BFS takes a few seconds including its
compilation), so every runner, test and command of one process shares them.
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from environments.multigrid import (
    EnsembleConfig,
    MultiGridTask,
    achieved_table,
    enumerate_states,
    random_ensemble_map,
    small_rectangle_goals,
    small_task,
    transition_table,
    trivial_task,
)
from rljax.empo.oracle import OracleResult, solve_phase2
from rljax.empo.prior import heuristic_policy_table, path_table
from rljax.empo.world import ModelWorld, TableWorld

MAPS = ("trivial", "small", "ensemble")
ENUMERABLE = ("trivial", "small")
DYNAMICS = ("auto", "table", "model")
PRIOR_BETA = 1000.0  # the demo's HeuristicPotentialPolicy


def task(name: str) -> MultiGridTask:
    if name == "trivial":
        return trivial_task()
    if name == "small":
        return small_task()
    raise ValueError(f"map={name!r} is invalid: a fixed map is one of {', '.join(ENUMERABLE)}")


@functools.lru_cache(maxsize=None)
def table_world(name: str, prior_beta: float = PRIOR_BETA, include_step_count: bool = True) -> TableWorld:
    """The enumerated world of a fixed map (cached)."""
    if include_step_count is False:
        return table_world(name, prior_beta, True).with_step_count(False)
    t = task(name)
    space = enumerate_states(t.env, t.params, t.initial_state)
    table = transition_table(t.env, t.params, space)
    ach = achieved_table(t.env, space, t.goals)
    prior = heuristic_policy_table(t.env, space, t.params, t.goals, path_table(t.params.walls), prior_beta)
    return TableWorld(t.env, t.params, t.goals, space, table, ach, prior, include_step_count)


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
          **ensemble_options: Any):
    """The world a trainer acts in: ``dynamics="auto"`` is the enumerated :class:`TableWorld`
    on the fixed maps and a :class:`ModelWorld` on the ensemble; ``"model"`` forces stepping
    through ``robot_action_successors`` (same distribution, no enumeration)."""
    if name not in MAPS:
        raise ValueError(f"map={name!r} is invalid: must be one of {', '.join(MAPS)}")
    if dynamics not in DYNAMICS:
        raise ValueError(f"dynamics={dynamics!r} is invalid: must be one of {', '.join(DYNAMICS)}")
    if dynamics == "table" and name not in ENUMERABLE:
        raise ValueError(f"dynamics='table' is invalid for map={name!r}: only {', '.join(ENUMERABLE)} are enumerable")
    if name in ENUMERABLE and dynamics != "model":
        return table_world(name, prior_beta, include_step_count)
    return model_world(name, prior_beta, include_step_count, **ensemble_options)


def solve_oracle(w: TableWorld, beta_r: Any = 10.0, gamma_r: Any = 0.99, gamma_h: Any = 0.99, zeta: Any = 2.0,
                 xi: Any = 1.0, eta: Any = 1.1, terminal_v_r: float = -1e-10, u_r_sum: bool = False,
                 robot_policy: Any = None, x_h_min: Any = 0.0) -> OracleResult:
    """Exact phase 2 on an enumerated world (:func:`rljax.empo.oracle.solve_phase2`); with
    ``robot_policy[T, S, A_r]`` the exact evaluation of that policy; ``x_h_min``: the clamp of
    ``X_h`` before ``X_h^(-xi)`` (0: none). Traceable."""
    return solve_phase2(w.env, w.table, w.achieved_table, w.goals.probs, w.goals.weights, w.prior_table, w.horizon,
                        beta_r=beta_r, gamma_r=gamma_r, gamma_h=gamma_h, zeta=zeta, xi=xi, eta=eta,
                        terminal_v_r=terminal_v_r, u_r_sum=u_r_sum, robot_policy=robot_policy, x_h_min=x_h_min)
