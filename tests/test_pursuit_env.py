"""Exact rules of the pursuit-evasion arena: dynamics, capture/timeout, resets, rewards, observations."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.environments.pursuit_evasion import (
    D_MAX,
    EVADER,
    FALLBACK_POSES,
    FRAME_DIM,
    FULL_OBS_DIM,
    PARTIAL_OBS_DIM,
    PURSUER,
    PursuitEvasion,
    PursuitState,
    pursuit_params,
    pursuit_rewards,
    stack_params,
)
from rljax.environments.pursuit_sensors import fov_reading, lidar_ranges

ENV = PursuitEvasion()  # partial observation, 3 obstacle slots, 36 rays, 10 frames
FULL = PursuitEvasion(observation="full")
M = ENV.max_obstacles
QUIET = dict(lidar_noise_std=0.0)  # exact frames
P = pursuit_params(**QUIET)

_reset = jax.jit(ENV.reset)
_step = jax.jit(ENV.step_both)
_reset_many = jax.jit(jax.vmap(ENV.reset, in_axes=(0, None)))  # always 16 keys: one compile
_rewards_jit = jax.jit(pursuit_rewards)
B = 16


def keys(seed):
    return jax.random.split(jax.random.key(seed), B)
_full_reset = jax.jit(FULL.reset)
_full_step = jax.jit(FULL.step_both)


def make_state(pose, obstacles=(), t=0, action=None, env=ENV) -> PursuitState:
    """A hand-built state; ``obstacles`` = [(x, y, r)] fill the first slots."""
    obs = np.zeros((M, 3), np.float32)
    mask = np.zeros((M,), bool)
    for i, o in enumerate(obstacles):
        obs[i], mask[i] = o, True
    hist = 10 if env.partial else 0
    return PursuitState(
        pose=jnp.asarray(pose, jnp.float32),
        action=jnp.zeros((2, 2), jnp.float32) if action is None else jnp.asarray(action, jnp.float32),
        obstacles=jnp.asarray(obs),
        obstacle_mask=jnp.asarray(mask),
        t=jnp.asarray(t, jnp.int32),
        history=jnp.zeros((2, hist, env.frame_dim), jnp.float32),
    )


def step(state, actions, params=P, key=0):
    return _step(jax.random.key(key), state, jnp.asarray(actions, jnp.float32), params)


def wrap(a):
    return (a + math.pi) % (2 * math.pi) - math.pi


# -- dynamics --------------------------------------------------------------------------------
def test_euler_integration_step_is_exact_and_simultaneous():
    pose = [[1.0, 2.0, 0.3], [-3.0, -4.0, math.pi - 0.01]]
    acts = [[0.8, 1.5], [0.5, 2.84]]
    _, st, *_ = step(make_state(pose), acts)
    dt = 0.05
    for i in range(2):
        x, y, th = pose[i]
        v, w = acts[i]
        exp = [x + v * math.cos(th) * dt, y + v * math.sin(th) * dt, wrap(th + w * dt)]
        np.testing.assert_allclose(st.pose[i], exp, atol=2e-6)
    assert st.pose[EVADER, 2] < 0, "heading wraps past pi into [-pi, pi)"
    np.testing.assert_allclose(st.action, acts, atol=1e-7)
    assert int(st.t) == 1


def test_actions_are_clipped_per_role_no_reverse():
    params = pursuit_params(pursuer_v_max=0.95, evader_omega_max=1.0, **QUIET)
    _, st, *_ = step(make_state([[0, 0, 0], [5, 5, 0]]), [[5.0, -10.0], [-1.0, 10.0]], params)
    np.testing.assert_allclose(st.action, [[0.95, -2.84], [0.0, 1.0]], atol=1e-6)
    np.testing.assert_allclose(st.pose[PURSUER, 0], 0.95 * 0.05, atol=1e-7)
    np.testing.assert_allclose(st.pose[EVADER, :2], [5, 5], atol=0)  # v clipped to 0: no reverse


def test_unit_actions_rescale_affinely_to_the_physical_box_and_encode_inverts_it():
    env = PursuitEvasion(observation="full", unit_actions=True)
    params = pursuit_params(pursuer_v_max=0.8, evader_omega_max=1.0, **QUIET)
    assert env.action_space(params).low == -1.0 and env.action_space(params).high == 1.0
    unit = jnp.array([[0.0, 0.5], [-3.0, 2.0]])  # mean 0 -> half speed; outside [-1, 1] clipped
    cmd = env.expand_actions(unit, params)
    np.testing.assert_allclose(cmd, [[0.4, 0.5 * 2.84], [0.0, 1.0]], atol=1e-6)
    for role, (v, om) in ((PURSUER, (0.3, -2.0)), (EVADER, (1.0, 0.25))):
        vm, omm = params.v_max()[role], params.omega_max()[role]
        back = env.expand_actions(jnp.stack([env.encode_action(jnp.array([v, om]), vm, omm)] * 2), params)[role]
        np.testing.assert_allclose(back, [v, om], atol=1e-6)
    fixed = PursuitEvasion(observation="full", unit_actions=True, fixed_speed=True)
    np.testing.assert_allclose(fixed.expand_actions(jnp.array([[0.5], [-1.0]]), params), [[0.8, 1.42], [1.0, -1.0]], atol=1e-6)
    # without the flag the physical action passes through unchanged
    phys = jnp.array([0.3, -2.0])
    assert PursuitEvasion(observation="full").encode_action(phys, 1.0, 2.84) is phys


def test_prep_steps_freeze_the_pursuers_speed_but_not_its_turning():
    params = pursuit_params(prep_steps=2, **QUIET)
    st = make_state([[0, 0, 0], [5, 5, 0]])
    for t in range(3):
        _, st, *_ = step(st, [[1.0, 1.0], [1.0, 0.0]], params)
        moved = float(st.pose[PURSUER, 0]) != 0.0
        assert moved == (t >= 2), t
        np.testing.assert_allclose(st.pose[PURSUER, 2], 0.05 * (t + 1), atol=1e-6)
    np.testing.assert_allclose(st.pose[EVADER, 0], 5 + 3 * 0.05, atol=1e-5)


def test_wall_clip_sets_the_flag_and_the_per_agent_wall_penalty():
    st = make_state([[9.83, 0.0, 0.0], [0.0, -9.5, -math.pi / 2]])
    _, s1, r0, *_rest, info = step(st, [[1.0, 0.0], [0.1, 0.0]])
    np.testing.assert_allclose(s1.pose[PURSUER, :2], [9.85, 0.0], atol=1e-6)  # 10 - robot_radius
    assert info["ep_pursuer_wall"] == 1 and info["ep_evader_wall"] == 0
    _, _, r1, *_ = step(st, [[1.0, 0.0], [0.1, 0.0]], pursuit_params(w_wall=0.7, **QUIET))
    np.testing.assert_allclose(np.asarray(r1) - np.asarray(r0), [-0.7, 0.0], atol=1e-6)
    # Both axes clip at a corner.
    _, s2, *_ = step(make_state([[-9.84, 9.84, 0.75 * math.pi], [0, 0, 0]]), [[1.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(s2.pose[PURSUER, :2], [-9.85, 9.85], atol=1e-6)


def test_obstacle_push_out_is_radial_to_radius_plus_robot_radius():
    ob = (1.0, -2.0, 0.8)
    # The evader drives into the obstacle from a diagonal direction.
    start = np.array([1.0 - 0.7, -2.0 + 0.7])
    heading = -math.pi / 4
    st = make_state([[-8, 8, 0], [start[0], start[1], heading]], [ob])
    _, s1, r0, *_rest, info = step(st, [[0.0, 0.0], [1.0, 0.3]])
    moved = start + 0.05 * np.array([math.cos(heading), math.sin(heading)])
    n = (moved - ob[:2]) / np.linalg.norm(moved - ob[:2])
    np.testing.assert_allclose(s1.pose[EVADER, :2], np.array(ob[:2]) + n * (0.8 + 0.15), atol=1e-5)
    np.testing.assert_allclose(s1.pose[EVADER, 2], heading + 0.3 * 0.05, atol=1e-6)  # heading untouched
    assert info["ep_evader_collisions"] == 1 and info["ep_pursuer_collisions"] == 0
    _, _, r1, *_ = step(st, [[0.0, 0.0], [1.0, 0.3]], pursuit_params(w_collision=2.5, **QUIET))
    np.testing.assert_allclose(np.asarray(r1) - np.asarray(r0), [0.0, -2.5], atol=1e-6)
    # Just outside radius + robot_radius is not a collision.
    st = make_state([[-8, 8, 0], [1.0 - 0.951, -2.0, math.pi]], [ob])
    _, s2, *_rest, info = step(st, [[0.0, 0.0], [0.0, 0.0]])
    assert info["ep_evader_collisions"] == 0
    # An agent at the exact centre is pushed along its heading.
    st = make_state([[1.0, -2.0, math.pi / 2], [8, 8, 0]], [ob])
    _, s3, *_ = step(st, [[0.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(s3.pose[PURSUER, :2], [1.0, -2.0 + 0.95], atol=1e-6)


def test_push_out_near_a_wall_is_clipped_back_into_the_arena():
    ob = (9.0, 0.0, 0.5)  # hand-built: closer to the wall than placement allows
    st = make_state([[9.5, 0.1, 0.0], [0, 0, 0]], [ob])
    _, s1, *_ = step(st, [[0.0, 0.0], [0.0, 0.0]])
    assert float(s1.pose[PURSUER, 0]) <= 9.85 + 1e-6


def test_capture_distance_terminates_with_the_bonus():
    # Evader still; the pursuer moves 0.05 toward it.
    for gap, caught in ((0.5 + 0.05 - 1e-3, True), (0.5 + 0.05 + 1e-3, False)):
        st = make_state([[0.0, 0.0, 0.0], [gap, 0.0, 0.0]])
        _, s1, r, term, trunc, info = step(st, [[1.0, 0.0], [0.0, 0.0]])
        assert bool(term) == caught and not bool(trunc)
        assert info["captured"] == caught and info["ep_captured"] == caught
        exp = 0.05 / D_MAX + (100.0 if caught else 0.0)
        np.testing.assert_allclose(r, [exp, -exp], rtol=1e-5, atol=1e-6)


def test_timeout_is_a_truncation_never_with_a_capture():
    params = pursuit_params(max_steps=50, **QUIET)
    st = make_state([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0]], t=49)
    _, s1, r, term, trunc, info = step(st, [[0.0, 0.0], [0.0, 0.0]], params)
    assert bool(trunc) and not bool(term) and info["ep_escaped"] == 1
    np.testing.assert_allclose(r, [-100.0, 100.0], atol=1e-6)
    st = make_state([[0.0, 0.0, 0.0], [0.52, 0.0, 0.0]], t=49)
    _, _, r, term, trunc, info = step(st, [[1.0, 0.0], [0.0, 0.0]], params)
    assert bool(term) and not bool(trunc) and info["ep_escaped"] == 0
    np.testing.assert_allclose(r[0], 0.05 / D_MAX + 100.0, rtol=1e-6)
    st = make_state([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0]], t=48)
    _, _, _, term, trunc, _ = step(st, [[0.0, 0.0], [0.0, 0.0]], params)
    assert not bool(term) and not bool(trunc)


# -- resets ----------------------------------------------------------------------------------
def test_reset_places_separated_obstacles_and_valid_start_poses():
    params = pursuit_params(n_obstacles=3, min_init_d=2.0, max_init_d=5.0)
    obs, st = _reset_many(keys(0), params)
    ob, mask = np.asarray(st.obstacles), np.asarray(st.obstacle_mask)
    assert mask.all(), "3 obstacles always fit a 20 m arena"
    r = ob[..., 2]
    assert (r >= 0.3).all() and (r <= 1.0).all()
    assert (np.abs(ob[..., :2]) <= 10 - r[..., None] - 0.5 + 1e-5).all()
    for i in range(3):
        for j in range(i):
            gap = np.linalg.norm(ob[:, i, :2] - ob[:, j, :2], axis=-1) - r[:, i] - r[:, j]
            assert (gap >= 0.5 - 1e-5).all()
    pose = np.asarray(st.pose)
    d = np.linalg.norm(pose[:, 0, :2] - pose[:, 1, :2], axis=-1)
    assert (d >= 2.0).all() and (d <= 5.0).all()
    assert not np.any(np.all(pose == FALLBACK_POSES, axis=(1, 2)))
    to_obs = np.linalg.norm(pose[:, :, None, :2] - ob[:, None, :, :2], axis=-1)
    assert (to_obs > r[:, None, :] + 0.15).all(), "no agent starts inside an obstacle"
    assert (np.abs(pose[..., :2]) <= 9.85).all() and (pose[..., 2] >= -math.pi).all() and (pose[..., 2] < math.pi).all()
    assert (np.asarray(st.t) == 0).all() and (np.asarray(st.action) == 0).all()
    assert obs.shape == (B, 2, PARTIAL_OBS_DIM)
    assert len(np.unique(ob[:, 0, 0])) == B, "every reset draws its own layout"


_poses_many = jax.jit(jax.vmap(ENV.initial_poses, in_axes=(0, None, None, None)))


def reference_start_distances(rng, n, lo, hi, half=9.85):
    """The reference's sampler (uniform pairs, reject until lo <= d <= hi), no obstacles."""
    out = []
    while len(out) < n:
        p, e = rng.uniform(-half, half, 2), rng.uniform(-half, half, 2)
        d = np.linalg.norm(p - e)
        if lo <= d <= hi:
            out.append((d, abs(p[0]), abs(e[1])))
    return np.array(out)


@pytest.mark.parametrize("band", [(2.0, 5.0), (5.0, 15.0)])
def test_start_pose_distribution_matches_the_reference_rejection_sampler(band):
    from scipy.stats import ks_2samp

    no_obs = (jnp.zeros((M, 3)), jnp.zeros((M,), bool))
    params = pursuit_params(min_init_d=band[0], max_init_d=band[1])
    pose = np.asarray(_poses_many(jax.random.split(jax.random.key(10), 4096), *no_obs, params))
    assert not np.any(np.all(np.abs(pose - FALLBACK_POSES) < 1e-6, axis=(1, 2)))
    ours = np.stack([np.linalg.norm(pose[:, 0, :2] - pose[:, 1, :2], axis=-1), np.abs(pose[:, 0, 0]), np.abs(pose[:, 1, 1])], -1)
    ref = reference_start_distances(np.random.default_rng(0), 4096, *band)
    for j, what in enumerate(("distance", "|x| of the pursuer", "|y| of the evader")):
        assert ks_2samp(ours[:, j], ref[:, j]).pvalue > 1e-3, what
    headings = pose[..., 2].reshape(-1)
    assert ks_2samp(headings, np.random.default_rng(1).uniform(-np.pi, np.pi, headings.size)).pvalue > 1e-3


def test_reset_draws_the_requested_number_of_obstacles():
    _, st = _reset_many(keys(1), pursuit_params(n_obstacles=1))
    np.testing.assert_array_equal(np.asarray(st.obstacle_mask).sum(-1), 1)
    assert np.asarray(st.obstacle_mask)[:, 0].all()
    _, st = _reset_many(keys(1), pursuit_params(n_obstacles=0))
    assert not np.asarray(st.obstacle_mask).any()


def test_an_obstacle_that_cannot_be_placed_is_skipped():
    # Centres must lie within +-(10 - r - 5) < 1.1 but two obstacles need 13 m between centres.
    params = pursuit_params(n_obstacles=3, obstacle_min_radius=4.0, obstacle_max_radius=4.4, obstacle_margin=5.0,
                            min_init_d=0.0, max_init_d=30.0)
    _, st = _reset_many(keys(2), params)
    np.testing.assert_array_equal(np.asarray(st.obstacle_mask), [[True, False, False]] * B)


def test_unreachable_start_distance_uses_the_fallback_poses():
    params = pursuit_params(min_init_d=28.0, max_init_d=28.2)
    _, st = _reset_many(keys(3), params)
    np.testing.assert_allclose(st.pose, np.broadcast_to(FALLBACK_POSES, (B, 2, 3)), atol=1e-6)


def test_reset_and_step_are_deterministic_and_vmap_consistent():
    params = pursuit_params(n_obstacles=3, lidar_noise_std=0.05)
    ks = keys(4)
    obs_b, st_b = _reset_many(ks, params)
    obs_1, st_1 = _reset(ks[2], params)
    np.testing.assert_array_equal(obs_b[2], obs_1)
    obs_2, _ = _reset(ks[2], params)
    np.testing.assert_array_equal(obs_1, obs_2)
    a = jnp.asarray([[0.7, 0.2], [0.9, -0.4]])
    out_1 = _step(ks[0], st_1, a, params)
    out_2 = _step(ks[0], st_1, a, params)
    for x, y in zip(jax.tree.leaves(out_1), jax.tree.leaves(out_2)):
        np.testing.assert_array_equal(x, y)


# -- rewards ---------------------------------------------------------------------------------
def _rewards(params, d_prev=5.0, d=4.9, captured=False, timeout=False, blocked=False, has_obs=True,
             d_obs_prev=2.0, d_obs=1.8, collision=(False, False), wall=(False, False)):
    return np.asarray(_rewards_jit(params, jnp.float32(d_prev), jnp.float32(d), jnp.asarray(captured),
                                      jnp.asarray(timeout), jnp.asarray(blocked), jnp.asarray(has_obs),
                                      jnp.float32(d_obs_prev), jnp.float32(d_obs), jnp.asarray(collision), jnp.asarray(wall)))


def test_reward_default_is_zero_sum_distance_shaping_with_terminal_terms():
    base = pursuit_params(distance_scale=2.0)
    r = _rewards(base)
    np.testing.assert_allclose(r, [2.0 * 0.1 / D_MAX, -2.0 * 0.1 / D_MAX], rtol=1e-5)
    r = _rewards(base, captured=True, blocked=True)
    np.testing.assert_allclose(r, [2.0 * 0.1 / D_MAX + 100, -(2.0 * 0.1 / D_MAX + 100)], rtol=1e-5)
    r = _rewards(pursuit_params(timeout_penalty=-50.0), timeout=True)
    np.testing.assert_allclose(r, [0.1 / D_MAX - 50, -(0.1 / D_MAX - 50)], rtol=1e-5)


def test_reward_mode_a_occlusion_bonus():
    p = pursuit_params(w_occlusion=0.3)
    zs = 0.1 / D_MAX
    np.testing.assert_allclose(_rewards(p, blocked=True), [zs, -zs + 0.3], rtol=1e-5)
    np.testing.assert_allclose(_rewards(p, blocked=False), [zs, -zs], rtol=1e-5)
    np.testing.assert_allclose(_rewards(p, blocked=True, has_obs=False), [zs, -zs], rtol=1e-5)
    np.testing.assert_allclose(_rewards(p, blocked=True, captured=True), [zs + 100, -zs - 100], rtol=1e-5)
    # The reference pays the bonus on a timeout step (only a capture cancels it).
    np.testing.assert_allclose(_rewards(p, blocked=True, timeout=True), [zs - 100, -zs + 100 + 0.3], rtol=1e-5)


def test_reward_mode_b_visibility_replaces_the_zero_sum_term_on_live_steps_with_obstacles():
    p = pursuit_params(use_visibility_reward=1, visibility_weight=0.1)
    zs = 0.1 / D_MAX
    np.testing.assert_allclose(_rewards(p, blocked=True), [zs, 0.1], rtol=1e-5)
    np.testing.assert_allclose(_rewards(p, blocked=False), [zs, -0.1], rtol=1e-5)
    np.testing.assert_allclose(_rewards(p, has_obs=False), [zs, -zs], rtol=1e-5)
    np.testing.assert_allclose(_rewards(p, captured=True, blocked=True), [zs + 100, -zs - 100], rtol=1e-5)
    np.testing.assert_allclose(_rewards(p, timeout=True, blocked=True), [zs - 100, -zs + 100], rtol=1e-5)


def test_reward_survival_bonus_and_obstacle_pbrs_only_on_live_steps():
    p = pursuit_params(survival_bonus=0.02, w_obs_approach=50.0)
    zs = 0.1 / D_MAX
    pbrs = 50.0 * (2.0 - 1.8) / D_MAX
    np.testing.assert_allclose(_rewards(p), [zs, -zs + 0.02 + pbrs], rtol=1e-5)
    np.testing.assert_allclose(_rewards(p, captured=True), [zs + 100, -zs - 100], rtol=1e-5)
    np.testing.assert_allclose(_rewards(p, timeout=True), [zs - 100, -zs + 100], rtol=1e-5)
    np.testing.assert_allclose(_rewards(p, has_obs=False, d_obs_prev=np.inf, d_obs=np.inf), [zs, -zs + 0.02], rtol=1e-5)


def test_reward_collision_and_wall_penalties_are_per_agent():
    p = pursuit_params(w_collision=1.0, w_wall=0.5)
    zs = 0.1 / D_MAX
    r = _rewards(p, collision=(True, False), wall=(False, True))
    np.testing.assert_allclose(r, [zs - 1.0, -zs - 0.5], rtol=1e-5)


def test_reward_terms_through_the_step_occlusion_visibility_and_pbrs():
    """The step feeds the right geometry into the reward: LOS through an obstacle, and the
    evader's surface distance to it before and after moving."""
    ob = (0.0, 0.0, 1.0)
    pose = [[-4.0, 0.0, 0.0], [3.0, 0.0, math.pi]]  # LOS passes through the obstacle
    st = make_state(pose, [ob])
    acts = [[0.0, 0.0], [1.0, 0.0]]  # evader moves 0.05 toward the obstacle (and the pursuer)
    _, _, r0, *_rest, info = step(st, acts)
    dz = 0.05 / D_MAX
    np.testing.assert_allclose(r0, [dz, -dz], rtol=1e-4)
    assert info["ep_occluded"] == 1
    p = pursuit_params(w_occlusion=0.3, w_obs_approach=10.0, **QUIET)
    _, _, r1, *_ = step(st, acts, p)
    np.testing.assert_allclose(r1, [dz, -dz + 0.3 + 10.0 * 0.05 / D_MAX], rtol=1e-4)
    p = pursuit_params(use_visibility_reward=1, visibility_weight=0.1, **QUIET)
    _, _, r2, *_ = step(st, acts, p)
    np.testing.assert_allclose(r2, [dz, 0.1], rtol=1e-4)
    st_clear = make_state([[-4.0, 3.0, 0.0], [3.0, 3.0, math.pi]], [ob])
    _, _, r3, *_rest, info = step(st_clear, acts, p)
    np.testing.assert_allclose(r3, [dz, -0.1], rtol=1e-4)
    assert info["ep_occluded"] == 0


# -- observations ----------------------------------------------------------------------------
def test_partial_observation_history_newest_last_and_zero_padded():
    params = pursuit_params(n_obstacles=2, **QUIET)
    obs, st = _reset(jax.random.key(5), params)
    assert obs.shape == (2, PARTIAL_OBS_DIM)
    h = np.asarray(obs).reshape(2, 10, FRAME_DIM)
    assert (h[:, :-1] == 0).all(), "zero-padded at episode start"
    for i in range(2):
        frame = h[i, -1]
        np.testing.assert_allclose(frame[:3], st.pose[i], atol=1e-7)
        np.testing.assert_allclose(frame[3:5], [0, 0])
        d, b, _ = fov_reading(st.pose[i], st.pose[1 - i, :2], params.fov_half_angle, params.fov_range,
                              params.fov_occlusion, st.obstacles, st.obstacle_mask)
        np.testing.assert_allclose(frame[5:7], [d, b], atol=1e-6)
        lid = lidar_ranges(st.pose[i], st.obstacles, st.obstacle_mask, 36, params.lidar_range, 10.0, params.lidar_bounds_bug)
        np.testing.assert_allclose(frame[7:], lid, atol=1e-6)
    obs2, st2, *_ = _step(jax.random.key(6), st, jnp.asarray([[0.5, 0.1], [0.4, -0.2]]), params)
    h2 = np.asarray(obs2).reshape(2, 10, FRAME_DIM)
    np.testing.assert_array_equal(h2[:, -2], h[:, -1])
    assert (h2[:, :-2] == 0).all()
    np.testing.assert_allclose(h2[:, -1, 3:5], [[0.5, 0.1], [0.4, -0.2]], atol=1e-7)
    np.testing.assert_allclose(h2[:, -1, :3], st2.pose, atol=1e-7)


def test_full_observation_layout_from_each_perspective():
    ob = [(3.0, 4.0, 1.0), (-6.0, 0.0, 0.5)]
    st = make_state([[2.0, -3.0, math.pi / 2], [-4.0, 1.0, -math.pi / 4]], ob, action=[[0.5, 1.0], [0.25, -2.0]], env=FULL)
    p = pursuit_params(pursuer_v_max=0.5, pursuer_omega_max=2.0)
    o = np.asarray(jax.jit(lambda s: FULL.observe(s, p))(st))
    assert o.shape == (2, FULL_OBS_DIM)
    d = math.hypot(6.0, 4.0)
    bearing_p = wrap(math.atan2(4.0, -6.0) - math.pi / 2)
    exp_p = [0.2, -0.3, 0.5, 1.0, 0.5, -0.4, 0.1, -0.25, 0.5, -1.0, d / D_MAX, bearing_p / math.pi, 0.8, 0.7]
    np.testing.assert_allclose(o[0, :14], exp_p, atol=1e-6)
    np.testing.assert_allclose(o[1, :5], [-0.4, 0.1, -0.25, 0.5, -1.0], atol=1e-6)
    np.testing.assert_allclose(o[1, 10:14], [d / D_MAX, wrap(math.atan2(-4.0, 6.0) + math.pi / 4) / math.pi, 0.6, 0.9], atol=1e-6)
    # Pursuer: obstacle 0 at centre distance sqrt(1 + 49) = 7.07, obstacle 1 at sqrt(64 + 9) = 8.54.
    f0 = [(math.hypot(1, 7) - 1.0) / D_MAX, wrap(math.atan2(7, 1) - math.pi / 2) / math.pi]
    f1 = [(math.hypot(8, 3) - 0.5) / D_MAX, wrap(math.atan2(3, -8) - math.pi / 2) / math.pi]
    np.testing.assert_allclose(o[0, 14:], f0 + f1 + [1.0, 0.0], atol=1e-6)
    # Evader: obstacle 1 is nearer (sqrt(4 + 1)) so it comes first.
    assert o[1, 14] < o[1, 16]
    np.testing.assert_allclose(o[1, 14], (math.hypot(2, 1) - 0.5) / D_MAX, atol=1e-6)


def test_full_observation_env_steps_and_resets():
    params = pursuit_params(n_obstacles=3)
    obs, st = _full_reset(jax.random.key(7), params)
    assert obs.shape == (2, FULL_OBS_DIM) and st.history.shape == (2, 0, FRAME_DIM)
    obs2, st2, r, *_ = _full_step(jax.random.key(8), st, jnp.asarray([[1.0, 0.0], [1.0, 0.0]]), params)
    np.testing.assert_allclose(obs2[0, :2], st2.pose[0, :2] / 10, atol=1e-6)
    np.testing.assert_allclose(obs2[0, :3], obs2[1, 5:8], atol=1e-7)
    assert np.all(np.abs(np.asarray(obs2)) <= 1.0 + 1e-6)


def test_fixed_speed_actions_drive_at_v_max():
    env = PursuitEvasion(fixed_speed=True)
    st = make_state([[0, 0, 0], [5, 5, math.pi / 2]])
    _, s1, *_ = jax.jit(env.step_both)(jax.random.key(0), st, jnp.asarray([[0.5], [-0.5]]), pursuit_params(evader_v_max=0.8))
    np.testing.assert_allclose(s1.action, [[1.0, 0.5], [0.8, -0.5]], atol=1e-7)
    assert env.action_space(env.default_params()).shape == (1,)


# -- params and constructor validation -------------------------------------------------------
@pytest.mark.parametrize(
    "field,value",
    [
        ("pursuer_v_max", 0.0),
        ("evader_omega_max", -1.0),
        ("dt", float("nan")),
        ("max_steps", 10.5),
        ("max_steps", 0),
        ("prep_steps", -1),
        ("max_init_d", 1.0),  # < min_init_d = 3
        ("obstacle_max_radius", 0.1),  # < obstacle_min_radius
        ("obstacle_max_radius", 9.8),  # + margin >= 10
        ("timeout_penalty", 100.0),
        ("w_collision", -0.1),
        ("fov_half_angle", 4.0),
        ("fov_occlusion", 2),
        ("lidar_bounds_bug", 0.5),
        ("capture_bonus", "100"),
        ("survival_bonus", True),
        ("robot_radius", -0.1),
    ],
)
def test_bad_params_raise_naming_field_and_value(field, value):
    with pytest.raises(ValueError, match=field) as err:
        pursuit_params(**{field: value})
    assert repr(value) in str(err.value)


def test_unknown_field_and_obstacle_capacity_are_rejected():
    with pytest.raises(ValueError, match="unknown field 'n_obstacle'"):
        pursuit_params(n_obstacle=3)
    with pytest.raises(ValueError, match="n_obstacles=4"):
        pursuit_params(max_obstacles=3, n_obstacles=4)
    with pytest.raises(ValueError, match="n_obstacles"):
        ENV.check_params(stack_params([pursuit_params(n_obstacles=1), pursuit_params(n_obstacles=5)]))
    with pytest.raises(ValueError, match="observation='lidar'"):
        PursuitEvasion(observation="lidar")
    with pytest.raises(ValueError, match="n_rays=0"):
        PursuitEvasion(n_rays=0)
    p = pursuit_params(fov_occlusion=True, n_obstacles=2)
    assert int(p.fov_occlusion) == 1 and p.n_obstacles.dtype == jnp.int32
