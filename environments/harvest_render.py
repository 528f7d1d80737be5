"""RGB pictures of normative allelopathic harvest: the 88x88 egocentric view (8 px per cell, the
same 11x11 window as the symbolic observation) and the whole 240x232 world.

Every cell is an 8x8 sprite over a background (soil on berry patches, floor elsewhere):

* a **ripe** berry is a ring around the cell's border in the berry colour; an **unripe** berry is
  the ring's four 2x2 corners only;
* an **avatar** is a block in its body colour (grey ``(125,125,125)``, red ``(200,10,10)``,
  green ``(10,200,10)`` or blue ``(10,10,200)``) with two dark eyes, drawn inside the ring so
  a berry under an avatar stays visible.

The view is computed independently of :func:`rljax.environments.harvest.observe_view` (the world is
rolled so the agent sits at the centre, rotated with ``rot90`` by its facing and cropped), so the
test that decodes it cell by cell back to symbolic channels (:func:`decode_view`) checks the
window geometry of both. The view is drawn as the agent sees it: facing up, the agent at row 9,
column 5. Nothing in it shows the permitted colour (the treatment arm gets it as a vector).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from rljax.environments.harvest_map import (
    CELL_PATCH, EGO, EGO_VIEW_COL, EGO_VIEW_ROW, HEIGHT, NUM_VIEW_CHANNELS, VIEW_COLS, VIEW_ROWS, WIDTH, flat_index,
)

if TYPE_CHECKING:
    from rljax.environments.harvest import HarvestState

Array = jax.Array
CELL_PX = 8
VIEW_PX = (VIEW_ROWS * CELL_PX, VIEW_COLS * CELL_PX)  # (88, 88)
WORLD_PX = (HEIGHT * CELL_PX, WIDTH * CELL_PX)  # (240, 232)

# Colour codes GREY, RED, GREEN, BLUE -> RGB.
COLOR_RGB = np.array([(125, 125, 125), (200, 10, 10), (10, 200, 10), (10, 10, 200)], np.uint8)
FLOOR_RGB = np.array((45, 45, 45), np.uint8)
SOIL_RGB = np.array((80, 62, 45), np.uint8)
EYE_RGB = np.array((0, 0, 0), np.uint8)
HIGHLIGHT_RGB = np.array((255, 255, 255), np.uint8)

_ring = np.zeros((CELL_PX, CELL_PX), bool)
_ring[[0, -1], :] = True
_ring[:, [0, -1]] = True
RIPE_MASK = _ring
UNRIPE_MASK = np.zeros_like(_ring)
for _r in (slice(0, 2), slice(6, 8)):
    for _c in (slice(0, 2), slice(6, 8)):
        UNRIPE_MASK[_r, _c] = True
AVATAR_MASK = np.zeros_like(_ring)
AVATAR_MASK[2:7, 2:6] = True
EYE_MASK = np.zeros_like(_ring)
EYE_MASK[3, [3, 4]] = True
# Pixels the decoder reads: berry colour, ripe-only, avatar body.
PX_BERRY, PX_RIPE, PX_BODY = (0, 0), (0, 3), (5, 3)
assert UNRIPE_MASK[PX_BERRY] and RIPE_MASK[PX_RIPE] and not UNRIPE_MASK[PX_RIPE]
assert AVATAR_MASK[PX_BODY] and not EYE_MASK[PX_BODY] and not RIPE_MASK[PX_BODY]


def world_codes(state: HarvestState) -> tuple[Array, Array]:
    """``(berry[H, W], avatar[H, W])`` int32 codes: berry 0 none, 1..3 unripe colour, 4..6 ripe
    colour; avatar 0 none, 1 + body colour."""
    code = state.berry_color + 3 * state.berry_ripe.astype(jnp.int32)
    berry = jnp.zeros((HEIGHT * WIDTH,), jnp.int32).at[jnp.asarray(np.nonzero(CELL_PATCH >= 0)[0])].set(code)
    avatar = jnp.zeros((HEIGHT * WIDTH,), jnp.int32).at[flat_index(state.pos)].set(state.body + 1)
    return berry.reshape(HEIGHT, WIDTH), avatar.reshape(HEIGHT, WIDTH)


def paint(berry: Array, avatar: Array, soil: Array, highlight: Array | None = None) -> Array:
    """Cell codes ``[h, w]`` -> ``uint8[h * 8, w * 8, 3]``. ``highlight[h, w]`` (optional) gives
    the avatar in a cell white eyes (the ego in world pictures)."""
    h, w = berry.shape
    colors = jnp.asarray(COLOR_RGB)
    bg = jnp.where(soil[..., None], jnp.asarray(SOIL_RGB), jnp.asarray(FLOOR_RGB))  # [h, w, 3]
    has_berry = berry > 0
    berry_rgb = colors[jnp.where(has_berry, (berry - 1) % 3 + 1, 0)]
    ripe = berry > 3
    berry_mask = jnp.where(ripe[..., None, None], jnp.asarray(RIPE_MASK), jnp.asarray(UNRIPE_MASK)) & has_berry[..., None, None]
    has_avatar = avatar > 0
    avatar_rgb = colors[jnp.maximum(avatar - 1, 0)]
    eye_rgb = jnp.asarray(EYE_RGB) if highlight is None else jnp.where(highlight[..., None], jnp.asarray(HIGHLIGHT_RGB), jnp.asarray(EYE_RGB))
    av_mask = jnp.asarray(AVATAR_MASK)[None, None] & has_avatar[..., None, None]
    eye_mask = jnp.asarray(EYE_MASK)[None, None] & has_avatar[..., None, None]
    pix = bg[:, :, None, None, :]
    pix = jnp.where(berry_mask[..., None], berry_rgb[:, :, None, None, :], pix)
    pix = jnp.where(av_mask[..., None], avatar_rgb[:, :, None, None, :], pix)
    pix = jnp.where(eye_mask[..., None], (eye_rgb if highlight is None else eye_rgb[:, :, None, None, :]), pix)
    pix = jnp.broadcast_to(pix, (h, w, CELL_PX, CELL_PX, 3))
    return pix.transpose(0, 2, 1, 3, 4).reshape(h * CELL_PX, w * CELL_PX, 3).astype(jnp.uint8)


_SOIL = CELL_PATCH.reshape(HEIGHT, WIDTH) >= 0
_HALF = 11  # the square crop around the agent: 23 x 23 cells, agent at (11, 11)


def _view_cells(grid: Array, pos: Array, facing: Array) -> Array:
    """The agent's 11x11 window of a ``[H, W]`` cell grid, by roll + rot90 + crop."""
    rolled = jnp.roll(grid, (_HALF - pos[0], _HALF - pos[1]), axis=(0, 1))[: 2 * _HALF + 1, : 2 * _HALF + 1]
    # rot90 turns the facing direction to the top: east (k=1) and west (k=3) by quarter turns.
    rotated = jax.lax.switch(facing, [lambda g, k=k: jnp.rot90(g, k) for k in range(4)], rolled)
    r0, c0 = _HALF - EGO_VIEW_ROW, _HALF - EGO_VIEW_COL
    return rotated[r0: r0 + VIEW_ROWS, c0: c0 + VIEW_COLS]


def render_view(state: HarvestState, agent: int | Array = EGO) -> Array:
    """``uint8[88, 88, 3]`` egocentric view of ``agent`` (facing up)."""
    berry, avatar = world_codes(state)
    pos, facing = state.pos[agent], state.facing[agent]
    cells = [_view_cells(g, pos, facing) for g in (berry, avatar, jnp.asarray(_SOIL))]
    return paint(*cells)


def render_world(state: HarvestState, highlight: int | None = EGO) -> Array:
    """``uint8[240, 232, 3]`` picture of the whole world, north up; the avatar of player
    ``highlight`` (None: none) has white eyes."""
    berry, avatar = world_codes(state)
    hl = None
    if highlight is not None:
        hl = jnp.zeros((HEIGHT * WIDTH,), bool).at[flat_index(state.pos[highlight])].set(True).reshape(HEIGHT, WIDTH)
    return paint(berry, avatar, jnp.asarray(_SOIL), hl)


def decode_view(rgb: np.ndarray) -> np.ndarray:
    """``uint8[h * 8, w * 8, 3]`` -> the symbolic ``float32[h, w, 10]`` channels it shows (the
    inverse of the painting; used to test the renderer against the observation)."""
    rgb = np.asarray(rgb)
    h, w = rgb.shape[0] // CELL_PX, rgb.shape[1] // CELL_PX
    cells = rgb.reshape(h, CELL_PX, w, CELL_PX, 3).transpose(0, 2, 1, 3, 4)
    out = np.zeros((h, w, NUM_VIEW_CHANNELS), np.float32)

    def color_of(px: np.ndarray) -> np.ndarray:
        match = np.all(px[..., None, :] == COLOR_RGB[None, None], axis=-1)  # [h, w, 4]
        return np.where(match.any(-1), match.argmax(-1), -1)

    berry = color_of(cells[:, :, PX_BERRY[0], PX_BERRY[1]])
    ripe = np.all(cells[:, :, PX_RIPE[0], PX_RIPE[1]] == cells[:, :, PX_BERRY[0], PX_BERRY[1]], axis=-1)
    body = color_of(cells[:, :, PX_BODY[0], PX_BODY[1]])
    for i in range(h):
        for j in range(w):
            if berry[i, j] >= 1:
                out[i, j, berry[i, j] - 1 + (3 if ripe[i, j] else 0)] = 1.0
            if body[i, j] >= 0:
                out[i, j, 6 + body[i, j]] = 1.0
    return out


def save_gif(frames: list[np.ndarray] | np.ndarray, path: str, fps: int = 8, scale: int = 2) -> None:
    """Writes ``frames[T, h, w, 3]`` (uint8), each pixel a ``scale`` x ``scale`` block, as an
    animated GIF or MP4 by the path's ending (:func:`rljax.render.write_video`)."""
    from rljax.render import write_video

    write_video([np.repeat(np.repeat(np.asarray(f), scale, axis=0), scale, axis=1) for f in frames], path, fps)
