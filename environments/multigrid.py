"""The EMPO multigrid subset as a pure JAX model with an exact transition distribution.

Rules (the vendored ``gym_multigrid`` that EMPO phase 2 uses, restricted to the subset EMPO needs):

* Cells hold walls (static, in :class:`MultiGridParams`) and movable objects (in the state):
  rocks, pushable by robots only, and blocks, pushable by every agent. Doors, keys, unsteady
  ground and magic walls are not part of this subset.
* Agents have a position and an orientation (0 east/+x, 1 south/+y, 2 west, 3 north; ``y``
  grows downward, positions are ``(x, y)``) and use SmallActions: 0 still, 1 turn left,
  2 turn right, 3 forward. Humans are yellow (``Ay``), robots grey (``Ae``).
* Forward moves into an empty cell. Into a rock or block it pushes the whole chain of
  consecutive rocks/blocks one cell if the cell behind the chain is free (no wall, object or
  agent) and the agent may push every rock in the chain; otherwise nothing happens.
* No agent may move (or push an object) into a cell that another agent occupied at the start
  of the step: one can only enter a cell the step after it was vacated. This is the original's
  ``_initial_agent_positions`` rule; it makes "moving into a cell that another agent is
  leaving" blocked in either execution order.
* The only randomness is the execution order: each step the agents act one after another in a
  uniformly random order (all ``n!`` permutations equally likely; agents choosing "still" do
  nothing, so this equals the original's uniform order over the active agents). Conflicts go
  to the first mover, e.g. two agents moving into the same empty cell: 1/2 each.
* The step count grows by one per step; a state with ``step >= max_steps`` is terminal.

The state (:class:`MultiGridState`) holds only fixed-shape arrays. Movable objects are a grid
``objects[H, W]`` (0 empty, 1 rock, 2 block) rather than position lists: rocks are
interchangeable, so the grid is canonical by construction, and maps of one size with different
object counts (the random ensemble) share one shape and one compiled program.

Joint actions are flat integers over agents in agent order, agent 0 most significant:
``joint = sum_i a_i * 4**(n-1-i)`` (row-major over a ``[4] * n`` array). Robot-only and
human-only joint actions use the same convention over the robots (humans) in agent order;
``MultiGrid.joint_action_of[a_r, a_h]`` combines them.

Exact model for planning: :meth:`MultiGrid.successors` returns all ``K = n!`` outcomes with
probability ``1/K`` each (duplicates NOT merged), :func:`enumerate_states` finds the reachable
configurations by BFS over all joint actions, :func:`transition_table` gives
``next_idx[S, A, K]``/``next_prob[S, A, K]`` over them and :func:`transition_tensor` the dense
``P[S, A, S']`` (duplicates merged by summation). :func:`finite_world` hands an enumerated map
to EMPO (:mod:`rljax.empo` knows it only as a :class:`~rljax.empo.world_model.FiniteWorld`).

Enumerated states are *configurations*: the step count is not part of them (it is set to 0 in
``StateSpace.states``). The dynamics do not depend on the step count, so one table serves
every time layer; planners index values by ``(t, s)`` and treat ``t == max_steps`` as terminal.
The trivial map has exactly 256 reachable configurations, the count the original reports for
its step-count-free lookup tables.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rljax.empo.world_model import FiniteWorld
from rljax.environments.multigrid_render import render_grid

Array = jax.Array

# Object grid values.
EMPTY, ROCK, BLOCK = 0, 1, 2
# SmallActions.
STILL, LEFT, RIGHT, FORWARD = 0, 1, 2, 3
NUM_ACTIONS = 4
ACTION_NAMES = ("still", "left", "right", "forward")
# Orientation -> (dx, dy).
DIR_TO_VEC = np.array([(1, 0), (0, 1), (-1, 0), (0, -1)], np.int32)
HUMAN, ROBOT = "human", "robot"


@struct.dataclass
class MultiGridParams:
    """Per-map parameters (vmappable: every instance of one size may have its own map)."""

    walls: Array  # bool[H, W]
    max_steps: Array  # int32


@struct.dataclass
class MultiGridState:
    step: Array  # int32 step count
    agent_pos: Array  # int32[n_agents, 2], (x, y)
    agent_dir: Array  # int32[n_agents], 0 east, 1 south, 2 west, 3 north
    objects: Array  # int8[H, W], EMPTY / ROCK / BLOCK


@struct.dataclass
class GoalSet:
    """Reach-cell (or reach-region) goals per human, as cell masks.

    Human ``h`` indexes ``MultiGrid.human_indices`` (humans in agent order). Goal ``g`` of human
    ``h`` is achieved when that human stands on a cell of ``cells[h, g]``. ``probs[h]`` is the
    goal sampling distribution (sums to 1; padding goals have probability 0) and ``weights[h, g]``
    the weight ``w`` used in ``X_h = E_g[w * V_h^e ** zeta]``.
    """

    cells: Array  # bool[n_humans, G, H, W]
    probs: Array  # float32[n_humans, G]
    weights: Array  # float32[n_humans, G]


class MultiGrid:
    """Static structure of a family of maps: size and agent roles (which fix every shape).

    Args:
        height, width: grid size in cells, walls included.
        roles: one of ``"human"``/``"robot"`` per agent, in agent order.
    """

    def __init__(self, height: int, width: int, roles: Sequence[str]):
        roles = tuple(roles)
        if height < 3 or width < 3:
            raise ValueError(f"multigrid: height={height}, width={width} is invalid: both must be >= 3")
        if not roles or any(r not in (HUMAN, ROBOT) for r in roles):
            raise ValueError(f"multigrid: roles={roles!r} is invalid: need one or more of 'human'/'robot'")
        if len(roles) > 5:
            raise ValueError(f"multigrid: roles={roles!r} is invalid: at most 5 agents (n! execution orders)")
        self.height, self.width, self.roles = height, width, roles
        self.n_agents = len(roles)
        self.human_indices = tuple(i for i, r in enumerate(roles) if r == HUMAN)
        self.robot_indices = tuple(i for i, r in enumerate(roles) if r == ROBOT)
        self.n_humans, self.n_robots = len(self.human_indices), len(self.robot_indices)
        self.can_push_rocks = np.array([r == ROBOT for r in roles])
        self.num_actions = NUM_ACTIONS
        self.num_joint_actions = NUM_ACTIONS**self.n_agents
        self.num_robot_actions = NUM_ACTIONS**self.n_robots
        self.num_human_actions = NUM_ACTIONS**self.n_humans
        # Every execution order of all agents (still agents are no-ops, so this is uniform over
        # the orders of the active agents too).
        self.orders = np.array(list(itertools.permutations(range(self.n_agents))), np.int32)
        self.num_outcomes = len(self.orders)
        # joint_action_of[a_r, a_h]: flat joint action of a robot and a human joint action.
        per_agent = np.zeros((self.num_robot_actions, self.num_human_actions, self.n_agents), np.int64)
        for ar in range(self.num_robot_actions):
            for k, i in enumerate(self.robot_indices):
                per_agent[ar, :, i] = _digits(ar, self.n_robots)[k]
        for ah in range(self.num_human_actions):
            for k, i in enumerate(self.human_indices):
                per_agent[:, ah, i] = _digits(ah, self.n_humans)[k]
        self.joint_action_of = (per_agent * NUM_ACTIONS ** np.arange(self.n_agents - 1, -1, -1)).sum(-1).astype(np.int32)
        ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
        self._cell_x, self._cell_y = xs.astype(np.int32), ys.astype(np.int32)
        self._ray = max(height, width)

    # -- picture ---------------------------------------------------------------------------
    render_jittable = True

    def render(self, state: MultiGridState, params: MultiGridParams) -> Array:
        """``uint8[24 * height, 24 * width, 3]``: walls, rocks, blocks and the agents as
        triangles pointing their way, humans yellow, robots blue-grey
        (:func:`rljax.environments.multigrid_render.render_grid`). Jittable."""
        return render_grid(state, params.walls, tuple(r == HUMAN for r in self.roles), ROCK, BLOCK)

    # -- actions ---------------------------------------------------------------------------
    def joint_action(self, actions: Any) -> Array:
        """Flat joint action of per-agent actions ``[..., n_agents]``."""
        w = jnp.asarray(NUM_ACTIONS ** np.arange(self.n_agents - 1, -1, -1), jnp.int32)
        return (jnp.asarray(actions, jnp.int32) * w).sum(-1)

    def agent_actions(self, joint_action: Any) -> Array:
        """Per-agent actions ``int32[..., n_agents]`` of a flat joint action."""
        j = jnp.asarray(joint_action, jnp.int32)[..., None]
        w = jnp.asarray(NUM_ACTIONS ** np.arange(self.n_agents - 1, -1, -1), jnp.int32)
        return (j // w) % NUM_ACTIONS

    # -- dynamics --------------------------------------------------------------------------
    def is_terminal(self, state: MultiGridState, params: MultiGridParams) -> Array:
        return state.step >= params.max_steps

    def successors(
        self, state: MultiGridState, joint_action: Any, params: MultiGridParams
    ) -> tuple[Array, MultiGridState]:
        """All outcomes of one step: ``(probs[K], next_states)`` with a leading ``K = n!`` axis.

        Outcome ``k`` executes the agents in the order ``self.orders[k]``; every outcome has
        probability ``1/K`` and equal outcomes are NOT merged (sum ``probs`` over equal states
        for the distribution). A terminal state is absorbing (every outcome is the state itself).
        """
        nxt = jax.vmap(lambda o: self.execute(state, self.agent_actions(joint_action), o, params))(
            jnp.asarray(self.orders)
        )
        probs = jnp.full((self.num_outcomes,), 1.0 / self.num_outcomes, jnp.float32)
        return probs, nxt

    def robot_action_successors(
        self, state: MultiGridState, human_joint_action: Any, params: MultiGridParams
    ) -> tuple[Array, MultiGridState]:
        """Successors under every robot joint action with the humans' joint action fixed (the
        model-based targets of phase 2): ``(probs[A_r, K], next_states)`` with leaves ``[A_r, K, ...]``."""
        joints = jnp.asarray(self.joint_action_of)[:, human_joint_action]
        return jax.vmap(lambda a: self.successors(state, a, params))(joints)

    def step(self, key: Array, state: MultiGridState, joint_action: Any, params: MultiGridParams) -> MultiGridState:
        """Samples one outcome of :meth:`successors` (a uniformly drawn execution order)."""
        k = jax.random.randint(key, (), 0, self.num_outcomes)
        return self.execute(state, self.agent_actions(joint_action), jnp.asarray(self.orders)[k], params)

    def execute(self, state: MultiGridState, actions: Array, order: Array, params: MultiGridParams) -> MultiGridState:
        """One step with a given execution order: agents ``order[0], order[1], ...`` act one after
        another (``actions``: ``int32[n_agents]``; ``order``: a permutation of agent indices)."""
        h, w = self.height, self.width
        start = jnp.zeros((h, w), bool).at[state.agent_pos[:, 1], state.agent_pos[:, 0]].set(True)
        push_rocks = jnp.asarray(self.can_push_rocks)

        def act(j, carry):  # agent order[j] acts on the world left by the agents before it
            pos, dirs, objects = carry
            i = order[j]
            a = actions[i]
            d = dirs[i]
            dvec = jnp.asarray(DIR_TO_VEC)[d]
            f = pos[i] + dvec
            others = jnp.arange(self.n_agents) != i
            agent_at = lambda c: jnp.any(others & jnp.all(pos == c, axis=-1))  # noqa: E731
            f_ok = _in_bounds(f, h, w)
            fx, fy = jnp.clip(f[0], 0, w - 1), jnp.clip(f[1], 0, h - 1)
            blocked = ~f_ok | params.walls[fy, fx] | start[fy, fx]
            has_object = objects[fy, fx] != EMPTY
            # The chain of consecutive objects starting at f, and the first cell after it.
            ks = jnp.arange(self._ray)
            ray = f[None, :] + ks[:, None] * dvec[None, :]
            ray_ok = _in_bounds(ray, h, w)
            rx, ry = jnp.clip(ray[:, 0], 0, w - 1), jnp.clip(ray[:, 1], 0, h - 1)
            ray_obj = jnp.where(ray_ok, objects[ry, rx], EMPTY)
            m = jnp.argmin(ray_obj != EMPTY)  # chain length (first non-object on the ray)
            end = f + m * dvec
            ex, ey = jnp.clip(end[0], 0, w - 1), jnp.clip(end[1], 0, h - 1)
            end_free = _in_bounds(end, h, w) & ~params.walls[ey, ex] & ~start[ey, ex] & ~agent_at(end)
            rock_in_chain = jnp.any((ray_obj == ROCK) & (ks < m))
            can_push = end_free & (push_rocks[i] | ~rock_in_chain)
            forward = a == FORWARD
            push = forward & ~blocked & has_object & can_push
            move = forward & ~blocked & ((~has_object & ~agent_at(f)) | push)
            # Shift the chain by one cell: cell f + k*d (1 <= k <= m) takes the object of k-1.
            rel_x, rel_y = self._cell_x - f[0], self._cell_y - f[1]
            kk = rel_x * dvec[0] + rel_y * dvec[1]
            on_ray = (rel_x == kk * dvec[0]) & (rel_y == kk * dvec[1]) & (kk >= 0) & (kk <= m)
            shifted = jnp.where(kk == 0, EMPTY, ray_obj[jnp.clip(kk - 1, 0, self._ray - 1)]).astype(objects.dtype)
            objects = jnp.where(push & on_ray, shifted, objects)
            pos = pos.at[i].set(jnp.where(move, f, pos[i]))
            new_dir = jnp.where(a == LEFT, (d + 3) % 4, jnp.where(a == RIGHT, (d + 1) % 4, d))
            return pos, dirs.at[i].set(new_dir), objects

        pos, dirs, objects = jax.lax.fori_loop(
            0, self.n_agents, act, (state.agent_pos, state.agent_dir, state.objects)
        )
        nxt = MultiGridState(step=state.step + 1, agent_pos=pos, agent_dir=dirs, objects=objects)
        return jax.tree.map(lambda a, b: jnp.where(self.is_terminal(state, params), a, b), state, nxt)

    @property
    def _all_successors_jit(self):
        """Cached jit of successors under all joint actions for a batch of states."""
        if not hasattr(self, "_all_succ"):

            def run(states, params):
                acts = jnp.arange(self.num_joint_actions)
                per_state = lambda s: jax.vmap(lambda a: self.successors(s, a, params)[1])(acts)  # noqa: E731
                return jax.vmap(per_state)(states)

            self._all_succ = jax.jit(run)
        return self._all_succ

    # -- goals and encodings ---------------------------------------------------------------
    def achieved(self, state: MultiGridState, goals: GoalSet) -> Array:
        """``bool[n_humans, G]``: human ``h`` stands on a cell of goal ``g``."""
        hp = state.agent_pos[jnp.asarray(self.human_indices)]  # [n_h, 2]
        return jax.vmap(lambda c, p: c[:, p[1], p[0]])(goals.cells, hp)

    @property
    def num_channels(self) -> int:
        return 3 + 5 * self.n_agents

    def encode(self, state: MultiGridState, params: MultiGridParams) -> Array:
        """A ``float32[H, W, 3 + 5 n]`` one-hot encoding for networks (step count not included).

        Channels: wall, rock, block, then per agent ``i``: presence and its orientation one-hot
        (4 channels) on its cell.
        """
        base = jnp.stack(
            [params.walls, state.objects == ROCK, state.objects == BLOCK], axis=-1
        ).astype(jnp.float32)
        per = jnp.zeros((self.height, self.width, self.n_agents, 5), jnp.float32)
        idx = jnp.arange(self.n_agents)
        per = per.at[state.agent_pos[:, 1], state.agent_pos[:, 0], idx, 0].set(1.0)
        per = per.at[state.agent_pos[:, 1], state.agent_pos[:, 0], idx, 1 + state.agent_dir].set(1.0)
        return jnp.concatenate([base, per.reshape(self.height, self.width, -1)], axis=-1)


def _digits(x: int, n: int) -> np.ndarray:
    """Base-4 digits of ``x`` over ``n`` places, most significant first."""
    return np.array([(x // NUM_ACTIONS ** (n - 1 - i)) % NUM_ACTIONS for i in range(n)], np.int64)


def _in_bounds(p: Array, h: int, w: int) -> Array:
    return (p[..., 0] >= 0) & (p[..., 0] < w) & (p[..., 1] >= 0) & (p[..., 1] < h)


# ----------------------------------------------------------------------------------------
# Maps
# ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MultiGridTask:
    """A concrete map: its structure, parameters, initial state and goals."""

    name: str
    env: MultiGrid
    params: MultiGridParams
    initial_state: MultiGridState
    goals: GoalSet


def parse_map(text: str, max_steps: int) -> tuple[MultiGrid, MultiGridParams, MultiGridState]:
    """Parses the original's two-character ASCII layout (cells separated by whitespace).

    ``..`` empty, ``W?`` wall (any colour), ``Ro`` rock, ``Bl`` block, ``Ay`` human (yellow
    agent), ``Ae`` robot (grey agent). Agents are numbered in row-major order of appearance
    and face east. Any other code raises ``ValueError`` naming the cell.
    """
    if not isinstance(max_steps, (int, np.integer)) or isinstance(max_steps, bool) or max_steps < 1:
        raise ValueError(f"multigrid map: max_steps={max_steps!r} is invalid: must be an integer >= 1")
    rows = ["".join(r.split()) for r in text.strip().splitlines() if r.strip()]
    if not rows:
        raise ValueError("multigrid map: text is empty")
    for y, r in enumerate(rows):
        if len(r) % 2:
            raise ValueError(f"multigrid map: row {y} has odd length {len(r)} (two characters per cell)")
    width, height = len(rows[0]) // 2, len(rows)
    walls = np.zeros((height, width), bool)
    objects = np.zeros((height, width), np.int8)
    roles, positions = [], []
    for y, r in enumerate(rows):
        if len(r) // 2 != width:
            raise ValueError(f"multigrid map: row {y} has width {len(r) // 2}, expected {width}")
        for x in range(width):
            c = r[2 * x : 2 * x + 2]
            if c == "..":
                continue
            if c[0] == "W":
                walls[y, x] = True
            elif c == "Ro":
                objects[y, x] = ROCK
            elif c == "Bl":
                objects[y, x] = BLOCK
            elif c in ("Ay", "Ae"):
                roles.append(HUMAN if c == "Ay" else ROBOT)
                positions.append((x, y))
            else:
                raise ValueError(f"multigrid map: cell {c!r} at (x={x}, y={y}) is not in the subset (.., W?, Ro, Bl, Ay, Ae)")
    env = MultiGrid(height, width, roles)
    params = MultiGridParams(walls=jnp.asarray(walls), max_steps=jnp.int32(max_steps))
    state = MultiGridState(
        step=jnp.int32(0),
        agent_pos=jnp.asarray(np.array(positions, np.int32).reshape(-1, 2)),
        agent_dir=jnp.zeros((len(roles),), jnp.int32),
        objects=jnp.asarray(objects),
    )
    return env, params, state


def reach_cell_goals(
    env: MultiGrid,
    cells: Sequence[Sequence[tuple[int, int]]],
    probs: Sequence[Sequence[float]] | None = None,
    weights: Sequence[Sequence[float]] | None = None,
) -> GoalSet:
    """``ReachCellGoal`` sets: ``cells[h]`` lists the ``(x, y)`` targets of human ``h``.

    ``probs[h]`` (normalised; uniform if omitted) and ``weights[h]`` (1 if omitted). Humans with
    fewer goals are padded with never-achievable goals of probability 0.
    """
    return reach_region_goals(env, [[[c] for c in per_h] for per_h in cells], probs, weights)


def reach_region_goals(
    env: MultiGrid,
    regions: Sequence[Sequence[Sequence[tuple[int, int]]]],
    probs: Sequence[Sequence[float]] | None = None,
    weights: Sequence[Sequence[float]] | None = None,
) -> GoalSet:
    """Goals achieved on any cell of a region; ``regions[h][g]`` lists ``(x, y)`` cells."""
    if len(regions) != env.n_humans:
        raise ValueError(f"goals: len(regions)={len(regions)} is invalid: the map has {env.n_humans} humans")
    g_max = max(len(r) for r in regions)
    mask = np.zeros((env.n_humans, g_max, env.height, env.width), bool)
    p = np.zeros((env.n_humans, g_max), np.float64)
    wts = np.ones((env.n_humans, g_max), np.float64)
    for h, per_h in enumerate(regions):
        if not per_h:
            raise ValueError(f"goals: human {h} has no goals")
        for g, region in enumerate(per_h):
            for x, y in region:
                if not (0 <= x < env.width and 0 <= y < env.height):
                    raise ValueError(f"goals: cell (x={x}, y={y}) of human {h} goal {g} is outside the grid")
                mask[h, g, y, x] = True
        ph = np.ones(len(per_h)) if probs is None else np.asarray(probs[h], np.float64)
        if ph.shape != (len(per_h),) or np.any(ph < 0) or ph.sum() <= 0:
            raise ValueError(f"goals: probs[{h}]={None if probs is None else list(probs[h])!r} is invalid: need {len(per_h)} non-negative numbers, not all 0")
        p[h, : len(per_h)] = ph / ph.sum()
        if weights is not None:
            wh = np.asarray(weights[h], np.float64)
            if wh.shape != (len(per_h),):
                raise ValueError(f"goals: weights[{h}]={list(weights[h])!r} is invalid: need {len(per_h)} numbers")
            wts[h, : len(per_h)] = wh
    return GoalSet(cells=jnp.asarray(mask), probs=jnp.asarray(p, jnp.float32), weights=jnp.asarray(wts, jnp.float32))


def small_rectangle_goals(env: MultiGrid, max_side: int = 3) -> GoalSet:
    """Every rectangle of side <= ``max_side`` inside the border, uniform, weight 1, per human.

    This is the support of the original ensemble's ``SmallGoalSampler`` (rejection sampling
    over corners in ``[1, W-2] x [1, H-2]`` accepts each such rectangle equally often).
    """
    rects = []
    for y1 in range(1, env.height - 1):
        for y2 in range(y1, min(y1 + max_side, env.height - 1)):
            for x1 in range(1, env.width - 1):
                for x2 in range(x1, min(x1 + max_side, env.width - 1)):
                    rects.append([(x, y) for y in range(y1, y2 + 1) for x in range(x1, x2 + 1)])
    return reach_region_goals(env, [rects] * env.n_humans)


TRIVIAL_MAP = """
We We We We We We
We Ae Ro .. .. We
We We Ay We We We
We We We We We We
"""

SMALL_MAP = """
We We We We We We
We .. .. .. Ae We
We .. .. .. .. We
We .. Ro .. .. We
We We Ay We We We
We We We We We We
"""


@functools.lru_cache(maxsize=None)
def trivial_task() -> MultiGridTask:
    """The phase-2 demo's trivial map: 6x4, robot (agent 0) at (1,1), rock (2,1), human (agent 1)
    at (2,2), MAX_STEPS 10; five uniform goals of weight 1: (2,1), (1,1), (3,1), (2,2) (achieved
    at the start) and (1,2) (a wall: impossible). Cached: the same (immutable) task each call,
    so its compiled functions are shared."""
    env, params, state = parse_map(TRIVIAL_MAP, 10)
    goals = reach_cell_goals(env, [[(2, 1), (1, 1), (3, 1), (2, 2), (1, 2)]])
    return MultiGridTask("trivial", env, params, state, goals)


@functools.lru_cache(maxsize=None)
def small_task() -> MultiGridTask:
    """The demo's small map: 6x6, robot (agent 0) at (4,1), rock (2,3), human (agent 1) at (2,4),
    MAX_STEPS 15; goals (2,1), (2,2), (3,2), (4,2) with probabilities 0.4/0.3/0.2/0.1, weight 1."""
    env, params, state = parse_map(SMALL_MAP, 15)
    goals = reach_cell_goals(env, [[(2, 1), (2, 2), (3, 2), (4, 2)]], probs=[[0.4, 0.3, 0.2, 0.1]])
    return MultiGridTask("small", env, params, state, goals)


# ----------------------------------------------------------------------------------------
# The random ensemble
# ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class EnsembleConfig:
    """Random maps of the demo's ensemble, restricted to the subset (no doors, keys or unsteady
    ground: their cells stay empty). Humans are agents ``0..n_humans-1``, robots follow, so the
    roles are the same for every map (the original numbers agents by map position)."""

    size: int = 7
    num_humans: int = 2
    num_robots: int = 2
    max_steps: int = 30
    wall_prob: float = 0.12
    rock_prob: float = 0.02
    block_prob: float = 0.02

    def __post_init__(self):
        if self.size < 3:
            raise ValueError(f"ensemble: size={self.size} is invalid: must be >= 3")
        n = self.num_humans + self.num_robots
        if self.num_humans < 0 or self.num_robots < 0 or n < 1 or n > (self.size - 2) ** 2:
            raise ValueError(f"ensemble: num_humans={self.num_humans}, num_robots={self.num_robots} is invalid: need 1..{(self.size - 2) ** 2} agents")
        if self.max_steps < 1:
            raise ValueError(f"ensemble: max_steps={self.max_steps} is invalid: must be >= 1")
        for f in ("wall_prob", "rock_prob", "block_prob"):
            if not 0.0 <= getattr(self, f) <= 1.0:
                raise ValueError(f"ensemble: {f}={getattr(self, f)} is invalid: must be in [0, 1]")
        if self.wall_prob + self.rock_prob + self.block_prob > 1.0:
            raise ValueError("ensemble: wall_prob + rock_prob + block_prob is invalid: must be <= 1")

    def env(self) -> MultiGrid:
        return MultiGrid(self.size, self.size, (HUMAN,) * self.num_humans + (ROBOT,) * self.num_robots)


def random_ensemble_map(key: Array, cfg: EnsembleConfig = EnsembleConfig()) -> tuple[MultiGridParams, MultiGridState]:
    """One random map (pure JAX, so maps can be redrawn per episode inside a compiled program).

    Border cells are walls; each inner cell is a wall, rock or block with the configured
    probabilities, else empty. Agents go to distinct uniformly drawn empty inner cells, facing
    east; if fewer empty cells exist than agents, the drawn cells are cleared (as the original
    clears cells when it runs short).
    """
    s, n = cfg.size, cfg.num_humans + cfg.num_robots
    k_cell, k_agent = jax.random.split(key)
    u = jax.random.uniform(k_cell, (s, s))
    inner = np.zeros((s, s), bool)
    inner[1:-1, 1:-1] = True
    inner = jnp.asarray(inner)
    wall = ~inner | (u < cfg.wall_prob)
    rock = inner & (u >= cfg.wall_prob) & (u < cfg.wall_prob + cfg.rock_prob)
    block = inner & (u >= cfg.wall_prob + cfg.rock_prob) & (u < cfg.wall_prob + cfg.rock_prob + cfg.block_prob)
    empty = inner & ~wall & ~rock & ~block
    # Empty cells first (score >= 1), then other inner cells; uniform within each group.
    score = jnp.where(inner, empty.astype(jnp.float32) + jax.random.uniform(k_agent, (s, s)), -1.0)
    _, flat = jax.lax.top_k(score.reshape(-1), n)
    ys, xs = flat // s, flat % s
    chosen = jnp.zeros((s, s), bool).at[ys, xs].set(True)
    wall, rock, block = wall & ~chosen, rock & ~chosen, block & ~chosen
    objects = jnp.where(rock, ROCK, jnp.where(block, BLOCK, EMPTY)).astype(jnp.int8)
    params = MultiGridParams(walls=wall, max_steps=jnp.int32(cfg.max_steps))
    state = MultiGridState(
        step=jnp.int32(0),
        agent_pos=jnp.stack([xs, ys], axis=-1).astype(jnp.int32),
        agent_dir=jnp.zeros((n,), jnp.int32),
        objects=objects,
    )
    return params, state


# ----------------------------------------------------------------------------------------
# Exact enumeration
# ----------------------------------------------------------------------------------------
@struct.dataclass
class StateSpace:
    """The reachable configurations of one map (step count excluded; ``states.step`` is 0).

    Index 0 is the initial state; states are in BFS order. ``first_step[s]`` is the earliest
    step count at which configuration ``s`` occurs; since all-still is a self-loop, ``(t, s)``
    is reachable exactly when ``t >= first_step[s]``. ``rows`` are the flattened states used
    for lookup (:func:`state_index`); ``hash_order``/``sorted_hash`` index them by hash.
    """

    states: MultiGridState  # batched, leading axis S
    first_step: Array  # int32[S]
    rows: Array  # int32[S, R]
    sorted_hash: Array  # uint32[S]
    hash_order: Array  # int32[S]
    max_same_hash: int = struct.field(pytree_node=False, default=1)  # largest group of equal hashes

    @property
    def num_states(self) -> int:
        return int(self.first_step.shape[0])


@struct.dataclass
class TransitionTable:
    """Sparse exact transitions: outcome ``k`` of joint action ``a`` in state ``s`` leads to
    ``next_idx[s, a, k]`` with probability ``next_prob[s, a, k]`` (``K = n!`` outcomes, one per
    execution order, duplicates not merged; each row sums to 1)."""

    next_idx: Array  # int32[S, A, K]
    next_prob: Array  # float32[S, A, K]


def state_rows(state: MultiGridState) -> Array:
    """Flattened configuration ``int32[..., R]`` (positions, orientations, objects; no step)."""
    lead = state.agent_dir.shape[:-1]
    return jnp.concatenate(
        [
            state.agent_pos.reshape(*lead, -1).astype(jnp.int32),
            state.agent_dir.astype(jnp.int32),
            state.objects.reshape(*lead, -1).astype(jnp.int32),
        ],
        axis=-1,
    )


def _row_hash(rows: Array) -> Array:
    """A 32-bit FNV-style hash of each row (wrapping uint32 arithmetic, same on host and device)."""
    rows = jnp.asarray(rows).astype(jnp.uint32)
    h = jnp.full(rows.shape[:-1], 2166136261, jnp.uint32)
    for j in range(rows.shape[-1]):
        h = (h ^ rows[..., j]) * jnp.uint32(16777619)
    return h


def enumerate_states(
    env: MultiGrid, params: MultiGridParams, initial_state: MultiGridState, max_states: int = 2_000_000
) -> StateSpace:
    """All configurations reachable from ``initial_state`` (BFS over every joint action).

    Raises ``ValueError`` if more than ``max_states`` are found (the map is not enumerable).
    """
    succ = _batched_successors(env)
    init = jax.tree.map(lambda x: np.asarray(x)[None], initial_state.replace(step=jnp.int32(0)))
    init_rows = np.asarray(state_rows(initial_state))[None]
    known = {init_rows[0].tobytes(): 0}
    all_states = [init]
    first_step = [0]
    frontier, depth = init, 0
    while frontier.agent_dir.shape[0]:
        depth += 1
        nxt = succ(frontier, params)  # leaves [B, A, K, ...]
        flat = jax.tree.map(lambda x: np.asarray(x).reshape(-1, *x.shape[3:]), nxt)
        rows = np.asarray(state_rows(flat))
        new = [i for i in _unique_rows(rows) if rows[i].tobytes() not in known]
        if len(known) + len(new) > max_states:
            raise ValueError(f"enumerate_states: more than max_states={max_states} reachable states; the map is not enumerable")
        for i in new:
            known[rows[i].tobytes()] = len(known)
        frontier = jax.tree.map(lambda x: x[np.asarray(new, np.int64)], flat)
        frontier = frontier.replace(step=np.zeros_like(frontier.step))
        all_states.append(frontier)
        first_step.extend([depth] * len(new))
    states = jax.tree.map(lambda *xs: jnp.asarray(np.concatenate(xs)), *all_states)
    rows = np.asarray(state_rows(states))
    hashes = np.asarray(_row_hash(rows))
    order = np.argsort(hashes, kind="stable").astype(np.int32)
    return StateSpace(
        states=states,
        first_step=jnp.asarray(np.array(first_step, np.int32)),
        rows=jnp.asarray(rows),
        sorted_hash=jnp.asarray(hashes[order]),
        hash_order=jnp.asarray(order),
        max_same_hash=int(np.unique(hashes, return_counts=True)[1].max()),
    )


def _unique_rows(rows: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct row, in order (exact: a 64-bit hash
    groups the rows and every group is checked to hold one distinct row)."""
    h = np.full(rows.shape[0], 1469598103934665603, np.uint64)
    for j in range(rows.shape[1]):
        h = (h ^ rows[:, j].astype(np.uint64)) * np.uint64(1099511628211)
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    if not np.array_equal(rows, rows[first[inverse.reshape(-1)]]):
        raise RuntimeError("enumerate_states: 64-bit row hash collision; cannot deduplicate exactly")
    return np.sort(first)


def _batched_successors(env: MultiGrid, chunk: int = 512):
    """Successors of a batch of states under all joint actions: leaves ``[B, A, K, ...]``.

    Batches are cut into chunks of one fixed size so the function compiles once.
    """

    run = env._all_successors_jit

    def call(states, params):
        b = states.agent_dir.shape[0]
        out = []
        for lo in range(0, b, chunk):
            part = jax.tree.map(lambda x: np.asarray(x)[lo : lo + chunk], states)
            n = part.agent_dir.shape[0]
            part = jax.tree.map(lambda x: np.concatenate([x, np.repeat(x[:1], chunk - n, 0)]), part)
            out.append(jax.tree.map(lambda x: np.asarray(x)[:n], run(part, params)))
        return jax.tree.map(lambda *xs: np.concatenate(xs), *out)

    return call


def state_index(space: StateSpace, state: MultiGridState) -> Array:
    """Index of ``state`` (any leading batch shape) in ``space``, or -1 if absent. Jittable.

    Looks the row hash up by binary search, then checks the colliding candidates' full rows.
    """
    rows = state_rows(state)
    h = _row_hash(rows)
    lo = jnp.searchsorted(space.sorted_hash, h, side="left")
    n = space.sorted_hash.shape[0]
    best = jnp.full(h.shape, -1, jnp.int32)
    for j in range(space.max_same_hash):  # every state sharing the hash
        p = jnp.clip(lo + j, 0, n - 1)
        cand = space.hash_order[p]
        hit = (space.sorted_hash[p] == h) & jnp.all(space.rows[cand] == rows, axis=-1) & (lo + j < n)
        best = jnp.where((best < 0) & hit, cand, best)
    return best


_state_index_jit = jax.jit(state_index)


def transition_table(env: MultiGrid, params: MultiGridParams, space: StateSpace) -> TransitionTable:
    """The exact successor table of every enumerated state under every joint action."""
    nxt = _batched_successors(env)(jax.tree.map(np.asarray, space.states), params)
    idx = np.asarray(_state_index_jit(space, jax.tree.map(jnp.asarray, nxt)))
    if np.any(idx < 0):
        raise RuntimeError("transition_table: a successor is missing from the state space (hash lookup failed)")
    prob = np.full(idx.shape, 1.0 / env.num_outcomes, np.float32)
    return TransitionTable(next_idx=jnp.asarray(idx.astype(np.int32)), next_prob=jnp.asarray(prob))


def transition_tensor(table: TransitionTable, max_elements: int = 1 << 28) -> Array:
    """Dense ``P[s, a, s']`` (float32, duplicates of ``table`` summed), built in JAX."""
    s, a, k = table.next_idx.shape
    if s * a * s > max_elements:
        raise ValueError(f"transition_tensor: S*A*S = {s}*{a}*{s} = {s * a * s} is invalid: exceeds max_elements={max_elements}; use the sparse TransitionTable")
    si = jnp.broadcast_to(jnp.arange(s)[:, None, None], (s, a, k))
    ai = jnp.broadcast_to(jnp.arange(a)[None, :, None], (s, a, k))
    return jnp.zeros((s, a, s), jnp.float32).at[si, ai, table.next_idx].add(table.next_prob)


def achieved_table(env: MultiGrid, space: StateSpace, goals: GoalSet) -> Array:
    """``bool[S, n_humans, G]``: goal ``g`` of human ``h`` is achieved in state ``s``."""
    return jax.vmap(lambda st: env.achieved(st, goals))(space.states)


def num_reachable_pairs(space: StateSpace, max_steps: int) -> int:
    """Number of reachable ``(t, s)`` pairs with ``0 <= t <= max_steps``."""
    fs = np.asarray(space.first_step)
    return int(np.sum(np.maximum(0, max_steps + 1 - fs)))


def finite_world(env: MultiGrid, params: MultiGridParams, goals: GoalSet, space: StateSpace,
                 table: TransitionTable) -> FiniteWorld:
    """The enumerated map as EMPO's :class:`~rljax.empo.world_model.FiniteWorld`.

    States are the configurations of ``space`` (index 0 the initial one) with the horizon
    ``max_steps``; the robot and human joint actions split the flat joint action by
    ``env.joint_action_of``; the ``K = n!`` outcomes are the execution orders (``1/K`` each);
    state features are the one-hot :meth:`MultiGrid.encode` (flattened, boolean) and goal
    features the goals' cell masks (flattened ``H*W``).
    """
    jo = jnp.asarray(env.joint_action_of)
    enc = jax.jit(jax.vmap(lambda st: env.encode(st, params).reshape(-1) > 0))
    grids = np.concatenate([np.asarray(enc(jax.tree.map(lambda x: x[i:i + 4096], space.states)))
                            for i in range(0, space.num_states, 4096)])
    n_h, n_g = goals.probs.shape
    return FiniteWorld(
        next_state=table.next_idx[:, jo], next_prob=table.next_prob[:, jo],
        achieved=achieved_table(env, space, goals), goal_probs=goals.probs, goal_weights=goals.weights,
        state_features=jnp.asarray(grids),
        goal_features=jnp.asarray(np.asarray(goals.cells).reshape(n_h, n_g, -1).astype(np.float32)),
        horizon=int(params.max_steps), actions_per_human=NUM_ACTIONS,
    )


def describe(env: MultiGrid, state: MultiGridState, params: MultiGridParams) -> str:
    """ASCII picture of a state (agents as ``>v<^`` with H/R prefix)."""
    walls = np.asarray(params.walls)
    obj = np.asarray(state.objects)
    arrows = ">v<^"
    out = []
    for y in range(env.height):
        row = []
        for x in range(env.width):
            c = "We" if walls[y, x] else {EMPTY: "..", ROCK: "Ro", BLOCK: "Bl"}[int(obj[y, x])]
            for i in range(env.n_agents):
                if tuple(np.asarray(state.agent_pos[i])) == (x, y):
                    c = ("H" if env.roles[i] == HUMAN else "R") + arrows[int(state.agent_dir[i])]
            row.append(c)
        out.append(" ".join(row))
    return "\n".join(out)


__all__ = [
    "ACTION_NAMES", "BLOCK", "DIR_TO_VEC", "EMPTY", "FORWARD", "LEFT", "NUM_ACTIONS", "RIGHT", "ROCK", "STILL",
    "EnsembleConfig", "GoalSet", "MultiGrid", "MultiGridParams", "MultiGridState", "MultiGridTask", "StateSpace",
    "TransitionTable", "achieved_table", "describe", "enumerate_states", "finite_world", "num_reachable_pairs", "parse_map",
    "random_ensemble_map", "reach_cell_goals", "reach_region_goals", "small_rectangle_goals", "small_task",
    "state_index", "state_rows", "transition_table", "transition_tensor", "trivial_task",
]
