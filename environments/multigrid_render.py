"""A picture of a multigrid state (EMPO's worlds), as a pure JAX function (jittable, vmappable).

Every cell is a ``CELL_PX`` square sprite: walls dark grey, rocks brown discs, blocks tan
squares, floor light; an agent is a filled triangle pointing in its direction (humans yellow as
in the original's ``Ay``, robots blue-grey as ``Ae``). Optional goal cells (``goals[H, W]``)
get a green border. Coordinates: ``agent_pos`` is ``(x, y)`` = (column, row); direction 0
east, 1 south, 2 west, 3 north.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
CELL_PX = 24
FLOOR, WALL, ROCK_RGB, BLOCK_RGB, GOAL_RGB = (235, 235, 235), (70, 70, 70), (140, 90, 50), (205, 175, 120), (40, 170, 60)
HUMAN_RGB, ROBOT_RGB = (230, 190, 20), (90, 110, 160)


def _sprites(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(triangle[4, n, n], disc[n, n], square[n, n], border[n, n])`` masks; triangle ``d``
    points east, south, west, north for ``d = 0..3`` (image rows grow southwards)."""
    c = (np.arange(n) + 0.5) / n - 0.5  # -0.5 .. 0.5 across the cell
    y, x = np.meshgrid(c, c, indexing="ij")
    east = (x > -0.35) & (x < 0.38) & (np.abs(y) < 0.38 * (0.38 - x) / 0.73)
    triangles = np.stack([np.rot90(east, -d) for d in range(4)])  # rot90 by -1: east -> south
    disc = x**2 + y**2 < 0.36**2
    square = (np.abs(x) < 0.4) & (np.abs(y) < 0.4)
    border = (np.abs(x) > 0.42) | (np.abs(y) > 0.42)
    return triangles, disc, square, border


TRIANGLES, DISC, SQUARE, BORDER = _sprites(CELL_PX)


def render_grid(state: Any, walls: Array, humans: tuple[bool, ...], rock: int, block: int,
                goals: Array | None = None) -> Array:
    """``uint8[H * CELL_PX, W * CELL_PX, 3]`` of a :class:`~rljax.environments.multigrid.MultiGridState`
    on a map with ``walls[H, W]``; ``humans``: per agent in agent order, whether it is a human;
    ``rock``/``block``: the object codes in ``state.objects`` (the grid's own, passed in so that
    drawing does not depend on the dynamics' module). Pure JAX."""
    h, w = walls.shape
    n = CELL_PX
    cell = lambda rgb: jnp.asarray(rgb, jnp.uint8)  # noqa: E731
    pix = jnp.broadcast_to(cell(FLOOR), (h, w, n, n, 3))
    objects = state.objects.astype(jnp.int32)
    pix = jnp.where(walls[:, :, None, None, None], cell(WALL), pix)
    pix = jnp.where(((objects == rock)[:, :, None, None] & DISC)[..., None], cell(ROCK_RGB), pix)
    pix = jnp.where(((objects == block)[:, :, None, None] & SQUARE)[..., None], cell(BLOCK_RGB), pix)
    if goals is not None:
        pix = jnp.where((goals[:, :, None, None] & BORDER)[..., None], cell(GOAL_RGB), pix)
    rows, cols = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
    for i, human in enumerate(humans):  # static: a handful of agents
        here = (rows == state.agent_pos[i, 1]) & (cols == state.agent_pos[i, 0])
        shape = jnp.asarray(TRIANGLES)[state.agent_dir[i] % 4]
        pix = jnp.where((here[:, :, None, None] & shape)[..., None], cell(HUMAN_RGB if human else ROBOT_RGB), pix)
    return pix.transpose(0, 2, 1, 3, 4).reshape(h * n, w * n, 3)
