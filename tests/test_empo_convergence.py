"""The phase-2 NETWORKS converge to the exact oracle (issue 24 item 2), on a reduced problem
that fits CI: the trivial map with a 4-step horizon and beta_r = 10, the ``trivial`` preset's
networks and estimator, 10,000 training steps (100,000 environment steps). Also: the targets read
from target networks tabulated over the enumerated (t, s) (``tabulate_targets``, the fast path)
are the targets computed per sample."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from rljax.experiments.empo.experiment import EXPERIMENT, build
from rljax.empo import draws
from rljax.empo.trainer import EmpoTrainer
from rljax.empo.world import TableSituation

# The reduced problem. Learning rates 1e-3 (Q_r) and 3e-3 (V_h^e) instead of the preset's 1e-4 and
# 1e-3: 10k steps instead of 1e6 (with 5k steps and lr_v_h_e 1e-3, seed 0 ended at TV 0.11).
REDUCED = ["env.horizon=4", "empo.beta_r=10", "empo.num_training_steps=10000", "empo.lr_q_r=1e-3",
           "empo.lr_v_h_e=3e-3", "empo.epsilon_r_decay_steps=6666", "empo.epsilon_h_decay_steps=6666"]
TV_TOLERANCE = 0.1  # total variation between the learned and the oracle's pi_r at s_0
OBJECTIVE_TOLERANCE = 0.05  # relative gap of the attained objective V_r(s_0) to the optimum


def _trainer(*overrides: str) -> EmpoTrainer:
    return build(EXPERIMENT.make_config("trivial", overrides=list(overrides))).algorithm


def _train(tr: EmpoTrainer, seed: int = 0):
    h = tr.hparams(None)
    st = jax.jit(tr.init_state)(jax.random.PRNGKey(seed), None, h)
    return jax.jit(lambda s: jax.lax.scan(lambda c, _: tr.update(c), s, None, length=tr.num_updates)[0])(st), h


def test_networks_reach_the_oracle_policy_at_the_initial_state():
    """pi_r(s_0) of the learned Q_r network within TV 0.1 of the oracle's (measured 0.029 and 0.023
    for seeds 0 and 1, attained objective 2.7% and 2.2% below the optimum); the oracle's pi_r(s_0) is 0.94 forward, 0.02 each other action, so a uniform or a wrong
    policy is 0.7-0.9 away), and the exact objective the learned policy attains within 5% of the
    optimum. With the demo's estimator and dropout 0.5 (the settings before issue 24) the same run
    stays near the uniform policy (measured TV 0.7 at horizon 4 after 20k steps)."""
    tr = _trainer(*REDUCED)
    st, h = _train(tr)
    learned, star = tr.learned(st.params, h), tr.oracle(h)
    attained = tr.oracle(h, learned.pi_r)
    tv = 0.5 * float(jnp.abs(learned.pi_r[0, 0] - star.pi_r[0, 0]).sum())
    gap = float((star.v_r[0, 0] - attained.v_r[0, 0]) / jnp.abs(star.v_r[0, 0]))
    assert tv < TV_TOLERANCE, (tv, np.asarray(learned.pi_r[0, 0]), np.asarray(star.pi_r[0, 0]))
    assert gap < OBJECTIVE_TOLERANCE, (gap, float(attained.v_r[0, 0]), float(star.v_r[0, 0]))


def test_tabulated_target_networks_give_the_per_sample_targets():
    """The same (initial, random) parameters and a batch of random situations, goals and human
    actions: every target from the tabulated copies equals the target from evaluating the
    networks at each sampled state and successor."""
    tr = _trainer("empo.num_training_steps=40", "env.horizon=4")
    assert tr.tabulated
    per_sample = EmpoTrainer(tr.world, dataclasses.replace(tr.cfg, tabulate_targets=False), tr.exact)
    h = tr.hparams(None)
    params = tr.model.init(jax.random.PRNGKey(0))
    w = tr.world
    u = jax.random.uniform(jax.random.PRNGKey(3), (4, 32))
    batch = {"ws": TableSituation(t=draws.index(u[0], w.horizon), s=draws.index(u[1], w.num_states)),
             "goals": draws.index(u[2], w.n_goals)[:, None], "a_h": draws.index(u[3], w.num_human_actions)}
    th = tr.theory(h, jnp.int32(10**6))  # the nominal beta_r

    @jax.jit
    def both(params, batch):
        a = tr._targets({n: tr.target_copy(n, params, h) for n in params}, batch, batch, th, jnp.uint32(1))[0]
        b = per_sample._targets({n: params for n in params}, batch, batch, th, jnp.uint32(1))[0]
        return a, b

    a, b = both(params, batch)
    assert set(a) == set(b) == {"v_h_e", "q_r"}
    for n in a:
        np.testing.assert_allclose(a[n], b[n], rtol=1e-6, atol=1e-6)
