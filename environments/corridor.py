"""A one-dimensional corridor with one human and one robot: the smallest finite world for EMPO.

Cells ``0 .. L-1``; a state is ``(human cell, robot cell)``, never equal, so ``S = L (L - 1)``
(index 0 is the start). Both agents have the actions 0 stay, 1 left, 2 right. Each step the
robot moves first (a move into the human's cell or out of the corridor fails), then the human:
its move fails into the robot's (new) cell or out of the corridor, and otherwise succeeds with
probability ``1 - slip`` (outcome 0) and slips, leaving the human where it is, with probability
``slip`` (outcome 1). The human's goals are the cells (goal ``g``: stand on cell ``g``),
uniformly likely, weight 1. The robot in front of the human blocks its way: to make the human
powerful it has to get out of the way.

:func:`finite_world` builds the :class:`~rljax.empo.world_model.FiniteWorld` (features: one-hot
human and robot cells; goal features: one-hot goal cell) and :func:`walk_prior` a simple human
prior (step towards the goal, stay on it).
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from rljax.empo.world_model import FiniteWorld

STAY, LEFT, RIGHT = 0, 1, 2
MOVES = (0, -1, 1)


@dataclasses.dataclass(frozen=True)
class Corridor:
    """``length`` cells, episodes of ``horizon`` steps, the human's ``slip`` probability and
    the start ``(human cell, robot cell)``."""

    length: int = 3
    horizon: int = 4
    slip: float = 0.2
    start: tuple[int, int] = (0, 1)

    def __post_init__(self):
        if self.length < 2:
            raise ValueError(f"corridor: length={self.length} is invalid: must be >= 2")
        if self.horizon < 1:
            raise ValueError(f"corridor: horizon={self.horizon} is invalid: must be >= 1")
        if not 0.0 <= self.slip < 1.0:
            raise ValueError(f"corridor: slip={self.slip} is invalid: must be in [0, 1)")
        h, r = self.start
        if h == r or not (0 <= h < self.length and 0 <= r < self.length):
            raise ValueError(f"corridor: start={self.start} is invalid: two different cells in [0, {self.length})")


def states(c: Corridor) -> list[tuple[int, int]]:
    """Every ``(human, robot)`` pair, the start first."""
    rest = [(h, r) for h in range(c.length) for r in range(c.length) if h != r and (h, r) != c.start]
    return [c.start] + rest


def finite_world(c: Corridor) -> FiniteWorld:
    """The corridor as a :class:`~rljax.empo.world_model.FiniteWorld` (``K = 2`` outcomes:
    the human's move and its slip)."""
    st = states(c)
    index = {s: i for i, s in enumerate(st)}
    n, a = len(st), len(MOVES)
    nxt = np.zeros((n, a, a, 2), np.int32)
    prob = np.zeros((n, a, a, 2), np.float32)
    for i, (h, r) in enumerate(st):
        for ar in range(a):
            r2 = r + MOVES[ar]
            r2 = r2 if 0 <= r2 < c.length and r2 != h else r
            for ah in range(a):
                h2 = h + MOVES[ah]
                moved = 0 <= h2 < c.length and h2 != r2
                nxt[i, ar, ah] = (index[(h2 if moved else h, r2)], index[(h, r2)])
                prob[i, ar, ah] = (1.0 - c.slip, c.slip) if moved else (1.0, 0.0)
    human = np.array([h for h, _ in st])
    robot = np.array([r for _, r in st])
    cells = np.eye(c.length, dtype=np.float32)
    return FiniteWorld(
        next_state=jnp.asarray(nxt), next_prob=jnp.asarray(prob),
        achieved=jnp.asarray(human[:, None, None] == np.arange(c.length)[None, None, :]),
        goal_probs=jnp.full((1, c.length), 1.0 / c.length, jnp.float32),
        goal_weights=jnp.ones((1, c.length), jnp.float32),
        state_features=jnp.asarray(np.concatenate([cells[human], cells[robot]], axis=1)),
        goal_features=jnp.asarray(cells[None]),
        horizon=c.horizon, actions_per_human=a,
    )


def walk_prior(c: Corridor) -> jnp.ndarray:
    """``float32[S, 1, G, 3]``: the human steps towards its goal cell and stays on it."""
    st = states(c)
    pol = np.zeros((len(st), 1, c.length, len(MOVES)), np.float32)
    for i, (h, _) in enumerate(st):
        for g in range(c.length):
            pol[i, 0, g, STAY if g == h else (RIGHT if g > h else LEFT)] = 1.0
    return jnp.asarray(pol)
