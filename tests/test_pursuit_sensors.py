"""Pursuit sensors against analytic values and a float64 per-ray reference: lidar (walls,
circles, inside a circle, range clip, the [0, W] bug flag, noise), FOV boundaries, occlusion."""
from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.environments.pursuit_sensors import (
    add_lidar_noise,
    fov_reading,
    hash_normals,
    lidar_ranges,
    line_of_sight_blocked,
    nearest_surface_distance,
    ray_angles,
)

R = 36
M = 3
_lidar = jax.jit(partial(lidar_ranges, n_rays=R, arena_half=10.0))
_lidar_many = jax.jit(jax.vmap(lambda p, o, m, r, b: lidar_ranges(p, o, m, R, r, 10.0, b), in_axes=(0, 0, 0, None, None)))
_fov = jax.jit(fov_reading)
_los = jax.jit(line_of_sight_blocked)
_noise = jax.jit(add_lidar_noise)


def obstacles(*circles):
    ob = np.zeros((M, 3), np.float32)
    mask = np.zeros((M,), bool)
    for i, c in enumerate(circles):
        ob[i], mask[i] = c, True
    return jnp.asarray(ob), jnp.asarray(mask)


def scan(pose, circles=(), max_range=30.0, bug=0):
    ob, mask = obstacles(*circles)
    return np.asarray(_lidar(jnp.asarray(pose, jnp.float32), ob, mask, max_range=jnp.float32(max_range),
                             bounds_bug=jnp.int32(bug)))


def reference_scan(pose, circles, mask, max_range, bounds):
    """Per-ray float64 transcription of the reference algorithm (walls then circles)."""
    x, y, th = (float(v) for v in pose)
    x_min, x_max, y_min, y_max = bounds
    out = []
    for off in np.linspace(-np.pi, np.pi, R, endpoint=False):
        a = th + off
        dx, dy = math.cos(a), math.sin(a)
        best = max_range
        if abs(dx) > 1e-10:
            for wall in (x_max, x_min):
                t = (wall - x) / dx
                if t > 1e-6 and y_min <= y + t * dy <= y_max:
                    best = min(best, t)
        if abs(dy) > 1e-10:
            for wall in (y_max, y_min):
                t = (wall - y) / dy
                if t > 1e-6 and x_min <= x + t * dx <= x_max:
                    best = min(best, t)
        for (cx, cy, r), ok in zip(circles, mask):
            if not ok:
                continue
            fx, fy = x - cx, y - cy
            b = 2.0 * (fx * dx + fy * dy)
            c = fx * fx + fy * fy - r * r
            disc = b * b - 4.0 * c
            if disc < 0:
                continue
            t1, t2 = (-b - math.sqrt(disc)) / 2.0, (-b + math.sqrt(disc)) / 2.0
            t = t1 if t1 > 1e-6 else (t2 if t2 > 1e-6 else math.inf)
            best = min(best, t)
        out.append(min(max(best, 0.0), max_range))
    return np.array(out)


def test_ray_angles_cover_minus_pi_to_pi_evenly():
    np.testing.assert_allclose(ray_angles(R), np.linspace(-np.pi, np.pi, R, endpoint=False), atol=1e-6)


def test_lidar_walls_from_the_centre_match_the_analytic_distance():
    got = scan([0.0, 0.0, 0.0])
    angles = np.linspace(-np.pi, np.pi, R, endpoint=False)
    exp = 10.0 / np.maximum(np.abs(np.cos(angles)), np.abs(np.sin(angles)))
    np.testing.assert_allclose(got, exp, rtol=1e-5)


def test_lidar_walls_off_centre_and_rotated():
    x, y, th = 4.0, -7.0, 0.5
    got = scan([x, y, th])
    for k, off in enumerate(np.linspace(-np.pi, np.pi, R, endpoint=False)):
        a = th + off
        ts = []
        if abs(math.cos(a)) > 1e-9:
            ts.append(((10.0 if math.cos(a) > 0 else -10.0) - x) / math.cos(a))
        if abs(math.sin(a)) > 1e-9:
            ts.append(((10.0 if math.sin(a) > 0 else -10.0) - y) / math.sin(a))
        np.testing.assert_allclose(got[k], min(ts), rtol=1e-5, err_msg=f"ray {k}")


def test_lidar_hits_circles_in_front_and_reads_the_exit_from_inside():
    got = scan([0.0, 0.0, 0.0], [(3.0, 0.0, 1.0)])
    assert abs(got[R // 2] - 2.0) < 1e-5  # ray at heading 0 (index 18)
    # Ray at +30 deg (index 21) grazes the circle? distance from centre to the ray = 3 sin 30 = 1.5 > 1: miss.
    np.testing.assert_allclose(got[21], 10.0 / math.cos(math.radians(30)), rtol=1e-5)
    # Ray at +10 deg (index 19) hits at 3 cos10 - sqrt(1 - (3 sin10)^2).
    exp = 3 * math.cos(math.radians(10)) - math.sqrt(1 - (3 * math.sin(math.radians(10))) ** 2)
    np.testing.assert_allclose(got[19], exp, rtol=1e-5)
    inside = scan([3.0, 0.0, 1.0], [(3.0, 0.0, 1.0)])
    np.testing.assert_allclose(inside, 1.0, rtol=1e-5)


def test_lidar_ignores_masked_slots_and_clips_to_max_range():
    ob = jnp.asarray([[3.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], jnp.float32)
    got = np.asarray(_lidar(jnp.zeros(3), ob, jnp.asarray([False, False, False]), max_range=jnp.float32(30.0),
                            bounds_bug=jnp.int32(0)))
    np.testing.assert_allclose(got[R // 2], 10.0, rtol=1e-6)
    clipped = scan([0.0, 0.0, 0.0], max_range=5.0)
    np.testing.assert_allclose(clipped, 5.0)
    near = scan([8.0, 0.0, 0.0], max_range=5.0)
    np.testing.assert_allclose(near[R // 2], 2.0, rtol=1e-6)


def test_lidar_bounds_bug_flag_reproduces_the_uncentred_walls():
    pose = [-5.0, 3.0, 0.0]
    fixed = scan(pose, bug=0)
    buggy = scan(pose, bug=1)
    # Heading +x: the centred wall is 15 m away; the buggy box's x=0 wall is hit from outside at 5 m.
    np.testing.assert_allclose([fixed[R // 2], buggy[R // 2]], [15.0, 5.0], rtol=1e-5)
    # Heading +y (index 27): centred wall 7 m; the buggy box is never hit (x=-5 is outside [0, 20]).
    np.testing.assert_allclose([fixed[27], buggy[27]], [7.0, 30.0], rtol=1e-5)
    # Inside the buggy box, walls are read at [0, 20]: from (2, 2) heading -x the wall is 2 m away.
    np.testing.assert_allclose(scan([2.0, 2.0, math.pi], bug=1)[R // 2], 2.0, rtol=1e-5)


@pytest.mark.parametrize("bug", [0, 1])
def test_lidar_matches_the_float64_reference_on_random_scenes(bug):
    rng = np.random.default_rng(bug)
    n = 64
    poses = np.concatenate([rng.uniform(-9.85, 9.85, (n, 2)), rng.uniform(-np.pi, np.pi, (n, 1))], -1).astype(np.float32)
    circles = np.concatenate([rng.uniform(-8, 8, (n, M, 2)), rng.uniform(0.3, 1.0, (n, M, 1))], -1).astype(np.float32)
    masks = rng.uniform(size=(n, M)) < 0.7
    got = np.asarray(_lidar_many(jnp.asarray(poses), jnp.asarray(circles), jnp.asarray(masks), jnp.float32(5.0), jnp.int32(bug)))
    bounds = (0.0, 20.0, 0.0, 20.0) if bug else (-10.0, 10.0, -10.0, 10.0)
    for i in range(n):
        exp = reference_scan(poses[i], circles[i].astype(np.float64), masks[i], 5.0, bounds)
        np.testing.assert_allclose(got[i], exp, atol=2e-4, err_msg=f"scene {i}")


def test_hash_normals_are_standard_normal_and_independent_across_keys_and_slots():
    z = np.asarray(jax.jit(jax.vmap(lambda k: hash_normals(k, (2, 36))))(jax.random.split(jax.random.key(0), 2000)))
    flat = z.reshape(-1)  # 144k draws
    assert abs(flat.mean()) < 0.015 and abs(flat.std() - 1.0) < 0.01
    for sigma, frac in ((1.0, 0.6827), (2.0, 0.9545), (3.0, 0.9973)):
        assert abs((np.abs(flat) < sigma).mean() - frac) < 0.005, sigma
    rays = z.reshape(2000, 72)
    corr = np.corrcoef(rays.T)[np.triu_indices(72, 1)]
    assert np.abs(corr).max() < 0.12, "no correlation between slots of one draw (2000 samples: sd 0.022)"
    assert abs(np.corrcoef(rays[:-1, 0], rays[1:, 0])[0, 1]) < 0.1, "no correlation between keys"


def test_lidar_noise_has_the_requested_std_and_stays_in_range():
    ranges = jnp.full((20_000,), 2.5, jnp.float32)
    noisy = np.asarray(_noise(jax.random.key(0), ranges, jnp.float32(0.02), jnp.float32(5.0)))
    assert abs(noisy.mean() - 2.5) < 0.001 and abs(noisy.std() - 0.02) < 0.001
    edge = np.asarray(_noise(jax.random.key(1), jnp.full((1000,), 5.0), jnp.float32(0.02), jnp.float32(5.0)))
    assert edge.max() <= 5.0 and (edge < 5.0).mean() > 0.4
    quiet = np.asarray(_noise(jax.random.key(2), ranges, jnp.float32(0.0), jnp.float32(5.0)))
    np.testing.assert_array_equal(quiet, 2.5)


# -- FOV ---------------------------------------------------------------------------------------
NO_OB = obstacles()


def fov(pose, target, half=math.radians(60), rng=10.0, occlusion=0, obs=NO_OB):
    d, b, seen = _fov(jnp.asarray(pose, jnp.float32), jnp.asarray(target, jnp.float32), jnp.float32(half),
                      jnp.float32(rng), jnp.int32(occlusion), *obs)
    return float(d), float(b), bool(seen)


@pytest.mark.parametrize("sign", [1, -1])
def test_fov_boundary_angles(sign):
    half = math.radians(60)
    # The boundary itself is inside (the reference rejects |bearing| > half); float32 rounding
    # of the bearing makes the exact boundary ambiguous, so probe 1e-5 rad either side.
    for delta, seen in ((-1e-5, True), (1e-5, False), (-0.2, True), (0.2, False)):
        a = sign * (half + delta)
        d, b, s = fov([1.0, 2.0, 0.0], [1.0 + 4 * math.cos(a), 2.0 + 4 * math.sin(a)])
        assert s == seen, (sign, delta)
        if seen:
            assert abs(d - 4.0) < 1e-5 and abs(b - a) < 1e-5
        else:
            assert (d, b) == (-1.0, 0.0)
    # A rotated heading rotates the cone: a target behind is never seen.
    assert not fov([0.0, 0.0, math.pi / 2], [0.0, -3.0])[2]
    assert fov([0.0, 0.0, math.pi / 2], [0.0, 3.0])[2]


def test_fov_range_is_strict_and_coincident_targets_read_zero():
    assert fov([0.0, 0.0, 0.0], [9.999, 0.0])[2]
    assert fov([0.0, 0.0, 0.0], [10.0, 0.0]) == (-1.0, 0.0, False)
    assert fov([0.0, 0.0, 0.0], [0.0, 0.0]) == (0.0, 0.0, True)
    d, b, s = fov([0.0, 0.0, 3.0], [-2.0, 0.0])  # bearing pi - 3 wraps correctly
    assert s and abs(b - (math.pi - 3.0)) < 1e-5


def test_fov_occlusion_flag_hides_a_target_behind_an_obstacle():
    wall = obstacles((2.0, 0.0, 0.5))
    assert fov([0.0, 0.0, 0.0], [4.0, 0.0], obs=wall)[2], "the reference FOV sees through obstacles"
    assert fov([0.0, 0.0, 0.0], [4.0, 0.0], occlusion=1, obs=wall) == (-1.0, 0.0, False)
    assert fov([0.0, 0.0, 0.0], [4.0, 2.0], occlusion=1, obs=wall)[2], "a clear line of sight is seen"


def test_line_of_sight_segment_against_circles():
    ob, mask = obstacles((2.0, 1.0, 1.0), (8.0, 8.0, 0.5))
    los = lambda a, b, m=mask: bool(_los(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), ob, m))  # noqa: E731
    assert los([0.0, 0.0], [4.0, 0.0])  # tangent (closest distance == radius): blocked, inclusive
    assert not los([0.0, -0.01], [4.0, -0.01])
    assert not los([0.0, 0.0], [0.5, 0.0]), "the segment ends before the circle"
    assert los([2.0, 1.0], [2.0, 1.0]) is False, "coincident points are never blocked"
    assert not los([0.0, 0.0], [4.0, 0.0], jnp.asarray([False, True, False]))


def test_nearest_surface_distance():
    ob, mask = obstacles((3.0, 0.0, 1.0), (0.0, -1.5, 0.5))
    d = float(jax.jit(nearest_surface_distance)(jnp.zeros(2), ob, mask))
    assert abs(d - 1.0) < 1e-6
    inside = float(jax.jit(nearest_surface_distance)(jnp.asarray([3.0, 0.2]), ob, mask))
    assert inside == 0.0
    none = float(jax.jit(nearest_surface_distance)(jnp.zeros(2), ob, jnp.zeros(M, bool)))
    assert math.isinf(none)


# --------------------------------------------------------------------------------------------
# An arena built without obstacle slots (max_obstacles=0: every obstacle reduction is empty)
# --------------------------------------------------------------------------------------------
def test_nearest_surface_distance_without_obstacle_slots_is_inf():
    none = float(jax.jit(nearest_surface_distance)(jnp.zeros(2), jnp.zeros((0, 3)), jnp.zeros((0,), bool)))
    assert math.isinf(none)


@pytest.mark.parametrize("observation", ["partial", "full"])
def test_arena_without_obstacle_slots_steps_and_reads_the_walls_exactly(observation):
    """A step of a ``max_obstacles=0`` arena (it crashed on the empty min): standing still at the
    centre facing +x, the pursuer's noiseless lidar reads the walls' analytic distances and its
    FOV the evader 3 m ahead; rewards and observations are finite."""
    from rljax.environments.pursuit_evasion import PursuitEvasion, pursuit_params

    env = PursuitEvasion(observation=observation, max_obstacles=0, n_rays=R, history=2)
    params = pursuit_params(max_obstacles=0, lidar_noise_std=0.0, lidar_range=20.0)
    state = env.reset_state(jax.random.PRNGKey(0), params)
    assert state.obstacles.shape == (0, 3)
    state = state.replace(pose=jnp.asarray([[0.0, 0.0, 0.0], [3.0, 0.0, math.pi]], jnp.float32))
    obs, state, rewards, terminated, truncated, _ = jax.jit(env.step)(
        jax.random.PRNGKey(1), state, jnp.zeros((2, env.action_dim)), params)
    assert obs.shape == (2, env.obs_dim)
    assert bool(jnp.all(jnp.isfinite(obs))) and bool(jnp.all(jnp.isfinite(rewards)))
    assert not bool(terminated) and not bool(truncated)
    np.testing.assert_array_equal(np.asarray(state.pose[:, :2]), [[0.0, 0.0], [3.0, 0.0]])
    if observation == "partial":
        newest = np.asarray(obs[0]).reshape(2, -1)[-1]  # pursuer's newest frame
        angles = np.linspace(-np.pi, np.pi, R, endpoint=False)
        np.testing.assert_allclose(newest[7:], 10.0 / np.maximum(np.abs(np.cos(angles)), np.abs(np.sin(angles))), rtol=1e-5)
        np.testing.assert_allclose(newest[5:7], [3.0, 0.0], atol=1e-6)  # d_opp, bearing
