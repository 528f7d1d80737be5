"""The five phase-2 quantities as lookup tables over the ``(t, s)`` of a finite world.

The tabular ("direct") representation has the same interface as
:class:`~rljax.empo.networks.NetworkModel` and is trained by the same targets and squared
errors, for enumerated worlds (a :class:`~rljax.empo.world.TableWorld`): the inputs are the
situations' ``(t, s)`` indices and every quantity is one table entry.

Tables (``T`` the world's horizon, terminal layer ``T`` handled by the targets, not stored):
``v_h_e[T, S, n_h, G]``, ``x_h[T, S, n_h]``, ``u_r[T, S]`` (the ``y`` of ``U_r = -y^eta``),
``q_r[T, S, A_r]``, ``v_r[T, S]``. They hold values directly (no output transform); the
trainer's update moves each entry by ``lr`` times the mean error of the batch samples that hit
it (:func:`table_step`), i.e. a step on that entry's own squared error, so with ``lr = 1`` an
entry takes the mean target of its samples.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rljax.empo.config import Phase2Config

Array = jax.Array

# Initial entries: inside each quantity's range, away from the clamps.
INITIAL = {"v_h_e": 0.5, "x_h": 0.5, "u_r": 2.0, "q_r": -1.0, "v_r": -1.0}


class TableModel:
    """Tabular representation (see the module docstring). ``key`` is accepted for the
    interface and ignored (tables have no dropout)."""

    kind = "table"

    def __init__(self, world: Any, cfg: Phase2Config):
        if not getattr(world, "exact", False):
            raise ValueError("representation=table needs an enumerated world (a TableWorld)")
        self.world, self.cfg = world, cfg
        self.use = cfg.network_in_use
        self.n_humans, self.n_goals = world.n_humans, world.n_goals
        self.num_robot_actions = world.num_robot_actions

    def init(self, key: Array) -> dict:
        t, s, nh, g, a = self.world.horizon, self.world.num_states, self.n_humans, self.n_goals, self.num_robot_actions
        shapes = {"v_h_e": (t, s, nh, g), "x_h": (t, s, nh), "u_r": (t, s), "q_r": (t, s, a), "v_r": (t, s)}
        return {n: {"table": jnp.full(shape, INITIAL[n], jnp.float32)} for n, shape in shapes.items() if self.use[n]}

    def points(self, world: Any, ws: Any) -> tuple[Array, Array]:
        """``(t, s)`` indices; terminal layers read layer ``T - 1`` (the targets mask them)."""
        return jnp.minimum(ws.t, self.world.horizon - 1), ws.s

    @staticmethod
    def _at(point: tuple[Array, Array], extra: int) -> tuple[Array, Array]:
        """The indices of ``point[L]`` shaped ``L + (1,) * extra`` to broadcast against ``h``/``g``."""
        t, s = point
        shape = t.shape + (1,) * extra
        return t.reshape(shape), s.reshape(shape)

    def v_h_e(self, params: dict, p: tuple, h: Array, g: Array, key: Array | None = None) -> Array:
        t, s = self._at(p, h.ndim - p[0].ndim)
        v = params["v_h_e"]["table"][t, s, h, g]
        return v if key is not None else jnp.clip(v, 0.0, 1.0)

    def x_h(self, params: dict, p: tuple, h: Array, key: Array | None = None) -> Array:
        t, s = self._at(p, h.ndim - p[0].ndim)
        v = params["x_h"]["table"][t, s, h]
        return v if key is not None else jnp.clip(v, 0.0, 1.0)

    def y(self, params: dict, p: tuple, key: Array | None = None) -> Array:
        return params["u_r"]["table"][p]

    def q_r(self, params: dict, p: tuple, eta_xi: Array | float, key: Array | None = None) -> Array:
        # Averages of negative targets stay negative; the cap only guards log(-Q) in pi_r.
        return jnp.minimum(params["q_r"]["table"][p], -1e-30)

    def v_r(self, params: dict, p: tuple, eta_xi: Array | float, key: Array | None = None) -> Array:
        return params["v_r"]["table"][p]


def table_step(params: dict, grads: dict, counts: dict, lr: dict[str, Array], apply: dict[str, Array]) -> dict:
    """``entry -= lr * grad / count`` where ``grads`` are those of ``sum 0.5 * err^2`` (so
    ``-grad / count`` is the mean error of the samples that hit the entry) and ``counts`` the
    number of such samples; networks with ``apply[name]`` False are left as they are."""
    out = {}
    for name, p in params.items():
        step = jax.tree.map(lambda g, c: g / jnp.maximum(c, 1.0), grads[name], counts[name])
        new = jax.tree.map(lambda x, d: x - lr[name] * d, p, step)
        out[name] = jax.tree.map(lambda a, b: jnp.where(apply[name], a, b), new, p)
    return out
