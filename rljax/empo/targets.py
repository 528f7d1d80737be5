"""Derived quantities and model-based targets of the phase-2 trainer (one member, batched).

Random inputs (``key``) are ``uint32`` seeds (:mod:`rljax.empo.draws`). Everything here reads
TARGET parameters ``tp`` (``tp[name]``: the frozen copy of the whole
parameter tree taken at ``name``'s last target update, so e.g. ``Q_r``'s target network carries
the shared encoder as it was then, as in the original's deep copies) and works for both
representations (:class:`~rljax.empo.networks.NetworkModel`, :class:`~rljax.empo.tables.TableModel`).

Derived quantities (the "direct" modes of the quantities that are not networks):

* ``X_h(s) = E_g[w V_h^e(s, g)^zeta]`` from the X_h network, or directly from ``V_h^e`` with
  ``x_h_direct_goal_samples`` goal samples per (state, human) (0: the exact expectation);
* ``y(s) = mean_h clip(X_h, 1e-3, 1)^(-xi)`` (``sum`` with ``u_r_sum_over_humans``) or the U_r
  network's ``y``; ``U_r = -y^eta``;
* ``pi_r = softmax(-beta_r log(-Q_r))`` with the effective ``beta_r``;
* ``V_r(s) = U_r(s) + sum_a pi_r Q_r`` or the V_r network; ``terminal_v_r`` at ``t = T``;
* ``Q_r`` at ``t = T - 1``, where every successor is terminal, is the exact
  ``gamma_r * terminal_v_r`` (:func:`exact_last_step`), not the network's.

Model-based targets for a stored transition ``(s, g_H, a_H)``, over every robot action ``a_r``
and every listed outcome ``s'`` (with its probability; ``1/K`` each in most worlds):

* ``V_h^e(s, g_h) <- sum_{a_r} pi_r(a_r|s) E_{s'}[U_h(s', g_h) + (1 - U_h) gamma_h V_h^e(s', g_h)]``
  (``V_h^e = 0`` at terminal ``s'``; with ``terminal_vhe_target_zero`` the original's quirk: 0
  for every transition into a terminal state);
* ``Q_r(s, a_r) <- gamma_r E_{s'}[V_r(s')]``.

``V_h^e`` is trained for each human's stored goal (the original), or with ``v_h_e_all_goals``
for every goal of the goal set at once (exact only with the ``"expected"`` profile, which
the config enforces): the original's goal sampling never trains e.g. a goal at a state where
the human already stands on it (achieved goals are resampled at once), and a direct ``X_h`` over
all goals would read those untrained entries.

With ``model_based_human_profile="sampled"`` (the original code) ``a_H`` is the stored human
action profile; with ``"expected"`` the successors of every human profile are weighted by the
human prior: ``mu_H(a_H|s)`` (goal marginals) for ``Q_r``, and for ``V_h^e`` of human ``h`` its
own goal-conditioned policy times the others' goal marginals, which is exactly eqs. 4 and 6.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rljax.empo.config import Phase2Config
from rljax.empo.draws import categorical, hash_uniform
from rljax.empo.oracle import profile_probs, robot_policy
from rljax.empo.world import expect_outcomes, vmap_over

Array = jax.Array
X_H_MIN = 1e-3  # the original's clamp of X_h before X_h^(-xi)


def exact_last_step(q: Array, t: Array, horizon: int, gamma_r: Array, terminal_v_r: float) -> Array:
    """``Q_r[..., A_r]`` with the exact ``gamma_r * terminal_v_r`` where every successor is
    terminal (step count ``t[...] = horizon - 1``).

    Why not the network's value there: ``Q_r`` is about ``-1e-10`` at that step, but the
    original's z-space output ``-z^(-eta xi)`` is at most -1. The network can only ever be 1 too
    low there, and each earlier layer's target inherits it: on the trivial map this was the whole
    of the learned ``V_r``'s bias (0.9 low of 22 at s_0 after 1e6 steps, docs/empo.md). Outside
    z-space a tiny ``|Q_r|`` still makes ``log(-Q_r)``, and with it pi_r at beta_r = 1000,
    arbitrary where the exact policy is uniform. The step count is the world's, so this holds
    whether or not the networks see it."""
    return jnp.where((t == horizon - 1)[..., None], gamma_r * terminal_v_r, q)


@struct.dataclass
class Theory:
    """One member's traced theory parameters, with the effective ``beta_r`` of this step."""

    beta_r: Array
    gamma_r: Array
    gamma_h: Array
    zeta: Array
    xi: Array
    eta: Array

    @property
    def eta_xi(self) -> Array:
        return self.eta * self.xi


class Quantities:
    """The derived quantities and targets of one model in one world (static config)."""

    def __init__(self, model: Any, world: Any, cfg: Phase2Config):
        self.model, self.world, self.cfg = model, world, cfg
        self.use = cfg.network_in_use
        self.n_h, self.n_g = world.n_humans, world.n_goals
        self.probs, self.weights = world.goal_probs, world.goal_weights

    def points(self, ws: Any) -> Any:
        return self.model.points(self.world, ws)

    # -- derived quantities ------------------------------------------------------------------
    def x_h(self, tp: dict, pts: Any, lead: tuple, th: Theory, key: Array) -> Array:
        """``X_h[L, n_h]`` for ``U_r``: the X_h network, or directly from ``V_h^e``."""
        hs = jnp.broadcast_to(jnp.arange(self.n_h), lead + (self.n_h,))
        if self.use["x_h"]:
            return self.model.x_h(tp["x_h"], pts, hs)
        m = self.cfg.x_h_direct_goal_samples
        if m == 0:  # exact expectation over the goal set
            shape = lead + (self.n_h, self.n_g)
            h = jnp.broadcast_to(jnp.arange(self.n_h)[:, None], shape)
            g = jnp.broadcast_to(jnp.arange(self.n_g), shape)
            v = self.model.v_h_e(tp["v_h_e"], pts, h, g)
            return jnp.einsum("...hg,hg->...h", v**th.zeta, self.probs * self.weights)
        shape = lead + (self.n_h, m)
        g = categorical(hash_uniform(key, shape), jnp.broadcast_to(self.probs[:, None, :], shape + (self.n_g,)))
        h = jnp.broadcast_to(jnp.arange(self.n_h)[:, None], shape)
        v = self.model.v_h_e(tp["v_h_e"], pts, h, g)
        return (self.weights[h, g] * v**th.zeta).mean(-1)

    def y(self, tp: dict, pts: Any, lead: tuple, th: Theory, key: Array) -> Array:
        """``y[L]`` with ``U_r = -y^eta``."""
        if self.use["u_r"]:
            return self.model.y(tp["u_r"], pts)
        x = jnp.clip(self.x_h(tp, pts, lead, th, key), X_H_MIN, 1.0) ** (-th.xi)
        return x.sum(-1) if self.cfg.u_r_sum_over_humans else x.mean(-1)

    def u_r(self, tp: dict, pts: Any, lead: tuple, th: Theory, key: Array) -> Array:
        return -(self.y(tp, pts, lead, th, key) ** th.eta)

    def q_r(self, tp: dict, pts: Any, t: Array, th: Theory) -> Array:
        """``Q_r[L, A_r]`` of the Q_r (target) network at situations with step counts ``t[L]``,
        exact at the last step (:func:`exact_last_step`)."""
        q = self.model.q_r(tp["q_r"], pts, th.eta_xi)
        return exact_last_step(q, t, self.world.horizon, th.gamma_r, self.cfg.terminal_v_r)

    def q_pi(self, tp: dict, pts: Any, t: Array, th: Theory) -> tuple[Array, Array]:
        """:meth:`q_r` and its policy (effective ``beta_r``)."""
        q = self.q_r(tp, pts, t, th)
        return q, robot_policy(q, th.beta_r)

    def v_r(self, tp: dict, pts: Any, t: Array, th: Theory, key: Array,
            q_pi: tuple[Array, Array] | None = None) -> Array:
        """``V_r[L]`` at situations with step counts ``t[L]`` (``terminal_v_r`` at ``t >= T``);
        ``q_pi``: :meth:`q_pi` at ``pts`` when the caller has it already."""
        if self.use["v_r"]:
            v = self.model.v_r(tp["v_r"], pts, th.eta_xi)
        else:
            q, pi = self.q_pi(tp, pts, t, th) if q_pi is None else q_pi
            v = self.u_r(tp, pts, t.shape, th, key) + (pi * q).sum(-1)
        return jnp.where(t >= self.world.horizon, self.cfg.terminal_v_r, v)

    def _q_pi_joint(self, tp: dict, pts: Any, t: Array, pts_s: Any, t_s: Array, th: Theory):
        """:meth:`q_pi` at ``pts[B]`` (step counts ``t[B]``) and at ``pts_s[lead_s]`` (``t_s``),
        computed on the rows of both stacked (row-wise the same function)."""
        lead_s = t_s.shape
        b, n = jax.tree.leaves(pts)[0].shape[0], int(np.prod(lead_s))
        flat = jax.tree.map(lambda x, y: jnp.concatenate([x, y.reshape((n,) + y.shape[len(lead_s):])]), pts, pts_s)
        q, pi = self.q_pi(tp, flat, jnp.concatenate([t, t_s.reshape(n)]), th)
        return q[:b], pi[:b], (q[b:].reshape(lead_s + q.shape[1:]), pi[b:].reshape(lead_s + pi.shape[1:]))

    # -- human action profiles ---------------------------------------------------------------
    def profiles(self, prior: Array, goals: Array) -> tuple[Array, Array]:
        """From the prior ``[B, n_h, G, 4]`` and goals ``[B, n_h, E]`` (``E`` goals per human):
        the goal-marginal profile distribution ``mu_H[B, A_h]`` and, per human ``h`` and goal
        ``e``, the profile with ``h`` pursuing that goal and the others goal-marginal:
        ``[B, n_h, E, A_h]``."""
        mu = jnp.einsum("bhga,hg->bha", prior, self.probs)
        own = jnp.take_along_axis(prior, goals[..., None], axis=2)  # [B, n_h, E, 4]
        mu_h = profile_probs([mu[:, i] for i in range(self.n_h)])
        fixed = jnp.stack([profile_probs([own[:, i] if i == h else mu[:, i, None] for i in range(self.n_h)])
                           for h in range(self.n_h)], axis=1)
        return mu_h, fixed

    def goal_axis(self, goals: Array) -> Array:
        """The goals whose ``V_h^e`` a transition trains: ``[B, n_h, E]`` -- the stored goal
        (``E = 1``, the original) or every goal (``v_h_e_all_goals``, ``E = G``)."""
        if self.cfg.v_h_e_all_goals:
            return jnp.broadcast_to(jnp.arange(self.n_g), goals.shape + (self.n_g,))
        return goals[..., None]

    # -- model-based targets -----------------------------------------------------------------
    def model_based(self, tp: dict, ws: Any, goals: Array, a_h: Array, th: Theory, key: Array) -> dict[str, Array]:
        """Targets of a batch of transitions (``ws[B]``, goals ``[B, n_h]``, human profiles
        ``a_h[B]``): ``{"v_h_e": [B, n_h, E], "q_r": [B, A_r]}`` (``E`` from :meth:`goal_axis`)
        plus ``"pi_r"[B, A_r]``, ``"q_s"`` (the Q_r target at s) and the points of ``s``."""
        w, cfg = self.world, self.cfg
        pts = self.points(ws)
        expected = cfg.model_based_human_profile == "expected"
        succ = jax.vmap(w.successors_all)(ws) if expected else jax.vmap(w.successors)(ws, a_h)
        t_s = w.t(succ)  # [B, A_r, (A_h,) K]
        pts_s = self.points(succ)
        q_succ = None
        if self.use["v_r"]:
            q_s, pi = self.q_pi(tp, pts, w.t(ws), th)
        else:  # Q_r's target at s and at every successor in ONE forward pass (fewer, larger ops)
            q_s, pi, q_succ = self._q_pi_joint(tp, pts, w.t(ws), pts_s, t_s, th)
        extra = t_s.ndim - 1
        goal_e = self.goal_axis(goals)  # [B, n_h, E]
        goal_b = goal_e.reshape((goal_e.shape[0],) + (1,) * extra + goal_e.shape[1:])
        ach = jnp.take_along_axis(vmap_over(w.achieved, succ), goal_b, axis=-1).astype(jnp.float32)
        shape = t_s.shape + goal_e.shape[1:]
        hs = jnp.broadcast_to(jnp.arange(self.n_h)[:, None], shape)
        v = self.model.v_h_e(tp["v_h_e"], pts_s, hs, jnp.broadcast_to(goal_b, shape))
        v = jnp.where((t_s >= w.horizon)[..., None, None], 0.0, v)
        probs = None
        if not w.uniform_outcomes:  # [B, A_r, (A_h,) K]
            probs = jax.vmap(w.outcome_probs)(ws) if expected else jax.vmap(w.outcome_probs)(ws, a_h)
        per_action = expect_outcomes(w, ach + (1.0 - ach) * th.gamma_h * v, probs, extra)  # over the K outcomes
        v_r = expect_outcomes(w, self.v_r(tp, pts_s, t_s, th, key, q_pi=q_succ), probs, -1)  # [B, A_r, (A_h)]
        if expected:
            mu_h, fixed = self.profiles(jax.vmap(w.prior)(ws), goal_e)
            per_action = jnp.einsum("brahe,bhea->brhe", per_action, fixed)
            v_r = jnp.einsum("bra,ba->br", v_r, mu_h)
        v_h_e = jnp.einsum("br,brhe->bhe", pi, per_action)
        if cfg.terminal_vhe_target_zero:
            v_h_e = jnp.where((w.t(ws) + 1 >= w.horizon)[:, None, None], 0.0, v_h_e)
        return {"v_h_e": v_h_e, "q_r": th.gamma_r * v_r, "pi_r": pi, "q_s": q_s, "points": pts}
