"""Phase 1 of EMPO: the human policy prior ``pi_h(a | s, g)``.

Two priors, both as arrays over enumerated states (and the heuristic also per single state,
for maps too large to enumerate):

* :func:`boltzmann_prior`: goal-conditioned Boltzmann policies by backward induction over the
  time layers of the enumerated states. For a goal achieved in ``s``: ``V_h = 1`` and a uniform
  policy; otherwise ``Q_h(a) = gamma_h * E_{a_-h ~ mu_-h} E_{s'}[V_h(s', g)]``,
  ``pi_h = softmax(beta_h * (Q_h - max Q_h))``, ``V_h = sum_a pi_h Q_h``; at the terminal layer
  ``V_h = 1[achieved]``. ``mu_-h`` (the believed policy of every other agent, robots included)
  is uniform unless given.
* :func:`heuristic_policy`: the original's ``HeuristicPotentialPolicy`` (the phase-2 demo uses
  ``beta = 1000``): a softmax over action advantages from a shortest-path potential
  ``Phi(p) = -cost(p -> goal) / ((W + H) * 50)``. ``cost`` walks one fixed BFS shortest path
  (walls only) and sums the current passing cost of each cell after the start (agent 2, rock
  50, block 2, empty 1); an unreachable goal has ``Phi = -1``, a cell in the goal ``Phi = 0``.
  A human standing in its goal stays still with probability 1. Otherwise, with
  ``A_d = Phi(neighbour_d) - Phi(here)`` for walkable neighbours (in the grid, no wall, rock or
  other agent) and ``-1`` for the others: still 0, forward ``A_dir``, left/right ``0.5 * A`` of
  the direction they would face; if the best direction has ``A > 0`` and is not the facing one,
  the turn towards it gets ``0.8 * A`` (``0.6 * A`` for both turns when it is behind).

Array conventions: human ``h`` indexes ``env.human_indices``; goal ``g`` indexes the task's
:class:`~environments.multigrid.GoalSet`; a policy table is ``[S, n_humans, G, 4]``
(time-invariant) or ``[T, S, n_humans, G, 4]`` (layer ``t`` = step count ``t``).
"""
from __future__ import annotations

from collections import deque
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from environments.multigrid import (
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
    TransitionTable,
)

Array = jax.Array

# Passing costs of the original's PathDistanceCalculator (doors, keys etc. are not in the subset).
COST_EMPTY, COST_AGENT, COST_BLOCK, COST_ROCK = 1.0, 2.0, 2.0, 50.0
MAX_FINITE_COST = 50.0


def goal_marginal(policy: Array, goal_probs: Array) -> Array:
    """``mu_h(a | s) = sum_g p_h(g) pi_h(a | s, g)``: ``[..., n_h, G, A] -> [..., n_h, A]``."""
    return jnp.einsum("...hga,hg->...ha", policy, goal_probs)


# ----------------------------------------------------------------------------------------
# Tabular goal-conditioned Boltzmann prior
# ----------------------------------------------------------------------------------------
@partial(jax.jit, static_argnames=("env", "horizon"))
def boltzmann_prior(
    env: MultiGrid,
    table: TransitionTable,
    achieved: Array,
    horizon: int,
    beta_h: float = 10.0,
    gamma_h: float = 0.99,
    others_policy: Array | None = None,
) -> tuple[Array, Array]:
    """Backward induction of the goal-conditioned Boltzmann prior.

    Args:
        env: the map's structure (static).
        table: exact transitions over the ``S`` enumerated states.
        achieved: ``bool[S, n_h, G]``.
        horizon: the map's ``max_steps`` ``T`` (layer ``T`` is terminal).
        beta_h: inverse temperature (``jnp.inf`` gives the uniform policy over argmax actions).
        gamma_h: discount.
        others_policy: ``float[S, n_agents, 4]`` believed action distribution of every agent
            (the row of the human being solved is ignored); ``None`` is uniform.

    Returns:
        ``(policy[T, S, n_h, G, 4], values[T + 1, S, n_h, G])``.
    """
    s_count, n = achieved.shape[0], env.n_agents
    ach = achieved.astype(jnp.float32)
    mu = jnp.full((s_count, n, NUM_ACTIONS), 1.0 / NUM_ACTIONS) if others_policy is None else others_policy
    beta_h = jnp.asarray(beta_h, jnp.float32)

    def layer(v_next, _):
        ev = jnp.einsum("sak,sakhg->sahg", table.next_prob, v_next[table.next_idx])  # [S, A, n_h, G]
        ev = ev.reshape(s_count, *([NUM_ACTIONS] * n), env.n_humans, ev.shape[-1])
        pols, vals = [], []
        for h, agent in enumerate(env.human_indices):
            x = ev[..., h, :]  # [S, 4 (agent 0), ..., 4 (agent n-1), G]
            for j in reversed(range(n)):
                if j == agent:
                    continue
                shape = [s_count] + [1] * n + [1]
                shape[1 + j] = NUM_ACTIONS
                x = (x * mu[:, j].reshape(shape)).sum(axis=1 + j, keepdims=True)
            q = gamma_h * jnp.moveaxis(x.reshape(s_count, NUM_ACTIONS, -1), 1, -1)  # [S, G, 4]
            z = q - q.max(-1, keepdims=True)
            greedy = (z >= 0).astype(jnp.float32)
            greedy = greedy / greedy.sum(-1, keepdims=True)
            p = jnp.where(jnp.isinf(beta_h), greedy, jax.nn.softmax(jnp.where(jnp.isinf(beta_h), 0.0, beta_h) * z, -1))
            v = (p * q).sum(-1)
            done = ach[:, h, :, None] > 0
            pols.append(jnp.where(done, 1.0 / NUM_ACTIONS, p))
            vals.append(jnp.where(done[..., 0], 1.0, v))
        v = jnp.stack(vals, 1)
        return v, (jnp.stack(pols, 1), v)

    _, (policy, values) = jax.lax.scan(layer, ach, None, length=horizon, reverse=True)
    return policy, jnp.concatenate([values, ach[None]], axis=0)


# ----------------------------------------------------------------------------------------
# Heuristic potential prior
# ----------------------------------------------------------------------------------------
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
