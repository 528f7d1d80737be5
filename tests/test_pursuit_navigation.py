"""The evader's cold-start navigation environment: modes, goal and flee rewards, the scripted
chaser, observation format, time limit, the [0, W] goal flag, params validation."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.environments.navigation import FLEE, GOAL, Navigation, NavigationState, navigation_params
from rljax.environments.pursuit_evasion import D_MAX, EVADER, FRAME_DIM, PURSUER, PursuitState, pursuit_params

NAV = Navigation()
ARENA = pursuit_params(n_obstacles=3, lidar_noise_std=0.0)
P = navigation_params(ARENA)
B = 64

_reset = jax.jit(NAV.reset)
_reset_many = jax.jit(jax.vmap(NAV.reset, in_axes=(0, None)))
_step = jax.jit(NAV.step)


def make_state(pose, mode, goal=(0.0, 0.0), goals_reached=0, t=0, obstacles=()):
    ob = np.zeros((3, 3), np.float32)
    mask = np.zeros((3,), bool)
    for i, o in enumerate(obstacles):
        ob[i], mask[i] = o, True
    arena = PursuitState(pose=jnp.asarray(pose, jnp.float32), action=jnp.zeros((2, 2)), obstacles=jnp.asarray(ob),
                         obstacle_mask=jnp.asarray(mask), t=jnp.asarray(t, jnp.int32),
                         history=jnp.zeros((2, 10, FRAME_DIM), jnp.float32))
    return NavigationState(arena=arena, mode=jnp.asarray(mode, jnp.int32), goal=jnp.asarray(goal, jnp.float32),
                           goals_reached=jnp.asarray(goals_reached, jnp.int32), t=jnp.asarray(t, jnp.int32))


def step(state, action, params=P, key=0):
    return _step(jax.random.key(key), state, jnp.asarray(action, jnp.float32), params)


def test_reset_mixes_modes_half_and_half_with_valid_goals_and_the_partial_format():
    obs, st = _reset_many(jax.random.split(jax.random.key(0), B), P)
    flee = np.asarray(st.mode) == FLEE
    # Binomial(64, 1/2): 4 standard deviations is 16.
    assert abs(flee.sum() - B / 2) <= 16, flee.sum()
    goal = np.asarray(st.goal)
    assert (np.abs(goal) <= 9.0 + 1e-6).all()
    ob, mask = np.asarray(st.arena.obstacles), np.asarray(st.arena.obstacle_mask)
    gap = np.linalg.norm(goal[:, None] - ob[..., :2], axis=-1) - ob[..., 2]
    assert (gap[mask] >= 0.5 - 1e-5).all()
    assert obs.shape == (B, 10 * FRAME_DIM)
    h = np.asarray(obs).reshape(B, 10, FRAME_DIM)
    assert (h[:, :-1] == 0).all()
    pose = np.asarray(st.arena.pose)[:, EVADER]
    np.testing.assert_allclose(h[:, -1, :3], pose, atol=1e-6)
    d_goal = np.linalg.norm(goal - pose[:, :2], axis=-1)
    for i in np.flatnonzero(~flee):
        exp = d_goal[i] if d_goal[i] <= 10.0 else -1.0
        np.testing.assert_allclose(h[i, -1, 5], exp, atol=1e-5)
    # Flee episodes read the FOV sensor on the chaser: (-1, 0) or its true distance.
    d_opp = np.linalg.norm(np.asarray(st.arena.pose)[:, 0, :2] - pose[:, :2], axis=-1)
    for i in np.flatnonzero(flee):
        assert h[i, -1, 5] == -1.0 or abs(h[i, -1, 5] - d_opp[i]) < 1e-5


def test_goal_reward_is_distance_shaping_plus_boundary_penalty():
    st = make_state([[-8.0, -8.0, 0.0], [0.0, 0.0, 0.0]], GOAL, goal=(3.0, 4.0))
    obs, s1, r, term, trunc, info = step(st, [1.0, 0.0])
    d = math.hypot(3.0 - 0.05, 4.0)
    np.testing.assert_allclose(r, -0.5 * d / D_MAX, rtol=1e-5)
    assert not term and not trunc and info["tag"] == GOAL
    frame = np.asarray(obs).reshape(10, FRAME_DIM)[-1]
    np.testing.assert_allclose(frame[5:7], [d, math.atan2(4.0, 2.95)], atol=1e-5)
    np.testing.assert_allclose(s1.arena.pose[PURSUER], [-8.0, -8.0, 0.0], atol=0)  # the pursuer stands still
    st = make_state([[-8.0, -8.0, 0.0], [9.6, 0.0, 0.0]], GOAL, goal=(3.0, 4.0))
    _, _, r, *_ = step(st, [0.0, 0.0])
    np.testing.assert_allclose(r, -0.5 * math.hypot(6.6, 4.0) / D_MAX - 0.1, rtol=1e-5)
    # A goal beyond the FOV range reads (-1, 0).
    st = make_state([[-8.0, -8.0, 0.0], [-9.0, 9.0, 0.0]], GOAL, goal=(5.0, -5.0))
    obs, *_ = step(st, [0.0, 0.0])
    np.testing.assert_allclose(np.asarray(obs).reshape(10, FRAME_DIM)[-1, 5:7], [-1.0, 0.0])


def test_reaching_goals_pays_the_bonus_resamples_and_ends_after_three():
    st = make_state([[-8.0, -8.0, 0.0], [1.0, 1.0, 0.0]], GOAL, goal=(1.3, 1.0))
    _, s1, r, term, _, info = step(st, [1.0, 0.0])
    np.testing.assert_allclose(r, -0.5 * 0.25 / D_MAX + 10.0, rtol=1e-5)
    assert int(s1.goals_reached) == 1 and not term and info["ep_goals_reached"] == 1
    assert float(jnp.linalg.norm(s1.goal - jnp.asarray([1.3, 1.0]))) > 1e-3, "a new goal is drawn"
    st = make_state([[-8.0, -8.0, 0.0], [9.7, 1.0, 0.0]], GOAL, goal=(9.75, 1.0), goals_reached=2)
    _, s2, r, term, _, _ = step(st, [1.0, 0.0])
    assert bool(term) and int(s2.goals_reached) == 3
    # The last goal ends the episode before the boundary penalty (reference order).
    np.testing.assert_allclose(r, -0.5 * abs(9.75 - 9.75) / D_MAX + 10.0, atol=1e-5)


def test_flee_mode_scripted_chaser_reward_and_capture_penalty():
    st = make_state([[0.0, 0.0, 0.0], [3.0, 3.0, 0.0]], FLEE)
    _, s1, r, term, _, info = step(st, [1.0, 0.0])
    # Chaser: v = 0.5 * v_max, omega = clip(3 * bearing(45 deg), 2.84).
    np.testing.assert_allclose(s1.arena.action[PURSUER], [0.5, min(3 * math.pi / 4, 2.84)], atol=1e-6)
    d = math.hypot(3.05 - 0.025, 3.0)
    np.testing.assert_allclose(r, 0.5 * d / D_MAX, rtol=1e-5)
    assert not term and info["tag"] == FLEE
    st = make_state([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]], FLEE)
    _, _, r, term, _, info = step(st, [0.0, 0.0])
    assert bool(term) and info["ep_captured"] == 1
    np.testing.assert_allclose(r, 0.5 * 0.475 / D_MAX - 10.0, rtol=1e-5)


def test_capture_by_the_standing_pursuer_ends_a_goal_episode_without_penalty():
    st = make_state([[0.0, 0.0, 0.0], [0.52, 0.0, math.pi]], GOAL, goal=(5.0, 5.0))
    _, s1, r, term, *_ = step(st, [1.0, 0.0])
    assert bool(term)
    np.testing.assert_allclose(r, -0.5 * math.hypot(5.0 - 0.47, 5.0) / D_MAX, rtol=1e-5)


def test_episodes_truncate_at_max_steps():
    st = make_state([[-8.0, -8.0, 0.0], [5.0, 5.0, 0.0]], FLEE, t=299)
    *_, term, trunc, _ = step(st, [0.0, 0.0])
    assert bool(trunc) and not bool(term)
    st = make_state([[-8.0, -8.0, 0.0], [5.0, 5.0, 0.0]], FLEE, t=298)
    *_, trunc, _ = step(st, [0.0, 0.0])
    assert not bool(trunc)


def test_goal_bounds_bug_flag_samples_goals_in_0_w_coordinates():
    p = navigation_params(ARENA, goal_bounds_bug=1, flee_prob=0.0)
    _, st = _reset_many(jax.random.split(jax.random.key(1), B), p)
    goal = np.asarray(st.goal)
    assert (goal >= 1.0 - 1e-6).all() and (goal <= 19.0 + 1e-6).all()
    assert (np.asarray(st.mode) == GOAL).all()
    # The boundary test uses [0, 20]: the evader at x = 0.3 is "near the wall".
    st = make_state([[-8.0, -8.0, 0.0], [0.3, 5.0, 0.0]], GOAL, goal=(5.0, 5.0))
    _, _, r, *_ = step(st, [0.0, 0.0], p)
    np.testing.assert_allclose(r, -0.5 * 4.7 / D_MAX - 0.1, rtol=1e-5)


@pytest.mark.parametrize("field,value", [("flee_prob", 1.5), ("max_goals", 0), ("max_steps", 2.5), ("goal_margin", 12.0),
                                         ("chaser_speed_ratio", -0.1), ("goal_bounds_bug", 3)])
def test_bad_navigation_params_raise_naming_field_and_value(field, value):
    with pytest.raises(ValueError, match=field) as err:
        navigation_params(**{field: value})
    assert repr(value) in str(err.value)


def test_navigation_needs_the_partial_observation_arena():
    from rljax.environments.pursuit_evasion import PursuitEvasion

    with pytest.raises(ValueError, match="partial"):
        Navigation(PursuitEvasion(observation="full"))
    with pytest.raises(ValueError, match="unknown field 'goals'"):
        navigation_params(goals=3)
