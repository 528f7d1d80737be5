"""A picture of the whole Goodhart torus, as a pure JAX function (jittable, vmappable).

``render_world(state, params, cell_px) -> uint8[BAR + S * cell_px, S * cell_px, 3]``: every cell
in its type's colour (the palette of :func:`rljax.environments.foraging.render_observation`: empty
near-white, wall grey, food green, poison red, prey blue, predator purple), the agent(s) as black
cells (``pos`` may be ``[2]`` or ``[n, 2]``, the shared-grid survival state), and above the grid
a bar of height ``BAR`` whose filled share is the (first) agent's energy over its initial energy
(capped at 1; it turns red below a fifth).
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
# [6, 3] RGB in [0, 1] by cell value (empty, wall, food, poison, prey, predator): this picture's
# palette and the agent's-eye view's (rljax.environments.foraging.render_observation)
CELL_COLOURS = np.array([[0.96, 0.96, 0.96], [0.3, 0.3, 0.3], [0.1, 0.7, 0.2], [0.85, 0.1, 0.1], [0.2, 0.4, 0.9],
                         [0.6, 0.2, 0.7]])
BAR = 4  # pixel rows of the energy bar
CELL_RGB = np.round(CELL_COLOURS * 255).astype(np.uint8)  # [6, 3] by cell value
AGENT_RGB = (0, 0, 0)
ENERGY_RGB, LOW_ENERGY_RGB, BAR_BACK_RGB = (60, 60, 200), (200, 40, 40), (215, 215, 215)


def cell_pixels(grid_size: int) -> int:
    """Pixels per cell: about 400 px across for the 100-cell default, at least 2 and at most 16."""
    return int(max(2, min(16, 400 // grid_size)))


def render_world(state: Any, params: Any, cell_px: int) -> Array:
    """``uint8[BAR + S * cell_px, S * cell_px, 3]`` of a :class:`~rljax.environments.foraging.
    ForagingState` (see the module docstring). Pure JAX."""
    grid = state.grid.astype(jnp.int32)
    s = grid.shape[0]
    pos = jnp.atleast_2d(state.pos)  # [n, 2] (x, y): column x, row y
    agent = jnp.zeros((s * s,), bool).at[pos[:, 1] * s + pos[:, 0]].set(True).reshape(s, s)
    cells = jnp.where(agent[..., None], jnp.asarray(AGENT_RGB, jnp.uint8), jnp.asarray(CELL_RGB)[grid])
    picture = jnp.repeat(jnp.repeat(cells, cell_px, axis=0), cell_px, axis=1)
    energy = jnp.atleast_1d(state.energy)[0]
    share = jnp.clip(energy / jnp.maximum(params.initial_energy, 1e-6), 0.0, 1.0)
    width = s * cell_px
    filled = (jnp.arange(width) + 0.5) < share * width
    colour = jnp.where(share < 0.2, jnp.asarray(LOW_ENERGY_RGB, jnp.uint8), jnp.asarray(ENERGY_RGB, jnp.uint8))
    bar_row = jnp.where(filled[:, None], colour, jnp.asarray(BAR_BACK_RGB, jnp.uint8))
    bar = jnp.broadcast_to(bar_row, (BAR, width, 3))
    return jnp.concatenate([bar, picture], axis=0)
