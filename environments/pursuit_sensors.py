"""Sensors of the pursuit-evasion arena: FOV opponent sensor, analytic lidar, line of sight.

All functions are pure, branch-free and vectorised over rays and obstacles, so they cost a few
fused elementwise ops inside a vmapped environment step. Obstacles are fixed-shape arrays
``obstacles[M, 3]`` of ``(x, y, radius)`` with a validity mask ``mask[M]``; invalid slots never
hit and never block.

Conventions (as the reference code behaves):

* Angles are radians; ``wrap_angle`` maps to ``[-pi, pi)``.
* FOV: the target is seen iff ``distance < fov_range`` (strict) and ``|bearing| <= half_angle``
  (the boundary angle itself is inside the cone). A target at distance < 1e-10 reads
  ``(0, 0)``. Unseen reads ``(-1, 0)``. The reference FOV is not occluded by obstacles; with
  ``occlusion`` on, a blocked line of sight also hides the target.
* Lidar: ``n_rays`` rays at ``heading + linspace(-pi, pi, n_rays, endpoint=False)``; each reading
  is the nearest hit among circles (first root > 1e-6, so a sensor inside a circle reads the far
  wall of it) and the four axis-aligned walls (hit point within the box), clipped to
  ``[0, max_range]``, plus Gaussian noise, clipped again. The walls are the centred arena
  ``[-h, h]^2``; ``bounds_bug`` reproduces the reference's ``[0, 2h]^2`` boxes (a sensor
  outside that box sees walls only from outside, or nothing).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

RAY_EPS = 1e-6  # a hit must lie strictly ahead of the sensor (reference value)
AXIS_EPS = 1e-10  # rays this close to parallel to a wall never hit it (reference value)
BOX_TOL = 1e-4  # metres of slack in the hit-inside-the-wall test (float32 corners)


def wrap_angle(theta: Array) -> Array:
    """``theta`` mapped to ``[-pi, pi)`` (``(theta + pi) mod 2pi - pi``, as the reference)."""
    return jnp.mod(theta + math.pi, 2.0 * math.pi) - math.pi


def ray_angles(n_rays: int) -> Array:
    """``[n_rays]`` ray offsets from the heading, evenly over ``[-pi, pi)``."""
    return jnp.asarray(_ray_offsets(n_rays), jnp.float32)


def _ray_offsets(n_rays: int) -> np.ndarray:
    return np.asarray([-math.pi + 2.0 * math.pi * i / n_rays for i in range(n_rays)])


def ray_directions(heading: Array, n_rays: int) -> tuple[Array, Array]:
    """Unit ray directions ``(dx[R], dy[R])`` at ``heading + ray_angles``: the fixed offsets'
    cosines rotated by the heading (2 trig calls instead of 2R)."""
    off = _ray_offsets(n_rays)
    co, so = jnp.asarray(np.cos(off), jnp.float32), jnp.asarray(np.sin(off), jnp.float32)
    c, s = jnp.cos(heading), jnp.sin(heading)
    return c * co - s * so, s * co + c * so


def ray_circle_distances(origin: Array, dx: Array, dy: Array, obstacles: Array, mask: Array) -> Array:
    """Distance along each unit ray to each circle, ``inf`` when it misses.

    ``origin[2]``, ``dx[R]``, ``dy[R]``, ``obstacles[M, 3]``, ``mask[M]`` -> ``[R, M]``. The
    first root beyond ``RAY_EPS`` is returned, so from inside a circle the ray reads the exit.
    """
    fx = origin[0] - obstacles[:, 0]
    fy = origin[1] - obstacles[:, 1]
    half_b = dx[:, None] * fx[None, :] + dy[:, None] * fy[None, :]  # [R, M]
    c = fx * fx + fy * fy - obstacles[:, 2] ** 2
    disc = half_b * half_b - c[None, :]
    sq = jnp.sqrt(jnp.maximum(disc, 0.0))
    t1 = -half_b - sq
    t2 = -half_b + sq
    t = jnp.where(t1 > RAY_EPS, t1, jnp.where(t2 > RAY_EPS, t2, jnp.inf))
    return jnp.where((disc >= 0.0) & mask[None, :], t, jnp.inf)


def ray_box_distances(origin: Array, dx: Array, dy: Array, lo: Array, hi: Array) -> Array:
    """Nearest hit of each unit ray on the four walls of the box ``[lo, hi]^2``, ``inf`` if
    none. ``origin[2]``, ``dx[R]``, ``dy[R]`` -> ``[R]``. A wall counts only where the hit
    point lies within the box's extent along that wall (which matters for an origin outside
    the box, i.e. the reference's uncentred walls)."""
    ox, oy = origin[0], origin[1]
    ok_x = jnp.abs(dx) > AXIS_EPS
    ok_y = jnp.abs(dy) > AXIS_EPS
    inv_x = 1.0 / jnp.where(ok_x, dx, 1.0)
    inv_y = 1.0 / jnp.where(ok_y, dy, 1.0)

    def wall(t, other_origin, other_dir, ok):
        hit = other_origin + t * other_dir
        valid = ok & (t > RAY_EPS) & (hit >= lo - BOX_TOL) & (hit <= hi + BOX_TOL)
        return jnp.where(valid, t, jnp.inf)

    x_walls = jnp.minimum(wall((lo - ox) * inv_x, oy, dy, ok_x), wall((hi - ox) * inv_x, oy, dy, ok_x))
    y_walls = jnp.minimum(wall((lo - oy) * inv_y, ox, dx, ok_y), wall((hi - oy) * inv_y, ox, dx, ok_y))
    return jnp.minimum(x_walls, y_walls)


def lidar_ranges(
    pose: Array,
    obstacles: Array,
    mask: Array,
    n_rays: int,
    max_range: Array,
    arena_half: float,
    bounds_bug: Array,
) -> Array:
    """``[n_rays]`` noiseless ranges from ``pose[3] = (x, y, heading)``, in ``[0, max_range]``.

    ``bounds_bug`` (0/1): walls at ``[0, 2h]`` instead of the centred ``[-h, h]``.
    """
    dx, dy = ray_directions(pose[2], n_rays)
    bug = bounds_bug > 0
    lo = jnp.where(bug, 0.0, -arena_half)
    hi = jnp.where(bug, 2.0 * arena_half, arena_half)
    walls = ray_box_distances(pose[:2], dx, dy, lo, hi)
    circles = jnp.min(ray_circle_distances(pose[:2], dx, dy, obstacles, mask), axis=-1, initial=jnp.inf)
    return jnp.clip(jnp.minimum(jnp.minimum(walls, circles), max_range), 0.0, max_range)


def _fmix32(h: Array) -> Array:
    """MurmurHash3's 32-bit finaliser: a bijective avalanche of ``uint32`` words."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def hash_uniforms(key: Array, n: int) -> Array:
    """``[n]`` float32 uniforms in ``(0, 1)`` from one key: two threefry words seed a hashed
    Weyl sequence (``fmix32(fmix32(s0 + i * golden) ^ s1)``).

    Under ``vmap`` threefry costs ~50 ns per word here, so drawing every noise value from it
    made the lidar noise 80% of the env step; one threefry call plus a counter hash is ~20x
    cheaper and plenty for sensor noise. Deterministic: same key, same bits.
    """
    seed = jax.random.bits(key, (2,), jnp.uint32)
    i = jnp.arange(n, dtype=jnp.uint32)
    h = _fmix32(_fmix32(seed[0] + i * jnp.uint32(0x9E3779B9)) ^ seed[1])
    return ((h >> 8).astype(jnp.float32) + 0.5) * jnp.float32(2.0**-24)


def hash_normals(key: Array, shape: tuple[int, ...]) -> Array:
    """Standard normals of ``shape`` by Box-Muller (both outputs) on :func:`hash_uniforms`."""
    size = int(np.prod(shape)) if shape else 1
    pairs = (size + 1) // 2
    u = hash_uniforms(key, 2 * pairs).reshape(2, pairs)
    r = jnp.sqrt(-2.0 * jnp.log(u[0]))
    angle = 2.0 * math.pi * u[1]
    z = jnp.concatenate([r * jnp.cos(angle), r * jnp.sin(angle)])
    return z[:size].reshape(shape)


def add_lidar_noise(key: Array, ranges: Array, noise_std: Array, max_range: Array) -> Array:
    """``ranges + noise_std * N(0, 1)``, clipped to ``[0, max_range]`` (any shape); the
    normals come from :func:`hash_normals`."""
    noise = noise_std * hash_normals(key, ranges.shape)
    return jnp.clip(ranges + noise, 0.0, max_range).astype(jnp.float32)


def lidar_scan(
    key: Array,
    pose: Array,
    obstacles: Array,
    mask: Array,
    n_rays: int,
    max_range: Array,
    noise_std: Array,
    arena_half: float,
    bounds_bug: Array,
) -> Array:
    """``[n_rays]`` float32 noisy ranges: :func:`lidar_ranges` plus :func:`add_lidar_noise`."""
    ranges = lidar_ranges(pose, obstacles, mask, n_rays, max_range, arena_half, bounds_bug)
    return add_lidar_noise(key, ranges, noise_std, max_range)


def line_of_sight_blocked(a: Array, b: Array, obstacles: Array, mask: Array) -> Array:
    """Whether any valid circle meets the segment ``a[2] -> b[2]`` (closest point within the
    radius, inclusive). Coincident points are never blocked (reference)."""
    ab = b - a
    seg2 = jnp.sum(ab * ab)
    rel = obstacles[:, :2] - a[None, :]  # [M, 2]
    u = jnp.clip((rel @ ab) / jnp.where(seg2 < 1e-12, 1.0, seg2), 0.0, 1.0)
    gap = rel - u[:, None] * ab[None, :]
    hit = jnp.sum(gap * gap, axis=-1) <= obstacles[:, 2] ** 2
    return jnp.any(hit & mask) & (seg2 >= 1e-12)


def fov_reading(
    pose: Array,
    target: Array,
    half_angle: Array,
    fov_range: Array,
    occlusion: Array,
    obstacles: Array,
    mask: Array,
) -> tuple[Array, Array, Array]:
    """``(distance, bearing, seen)`` of ``target[2]`` from ``pose[3]``; ``(-1, 0)`` when unseen.

    ``occlusion`` (0/1): when on, a blocked line of sight also hides the target (the
    reference sensor sees through obstacles).
    """
    delta = target - pose[:2]
    dist = jnp.sqrt(jnp.sum(delta * delta))
    bearing = wrap_angle(jnp.arctan2(delta[1], delta[0]) - pose[2])
    coincident = dist < 1e-10
    blocked = (occlusion > 0) & line_of_sight_blocked(pose[:2], target, obstacles, mask)
    seen = (dist < fov_range) & (coincident | (jnp.abs(bearing) <= half_angle)) & ~blocked
    d_out = jnp.where(seen, jnp.where(coincident, 0.0, dist), -1.0)
    b_out = jnp.where(seen & ~coincident, bearing, 0.0)
    return d_out.astype(jnp.float32), b_out.astype(jnp.float32), seen


def nearest_surface_distance(pos: Array, obstacles: Array, mask: Array) -> Array:
    """``min_i max(|pos - c_i| - r_i, 0)`` over valid circles; ``inf`` when there are none."""
    d = jnp.sqrt(jnp.sum((obstacles[:, :2] - pos[None, :]) ** 2, axis=-1)) - obstacles[:, 2]
    # ``initial``: an arena built with ``max_obstacles=0`` has M = 0 (an empty reduction).
    return jnp.min(jnp.where(mask, jnp.maximum(d, 0.0), jnp.inf), initial=jnp.inf)
