"""A picture of CartPole's state, as a pure JAX function (jittable, vmappable).

``render_cartpole(state, params) -> uint8[160, 240, 3]``: the track, the cart (a dark block) at
its position on a track spanning ``[-x_threshold, x_threshold]`` and the pole (a brown bar of
the pole's full length ``2 * length``, hinged on the cart, leaning by ``theta``; 0 is upright),
with the pole's failure angle marked by two faint lines.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

Array = jax.Array
HEIGHT, WIDTH = 160, 240
BACKGROUND = (255, 255, 255)
TRACK, CART, POLE, AXLE, LIMIT = ((0, 0, 0), (40, 40, 40), (204, 153, 102), (127, 127, 204), (225, 225, 225))


def _segment_distance(px: Array, py: Array, a: tuple[Array, Array], b: tuple[Array, Array]) -> Array:
    """Distance of every pixel ``(px, py)`` to the segment ``a -> b`` (pixel units)."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    t = jnp.clip(((px - a[0]) * dx + (py - a[1]) * dy) / (dx * dx + dy * dy + 1e-9), 0.0, 1.0)
    return jnp.hypot(px - a[0] - t * dx, py - a[1] - t * dy)


def render_cartpole(state: Any, params: Any) -> Array:
    """``uint8[160, 240, 3]`` RGB of a gymnax CartPole ``state`` (fields ``x``, ``theta``)
    under ``params`` (``x_threshold``, ``length``, ``theta_threshold_radians``). Pure JAX."""
    world_width = 2.0 * params.x_threshold * 1.25  # a margin beyond the track's ends
    scale = WIDTH / world_width  # pixels per metre
    track_y = HEIGHT * 0.72
    cart_w, cart_h = 0.5 * scale, 0.3 * scale
    py, px = jnp.mgrid[0:HEIGHT, 0:WIDTH].astype(jnp.float32)
    cx = WIDTH / 2.0 + state.x * scale
    hinge = (cx, track_y - cart_h / 2.0)
    pole_len = 2.0 * params.length * scale

    def tip(angle: Array) -> tuple[Array, Array]:
        return hinge[0] + pole_len * jnp.sin(angle), hinge[1] - pole_len * jnp.cos(angle)

    img = jnp.broadcast_to(jnp.asarray(BACKGROUND, jnp.uint8), (HEIGHT, WIDTH, 3))
    limits = jnp.minimum(_segment_distance(px, py, hinge, tip(params.theta_threshold_radians)),
                         _segment_distance(px, py, hinge, tip(-params.theta_threshold_radians)))
    layers = [
        (limits < 0.6, LIMIT),
        ((jnp.abs(py - track_y) < 0.8) & (jnp.abs(px - WIDTH / 2.0) <= params.x_threshold * scale), TRACK),
        ((jnp.abs(px - cx) <= cart_w / 2.0) & (jnp.abs(py - track_y) <= cart_h / 2.0), CART),
        (_segment_distance(px, py, hinge, tip(state.theta)) < 0.05 * scale, POLE),
        (jnp.hypot(px - hinge[0], py - hinge[1]) < 0.03 * scale, AXLE),
    ]
    for mask, colour in layers:
        img = jnp.where(mask[..., None], jnp.asarray(colour, jnp.uint8), img)
    return img
