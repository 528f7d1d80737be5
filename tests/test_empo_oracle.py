"""The phase-2 oracle (eqs 4-9) and the phase-1 priors over finite worlds: a hand-solved
two-state problem, the heuristic multigrid prior on hand-worked states, and plain-Python float64
backward induction (written after the original's loops) on the whole trivial map. The second
finite world (the corridor) is tested in tests/test_empo_corridor.py."""
from __future__ import annotations

import itertools
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.environments.multigrid import (
    FORWARD,
    achieved_table,
    enumerate_states,
    finite_world,
    state_index,
    transition_table,
    trivial_task,
)
from rljax.environments.multigrid_prior import heuristic_policy, heuristic_policy_table, path_table
from rljax.empo.oracle import profile_probs, robot_policy, solve_phase2
from rljax.empo.prior import boltzmann_prior, goal_marginal
from rljax.empo.world_model import FiniteWorld, check_world, reachable_steps
from tests.empo_reference import TAU, assert_oracle_matches_reference, reference_boltzmann, reference_phase2

TRIVIAL = trivial_task()
ENV = TRIVIAL.env
SPACE = enumerate_states(ENV, TRIVIAL.params, TRIVIAL.initial_state)
TABLE = transition_table(ENV, TRIVIAL.params, SPACE)
ACH = achieved_table(ENV, SPACE, TRIVIAL.goals)
WORLD = finite_world(ENV, TRIVIAL.params, TRIVIAL.goals, SPACE, TABLE)
PATHS = path_table(TRIVIAL.params.walls)
HEUR = heuristic_policy_table(ENV, SPACE, TRIVIAL.params, TRIVIAL.goals, PATHS, 1000.0)
THEORY = dict(gamma_r=0.99, gamma_h=0.99, zeta=2.0, xi=1.0, eta=1.1)


def tiny_world(next_state, next_prob, achieved, goal_probs, goal_weights, horizon, actions_per_human=4):
    """A hand-made FiniteWorld (features unused by the oracle: zeros)."""
    s, n_h, g = np.shape(achieved)
    return check_world(FiniteWorld(
        next_state=jnp.asarray(next_state, jnp.int32), next_prob=jnp.asarray(next_prob, jnp.float32),
        achieved=jnp.asarray(achieved), goal_probs=jnp.asarray(goal_probs, jnp.float32),
        goal_weights=jnp.asarray(goal_weights, jnp.float32), state_features=jnp.zeros((s, 1)),
        goal_features=jnp.zeros((n_h, g, 1)), horizon=horizon, actions_per_human=actions_per_human))


# ---------------------------------------------------------------------------------------
# A two-state problem solved by hand
# ---------------------------------------------------------------------------------------
# One robot and one human (4 actions each); K = 2.
# s1 is absorbing. From s0: robot forward (3) -> s1; robot still (0) -> s1 if the human goes
# forward, else s0; robot left/right -> s0 or s1 with probability 1/2 each.
# Goal A (index 0) is achieved in s1, goal B in s0; p = (0.25, 0.75), w = (2, 1).
# The human goes forward when pursuing A and stays still when pursuing B.
P_GOAL, W_GOAL = np.array([[0.25, 0.75]]), np.array([[2.0, 1.0]])


def two_state_problem(horizon):
    idx = np.ones((2, 4, 4, 2), np.int32)
    for r, u in itertools.product(range(4), range(4)):
        if r == 0:
            idx[0, r, u] = 1 if u == FORWARD else 0
        elif r in (1, 2):
            idx[0, r, u] = (0, 1)
    ach = [[[False, True]], [[True, False]]]
    pol = np.zeros((2, 1, 2, 4), np.float32)
    pol[:, 0, 0, FORWARD] = 1.0
    pol[:, 0, 1, 0] = 1.0
    return tiny_world(idx, np.full((2, 4, 4, 2), 0.5), ach, P_GOAL, W_GOAL, horizon), jnp.asarray(pol)


def solve_two_state(horizon, beta_r):
    world, pol = two_state_problem(horizon)
    return solve_phase2(world, pol, beta_r=beta_r, terminal_v_r=TAU, **THEORY)


def test_two_state_problem_last_layer_by_hand():
    res = solve_two_state(1, 2.0)
    g = 0.99
    # Every successor is terminal (V_r = tau), so all Q_r are g*tau and pi_r is uniform.
    np.testing.assert_allclose(res.q_r[0], g * TAU, rtol=1e-6)
    np.testing.assert_allclose(res.pi_r[0], 0.25, rtol=1e-6)
    # s0, goal A (human forward): r=3 -> s1, r=0 -> s1, r=1,2 -> s1 w.p. 1/2: (1+1+.5+.5)/4.
    # s0, goal B (human still): r=0 -> s0 (B holds), r=1,2 -> 1/2, r=3 -> s1: (1+.5+.5+0)/4.
    np.testing.assert_allclose(res.v_h_e[0, 0, 0], [0.75, 0.5], rtol=1e-6)
    np.testing.assert_allclose(res.v_h_e[0, 1, 0], [1.0, 0.0], atol=1e-7)
    x0 = 0.25 * 2 * 0.75**2 + 0.75 * 1 * 0.5**2  # 0.46875
    x1 = 0.25 * 2 * 1.0  # 0.5
    np.testing.assert_allclose(res.x_h[0, :, 0], [x0, x1], rtol=1e-6)
    u = [-((1 / x0) ** 1.1), -(2.0**1.1)]
    np.testing.assert_allclose(res.u_r[0], u, rtol=1e-6)
    np.testing.assert_allclose(res.v_r[0], np.array(u) + g * TAU, rtol=1e-6)
    np.testing.assert_allclose(res.v_r[1], TAU)
    np.testing.assert_array_equal(res.v_h_e[1], 0.0)


def test_two_state_problem_two_layers_by_hand():
    res = solve_two_state(2, 2.0)
    g = 0.99
    x0, x1 = 0.46875, 0.5
    v1 = np.array([-((1 / x0) ** 1.1), -(2.0**1.1)]) + g * TAU  # layer 1 = the last layer above
    np.testing.assert_allclose(res.v_r[1], v1, rtol=1e-6)
    # s0: the goal-marginal human goes forward with probability p_A = 0.25.
    q = g * np.array([0.25 * v1[1] + 0.75 * v1[0], 0.5 * (v1[0] + v1[1]), 0.5 * (v1[0] + v1[1]), v1[1]])
    np.testing.assert_allclose(res.q_r[0, 0], q, rtol=1e-6)
    w = (-q) ** -2.0
    pi = w / w.sum()
    np.testing.assert_allclose(res.pi_r[0, 0], pi, rtol=1e-5)
    # Goal A from s0: r=0 and r=3 reach s1 (1); r=1,2: 1/2 * 1 + 1/2 * (0 + 0.99 * V^e_1(s0, A) = 0.75).
    va = pi[0] + pi[3] + (pi[1] + pi[2]) * (0.5 + 0.5 * g * 0.75)
    # Goal B from s0: r=0 stays in s0 (1); r=1,2: 1/2; r=3 goes to s1 where V^e_1(s1, B) = 0.
    vb = pi[0] + 0.5 * (pi[1] + pi[2])
    np.testing.assert_allclose(res.v_h_e[0, 0, 0], [va, vb], rtol=1e-5)
    x = 0.25 * 2 * va**2 + 0.75 * vb**2
    np.testing.assert_allclose(res.x_h[0, 0, 0], x, rtol=1e-5)
    np.testing.assert_allclose(res.u_r[0, 0], -((1 / x) ** 1.1), rtol=1e-5)
    np.testing.assert_allclose(res.v_r[0, 0], -((1 / x) ** 1.1) + pi @ q, rtol=1e-5)
    # s1: absorbing, uniform policy, V_r = U_r + g * V_r(layer 1).
    np.testing.assert_allclose(res.pi_r[0, 1], 0.25, rtol=1e-6)
    np.testing.assert_allclose(res.v_r[0, 1], -(2.0**1.1) + g * v1[1], rtol=1e-6)
    # beta_r = 0 is the uniform policy.
    np.testing.assert_allclose(solve_two_state(2, 0.0).pi_r, 0.25, rtol=1e-6)


def test_u_r_mean_over_humans_by_default_and_sum_behind_the_flag():
    # One robot and two humans (16 human joint actions), K = 6, one absorbing state.
    world = tiny_world(np.zeros((1, 4, 16, 6)), np.full((1, 4, 16, 6), 1 / 6), np.ones((1, 2, 1), bool),
                       np.ones((2, 1)), [[1.0], [0.5]], 1)
    pol = jnp.full((1, 2, 1, 4), 0.25)
    # V_h^e = 1 for both humans (their goal holds in the successor), so X = (1, 0.5).
    mean = solve_phase2(world, pol, beta_r=3.0, **THEORY)
    summ = solve_phase2(world, pol, beta_r=3.0, u_r_sum=True, **THEORY)
    np.testing.assert_allclose(mean.x_h[0, 0], [1.0, 0.5], rtol=1e-6)
    np.testing.assert_allclose(mean.u_r[0, 0], -(1.5**1.1), rtol=1e-6)
    np.testing.assert_allclose(summ.u_r[0, 0], -(3.0**1.1), rtol=1e-6)


def test_profile_probs_and_robot_policy():
    a, b = jnp.asarray([0.1, 0.2, 0.3, 0.4]), jnp.asarray([0.7, 0.1, 0.1, 0.1])
    p = profile_probs([a, b])
    assert p.shape == (16,)
    np.testing.assert_allclose(p[4 * 2 + 0], 0.3 * 0.7, rtol=1e-6)  # first agent most significant
    q = jnp.asarray([-1.0, -2.0])
    np.testing.assert_allclose(robot_policy(q, 1.0), [2 / 3, 1 / 3], rtol=1e-6)  # (-Q)^-1
    np.testing.assert_allclose(robot_policy(q, 1000.0), [1.0, 0.0], atol=1e-6)


def test_bad_human_policy_shape_is_rejected():
    world, pol = two_state_problem(2)
    with pytest.raises(ValueError, match="human_policy"):
        solve_phase2(world, pol[None].repeat(3, 0))


@pytest.mark.parametrize("field, value, message", [
    ("next_prob", jnp.full((2, 4, 4, 2), 0.4), "next_prob rows"),
    ("next_state", jnp.full((2, 4, 4, 2), 2, jnp.int32), "outside"),
    ("achieved", jnp.zeros((2, 1, 3), bool), "achieved shape"),
    ("actions_per_human", 3, "actions_per_human"),
    ("horizon", 0, "horizon"),
])
def test_inconsistent_worlds_are_rejected_naming_the_field(field, value, message):
    world, _ = two_state_problem(1)
    with pytest.raises(ValueError, match=message):
        check_world(world.replace(**{field: value}))


def test_multigrid_adapter_splits_joint_actions_and_keeps_reachability():
    jo = np.asarray(ENV.joint_action_of)
    np.testing.assert_array_equal(WORLD.next_state, np.asarray(TABLE.next_idx)[:, jo])
    assert (WORLD.num_states, WORLD.num_robot_actions, WORLD.num_human_actions, WORLD.num_outcomes) == (256, 4, 4, 2)
    # the generic forward propagation equals the BFS depths (all-still is a self-loop)
    first = np.asarray(SPACE.first_step)
    np.testing.assert_array_equal(reachable_steps(WORLD), np.arange(10)[:, None] >= first[None, :])


# ---------------------------------------------------------------------------------------
# The heuristic potential prior on hand-worked states
# ---------------------------------------------------------------------------------------
def _state(robot, human, rock, robot_dir=0, human_dir=0):
    obj = np.zeros((4, 6), np.int8)
    obj[rock[1], rock[0]] = 1
    return TRIVIAL.initial_state.replace(
        agent_pos=jnp.asarray([robot, human], jnp.int32),
        agent_dir=jnp.asarray([robot_dir, human_dir], jnp.int32),
        objects=jnp.asarray(obj),
    )


_heur = jax.jit(lambda st: heuristic_policy(ENV, st, TRIVIAL.params, TRIVIAL.goals, PATHS, 1000.0))


def test_heuristic_prior_at_the_start_stays_still():
    pol = np.asarray(_heur(TRIVIAL.initial_state))[0]
    # Human enclosed (rock north, walls elsewhere): every direction has advantage -1, so the
    # action advantages are (0, -0.5, -0.5, -1) and beta = 1000 makes "still" certain.
    np.testing.assert_allclose(pol[:, 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(pol[3], [1, 0, 0, 0])  # goal (2,2): at the goal, still


def test_heuristic_prior_moves_towards_a_free_goal():
    # Rock pushed to (4,1), robot at (3,1); human at (2,2) facing north; goal (2,1) is free:
    # Phi(2,1) = 0, Phi(2,2) = -1/500 (one empty cell), advantage +0.002 for forward,
    # -0.5 for each turn (walls), so P(forward) = e^2 / (1 + e^2).
    pol = np.asarray(_heur(_state((3, 1), (2, 2), (4, 1), human_dir=3)))[0]
    e2 = math.exp(2.0)
    np.testing.assert_allclose(pol[0], [1 / (1 + e2), 0, 0, e2 / (1 + e2)], atol=1e-6)
    # Goal (1,1) via (2,1): Phi(2,2) = -2/500, Phi(2,1) = -1/500: the same +0.002 advantage.
    np.testing.assert_allclose(pol[1], pol[0], atol=1e-6)
    # Goal (3,1) is the robot's cell (cost 2): Phi(2,2) = -3/500, Phi(2,1) = -2/500.
    np.testing.assert_allclose(pol[2], pol[0], atol=1e-6)
    # Facing east instead: the best direction (north) is a left turn away, which gets
    # 0.8 * 0.002; forward (a wall) -1, right (south, a wall) -0.5: P(left) = e^1.6 / (1 + e^1.6).
    pol = np.asarray(_heur(_state((3, 1), (2, 2), (4, 1), human_dir=0)))[0]
    e16 = math.exp(1.6)
    np.testing.assert_allclose(pol[0], [1 / (1 + e16), e16 / (1 + e16), 0, 0], atol=1e-6)


def test_heuristic_table_matches_the_single_state_function():
    i = int(state_index(SPACE, _state((3, 1), (2, 2), (4, 1), human_dir=3)))
    np.testing.assert_allclose(HEUR[i], _heur(jax.tree.map(lambda x: x[i], SPACE.states)), atol=1e-7)
    np.testing.assert_allclose(HEUR.sum(-1), 1.0, atol=1e-5)


# ---------------------------------------------------------------------------------------
# Plain-Python float64 backward induction (tests/empo_reference.py) on the trivial map
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("beta_r", [10.0, 1000.0])
def test_oracle_matches_python_backward_induction_on_the_trivial_map(beta_r):
    res = assert_oracle_matches_reference(WORLD, HEUR, beta_r, **THEORY)
    assert float(res.q_r.max()) < 0 and float(res.v_h_e.min()) >= 0 and float(res.v_h_e.max()) <= 1 + 1e-6


def test_boltzmann_prior_matches_python_backward_induction():
    pol, val = boltzmann_prior(WORLD, 10.0, 0.99)
    ref_pol, ref_val = reference_boltzmann(WORLD, 10.0, 0.99)
    np.testing.assert_allclose(pol, ref_pol, atol=1e-5)
    np.testing.assert_allclose(val, ref_val, atol=1e-5)
    # Achieved goals: V = 1 and a uniform policy; the terminal layer is 1[achieved].
    np.testing.assert_allclose(val[:, 0, 0, 3], 1.0)
    np.testing.assert_allclose(pol[:, 0, 0, 3], 0.25)
    np.testing.assert_array_equal(val[10], np.asarray(ACH, np.float32))
    # Goal (1,2) is a wall: never achievable.
    np.testing.assert_array_equal(val[:, :, 0, 4], 0.0)


def test_time_indexed_prior_in_the_oracle():
    pol, _ = boltzmann_prior(WORLD, 10.0, 0.99)
    res = solve_phase2(WORLD, pol, beta_r=10.0, **THEORY)
    v_r, v_he, _ = reference_phase2(WORLD, pol, 10.0, **THEORY)
    np.testing.assert_allclose(res.v_r, v_r, rtol=2e-5)
    np.testing.assert_allclose(res.v_h_e, v_he, atol=2e-5)
    # A time-invariant prior broadcast over the layers gives the same as passing it once.
    a = solve_phase2(WORLD, HEUR, beta_r=10.0, **THEORY)
    b = solve_phase2(WORLD, jnp.broadcast_to(HEUR, (10, *HEUR.shape)), beta_r=10.0, **THEORY)
    np.testing.assert_allclose(a.v_r, b.v_r, rtol=1e-6)
    np.testing.assert_allclose(goal_marginal(HEUR, TRIVIAL.goals.probs).sum(-1), 1.0, atol=1e-5)


def test_boltzmann_prior_options():
    pol, val = boltzmann_prior(WORLD, 10.0, 0.99)
    pol_u, val_u = boltzmann_prior(WORLD, 10.0, 0.99, robot_policy=jnp.full((SPACE.num_states, 4), 0.25),
                                   humans_policy=jnp.full((SPACE.num_states, 1, 4), 0.25))
    np.testing.assert_allclose(pol_u, pol, atol=1e-6)
    # A robot believed to stand still: the human's values can only drop where the robot must act.
    still = jnp.zeros((SPACE.num_states, 4)).at[:, 0].set(1.0)
    _, val_s = boltzmann_prior(WORLD, 10.0, 0.99, robot_policy=still)
    assert float(val_s[0, 0, 0, 0]) == 0.0, "goal (2,1) needs the rock pushed"
    # beta_h = inf: uniform over the maximising actions.
    greedy, _ = boltzmann_prior(WORLD, jnp.inf, 0.99)
    g = np.asarray(greedy)
    assert np.all(np.isclose(g, 0) | np.isclose(g, 1) | np.isclose(g, 0.5) | np.isclose(g, 1 / 3) | np.isclose(g, 0.25))


def test_heuristic_prior_on_an_ensemble_map_with_rectangle_goals():
    from rljax.environments.multigrid import EnsembleConfig, random_ensemble_map, small_rectangle_goals

    cfg = EnsembleConfig()
    env = cfg.env()
    params, st = random_ensemble_map(jax.random.key(7), cfg)
    goals = small_rectangle_goals(env)
    pol = jax.jit(lambda s: heuristic_policy(env, s, params, goals, path_table(params.walls), 1000.0))(st)
    assert pol.shape == (2, 144, 4)
    np.testing.assert_allclose(pol.sum(-1), 1.0, atol=1e-5)
    # A human inside a rectangle stays still for that goal (and only inside).
    cells = np.asarray(goals.cells)
    for h in range(2):
        x, y = np.asarray(st.agent_pos[h])
        inside = cells[h, :, y, x]
        np.testing.assert_allclose(np.asarray(pol[h])[inside, 0], 1.0)


# ---------------------------------------------------------------------------------------
# The original's phase2_backward_induction example from the CLI
# ---------------------------------------------------------------------------------------
# The float64 reference (tests/empo_reference.py: reference_boltzmann at beta_h 2, gamma_h 0.99,
# then reference_phase2 with x_h_sum=True) on the trivial map with the example's goal cells
# (1,1), (2,1), (3,1), (4,1), (2,2), weight 1, horizon 5: (V_r, X_h, pi_r) at the initial state.
ORIGINAL_EXAMPLE = {
    100.0: (-4.221566780, 1.217015789, (0.126715973, 9.802133e-06, 9.802133e-06, 0.873264423)),
    10.0: (-4.788078488, 1.015064050, (0.218807008, 0.202054038, 0.202054038, 0.377084916)),
}


def _printed(text, beta_r):
    block = text.split(f"beta_r={beta_r:g}:")[1]
    v_r = float(re.search(r"V_r = (\S+)", block).group(1))
    x_h = float(re.search(r"X_h = (\S+)", block).group(1))
    pi = [float(v) for v in re.findall(r"=(\S+?)(?:,|\n)", block.split("pi_r:")[1].split("\n")[0] + "\n")]
    return v_r, x_h, pi


def test_original_example_preset_prints_the_reference_values(capsys):
    """``python -m experiments.empo oracle trivial --preset original`` prints the float64
    reference's V_r, X_h and pi_r at the initial state for beta_r 100 and 10 to 6 decimals."""
    from rljax.experiments.empo.experiment import oracle_main

    assert oracle_main(["trivial", "--preset", "original"]) == 0
    out = capsys.readouterr().out
    assert "Boltzmann prior beta_h=2" in out and "weighted sum" in out and "horizon 5" in out
    for beta_r, (v_r, x_h, pi) in ORIGINAL_EXAMPLE.items():
        got_v, got_x, got_pi = _printed(out, beta_r)
        assert abs(got_v - v_r) <= 2e-6 and abs(got_x - x_h) <= 2e-6, (beta_r, got_v, got_x)
        np.testing.assert_allclose(got_pi, pi, atol=2e-6)
    # An explicit option overrides the preset. With uniform goal probabilities the expectation is
    # 1/5 of the sum everywhere; U_r scales by 5^eta, and pi_r (scale-free in Q_r) stays the same.
    assert oracle_main(["trivial", "--preset", "original", "--beta-r", "100", "--x-h-aggregation", "expectation"]) == 0
    v_exp, x_exp, pi_exp = _printed(capsys.readouterr().out, 100.0)
    assert abs(x_exp - ORIGINAL_EXAMPLE[100.0][1] / 5) <= 2e-6
    assert abs(v_exp - ORIGINAL_EXAMPLE[100.0][0] * 5**1.1) <= 1e-4
    np.testing.assert_allclose(pi_exp, ORIGINAL_EXAMPLE[100.0][2], atol=2e-6)


def test_original_example_reference_is_the_python_backward_induction():
    """The pinned numbers above are the plain-Python float64 backward induction of the example
    (the world built from the environment's primitives, not the CLI's code path)."""
    from rljax.environments.multigrid import reach_cell_goals

    goals = reach_cell_goals(ENV, [[(1, 1), (2, 1), (3, 1), (4, 1), (2, 2)]])
    w = finite_world(ENV, TRIVIAL.params, goals, SPACE, TABLE).replace(horizon=5)
    pol, _ = reference_boltzmann(w, 2.0, 0.99)
    v_r, v_he, pi = reference_phase2(w, pol, 100.0, x_h_sum=True, **THEORY)
    v_ref, x_ref, pi_ref = ORIGINAL_EXAMPLE[100.0]
    assert abs(v_r[0, 0] - v_ref) < 1e-8 and abs((v_he[0, 0, 0] ** 2).sum() - x_ref) < 1e-8
    np.testing.assert_allclose(pi[0, 0], pi_ref, atol=1e-8)
