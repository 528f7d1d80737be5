"""``rljax.empo.compare.value_error_sources``: the split of V_r's error that found the learned
values' bias on the trivial map (docs/empo.md)."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from rljax.empo.compare import value_error_sources
from rljax.empo.oracle import solve_oracle
from rljax.empo.prior import goal_marginal
from rljax.environments.corridor import Corridor, finite_world, walk_prior
from rljax.empo.world import TableWorld

WORLD = TableWorld(finite_world(Corridor()), walk_prior(Corridor()))


def _mu_h() -> jnp.ndarray:
    """The (one) human's goal-marginal action distribution ``[S, A]``."""
    return goal_marginal(WORLD.prior_table, WORLD.goal_probs)[:, 0]


def _parts(learned, star):
    src = value_error_sources(WORLD, learned, star, _mu_h(), 0.99)
    T = learned.q_r.shape[0]
    return {k: np.asarray(v) for k, v in src.items()}, np.asarray(learned.v_r[:T] - star.v_r[:T])


def test_the_sources_of_an_exact_solution_of_another_theory_are_its_rewards_and_policy_only():
    """A consistent Bellman solution for another eta (U_r and pi_r differ, Q_r is exactly the
    backup of its own values): q_fit is 0 and the other two sum to the V_r error everywhere."""
    star = solve_oracle(WORLD, beta_r=10.0, eta=1.1, x_h_min=1e-3)
    other = solve_oracle(WORLD, beta_r=10.0, eta=1.3, x_h_min=1e-3)
    parts, dv = _parts(other, star)
    assert np.abs(dv).max() > 0.1  # the two theories' values do differ
    np.testing.assert_allclose(parts["q_fit"], 0.0, atol=1e-4)
    np.testing.assert_allclose(parts["u_r"] + parts["policy"], dv, atol=1e-4)
    assert np.abs(parts["u_r"]).max() > 0.1


def test_a_last_step_q_r_one_too_low_shows_as_q_fit_discounted_back_to_the_start():
    """What the z-space network did (Q_r <= -1 where the exact value is about 0): Q_r one too low
    at the last step, every earlier Q_r the exact backup of those values. The V_r error at
    s_0 is -gamma^(T-1), all of it q_fit."""
    star = solve_oracle(WORLD, beta_r=10.0, x_h_min=1e-3)
    T = star.q_r.shape[0]
    # the same recursion with the last layer's Q_r lowered by 1: shift V_r(T-1) by -1 and push
    # it back through the exact backups (the policy is unchanged: its Q_r are all equal there)
    shift = jnp.zeros_like(star.v_r).at[T - 1].set(-1.0)
    for t in range(T - 2, -1, -1):
        shift = shift.at[t].set(0.99 * shift[t + 1])  # a uniform shift backs up as itself times gamma
    learned = star.replace(v_r=star.v_r + shift, q_r=star.q_r + jnp.concatenate(
        [0.99 * shift[1:T], shift[T - 1:T]])[..., None] * jnp.ones_like(star.q_r))
    parts, dv = _parts(learned, star)
    np.testing.assert_allclose(sum(parts.values()), dv, atol=1e-4)
    np.testing.assert_allclose(parts["q_fit"][0, 0], -(0.99 ** (T - 1)), rtol=1e-4)
    np.testing.assert_allclose(parts["u_r"], 0.0, atol=1e-6)


def test_exact_ties_are_the_two_best_actions_equal_to_float_rounding():
    from rljax.empo.compare import exact_ties

    q = jnp.array([[[-20.0, -20.0, -25.0, -30.0],        # two-way tie at the top
                    [-20.0, -20.0 * (1 + 1e-3), -25.0, -30.0],  # 0.1% apart: not a tie
                    [-1e-10, -1e-10, -1e-10, -1e-10],    # the last step: all tie
                    [-20.0, -25.0, -25.0, -25.0]]])      # a tie below the best does not count
    np.testing.assert_array_equal(np.asarray(exact_ties(q)), [[True, False, True, False]])
