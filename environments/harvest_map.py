"""The harvest substrate's fixed world: Melting Pot's allelopathic_harvest map, players, colours,
actions, beams and the egocentric view, and the torus geometry over them. Pure constants and
index arithmetic; the dynamics are in :mod:`rljax.environments.harvest`, the drawing in
:mod:`rljax.environments.harvest_render` (both build on this module, neither on the other's
internals).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

# ----------------------------------------------------------------------------------------
# The map (Melting Pot's allelopathic_harvest level, Apache-2.0): 'P' floor + spawn point,
# '1'/'2'/'3' a berry patch initially red/green/blue. 30 rows x 29 columns, a torus.
# ----------------------------------------------------------------------------------------
ASCII_MAP = """\
333PPPP12PPP322P32PPP1P13P3P3
1PPPP2PP122PPP3P232121P2PP2P1
P1P3P11PPP13PPP31PPPP23PPPPPP
PPPPP2P2P1P2P3P33P23PP2P2PPPP
P1PPPPPPP2PPP12311PP3321PPPPP
133P2PP2PPP3PPP1PPP2213P112P1
3PPPPPPPPPPPPP31PPPPPP1P3112P
PP2P21P21P33PPPPPPP3PP2PPPP1P
PPPPP1P1P32P3PPP22PP1P2PPPP2P
PPP3PP3122211PPP2113P3PPP1332
PP12132PP1PP1P321PP1PPPPPP1P3
PPP222P12PPPP1PPPP1PPP321P11P
PPP2PPPP3P2P1PPP1P23322PP1P13
23PPP2PPPP2P3PPPP3PP3PPP3PPP2
2PPPP3P3P3PP3PP3P1P3PP11P21P1
21PPP2PP331PP3PPP2PPPPP2PP3PP
P32P2PP2P1PPPPPPP12P2PPP1PPPP
P3PP3P2P21P3PP2PP11PP1323P312
2P1PPPPP1PPP1P2PPP3P32P2P331P
PPPPP1312P3P2PPPP3P32PPPP2P11
P3PPPP221PPP2PPPPPPPP1PPP311P
32P3PPPPPPPPPP31PPPP3PPP13PPP
PPP3PPPPP3PPPPPP232P13PPPPP1P
P1PP1PPP2PP3PPPPP33321PP2P3PP
P13PPPP1P333PPPP2PP213PP2P3PP
1PPPPP3PP2P1PP21P3PPPP231P2PP
1331P2P12P2PPPP2PPP3P23P21PPP
P3P131P3PPP13P1PPP222PPPP11PP
2P3PPPPPPPP2P323PPP2PPP1PPP2P
21PPPPPPP12P23P1PPPPPP13P3P11"""

_ROWS = ASCII_MAP.split("\n")
HEIGHT, WIDTH = len(_ROWS), len(_ROWS[0])
NUM_CELLS = HEIGHT * WIDTH
NUM_PLAYERS = 16
EGO = 0

GREY, RED, GREEN, BLUE = 0, 1, 2, 3
COLOR_NAMES = ("GREY", "RED", "GREEN", "BLUE")
COMMUNITY_NAMES = ("RED", "GREEN", "BLUE")  # params.permitted / info["tag"] 0..2
NUM_COMMUNITIES = 3

(NOOP, FORWARD, BACKWARD, STEP_LEFT, STEP_RIGHT, TURN_LEFT, TURN_RIGHT,
 FIRE_ZAP, FIRE_ONE, FIRE_TWO, FIRE_THREE) = range(11)
NUM_ACTIONS = 11
ACTION_NAMES = ("NOOP", "FORWARD", "BACKWARD", "STEP_LEFT", "STEP_RIGHT", "TURN_LEFT", "TURN_RIGHT",
                "FIRE_ZAP", "FIRE_ONE", "FIRE_TWO", "FIRE_THREE")
PLANT_ACTIONS = (FIRE_ONE, FIRE_TWO, FIRE_THREE)  # plant colour = action - 7

NORTH, EAST, SOUTH, WEST = range(4)
# (drow, dcol) of one step forward for each facing; "right" of facing f is forward of f + 1.
FORWARD_VEC = np.array([(-1, 0), (0, 1), (1, 0), (0, -1)], np.int32)

# Taste: even players prefer red, odd ones green (Melting Pot's "default" role).
TASTE = np.array([RED if i % 2 == 0 else GREEN for i in range(NUM_PLAYERS)], np.int32)

# Beams as (lateral, forward) cells, each ray in the order it is cast (dmlab2d's HitBeam with
# length 3 and radius 1: the two side rays start beside the zapper, the centre ray ahead of it).
ZAP_RAYS = (((-1, 0), (-1, 1), (-1, 2)), ((1, 0), (1, 1), (1, 2)), ((0, 1), (0, 2), (0, 3)))
PLANT_RAY = ((0, 1), (0, 2), (0, 3))

# The egocentric window: 11 columns x 11 rows, 5 left, 5 right, 9 ahead, 1 behind.
VIEW_ROWS, VIEW_COLS = 11, 11
VIEW_AHEAD, VIEW_BEHIND, VIEW_SIDE = 9, 1, 5
EGO_VIEW_ROW, EGO_VIEW_COL = VIEW_AHEAD, VIEW_SIDE
VIEW_CHANNELS = ("unripe_red", "unripe_green", "unripe_blue", "ripe_red", "ripe_green", "ripe_blue",
                 "avatar_grey", "avatar_red", "avatar_green", "avatar_blue")
NUM_VIEW_CHANNELS = len(VIEW_CHANNELS)
VIEW_DIM = VIEW_ROWS * VIEW_COLS * NUM_VIEW_CHANNELS
OBS_DIM = VIEW_DIM + 1 + NUM_COMMUNITIES
NEVER = -(1 << 20)  # "long ago" for last-planted times


def _build_map() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    patch_pos, patch_color, spawn = [], [], []
    cell_patch = np.full((NUM_CELLS,), -1, np.int32)
    for r, line in enumerate(_ROWS):
        assert len(line) == WIDTH
        for c, ch in enumerate(line):
            if ch == "P":
                spawn.append(r * WIDTH + c)
            else:
                cell_patch[r * WIDTH + c] = len(patch_pos)
                patch_pos.append((r, c))
                patch_color.append(int(ch))
    return np.array(patch_pos, np.int32), np.array(patch_color, np.int32), cell_patch, np.array(spawn, np.int32)


PATCH_POS, PATCH_INIT_COLOR, CELL_PATCH, SPAWN_CELLS = _build_map()
NUM_PATCHES = len(PATCH_POS)
# CELL_PATCH with "no patch" pointing at a padding slot NUM_PATCHES (gathers need no masks).
CELL_PATCH_PAD = np.where(CELL_PATCH < 0, NUM_PATCHES, CELL_PATCH).astype(np.int32)


def rel_to_world(lateral: np.ndarray | int, forward: np.ndarray | int, facing: int) -> np.ndarray:
    """(lateral, forward) offsets -> world (drow, dcol) for a static ``facing``."""
    fwd = FORWARD_VEC[facing]
    right = FORWARD_VEC[(facing + 1) % 4]
    lateral, forward = np.asarray(lateral), np.asarray(forward)
    return (forward[..., None] * fwd + lateral[..., None] * right).astype(np.int32)


# Static offset tables per facing (indexing them with a traced facing is one gather).
ZAP_OFFSETS = np.stack([rel_to_world(np.array([[c[0] for c in ray] for ray in ZAP_RAYS]),
                                     np.array([[c[1] for c in ray] for ray in ZAP_RAYS]), f) for f in range(4)])  # [4, 3, 3, 2]
PLANT_OFFSETS = np.stack([rel_to_world(np.array([c[0] for c in PLANT_RAY]),
                                       np.array([c[1] for c in PLANT_RAY]), f) for f in range(4)])  # [4, 3, 2]
_view_i, _view_j = np.meshgrid(np.arange(VIEW_ROWS), np.arange(VIEW_COLS), indexing="ij")
VIEW_OFFSETS = np.stack([rel_to_world(_view_j - VIEW_SIDE, VIEW_AHEAD - _view_i, f) for f in range(4)])  # [4, 11, 11, 2]


def wrap(pos: Array) -> Array:
    """``pos[..., 2]`` onto the torus."""
    return pos % jnp.asarray([HEIGHT, WIDTH], jnp.int32)


def flat_index(pos: Array) -> Array:
    """``pos[..., 2]`` (wrapped) -> row-major cell index."""
    return pos[..., 0] * WIDTH + pos[..., 1]
