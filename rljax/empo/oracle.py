"""Exact tabular phase 2 of EMPO (eqs 4-9) by backward induction: the test oracle.

Over the states ``s`` of a :class:`~rljax.empo.world_model.FiniteWorld` and the time layers
``t = 0 .. T`` (``t`` is the step count, ``T`` the world's horizon; layer ``T`` is terminal), for
a non-terminal ``(t, s)``:

* (4) ``Q_r(s, a_r) = gamma_r * sum_{a_H} mu_H(a_H | s) sum_{s'} P(s' | s, a_r, a_H) V_r(t+1, s')``
  with ``mu_H`` the product over humans of the goal-marginal prior ``sum_g p_h(g) pi_h(. | s, g)``
  (the full expectation over the human policy);
* (5) ``pi_r(a_r | s) ∝ (-Q_r)^(-beta_r)``, computed in log space as
  ``softmax(-beta_r * log(-Q_r))`` (``Q_r < 0`` always; ``beta_r = 0`` is uniform);
* (6) ``V_h^e(s, g) = sum_{a_r} pi_r sum_{a_H} pi_h(a_h | s, g) mu_{-h}(a_{-h} | s)
  sum_{s'} P [U_h(s', g) + (1 - U_h(s', g)) gamma_h V_h^e(t+1, s', g)]`` with ``U_h = 1[achieved]``;
* (7) ``X_h(s) = sum_g p_h(g) w_h(g) V_h^e(s, g)^zeta`` (the expectation of ``w V^zeta`` under
  the goal sampler);
* (8) ``y = mean_h X_h^(-xi)`` (the original code's mean; ``u_r_sum=True`` gives the paper's sum)
  and ``U_r = -y^eta``;
* (9) ``V_r(s) = U_r(s) + sum_{a_r} pi_r Q_r``.

At the terminal layer ``V_h^e = 0`` and ``V_r = terminal_v_r = -1e-10``. ``Q_r`` carries no ``U_r``
term of its own: ``U_r`` accrues where the robot acts, through ``V_r``.

Every layer is one vectorised computation over all ``S`` configurations (also those not
reachable at that step count: their values are those of the hypothetical state), and the layers
are processed by ``lax.scan`` from ``T - 1`` down to 0.

With ``robot_policy`` given, (5) is replaced by that fixed policy: the same recursion then
evaluates a given robot policy exactly (its human powers, intrinsic rewards and ``V_r``, the
EMPO objective it attains).
"""
from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from rljax.empo.prior import goal_marginal
from rljax.empo.world_model import FiniteWorld

Array = jax.Array


@struct.dataclass
class OracleResult:
    """Phase-2 tables; index ``[t, s]`` with ``t`` the step count (``T`` = terminal layer)."""

    v_r: Array  # float32[T+1, S]
    q_r: Array  # float32[T, S, A_r]
    pi_r: Array  # float32[T, S, A_r]
    v_h_e: Array  # float32[T+1, S, n_h, G]
    x_h: Array  # float32[T, S, n_h]
    u_r: Array  # float32[T, S]


def profile_probs(marginals: list[Array]) -> Array:
    """Joint probability of independent per-agent action distributions, first agent most
    significant: ``[..., A]`` each -> ``[..., A**len(marginals)]``."""
    p = marginals[0]
    for m in marginals[1:]:
        p = (p[..., :, None] * m[..., None, :]).reshape(*jnp.broadcast_shapes(p.shape[:-1], m.shape[:-1]), -1)
    return p


def robot_policy(q_r: Array, beta_r: Array | float) -> Array:
    """Eq. 5 in log space: ``softmax(-beta_r * log(-Q_r))`` over the last axis."""
    return jax.nn.softmax(-beta_r * jnp.log(-q_r), axis=-1)


robot_policy_of = robot_policy  # the name inside solve_phase2, whose argument is robot_policy


@partial(jax.jit, static_argnames=("u_r_sum",))
def solve_phase2(
    world: FiniteWorld,
    human_policy: Array,
    beta_r: float = 10.0,
    gamma_r: float = 0.99,
    gamma_h: float = 0.99,
    zeta: float = 2.0,
    xi: float = 1.0,
    eta: float = 1.1,
    terminal_v_r: float = -1e-10,
    u_r_sum: bool = False,
    robot_policy: Array | None = None,
    x_h_min: float | Array = 0.0,
) -> OracleResult:
    """Exact backward induction of phase 2 over the states of a finite world.

    Args:
        world: the :class:`~rljax.empo.world_model.FiniteWorld` (transitions, goals, horizon ``T``).
        human_policy: the phase-1 prior ``[S, n_h, G, A]`` or per layer ``[T, S, n_h, G, A]``.
        beta_r, gamma_r, gamma_h, zeta, xi, eta, terminal_v_r: the theory parameters (traced:
            changing them does not recompile).
        u_r_sum: sum ``X_h^-xi`` over humans instead of averaging (static).
        robot_policy: optional fixed ``pi_r[T, S, A_r]`` to evaluate instead of eq. 5 (the
            result's ``pi_r`` is then that policy and ``q_r`` its action values).
        x_h_min: ``X_h`` is raised to at least this before ``X_h^(-xi)`` (the trainer's clamp
            is 1e-3); 0 gives the exact equations, where ``X_h = 0`` (a human who can reach no
            goal in the time left) makes ``U_r = -inf``.
    """
    horizon = world.horizon
    achieved, goal_probs, goal_weights = world.achieved, world.goal_probs, world.goal_weights
    s_count, n_h, n_g = achieved.shape
    if human_policy.ndim not in (4, 5) or (human_policy.ndim == 5 and human_policy.shape[0] != horizon):
        raise ValueError(
            f"solve_phase2: human_policy shape {human_policy.shape} is invalid: need [S, n_h, G, A] or [{horizon}, S, n_h, G, A]"
        )
    idx, prob = world.next_state, world.next_prob  # [S, A_r, A_h, K]
    ach = achieved.astype(jnp.float32)
    gw = goal_probs * goal_weights

    def layer(carry, xs):
        pi_h, fixed_pi_r = xs
        v_r_next, v_h_e_next = carry
        mu = goal_marginal(pi_h, goal_probs)  # [S, n_h, A]
        q_h = profile_probs([mu[:, h] for h in range(n_h)])  # [S, A_h]
        ev_r = (prob * v_r_next[idx]).sum(-1)  # [S, A_r, A_h]
        q_r = gamma_r * jnp.einsum("sh,srh->sr", q_h, ev_r)
        pi_r = robot_policy_of(q_r, beta_r) if fixed_pi_r is None else fixed_pi_r
        cont = ach + (1.0 - ach) * gamma_h * v_h_e_next  # [S, n_h, G]
        ec = jnp.einsum("srhk,srhkig->srhig", prob, cont[idx])  # [S, A_r, A_h, n_h, G]
        v_h_e = []
        for h in range(n_h):
            marg = [mu[:, i, None, :] for i in range(n_h)]
            marg[h] = pi_h[:, h]  # [S, G, A]: human h pursues goal g, the others are goal-marginal
            q_fixed = profile_probs(marg)  # [S, G, A_h]
            v_h_e.append(jnp.einsum("sr,sgh,srhg->sg", pi_r, q_fixed, ec[:, :, :, h, :]))
        v_h_e = jnp.stack(v_h_e, 1)  # [S, n_h, G]
        x_h = jnp.einsum("shg,hg->sh", v_h_e**zeta, gw)
        y = jnp.maximum(x_h, x_h_min) ** (-xi)
        y = y.sum(-1) if u_r_sum else y.mean(-1)
        u_r = -(y**eta)
        v_r = u_r + (pi_r * q_r).sum(-1)
        return (v_r, v_h_e), (v_r, q_r, pi_r, v_h_e, x_h, u_r)

    terminal = (jnp.full((s_count,), terminal_v_r, jnp.float32), jnp.zeros((s_count, n_h, n_g), jnp.float32))
    per_layer_h = human_policy if human_policy.ndim == 5 else None
    step = lambda c, xs: layer(c, (human_policy if per_layer_h is None else xs[0], xs[1]))  # noqa: E731
    _, out = jax.lax.scan(step, terminal, (per_layer_h, robot_policy), length=horizon, reverse=True)
    v_r, q_r, pi_r, v_h_e, x_h, u_r = out
    return OracleResult(
        v_r=jnp.concatenate([v_r, terminal[0][None]]),
        q_r=q_r,
        pi_r=pi_r,
        v_h_e=jnp.concatenate([v_h_e, terminal[1][None]]),
        x_h=x_h,
        u_r=u_r,
    )


def solve_oracle(w: Any, **theory: Any) -> OracleResult:
    """:func:`solve_phase2` on a :class:`~rljax.empo.world.TableWorld` (its finite world and
    its human prior); ``theory``: the keyword arguments of :func:`solve_phase2`. Traceable."""
    return solve_phase2(w.model, w.prior_table, **theory)
