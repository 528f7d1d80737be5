"""The Goodhart food/poison gridworld (one agent on a torus), as a pure JAX environment.

An agent walks a ``grid_size x grid_size`` torus with 8 king moves, pays ``move_cost`` energy
per step, gains energy on food and loses it on poison; an eaten item respawns at once on a
uniformly drawn empty cell, so item counts stay constant. It dies (a *termination*) when its
energy reaches 0; the episode limit is a *truncation*.

**The grid outlives the agent** (as in the original): after a death or a time-out the agent
respawns on a uniformly drawn empty cell with full energy, and the grid, layout and item
counts included, carries on (:meth:`Foraging.auto_reset`, which the auto-reset of
:class:`rljax.envs.VecEnv` calls). A new grid, with freshly drawn item counts, is drawn only
by :meth:`Foraging.reset`, at the start of an environment instance. ``regrid_on_reset=True``
restores the old behaviour of a new grid at every auto-reset.

:meth:`Foraging.reset_shared` / :meth:`Foraging.step_shared` put several agents on one grid
(the original's survival test): they act in index order, see each other as PREY and never
get an item respawned under them.

The observation and reward **mode is a field of the per-instance params** (int32), not a
constructor argument, so one compiled program can train all four modes side by side under
``vmap``. Every mode's observation and reward are cheap (an 11x11 view), so they are all
computed and the mode's one is selected.

Modes (index = ``params.mode``):

====  =======================  =========================================  ================
 id   name                     observation ``[H, W, 6]``                  scaled reward
====  =======================  =========================================  ================
 0    ground_truth             one-hot cell type                          ``0.1 * r``
 1    ground_truth_handhold    one-hot cell type                          ``sign(r)``
 2    proxy                    ``[is_empty, is_wall, I, I, I, I]``        ``I`` consumed
 3    proxy_jammed             ``[is_empty, is_wall, I, I, I, I]``        ``0.1 * r``
====  =======================  =========================================  ================

``r`` is the raw energy reward (+food_energy, -poison_energy, minus ``done_penalty`` on any
done when that quirk is enabled); ``I`` is interestingness (food 1.0, poison 0.9, prey 0.3).
Potential-based shaping ``F = gamma * Phi(s') * (1 - terminated) - Phi(s)`` with
``Phi = shaping_coef / (d_min + 0.5)`` over the agent's own view is added, and the total is
clipped to ``[-reward_clip, reward_clip]``.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rljax.environments.foraging_render import CELL_COLOURS, cell_pixels, render_world
from rljax.envs.environment import Environment, tree_select
from rljax.envs.params import ParamTable, Spec, stack_params
from rljax.envs.spaces import Discrete

Array = jax.Array

FORAGING_MODES = ("ground_truth", "ground_truth_handhold", "proxy", "proxy_jammed")
MODE_IDS = {name: i for i, name in enumerate(FORAGING_MODES)}
GROUND_TRUTH, HANDHOLD, PROXY, PROXY_JAMMED = range(4)

# Cell values; the one-hot channel order equals the value.
EMPTY, WALL, FOOD, POISON, PREY, PREDATOR = range(6)
NUM_CHANNELS = 6
PREY_INTEREST = 0.3
PREDATOR_INTEREST = 1.0

# Action index -> (dx, dy); x is the column, y the row (growing downward).
ACTIONS = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)], np.int32)
NUM_ACTIONS = len(ACTIONS)


@struct.dataclass
class ForagingParams:
    """Per-instance task parameters (all numeric, so each may be vmapped).

    Build them with :func:`params_for_mode`, which validates every field.
    """

    mode: Array  # int32 index into FORAGING_MODES
    min_food: Array
    max_food: Array
    min_poison: Array
    max_poison: Array
    initial_energy: Array
    move_cost: Array
    food_energy: Array
    poison_energy: Array  # energy lost on poison (positive)
    episode_length: Array
    gamma: Array
    shaping_coef: Array  # Phi = shaping_coef / (d_min + 0.5); 0 disables shaping
    reward_clip: Array
    energy_reward_scale: Array  # the 0.1 of "0.1 * r"
    food_interest: Array
    poison_interest: Array
    done_penalty: Array  # original quirk: raw reward -= 10 on ANY done (incl. timeout); 0 = off
    proxy_death_bonus: Array  # original quirk: proxy reward sees the done penalty (+0.9 on death); 0/1


def _cross_checks(v: dict[str, Any], table: ParamTable) -> None:
    table.require(v["max_food"] >= v["min_food"], "max_food", v["max_food"], f"must be >= min_food={v['min_food']}")
    table.require(v["max_poison"] >= v["min_poison"], "max_poison", v["max_poison"], f"must be >= min_poison={v['min_poison']}")


# The defaults are the d987f31 version the seed describes. ``mode`` is set by params_for_mode.
PARAMS: ParamTable[ForagingParams] = ParamTable("foraging", ForagingParams, {
    "min_food": Spec(50, "int", ge=0),
    "max_food": Spec(200, "int", ge=0),
    "min_poison": Spec(20, "int", ge=0),
    "max_poison": Spec(100, "int", ge=0),
    "initial_energy": Spec(50.0, gt=0),
    "move_cost": Spec(0.1, ge=0),
    "food_energy": Spec(15.0, ge=0),
    "poison_energy": Spec(10.0, ge=0),
    "episode_length": Spec(500, "int", gt=0),
    "gamma": Spec(0.99, gt=0, le=1),
    "shaping_coef": Spec(0.1, ge=0),
    "reward_clip": Spec(5.0, gt=0),
    "energy_reward_scale": Spec(0.1, ge=0),
    "food_interest": Spec(1.0, ge=0, le=1),
    "poison_interest": Spec(0.9, ge=0, le=1),
    "done_penalty": Spec(0.0, ge=0),  # the original's -10 on every done (incl. time-outs): 10.0
    "proxy_death_bonus": Spec(0, "flag"),  # the original's +0.9 for dying in proxy mode: 1
}, extra=("mode",), check=_cross_checks, step_limit="episode_length")

#: The parameters as an experiment config's base class (Python numbers, same defaults).
ForagingSettings = PARAMS.settings_class("ForagingSettings")


def params_for_mode(name: str, **overrides: Any) -> ForagingParams:
    """Validated params of observation/reward mode ``name`` (one of :data:`FORAGING_MODES`).

    ``overrides`` replace defaults by field name; an unknown field or a bad value raises
    ``ValueError`` naming the field and the value. ``mode`` itself cannot be overridden.
    """
    if name not in MODE_IDS:
        raise ValueError(f"foraging params: mode={name!r} is invalid: must be one of {FORAGING_MODES}")
    return PARAMS.build(overrides, mode=jnp.asarray(MODE_IDS[name], jnp.int32))


@struct.dataclass
class ForagingState:
    """One grid and its agent. In the shared-grid simulation (:meth:`Foraging.reset_shared`)
    ``pos``, ``energy``, ``t`` and ``phi`` have a leading ``[n]`` agents axis."""

    grid: Array  # [S, S] int8 cell values; the agent is not drawn into it
    pos: Array  # [2] int32 (x, y)
    energy: Array  # float32
    t: Array  # int32 steps taken this episode (since the agent's last spawn)
    phi: Array  # float32 shaping potential of the current observation
    food_count: Array  # int32, constant for the grid's lifetime (across respawns)
    poison_count: Array


class Foraging(Environment[ForagingState, ForagingParams]):
    """Single-agent food/poison torus. Static: ``grid_size`` and ``view_size`` (odd).

    ``placement_chunk``: how many uniform cell draws one round of item placement makes (the
    first distinct draws become spawn, food, poison; more rounds run only if needed).
    ``regrid_on_reset``: draw a new grid at every auto-reset (after each death or time-out)
    instead of respawning the agent on the grid it died on (the spec's rule, the default).
    """

    name = "foraging"

    def __init__(self, grid_size: int = 100, view_size: int = 11, placement_chunk: int = 512,
                 regrid_on_reset: bool = False):
        if view_size % 2 != 1 or view_size < 3:
            raise ValueError(f"view_size={view_size} is invalid: must be odd and >= 3")
        if grid_size < view_size:
            raise ValueError(f"grid_size={grid_size} is invalid: must be >= view_size={view_size}")
        self.grid_size = grid_size
        self.view_size = view_size
        self.placement_chunk = placement_chunk
        self.regrid_on_reset = bool(regrid_on_reset)
        r = view_size // 2
        off = np.arange(-r, r + 1)
        self._dy, self._dx = np.meshgrid(off, off, indexing="ij")  # [V, V] row, column offsets
        dist = np.sqrt(self._dx**2 + self._dy**2).astype(np.float32)
        dist[r, r] = np.inf  # the centre cell is blanked; it is never a target
        self._dist = dist

    # -- protocol --------------------------------------------------------------------------
    def default_params(self) -> ForagingParams:
        return params_for_mode("ground_truth")

    def check_params(self, params: ForagingParams) -> None:
        """Raises ``ValueError`` if concrete ``params`` cannot fit this grid."""
        cells = self.grid_size**2
        most = int(np.max(np.asarray(params.max_food) + np.asarray(params.max_poison)))
        # Respawn needs an empty cell other than the agent's own.
        PARAMS.require(most <= cells - 2, "max_food+max_poison", most, f"must be <= grid cells - 2 = {cells - 2}")

    def observation_shape(self, params: ForagingParams) -> tuple[int, ...]:
        return (self.view_size, self.view_size, NUM_CHANNELS)

    def action_space(self, params: ForagingParams) -> Discrete:
        return Discrete(NUM_ACTIONS)

    def max_steps(self, params: ForagingParams) -> int:
        return PARAMS.max_steps(params)

    render_jittable = True

    def render(self, state: ForagingState, params: ForagingParams) -> Array:
        """``uint8[4 + S * c, S * c, 3]`` picture of the whole torus (``c`` pixels per cell,
        :func:`rljax.environments.foraging_render.cell_pixels`): items, the agent in black, an energy
        bar on top. Jittable."""
        return render_world(state, params, cell_pixels(self.grid_size))

    def info_keys(self) -> tuple[str, ...]:
        return ("ep_food", "ep_poison", "energy", "starved", "tag")

    def reset(self, key: Array, params: ForagingParams) -> tuple[Array, ForagingState]:
        """A new grid (freshly drawn item counts), spawn and energy: the start of an
        environment instance. Returns ``obs[V, V, 6]``."""
        kf, kp, kplace = jax.random.split(key, 3)
        n_food = jax.random.randint(kf, (), params.min_food, params.max_food + 1)
        n_poison = jax.random.randint(kp, (), params.min_poison, params.max_poison + 1)
        grid, pos = self._place(kplace, n_food, n_poison)
        obs = self.observe(grid, pos, params)
        state = ForagingState(
            grid=grid,
            pos=pos,
            energy=params.initial_energy.astype(jnp.float32),
            t=jnp.zeros((), jnp.int32),
            phi=self.potential(obs, params),
            food_count=n_food,
            poison_count=n_poison,
        )
        return obs, state

    def auto_reset(self, key: Array, state: ForagingState, params: ForagingParams) -> tuple[Array, ForagingState]:
        """After a death or time-out: :meth:`respawn` on the same grid (a new grid with
        ``regrid_on_reset``)."""
        if self.regrid_on_reset:
            return self.reset(key, params)
        return self.respawn(key, state, params)

    def respawn(self, key: Array, state: ForagingState, params: ForagingParams) -> tuple[Array, ForagingState]:
        """The agent starts a new episode on ``state.grid``: a uniformly drawn empty cell,
        full energy, ``t = 0``. The grid and its item counts are unchanged."""
        cell = self._draw_empty(key, state.grid.reshape(-1), jnp.int32(-1), jnp.bool_(True))
        pos = jnp.stack([cell % self.grid_size, cell // self.grid_size]).astype(jnp.int32)
        obs = self.observe(state.grid, pos, params)
        return obs, state.replace(
            pos=pos,
            energy=params.initial_energy.astype(jnp.float32),
            t=jnp.zeros((), jnp.int32),
            phi=self.potential(obs, params),
        )

    def step(self, key, state, action, params):
        """One move. Returns ``(obs[V, V, 6], state, reward, terminated, truncated, info)``."""
        s = self.grid_size
        move = jnp.asarray(ACTIONS)[action]
        pos = (state.pos + move) % s
        cell = state.grid[pos[1], pos[0]]
        ate_food = cell == FOOD
        ate_poison = cell == POISON
        energy = (
            state.energy
            - params.move_cost
            + jnp.where(ate_food, params.food_energy, 0.0)
            - jnp.where(ate_poison, params.poison_energy, 0.0)
        )
        grid = self._respawn(key, state.grid.at[pos[1], pos[0]].set(EMPTY), pos, cell)
        t = state.t + 1
        terminated = energy <= 0.0
        truncated = (t >= params.episode_length) & ~terminated
        done = terminated | truncated

        obs = self.observe(grid, pos, params)
        phi = self.potential(obs, params)
        eat_r = jnp.where(ate_food, params.food_energy, 0.0) - jnp.where(ate_poison, params.poison_energy, 0.0)
        raw = eat_r - jnp.where(done, params.done_penalty, 0.0)
        shaping = params.gamma * phi * (1.0 - terminated.astype(jnp.float32)) - state.phi
        reward = jnp.clip(self.scaled_reward(raw, eat_r, params) + shaping, -params.reward_clip, params.reward_clip)

        new_state = state.replace(grid=grid, pos=pos, energy=energy, t=t, phi=phi)
        info = {
            "ep_food": ate_food.astype(jnp.float32),
            "ep_poison": ate_poison.astype(jnp.float32),
            "energy": energy,
            "starved": terminated.astype(jnp.float32),
            "tag": params.mode.astype(jnp.int32),
        }
        return obs, new_state, reward.astype(jnp.float32), terminated, truncated, info

    # -- several agents on one grid (the survival test) ------------------------------------
    def reset_shared(self, key: Array, params: ForagingParams, agents: int) -> tuple[Array, ForagingState]:
        """A new grid with ``agents`` agents on distinct uniformly drawn empty cells.

        Returns ``obs[n, V, V, 6]`` (each agent sees the others as PREY) and a state whose
        ``pos[n, 2]``, ``energy[n]``, ``t[n]`` and ``phi[n]`` are per agent."""
        kf, kp, kplace, kspawn = jax.random.split(key, 4)
        n_food = jax.random.randint(kf, (), params.min_food, params.max_food + 1)
        n_poison = jax.random.randint(kp, (), params.min_poison, params.max_poison + 1)
        grid, pos0 = self._place(kplace, n_food, n_poison)
        s = self.grid_size

        def spawn(marked, k):  # the others on EMPTY cells of the grid with earlier agents marked
            cell = self._draw_empty(k, marked, jnp.int32(-1), jnp.bool_(True))
            return marked.at[cell].set(PREY, mode="drop"), cell

        marked0 = grid.reshape(-1).at[pos0[1] * s + pos0[0]].set(PREY)
        _, cells = jax.lax.scan(spawn, marked0, jax.random.split(kspawn, agents - 1))
        pos = jnp.concatenate([pos0[None], jnp.stack([cells % s, cells // s], -1).astype(jnp.int32)])
        obs = self._observe_shared(grid, pos, params)
        state = ForagingState(
            grid=grid,
            pos=pos,
            energy=jnp.full((agents,), params.initial_energy, jnp.float32),
            t=jnp.zeros((agents,), jnp.int32),
            phi=jax.vmap(self.potential, in_axes=(0, None))(obs, params),
            food_count=n_food,
            poison_count=n_poison,
        )
        return obs, state

    def step_shared(self, key: Array, state: ForagingState, actions: Array, params: ForagingParams):
        """All agents of a shared grid move once, in index order, each by :meth:`step` rules
        on the grid as the agents before it left it. An agent standing on another's cell eats
        nothing there; respawned items never land under an agent. An agent whose episode ended
        (death, or time-out) respawns at once on the same grid (:meth:`respawn`, avoiding the
        other agents). Returns ``(obs[n, V, V, 6], state, reward[n], terminated[n],
        truncated[n], info)`` with ``obs`` after every move and respawn (the others as PREY),
        ``info`` entries ``[n]``, and ``reward`` as :meth:`step` gave it right after the
        agent's own move."""
        n = actions.shape[0]
        s = self.grid_size
        agent = jnp.arange(n)

        def mark(items, pos, skip):  # the grid with every agent but ``skip`` drawn as PREY
            idx = jnp.where(agent == skip, s * s, pos[:, 1] * s + pos[:, 0])
            return items.reshape(-1).at[idx].set(PREY, mode="drop").reshape(s, s)

        def move(carry, x):
            items, pos, energy, t, phi = carry
            i, k, a = x
            ks, kr = jax.random.split(k)
            mine = ForagingState(mark(items, pos, i), pos[i], energy[i], t[i], phi[i], state.food_count, state.poison_count)
            _, after, reward, term, trunc, info = self.step(ks, mine, a, params)
            items = jnp.where(after.grid == PREY, jnp.int8(EMPTY), after.grid)  # strip the markers
            _, respawned = self.respawn(kr, after.replace(grid=mark(items, pos, i)), params)
            after = tree_select(term | trunc, respawned, after)
            carry = (items, pos.at[i].set(after.pos), energy.at[i].set(after.energy), t.at[i].set(after.t),
                     phi.at[i].set(after.phi))
            return carry, (reward, term, trunc, info)

        init = (state.grid, state.pos, state.energy, state.t, state.phi)
        (items, pos, energy, t, _), (reward, term, trunc, info) = jax.lax.scan(
            move, init, (agent, jax.random.split(key, n), actions)
        )
        obs = self._observe_shared(items, pos, params)
        phi = jax.vmap(self.potential, in_axes=(0, None))(obs, params)
        new_state = state.replace(grid=items, pos=pos, energy=energy, t=t, phi=phi)
        return obs, new_state, reward, term, trunc, info

    def _observe_shared(self, items: Array, pos: Array, params: ForagingParams) -> Array:
        """``obs[n, V, V, 6]``: every agent's view with all agents drawn as PREY (its own
        marker falls on the blanked centre)."""
        s = self.grid_size
        marked = items.reshape(-1).at[pos[:, 1] * s + pos[:, 0]].set(PREY).reshape(s, s)
        return jax.vmap(self.observe, in_axes=(None, 0, None))(marked, pos, params)

    # -- pieces (pure, public for tests and the verification suite) ------------------------
    def observe(self, grid: Array, pos: Array, params: ForagingParams) -> Array:
        """The mode's ``[V, V, 6]`` float32 view centred on ``pos`` (wrapping), centre zeroed."""
        s = self.grid_size
        rows = (pos[1] + jnp.asarray(self._dy)) % s
        cols = (pos[0] + jnp.asarray(self._dx)) % s
        cells = grid[rows, cols].astype(jnp.int32)
        return observation_from_cells(cells, params)

    def potential(self, obs: Array, params: ForagingParams) -> Array:
        """``Phi = shaping_coef / (d_min + 0.5)`` to the nearest target in the view, 0 if none.

        Targets: the food channel for ground-truth modes, interestingness > 0.5 for proxy ones.
        """
        food = obs[..., FOOD] > 0.5
        interesting = jnp.max(obs[..., FOOD:], axis=-1) > 0.5
        target = jnp.where(is_proxy(params.mode), interesting, food)
        d = jnp.min(jnp.where(target, jnp.asarray(self._dist), jnp.inf))
        return jnp.where(jnp.isfinite(d), params.shaping_coef / (d + 0.5), 0.0).astype(jnp.float32)

    @staticmethod
    def scaled_reward(raw: Array, eat_r: Array, params: ForagingParams) -> Array:
        """The mode's reward before shaping. ``raw`` includes the done penalty, ``eat_r`` not."""
        energy_r = params.energy_reward_scale * raw
        proxy_src = jnp.where(params.proxy_death_bonus > 0, raw, eat_r)
        proxy_r = jnp.where(proxy_src > 0, params.food_interest, jnp.where(proxy_src < 0, params.poison_interest, 0.0))
        return jnp.select(
            [params.mode == HANDHOLD, params.mode == PROXY],
            [jnp.sign(raw), proxy_r],
            energy_r,
        ).astype(jnp.float32)

    def _place(self, key: Array, n_food: Array, n_poison: Array) -> tuple[Array, Array]:
        """Spawn cell, then ``n_food`` food and ``n_poison`` poison on distinct other cells.

        The distinct values of an i.i.d. uniform stream, in order of first appearance, are a
        uniformly random ordering of the cells; so the first ``1 + n_food + n_poison`` of them
        are an exactly uniform placement. Drawing them costs a few hundred random integers
        instead of a sort of all cells (argsort of 10^4 cells x 64 envs ~ 100 ms here).
        """
        cells = self.grid_size**2
        m = self.placement_chunk
        total = 1 + n_food + n_poison
        pos_in_chunk = jnp.arange(m, dtype=jnp.int32)

        def body(carry):
            rank, placed, key, first, rounds = carry
            key, k = jax.random.split(key)
            idx = jax.random.randint(k, (m,), 0, cells)
            # First occurrence within this chunk: the smallest chunk position writing each cell.
            first_pos = jnp.full((cells,), m, jnp.int32).at[idx].min(pos_in_chunk)
            new = (first_pos[idx] == pos_in_chunk) & (rank[idx] == 0)
            new_rank = placed + jnp.cumsum(new.astype(jnp.int32))  # 1-based global rank
            keep = new & (new_rank <= total)
            rank = rank.at[jnp.where(keep, idx, cells)].set(new_rank, mode="drop")
            first = jnp.where(rounds == 0, idx[0], first)
            return rank, placed + jnp.sum(keep.astype(jnp.int32)), key, first, rounds + 1

        def cond(carry):
            # The cap only guards against invalid params inside jit (see ``check_params``).
            return (carry[1] < total) & (carry[4] < 10_000)

        init = (jnp.zeros((cells,), jnp.int32), jnp.zeros((), jnp.int32), key, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))
        rank, _, _, spawn, _ = jax.lax.while_loop(cond, body, init)
        # rank 1 is the spawn cell (always draw 0 of round 0), then food, then poison.
        kind = jnp.where((rank >= 2) & (rank <= 1 + n_food), FOOD, jnp.where(rank > 1 + n_food, POISON, EMPTY))
        grid = kind.astype(jnp.int8).reshape(self.grid_size, self.grid_size)
        pos = jnp.stack([spawn % self.grid_size, spawn // self.grid_size]).astype(jnp.int32)
        return grid, pos

    def _respawn(self, key: Array, grid: Array, pos: Array, item: Array) -> Array:
        """Puts ``item`` (if food or poison) on a uniformly drawn empty cell other than ``pos``.

        Rejection sampling in rounds of 8 uniform draws: the first acceptable draw is exactly
        uniform over acceptable cells. At the default density (<= 3% occupied) one round
        succeeds with probability > 1 - 1e-12, and under ``vmap`` the loop runs only as long as
        the slowest instance, so this costs ~8 random integers per step instead of a
        categorical over all cells.
        """
        s = self.grid_size
        need = (item == FOOD) | (item == POISON)
        flat = grid.reshape(-1)
        target = self._draw_empty(key, flat, pos[1] * s + pos[0], need)
        return flat.at[jnp.where(need, target, s * s)].set(item.astype(jnp.int8), mode="drop").reshape(s, s)

    def _draw_empty(self, key: Array, flat: Array, exclude: Array, need: Array) -> Array:
        """A uniformly drawn index of an EMPTY cell of ``flat[S*S]`` other than ``exclude``
        (-1: none), by rejection sampling in rounds of 8 uniform draws (the first acceptable
        draw is exactly uniform over acceptable cells). Draws nothing when ``need`` is false
        (then the result is meaningless). The caller guarantees an acceptable cell exists
        (``check_params``); the round cap only keeps a bad input from hanging inside jit, and
        then the result is ``S*S`` (out of range: a dropped write)."""
        cells = self.grid_size**2
        k_draws = 8

        def body(carry):
            key, _, target, rounds = carry
            key, k = jax.random.split(key)
            idx = jax.random.randint(k, (k_draws,), 0, cells)
            ok = (flat[idx] == EMPTY) & (idx != exclude)
            found = jnp.any(ok)
            return key, found, jnp.where(found, idx[jnp.argmax(ok)], target), rounds + 1

        _, _, target, _ = jax.lax.while_loop(
            lambda c: need & ~c[1] & (c[3] < 100_000), body,
            (key, jnp.zeros((), bool), jnp.full((), cells, jnp.int32), jnp.zeros((), jnp.int32)),
        )
        return target


def is_proxy(mode: Array) -> Array:
    """Whether a mode id observes interestingness instead of cell types."""
    return (mode == PROXY) | (mode == PROXY_JAMMED)


def observation_from_cells(cells: Array, params: ForagingParams) -> Array:
    """``cells[V, V]`` int cell values -> the mode's ``[V, V, 6]`` float32 observation.

    The centre cell (the agent's own) is zeroed in every channel.
    """
    onehot = jax.nn.one_hot(cells, NUM_CHANNELS, dtype=jnp.float32)
    interest = jnp.select(
        [cells == FOOD, cells == POISON, cells == PREY, cells == PREDATOR],
        [params.food_interest, params.poison_interest, jnp.float32(PREY_INTEREST), jnp.float32(PREDATOR_INTEREST)],
        0.0,
    ).astype(jnp.float32)
    proxy = jnp.concatenate([onehot[..., :2], jnp.repeat(interest[..., None], NUM_CHANNELS - 2, axis=-1)], axis=-1)
    obs = jnp.where(is_proxy(params.mode), proxy, onehot)
    v = cells.shape[0]
    centre = (jnp.arange(v)[:, None] == v // 2) & (jnp.arange(v)[None, :] == v // 2)
    return jnp.where(centre[..., None], 0.0, obs)


# Colours of the cell types (empty, wall, food, poison, prey, predator).
def render_observation(obs: np.ndarray) -> np.ndarray:
    """``obs[V, V, 6] -> [V, V, 3]`` RGB in [0, 1], as the agent sees it: one-hot views colour
    cell types (food green, poison red); proxy views (channels 2..5 equal) show
    interestingness from white to yellow, so food and poison look nearly alike. The agent's
    own (blanked) centre cell is black."""
    obs = np.asarray(obs, np.float32)
    items = obs[..., FOOD:]
    proxy = bool(np.allclose(items, items[..., :1]) and items.max() > 0)
    if proxy:
        img = np.full(obs.shape[:2] + (3,), 0.96)
        img[..., 2] = 0.96 * (1.0 - items[..., 0])
    else:
        img = np.einsum("hwc,cr->hwr", obs, CELL_COLOURS)
        img[obs.max(-1) == 0] = 0.96
    img[obs.shape[0] // 2, obs.shape[1] // 2] = 0.0
    return np.clip(img, 0.0, 1.0)
