"""Multigrid's phase-1 human prior for EMPO: the original's ``HeuristicPotentialPolicy`` (the
phase-2 demo uses ``beta = 1000``), which needs the grid's geometry.

A softmax over action advantages from a shortest-path potential
``Phi(p) = -cost(p -> goal) / ((W + H) * 50)``. ``cost`` walks one fixed BFS shortest path
(walls only) and sums the current passing cost of each cell after the start (agent 2, rock
50, block 2, empty 1); an unreachable goal has ``Phi = -1``, a cell in the goal ``Phi = 0``.
A human standing in its goal stays still with probability 1. Otherwise, with
``A_d = Phi(neighbour_d) - Phi(here)`` for walkable neighbours (in the grid, no wall, rock or
other agent) and ``-1`` for the others: still 0, forward ``A_dir``, left/right ``0.5 * A`` of
the direction they would face; if the best direction has ``A > 0`` and is not the facing one,
the turn towards it gets ``0.8 * A`` (``0.6 * A`` for both turns when it is behind).

Per single state (:func:`heuristic_policy`, for maps too large to enumerate) and as a table over
the enumerated states (:func:`heuristic_policy_table`, ``[S, n_h, G, 4]``: the ``human_policy``
that :mod:`rljax.empo`'s oracle and trainer take). Human ``h`` indexes ``env.human_indices``;
goal ``g`` indexes the task's :class:`~rljax.environments.multigrid.GoalSet`.
"""
from __future__ import annotations

from collections import deque
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rljax.environments.multigrid import (
    BLOCK,
    DIR_TO_VEC,
    FORWARD,
    LEFT,
    NUM_ACTIONS,
    RIGHT,
    ROCK,
    STILL,
    GoalSet,
    MultiGrid,
    MultiGridParams,
    MultiGridState,
    StateSpace,
)

Array = jax.Array

# Passing costs of the original's PathDistanceCalculator (doors, keys etc. are not in the subset).
COST_EMPTY, COST_AGENT, COST_BLOCK, COST_ROCK = 1.0, 2.0, 2.0, 50.0
MAX_FINITE_COST = 50.0


@struct.dataclass
class PathTable:
    """Fixed BFS shortest paths between the non-wall cells of one map (cells flattened ``y*W+x``).

    ``on_path[src, dst, c]`` is 1 where cell ``c`` lies on the path after ``src``;
    ``reachable[src, dst]`` says whether a path exists (always for ``src == dst`` off walls).
    """

    on_path: Array  # float32[C, C, C]
    reachable: Array  # bool[C, C]


def path_table(walls) -> PathTable:
    """BFS from every free cell, neighbours tried in the original's order (S, N, E, W); the
    first path found to a cell is kept. Host-side numpy: the walls must be concrete."""
    walls = np.asarray(walls, bool)
    h, w = walls.shape
    c = h * w
    on_path = np.zeros((c, c, c), np.float32)
    reachable = np.zeros((c, c), bool)
    for sy in range(h):
        for sx in range(w):
            if walls[sy, sx]:
                continue
            src = sy * w + sx
            paths = {(sx, sy): [(sx, sy)]}
            queue = deque([(sx, sy)])
            while queue:
                x, y = queue.popleft()
                for dx, dy in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                    nx, ny = x + dx, y + dy
                    if 0 <= nx < w and 0 <= ny < h and not walls[ny, nx] and (nx, ny) not in paths:
                        paths[(nx, ny)] = paths[(x, y)] + [(nx, ny)]
                        queue.append((nx, ny))
            for (tx, ty), path in paths.items():
                dst = ty * w + tx
                reachable[src, dst] = True
                for px, py in path[1:]:
                    on_path[src, dst, py * w + px] = 1.0
    return PathTable(on_path=jnp.asarray(on_path), reachable=jnp.asarray(reachable))


def heuristic_policy(
    env: MultiGrid,
    state: MultiGridState,
    params: MultiGridParams,
    goals: GoalSet,
    paths: PathTable,
    beta: float = 1000.0,
) -> Array:
    """``float32[n_h, G, 4]``: the heuristic potential policy of every human for every goal."""
    h, w = env.height, env.width
    max_cost = (w + h) * MAX_FINITE_COST
    occupied = jnp.zeros((h, w), bool).at[state.agent_pos[:, 1], state.agent_pos[:, 0]].set(True)
    cost = jnp.where(
        occupied,
        COST_AGENT,
        jnp.where(state.objects == ROCK, COST_ROCK, jnp.where(state.objects == BLOCK, COST_BLOCK, COST_EMPTY)),
    ).reshape(-1)
    path_cost = paths.on_path @ cost  # [C, C]
    path_cost = jnp.where(paths.reachable, path_cost, jnp.inf)
    goal_cells = goals.cells.reshape(env.n_humans, goals.cells.shape[1], -1)  # [n_h, G, C]

    def potential(cell, mask):  # cell: flat index; mask: [G, C] -> [G]
        best = jnp.min(jnp.where(mask, path_cost[cell][None, :], jnp.inf), axis=-1)
        phi = jnp.where(jnp.isinf(best), -1.0, -best / max_cost)
        return jnp.where(mask[:, cell], 0.0, phi)

    def one_human(h_idx, agent):
        x, y = state.agent_pos[agent, 0], state.agent_pos[agent, 1]
        d = state.agent_dir[agent]
        mask = goal_cells[h_idx]
        here = y * w + x
        phi_here = potential(here, mask)  # [G]
        nb = jnp.stack([x, y]) + jnp.asarray(DIR_TO_VEC)  # [4, 2]
        inside = (nb[:, 0] >= 0) & (nb[:, 0] < w) & (nb[:, 1] >= 0) & (nb[:, 1] < h)
        nx, ny = jnp.clip(nb[:, 0], 0, w - 1), jnp.clip(nb[:, 1], 0, h - 1)
        others = jnp.arange(env.n_agents) != agent
        other_at = jnp.any(others[None, :] & jnp.all(state.agent_pos[None, :, :] == nb[:, None, :], -1), -1)
        walkable = inside & ~params.walls[ny, nx] & (state.objects[ny, nx] != ROCK) & ~other_at
        phi_nb = jax.vmap(lambda c: potential(c, mask))(ny * w + nx)  # [4, G]
        adv = jnp.where(walkable[:, None], phi_nb - phi_here[None, :], -1.0).T  # [G, 4 directions]
        left_d, right_d = (d + 3) % 4, (d + 1) % 4
        a_fwd, a_left, a_right = adv[:, d], 0.5 * adv[:, left_d], 0.5 * adv[:, right_d]
        best = jnp.argmax(adv, axis=-1)  # first maximum, as the original's max over a dict
        a_best = jnp.take_along_axis(adv, best[:, None], -1)[:, 0]
        diff = (best - d) % 4
        turn = (best != d) & (a_best > 0)
        a_right = jnp.where(turn & (diff == 1), 0.8 * a_best, jnp.where(turn & (diff == 2), 0.6 * a_best, a_right))
        a_left = jnp.where(turn & (diff == 3), 0.8 * a_best, jnp.where(turn & (diff == 2), 0.6 * a_best, a_left))
        adv_actions = jnp.zeros((mask.shape[0], NUM_ACTIONS))
        adv_actions = adv_actions.at[:, LEFT].set(a_left).at[:, RIGHT].set(a_right).at[:, FORWARD].set(a_fwd)
        probs = jax.nn.softmax(beta * adv_actions, axis=-1)
        at_goal = mask[:, here]
        return jnp.where(at_goal[:, None], jax.nn.one_hot(STILL, NUM_ACTIONS), probs)

    return jnp.stack([one_human(hi, a) for hi, a in enumerate(env.human_indices)])


@partial(jax.jit, static_argnames=("env",))
def heuristic_policy_table(
    env: MultiGrid,
    space: StateSpace,
    params: MultiGridParams,
    goals: GoalSet,
    paths: PathTable,
    beta: float = 1000.0,
) -> Array:
    """The heuristic policy of every enumerated state: ``float32[S, n_h, G, 4]``."""
    return jax.vmap(lambda st: heuristic_policy(env, st, params, goals, paths, beta))(space.states)
