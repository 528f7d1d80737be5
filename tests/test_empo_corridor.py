"""EMPO over a second finite world: the corridor (environments/corridor.py, one human, one robot,
a human move that slips with probability 0.2, so outcomes are NOT equally likely) goes through
the oracle (a hand-computed last layer, the float64 reference on every layer) and the trainer
(the model-based targets are a fixed point of the oracle, the tabular trainer converges to it,
a short network run trains through the same code as multigrid's)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.environments.corridor import RIGHT, Corridor, finite_world, states, walk_prior
from rljax.experiments.empo.experiment import EXPERIMENT
from rljax.empo.oracle import solve_phase2
from rljax.empo.prior import boltzmann_prior
from rljax.empo.trainer import EmpoTrainer, occupancy
from rljax.empo.world import TableWorld
from rljax.empo.world_model import reachable_steps, uniform_outcomes
from tests.empo_reference import TAU, assert_oracle_matches_reference, reference_boltzmann, targets_at_the_oracle

CORRIDOR = Corridor()  # 3 cells, human at 0, robot at 1 (in the way), horizon 4, slip 0.2
MODEL = finite_world(CORRIDOR)
PRIOR = walk_prior(CORRIDOR)
WORLD = TableWorld(MODEL, PRIOR)
THEORY = dict(gamma_r=0.99, gamma_h=0.99, zeta=2.0, xi=1.0, eta=1.1)


def test_corridor_world_is_a_consistent_finite_world():
    assert (MODEL.num_states, MODEL.num_robot_actions, MODEL.num_human_actions, MODEL.num_outcomes) == (6, 3, 3, 2)
    assert not uniform_outcomes(MODEL) and not WORLD.uniform_outcomes
    np.testing.assert_allclose(MODEL.next_prob.sum(-1), 1.0)
    st = states(CORRIDOR)
    # From the start (human 0, robot 1): the robot steps right to 2, the human right to 1 w.p. 0.8.
    s = st.index((0, 1))
    assert [st[i] for i in np.asarray(MODEL.next_state[s, RIGHT, RIGHT])] == [(1, 2), (0, 2)]
    np.testing.assert_allclose(MODEL.next_prob[s, RIGHT, RIGHT], [0.8, 0.2])
    # The robot standing still blocks the human: it stays (certainly).
    np.testing.assert_allclose(MODEL.next_prob[s, 0, RIGHT], [1.0, 0.0])
    assert st[int(MODEL.next_state[s, 0, RIGHT, 0])] == (0, 1)
    assert reachable_steps(MODEL)[0].tolist() == [True] + [False] * 5


def test_oracle_last_layer_by_hand():
    """Horizon 1 from the start: every Q_r is gamma_r * tau, so pi_r is uniform; the human
    reaches goal 0 surely (it stands there), goal 1 only if the robot steps right (1/3) and the
    human does not slip (0.8), goal 2 never."""
    res = solve_phase2(finite_world(Corridor(horizon=1)), PRIOR, beta_r=10.0, terminal_v_r=TAU, **THEORY)
    np.testing.assert_allclose(res.pi_r[0, 0], 1 / 3, rtol=1e-6)
    np.testing.assert_allclose(res.q_r[0, 0], 0.99 * TAU, rtol=1e-6)
    np.testing.assert_allclose(res.v_h_e[0, 0, 0], [1.0, 0.8 / 3, 0.0], rtol=1e-6, atol=1e-7)
    x = (1.0 + (0.8 / 3) ** 2) / 3
    np.testing.assert_allclose(res.x_h[0, 0, 0], x, rtol=1e-6)
    np.testing.assert_allclose(res.u_r[0, 0], -((1 / x) ** 1.1), rtol=1e-6)
    np.testing.assert_allclose(res.v_r[0, 0], -((1 / x) ** 1.1) + 0.99 * TAU, rtol=1e-6)


@pytest.mark.parametrize("beta_r", [10.0, 1000.0])
def test_oracle_matches_python_backward_induction(beta_r):
    res = assert_oracle_matches_reference(MODEL, PRIOR, beta_r, **THEORY)
    # The robot gets out of the human's way at the start (still and left keep it there).
    assert int(np.argmax(res.pi_r[0, 0])) == RIGHT and float(res.q_r[0, 0, RIGHT]) > float(res.q_r[0, 0, 0]) + 0.01
    assert float(res.pi_r[0, 0, RIGHT]) > (0.99 if beta_r == 1000.0 else 0.4)


def test_boltzmann_prior_matches_python_backward_induction():
    pol, val = boltzmann_prior(MODEL, 5.0, 0.9)
    ref_pol, ref_val = reference_boltzmann(MODEL, 5.0, 0.9)
    np.testing.assert_allclose(pol, ref_pol, atol=1e-5)
    np.testing.assert_allclose(val, ref_val, atol=1e-5)


def _trainer(preset: str, *overrides: str) -> EmpoTrainer:
    cfg = EXPERIMENT.make_config(preset, overrides=list(overrides)).empo
    return EmpoTrainer(WORLD, cfg, WORLD)


def test_model_based_targets_are_a_fixed_point_of_the_oracle():
    """The trainer's targets with every table at the oracle's values reproduce the oracle at
    every reachable (t, s) and goal: the outcome probabilities (0.8/0.2) enter exactly."""
    out, star, ts, ss = targets_at_the_oracle(_trainer("trivial_table"))
    np.testing.assert_allclose(out["v_h_e"], star.v_h_e[ts, ss], atol=1e-6)
    np.testing.assert_allclose(out["q_r"], star.q_r[ts, ss], rtol=1e-5)
    np.testing.assert_allclose(out["pi_r"], star.pi_r[ts, ss], atol=1e-5)


def test_tabular_trainer_converges_to_the_oracle():
    """Tables with exact targets, 1500 training steps (15k environment steps): V_r, pi_r and
    X_h at the start and along the oracle policy's states match the oracle closely (a wrong
    outcome probability, e.g. 1/2 instead of 0.8/0.2, moves V_r(s_0) by about 0.5)."""
    tr = _trainer("trivial_table", "empo.num_training_steps=1500", "empo.epsilon_r_decay_steps=750",
                  "empo.steps_per_episode=4")
    h = tr.hparams(None)
    st = jax.jit(tr.init_state)(jax.random.PRNGKey(0), None, h)
    st, m = jax.jit(lambda s: jax.lax.scan(lambda c, _: tr.update(c), s, None, length=tr.num_updates))(st)
    learned, star = tr.learned(st.params, h), tr.oracle(h)
    occ = occupancy(WORLD, star.pi_r, tr.mu_h_table())
    np.testing.assert_allclose(occ.sum(-1), 1.0, rtol=1e-5)

    def visited(err):
        return float((err.reshape(err.shape[:2] + (-1,)).mean(-1) * occ).sum() / occ.sum())

    T = WORLD.horizon
    tv = 0.5 * jnp.abs(learned.pi_r - star.pi_r).sum(-1)
    assert abs(float(learned.v_r[0, 0] - star.v_r[0, 0])) < 0.01 * abs(float(star.v_r[0, 0]))
    assert float(tv[0, 0]) < 0.02
    assert visited(jnp.abs(learned.v_r[:T] - star.v_r[:T])) < 0.05
    assert visited(jnp.abs(learned.x_h - star.x_h)) < 0.005
    ev = jax.jit(lambda s: tr.evaluation(s, jax.random.split(jax.random.PRNGKey(1), 2), T))(st)
    assert abs(float(ev["return"][0]) - float(star.v_r[0, 0])) < 0.01 * abs(float(star.v_r[0, 0]))


def test_network_trainer_runs_on_the_corridor():
    """A short network run (the smoke preset's sizes, 60 updates through every warm-up stage):
    finite losses, every network trained, an evaluation against the corridor's oracle."""
    tr = _trainer("smoke", "empo.num_training_steps=60")
    h = tr.hparams(None)
    st0 = jax.jit(tr.init_state)(jax.random.PRNGKey(0), None, h)
    st, m = jax.jit(lambda s: jax.lax.scan(lambda c, _: tr.update(c), s, None, length=60))(st0)
    assert int(st.train_step) == 60 and int(m["stage"][-1]) == 6
    for n in tr.networks:
        loss = np.asarray(m[f"loss_{n}"])
        assert np.all(np.isfinite(loss[~np.isnan(loss)])) and np.isfinite(loss[-1]), n
        assert not np.allclose(jax.tree.leaves(st.params[n])[0], jax.tree.leaves(st0.params[n])[0]), n
    assert int(m["goals_achieved"].sum()) > 0
    ev = jax.jit(lambda s: tr.evaluation(s, jax.random.split(jax.random.PRNGKey(1), 2), WORLD.horizon))(st)
    np.testing.assert_allclose(ev["oracle_v_r"], tr.oracle(h).v_r[0, 0])
    assert all(np.all(np.isfinite(v)) for v in ev.values())
