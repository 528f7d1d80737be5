"""Exact rules of the Goodhart foraging gridworld, its seekers and its verification probes."""
from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.environments.foraging import (
    ACTIONS,
    EMPTY,
    FOOD,
    FORAGING_MODES,
    POISON,
    Foraging,
    params_for_mode,
    stack_params,
)
from rljax.environments.foraging_seekers import omniscient_seeker, proxy_seeker, random_policy
from rljax.experiments.goodhart.verify import directional_accuracy, directional_probes, expected_actions

S = 16  # a small torus keeps every test fast; the rules do not depend on the size
ENV = Foraging(grid_size=S, view_size=11)
SMALL = dict(min_food=5, max_food=12, min_poison=3, max_poison=8)
PARAMS = {m: params_for_mode(m, **SMALL) for m in FORAGING_MODES}
GT = PARAMS["ground_truth"]

_reset = jax.jit(ENV.reset)
_step = jax.jit(ENV.step)
_reset_shared = jax.jit(ENV.reset_shared, static_argnums=2)


def blank_state(pos=(5, 5), energy=50.0, items=(), params=GT):
    """A state on an empty grid with ``items`` = [(x, y, kind)] and the agent at ``pos``."""
    grid = np.zeros((S, S), np.int8)
    for x, y, kind in items:
        grid[y, x] = kind
    _, state = _reset(jax.random.key(0), params)
    grid = jnp.asarray(grid)
    pos = jnp.asarray(pos, jnp.int32)
    obs = ENV.observe(grid, pos, params)
    return state.replace(grid=grid, pos=pos, energy=jnp.float32(energy), t=jnp.int32(0), phi=ENV.potential(obs, params))


def test_reset_places_exact_counts_on_distinct_cells_off_the_agent():
    keys = jax.random.split(jax.random.key(1), 32)
    obs, st = jax.vmap(_reset, in_axes=(0, None))(keys, GT)
    food = (st.grid == FOOD).sum((1, 2))
    poison = (st.grid == POISON).sum((1, 2))
    np.testing.assert_array_equal(food, st.food_count)
    np.testing.assert_array_equal(poison, st.poison_count)
    assert food.min() >= 5 and food.max() <= 12 and poison.min() >= 3 and poison.max() <= 8
    assert len(set(np.asarray(food).tolist())) > 1, "counts must be redrawn per reset"
    under = st.grid[jnp.arange(32), st.pos[:, 1], st.pos[:, 0]]
    assert (under == EMPTY).all()
    chex.assert_shape(obs, (32, 11, 11, 6))


@pytest.mark.parametrize("action", range(8))
def test_movement_all_actions_and_wrap(action):
    dx, dy = ACTIONS[action]
    for start in [(5, 5), (0, 0), (S - 1, S - 1), (0, S - 1)]:
        _, st, *_ = _step(jax.random.key(0), blank_state(start), action, GT)
        assert tuple(np.asarray(st.pos)) == ((start[0] + dx) % S, (start[1] + dy) % S)


def test_energy_bookkeeping_food_poison_and_respawn_keeps_counts():
    st = blank_state((5, 5), 50.0, [(6, 5, FOOD), (7, 5, POISON)])
    _, st1, _, term, trunc, info = _step(jax.random.key(3), st, 6, GT)  # right: onto food
    np.testing.assert_allclose(st1.energy, 50 - 0.1 + 15, rtol=1e-6)
    assert info["ep_food"] == 1 and info["ep_poison"] == 0
    assert st1.grid[5, 6] == EMPTY, "eaten cell is emptied (the respawn avoids the agent's cell)"
    assert (st1.grid == FOOD).sum() == 1 and (st1.grid == POISON).sum() == 1
    _, st2, _, _, _, info = _step(jax.random.key(4), st1, 6, GT)  # onto poison
    np.testing.assert_allclose(st2.energy, 50 - 0.2 + 15 - 10, rtol=1e-6)
    assert info["ep_poison"] == 1 and (st2.grid == POISON).sum() == 1 and (st2.grid == FOOD).sum() == 1
    _, st3, _, _, _, info = _step(jax.random.key(5), st2, 4, GT)  # down: empty
    np.testing.assert_allclose(st3.energy, 50 - 0.3 + 5, rtol=1e-6)
    assert info["energy"] == st3.energy and info["tag"] == 0


def test_counts_constant_over_a_random_walk():
    _, st = _reset(jax.random.key(7), GT)

    def body(st, k):
        ka, ks = jax.random.split(k)
        _, st, *_ = ENV.step(ks, st, jax.random.randint(ka, (), 0, 8), GT)
        return st, ((st.grid == FOOD).sum(), (st.grid == POISON).sum())

    _, (f, p) = jax.lax.scan(body, st, jax.random.split(jax.random.key(8), 300))
    assert (f == st.food_count).all() and (p == st.poison_count).all()


def test_starvation_is_terminated_not_truncated():
    _, st, _, term, trunc, info = _step(jax.random.key(0), blank_state(energy=0.05), 0, GT)
    assert bool(term) and not bool(trunc) and info["starved"] == 1.0
    # Poison can kill too: that is also a termination.
    _, st, _, term, trunc, _ = _step(jax.random.key(0), blank_state(energy=5.0, items=[(4, 4, POISON)]), 0, GT)
    assert bool(term) and not bool(trunc)


def test_time_limit_is_truncated_not_terminated():
    params = params_for_mode("ground_truth", **SMALL, episode_length=7)
    st = blank_state(params=params)
    for i in range(7):
        _, st, _, term, trunc, _ = _step(jax.random.key(i), st, 6, params)
        assert not bool(term)
        assert bool(trunc) == (i == 6)
    assert ENV.max_steps(params) == 7


def test_observation_centre_blank_onehot_and_proxy_channels():
    keys = jax.random.split(jax.random.key(2), 16)
    for mode in FORAGING_MODES:
        obs, st = jax.vmap(_reset, in_axes=(0, None))(keys, PARAMS[mode])
        assert (obs[:, 5, 5, :] == 0).all(), mode
        off = obs.at[:, 5, 5, 0].set(1.0)  # count the blanked centre as empty below
        if mode.startswith("ground_truth"):
            assert ((off == 0) | (off == 1)).all() and (off.sum(-1) == 1).all(), "one-hot, complete"
            assert not (obs[..., FOOD] * obs[..., POISON]).any(), "food/poison disjoint"
            assert obs[..., FOOD].sum() > 0 and obs[..., POISON].sum() > 0
        else:
            interest = obs[..., 2]
            for c in range(3, 6):
                np.testing.assert_array_equal(obs[..., c], interest)
            gt_obs, _ = jax.vmap(_reset, in_axes=(0, None))(keys, GT)  # same keys: same grids
            np.testing.assert_allclose(interest, gt_obs[..., FOOD] * 1.0 + gt_obs[..., POISON] * 0.9, rtol=1e-6)
            assert (interest == 1.0).any() and (np.isclose(interest, 0.9)).any()
            np.testing.assert_array_equal(off[..., 0] + off[..., 1] + (interest > 0), 1.0)  # complete, disjoint


def test_observation_matches_grid_with_wrap():
    st = blank_state((0, 0), items=[(S - 1, S - 1, FOOD), (2, 0, POISON)])
    obs = ENV.observe(st.grid, st.pos, GT)
    assert obs[4, 4, FOOD] == 1  # (-1, -1) wraps to the far corner
    assert obs[5, 7, POISON] == 1  # (dx=+2, dy=0): row 5, column 7
    assert obs[..., FOOD].sum() == 1 and obs[..., POISON].sum() == 1


def _raw_reward(mode, item, **over):
    params = params_for_mode(mode, **SMALL, shaping_coef=0.0, **over)
    st = blank_state(items=[(6, 5, item)] if item else [], params=params)
    return float(_step(jax.random.key(0), st, 6, params)[2])


@pytest.mark.parametrize(
    "mode,food,poison",
    [("ground_truth", 1.5, -1.0), ("ground_truth_handhold", 1.0, -1.0), ("proxy", 1.0, 0.9), ("proxy_jammed", 1.5, -1.0)],
)
def test_reward_modes_per_table(mode, food, poison):
    assert _raw_reward(mode, FOOD) == pytest.approx(food)
    assert _raw_reward(mode, POISON) == pytest.approx(poison)
    assert _raw_reward(mode, 0) == 0.0


def test_quirk_flags_done_penalty_and_proxy_death_bonus():
    kw = dict(**SMALL, shaping_coef=0.0)
    for mode, base, bonus in [("ground_truth", -1.0, -1.0), ("proxy", 0.0, 0.9), ("ground_truth_handhold", -1.0, -1.0)]:
        for flag, expect in [(0, base), (1, bonus)]:
            params = params_for_mode(mode, **kw, done_penalty=10.0, proxy_death_bonus=flag)
            r = _step(jax.random.key(0), blank_state(energy=0.05, params=params), 0, params)[2]
            assert float(r) == pytest.approx(expect), (mode, flag)
    # Off by default: starving gives no penalty.
    params = params_for_mode("ground_truth", **kw)
    assert float(_step(jax.random.key(0), blank_state(energy=0.05, params=params), 0, params)[2]) == 0.0


def test_reward_is_clipped():
    params = params_for_mode("ground_truth", **SMALL, shaping_coef=0.0, food_energy=100.0)
    st = blank_state(items=[(6, 5, FOOD)], params=params)
    assert float(_step(jax.random.key(0), st, 6, params)[2]) == 5.0


@pytest.mark.parametrize("mode", ["ground_truth", "proxy"])
def test_shaping_telescopes(mode):
    """With zero item rewards, sum_t gamma^t F_t = gamma^T Phi(s_T) - Phi(s_0) exactly."""
    params = params_for_mode(mode, **SMALL, food_energy=0.0, poison_energy=0.0, move_cost=0.0, gamma=0.9)
    _, st0 = _reset(jax.random.key(11), params)

    def body(st, k):
        ka, ks = jax.random.split(k)
        _, st2, r, term, _, _ = ENV.step(ks, st, jax.random.randint(ka, (), 0, 8), params)
        return st2, (r, st2.phi)

    T = 60
    _, (r, phi) = jax.lax.scan(body, st0, jax.random.split(jax.random.key(12), T))
    disc = 0.9 ** np.arange(T)
    lhs = float(np.sum(disc * np.asarray(r, np.float64)))
    rhs = 0.9**T * float(phi[-1]) - float(st0.phi)
    assert np.abs(np.asarray(r)).max() > 0, "shaping must be non-trivial on this trajectory"
    assert lhs == pytest.approx(rhs, abs=1e-5)


def test_potential_targets_per_mode():
    items = [(7, 5, POISON), (5, 8, FOOD)]  # poison 2 away, food 3 away
    phis = {}
    for mode in FORAGING_MODES:
        st = blank_state(items=items, params=PARAMS[mode])
        phis[mode] = float(st.phi)
    assert phis["ground_truth"] == pytest.approx(0.1 / 3.5) == phis["ground_truth_handhold"]
    assert phis["proxy"] == pytest.approx(0.1 / 2.5) == phis["proxy_jammed"]


def test_modes_vmap_in_one_program_with_tags():
    allp = stack_params([PARAMS[m] for m in FORAGING_MODES])
    obs, st = jax.jit(jax.vmap(ENV.reset, in_axes=(None, 0)))(jax.random.key(0), allp)
    info = jax.jit(jax.vmap(ENV.step, in_axes=(None, 0, None, 0)))(jax.random.key(1), st, 0, allp)[5]
    np.testing.assert_array_equal(info["tag"], np.arange(4))
    assert set(ENV.info_keys()) == set(info)
    np.testing.assert_array_equal(obs[0], obs[1])  # same key, both one-hot
    assert not np.array_equal(obs[0], obs[2])


@pytest.mark.parametrize(
    "override,field",
    [({"max_food": 3}, "max_food"), ({"gamma": 1.5}, "gamma"), ({"min_poison": -1}, "min_poison"),
     ({"episode_length": 2.5}, "episode_length"), ({"proxy_death_bonus": 2}, "proxy_death_bonus"),
     ({"bogus": 1}, "bogus"), ({"move_cost": float("nan")}, "move_cost"), ({"initial_energy": "5"}, "initial_energy")],
)
def test_params_validation(override, field):
    with pytest.raises(ValueError, match=field):
        params_for_mode("ground_truth", **override)


def test_mode_name_and_grid_capacity_validation():
    with pytest.raises(ValueError, match="mode"):
        params_for_mode("groundtruth")
    with pytest.raises(ValueError, match="max_food"):
        ENV.check_params(params_for_mode("ground_truth"))  # 300 items cannot fit 16x16
    with pytest.raises(ValueError, match="view_size"):
        Foraging(view_size=10)


def test_directional_probe_sets_by_hand():
    # Food straight left (-2, 0): every move with dx = -1 = {0, 1, 2}.
    assert set(np.flatnonzero(expected_actions((-2, 0)))) == {0, 1, 2}
    # Food down (0, +2) (y grows downward): every move with dy = +1 = {2, 4, 7}.
    assert set(np.flatnonzero(expected_actions((0, 2)))) == {2, 4, 7}
    # Up-right diagonal (+2, -2): {3 (up), 5 (up-right), 6 (right)}.
    assert set(np.flatnonzero(expected_actions((2, -2)))) == {3, 5, 6}
    probes = directional_probes("proxy")
    chex.assert_shape(probes.obs, (8, 11, 11, 6))
    for obs, (dx, dy) in zip(np.asarray(probes.obs), probes.offsets):
        assert obs[5 + dy, 5 + dx, 2] == 1.0 and obs[..., 2].sum() == 1.0


def test_directional_accuracy_separates_good_and_bad_policies():
    toward = lambda k, o: omniscient_seeker(k, o)
    away = lambda k, o: 7 - omniscient_seeker(k, o)  # the opposite move in the table
    assert directional_accuracy(toward, "ground_truth") == 1.0
    assert directional_accuracy(away, "ground_truth") == 0.0


def test_seekers_prefer_food_over_random():
    env = Foraging(grid_size=24)
    params = params_for_mode("ground_truth", min_food=30, max_food=30, min_poison=30, max_poison=30, episode_length=10_000)
    proxy_params = params_for_mode("proxy", min_food=30, max_food=30, min_poison=30, max_poison=30, episode_length=10_000)

    def eaten(policy, p):
        def run(key):
            k0, k1 = jax.random.split(key)
            obs, st = env.reset(k0, p)

            def body(c, k):
                obs, st = c
                ka, ks = jax.random.split(k)
                obs, st, _, _, _, info = env.step(ks, st, policy(ka, obs), p)
                return (obs, st), jnp.stack([info["ep_food"], info["ep_poison"]])

            return jax.lax.scan(body, (obs, st), jax.random.split(k1, 200))[1].sum(0)

        return np.asarray(jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(3), 8)).sum(0))

    omni, prox, rand = eaten(omniscient_seeker, params), eaten(proxy_seeker, proxy_params), eaten(random_policy, params)
    assert omni[1] == 0 and omni[0] > 3 * rand[0]
    assert prox[0] > 2 * rand[0] and prox[0] / max(prox[1], 1) > 0.5
    assert omni[0] / max(omni[1], 1) > rand[0] / max(rand[1], 1)


# -- the grid outlives the agent (spec: "The grid is not reset on agent reset") ----------------
@functools.lru_cache(maxsize=None)
def _vec_env_fns(env, n):
    from rljax.envs.vec_env import VecEnv

    venv = VecEnv(env, n)
    return jax.jit(venv.reset), jax.jit(venv.step)


def _vec_step_from(states, actions, env=ENV, params=GT):
    """One ``VecEnv`` step (auto-reset included) from hand-made per-instance ``states``."""
    reset, step = _vec_env_fns(env, len(states))
    _, vs = reset(jax.random.key(0), params)
    vs = vs.replace(env_state=jax.tree.map(lambda *xs: jnp.stack(xs), *states))
    return step(jax.random.key(1), vs, jnp.asarray(actions), params)


@pytest.mark.parametrize("end", ["starved", "poisoned", "timed_out"])
def test_auto_reset_respawns_the_agent_on_the_same_grid(end):
    items = [(6, 5, FOOD), (9, 9, FOOD), (4, 4, POISON), (2, 12, POISON), (13, 3, POISON)]
    params = params_for_mode("ground_truth", **SMALL, episode_length=3)
    dying = blank_state((5, 5), {"starved": 0.05, "poisoned": 5.0, "timed_out": 50.0}[end], items, params)
    dying = dying.replace(t=jnp.int32(2 if end == "timed_out" else 0), food_count=jnp.int32(2), poison_count=jnp.int32(3))
    living = blank_state((10, 10), 50.0, items, params).replace(food_count=jnp.int32(2), poison_count=jnp.int32(3))
    action = {"starved": 4, "poisoned": 0, "timed_out": 4}[end]  # down onto empty (5, 6); up-left onto poison (4, 4)
    obs, vs, _, term, trunc, info = _vec_step_from([dying, living], [action, 4], params=params)
    assert bool(info["episode_done"][0]) and not bool(info["episode_done"][1])
    assert bool(term[0]) == (end != "timed_out") and bool(trunc[0]) == (end == "timed_out")
    st = jax.tree.map(lambda x: x[0], vs.env_state)
    # the grid as the last step left it: the eaten poison (if any) respawned, nothing redrawn
    after = np.asarray(dying.grid).copy()
    if end == "poisoned":
        after[4, 4] = EMPTY
        assert (np.asarray(st.grid) == POISON).sum() == 3
        respawned = np.argwhere((np.asarray(st.grid) == POISON) & (after != POISON))
        assert len(respawned) == 1
        after[tuple(respawned[0])] = POISON
    np.testing.assert_array_equal(st.grid, after)
    assert int(st.food_count) == 2 and int(st.poison_count) == 3
    assert float(st.energy) == 50.0 and int(st.t) == 0
    assert st.grid[st.pos[1], st.pos[0]] == EMPTY
    np.testing.assert_array_equal(obs[0], ENV.observe(st.grid, st.pos, params))
    assert float(st.phi) == pytest.approx(float(ENV.potential(obs[0], params)))
    # the instance that went on is untouched by the reset
    np.testing.assert_array_equal(vs.env_state.pos[1], [10, 11])


def test_regrid_on_reset_draws_a_new_grid_after_every_episode():
    env = Foraging(grid_size=S, view_size=11, regrid_on_reset=True)
    items = [(6, 5, FOOD), (9, 9, FOOD), (4, 4, POISON)]
    dying = blank_state((5, 5), 0.05, items).replace(food_count=jnp.int32(2), poison_count=jnp.int32(1))
    _, vs, *_ = _vec_step_from([dying, dying], [4, 4], env=env)
    grids = np.asarray(vs.env_state.grid)
    food = (grids == FOOD).sum((1, 2))
    np.testing.assert_array_equal(food, vs.env_state.food_count)
    assert (food >= 5).all() and (food <= 12).all(), "fresh counts drawn from the params' ranges"


def test_respawn_is_uniform_over_the_empty_cells():
    grid = np.full((S, S), POISON, np.int8)
    empty = [(3, 4), (10, 1), (15, 15)]  # (x, y)
    for x, y in empty:
        grid[y, x] = EMPTY
    st = blank_state().replace(grid=jnp.asarray(grid))
    _, new = jax.jit(jax.vmap(ENV.respawn, in_axes=(0, None, None)))(jax.random.split(jax.random.key(2), 3000), st, GT)
    pos = [tuple(p) for p in np.asarray(new.pos)]
    counts = {c: pos.count(c) for c in empty}
    assert sum(counts.values()) == 3000, "only empty cells"
    assert all(900 <= n <= 1100 for n in counts.values()), counts  # 1000 +- 3.5 sd
    np.testing.assert_array_equal(new.grid[0], grid)


def test_an_eaten_item_respawns_uniformly_on_an_empty_cell_not_under_the_agent():
    # All cells poison but: the agent's cell (5, 5), food at (6, 5), and two empty cells. After
    # eating, the empty cells are (5, 5), (1, 1), (12, 7) and the agent's (6, 5), which is excluded.
    grid = np.full((S, S), POISON, np.int8)
    grid[5, 5], grid[5, 6], grid[1, 1], grid[7, 12] = EMPTY, FOOD, EMPTY, EMPTY
    st = blank_state((5, 5), 50.0).replace(grid=jnp.asarray(grid))
    step = jax.jit(jax.vmap(ENV.step, in_axes=(0, None, None, None)))
    _, new, *_ = step(jax.random.split(jax.random.key(4), 3000), st, 6, GT)
    g = np.asarray(new.grid)
    assert (g[:, 5, 6] == EMPTY).all()
    where = [g[:, 5, 5] == FOOD, g[:, 1, 1] == FOOD, g[:, 7, 12] == FOOD]
    assert (sum(w.astype(int) for w in where) == 1).all()
    assert all(900 <= w.sum() <= 1100 for w in where), [w.sum() for w in where]


def _shared_state(positions, energy, items, params=GT):
    grid = np.zeros((S, S), np.int8)
    for x, y, kind in items:
        grid[y, x] = kind
    _, st = _reset_shared(jax.random.key(0), params, len(positions))
    n = len(positions)
    return st.replace(grid=jnp.asarray(grid), pos=jnp.asarray(positions, jnp.int32),
                      energy=jnp.asarray(energy, jnp.float32), t=jnp.zeros((n,), jnp.int32),
                      food_count=jnp.int32(sum(k == FOOD for *_, k in items)),
                      poison_count=jnp.int32(sum(k == POISON for *_, k in items)))


def test_shared_grid_reset_places_agents_on_distinct_empty_cells():
    obs, st = _reset_shared(jax.random.key(5), GT, 10)
    chex.assert_shape(obs, (10, 11, 11, 6))
    cells = {tuple(p) for p in np.asarray(st.pos)}
    assert len(cells) == 10
    assert all(int(st.grid[y, x]) == EMPTY for x, y in cells)
    assert int((st.grid == FOOD).sum()) == int(st.food_count)


def test_shared_grid_agents_act_in_order_and_see_each_other_as_prey():
    # Agents 0 and 1 both step onto the food at (6, 5): agent 0 (first) eats it, agent 1 finds
    # an empty cell. Agent 2 at (6, 8) then sees the two 3 cells up, as PREY.
    st = _shared_state([(5, 5), (7, 5), (6, 8)], [50.0, 50.0, 50.0], [(6, 5, FOOD), (0, 0, POISON)])
    obs, new, _, term, _, info = jax.jit(ENV.step_shared)(jax.random.key(0), st, jnp.asarray([6, 1, 4]), GT)
    np.testing.assert_array_equal(info["ep_food"], [1, 0, 0])
    np.testing.assert_allclose(new.energy, [64.9, 49.9, 49.9], rtol=1e-6)
    np.testing.assert_array_equal(new.pos, [(6, 5), (6, 5), (6, 9)])
    assert int((new.grid == FOOD).sum()) == 1 and int((new.grid == POISON).sum()) == 1
    assert new.grid[5, 6] == EMPTY and new.grid[9, 6] == EMPTY  # nothing respawned under an agent
    r = 5
    assert obs[2, r - 4, r, 4] == 1.0 and obs[2][..., 4].sum() == 1.0  # one PREY cell: both agents on it
    assert obs[0][..., 4].sum() == 1.0 and obs[0, r + 4, r, 4] == 1.0  # agent 0 sees agent 2, not itself
    assert not bool(term.any())


def test_shared_grid_a_dead_agent_respawns_on_the_same_grid_off_the_others():
    items = [(6, 5, FOOD), (9, 9, POISON)]
    st = _shared_state([(5, 5), (12, 12)], [0.05, 50.0], items)
    step = jax.jit(jax.vmap(ENV.step_shared, in_axes=(0, None, None, None)))
    obs, new, _, term, _, _ = step(jax.random.split(jax.random.key(1), 200), st, jnp.asarray([4, 4]), GT)
    assert bool(term[:, 0].all()) and not bool(term[:, 1].any())
    np.testing.assert_array_equal(new.grid, np.broadcast_to(np.asarray(st.grid), new.grid.shape))
    np.testing.assert_array_equal(new.energy[:, 0], 50.0)
    pos0 = np.asarray(new.pos[:, 0])
    under = np.asarray(st.grid)[pos0[:, 1], pos0[:, 0]]
    # agent 0 moves (and respawns) before agent 1 leaves (12, 12): that cell is taken
    assert (under == EMPTY).all() and not ((pos0 == [12, 12]).all(1)).any()
    assert len({tuple(p) for p in pos0}) > 50, "respawn cells are drawn, not fixed"
