"""EMPO options that must not silently do nothing (issue 24 item 4): the X_h / U_r / V_r networks
train towards their targets, the Boltzmann prior reaches the trainer through the experiment's
config, the custom exploration policy draws from pi_r at its own beta_r, and every Phase2Config
field is read while the trainer is built, traced and evaluated."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from rljax.environments.corridor import Corridor, finite_world, walk_prior
from rljax.experiments.empo.experiment import EXPERIMENT, build
from rljax.empo.config import Phase2Config
from rljax.empo.oracle import robot_policy
from rljax.empo.prior import boltzmann_prior
from rljax.empo.trainer import EmpoTrainer, occupancy
from rljax.empo.world import TableSituation, TableWorld

CORRIDOR = TableWorld(finite_world(Corridor()), walk_prior(Corridor()))
# Every quantity a network, small and fast: 1000 training steps, one environment step each.
NETS = dict(x_h_use_network=True, u_r_use_network=True, v_r_use_network=True, num_training_steps=1000,
            training_steps_per_env_step=1.0, batch_size=32, buffer_size=4000, hidden_dim=16, state_feature_dim=16,
            goal_feature_dim=8, agent_embedding_dim=4, dropout=0.0, lr_x_h=1e-3, lr_u_r=1e-3, lr_v_r=1e-3,
            lr_v_h_e=3e-3, lr_q_r=1e-3, x_h_target_update_interval=1, u_r_target_update_interval=1,
            v_r_target_update_interval=10, v_h_e_target_update_interval=1, q_r_target_update_interval=10,
            steps_per_episode=4, use_sqrt_lr_decay=False)


def test_x_h_u_r_v_r_networks_move_towards_their_targets():
    """The three optional networks each train (1000 steps on the corridor, every quantity a
    network): over every reachable (t, s), each network is at least twice as close to its target
    function at the end (computed from the final target networks, as the trainer's targets are,
    in expectation over the goals for X_h) as it was at initialisation (X_h: 20% closer, see
    below)."""
    tr = EmpoTrainer(CORRIDOR, Phase2Config(**NETS), CORRIDOR)
    h = tr.hparams(None)
    st0 = jax.jit(tr.init_state)(jax.random.PRNGKey(0), None, h)
    st = jax.jit(lambda s: jax.lax.scan(lambda c, _: tr.update(c), s, None, length=tr.num_updates)[0])(st0)
    # the targets read the target networks' tables over every (t, s) (tabulate_targets)
    m, tm, q, tp = tr.model, tr.target_model, tr.target_quantities, st.targets
    ws = CORRIDOR.all_situations()
    pts, tpts = tr.quantities.points(ws), q.points(ws)
    T, S = ws.t.shape
    th = tr.theory(h, jnp.int32(10**6))  # the nominal beta_r
    hs = jnp.broadcast_to(jnp.arange(1), (T, S, 1))
    hg, gg = jnp.zeros((T, S, 1, 3), jnp.int32), jnp.broadcast_to(jnp.arange(3), (T, S, 1, 3))
    x_target = jnp.einsum("tshg,hg->tsh", tm.v_h_e(tp["v_h_e"], tpts, hg, gg) ** th.zeta,
                          CORRIDOR.goal_probs * CORRIDOR.goal_weights)
    y_target = (jnp.clip(tm.x_h(tp["x_h"], tpts, hs), 1e-3, 1.0) ** (-th.xi)).mean(-1)
    q_t, pi_t = q.q_pi(tp, tpts, ws.t, th)
    v_target = q.u_r(tp, tpts, (T, S), th, jnp.uint32(0)) + (pi_t * q_t).sum(-1)
    reach = np.asarray(CORRIDOR.reachable())

    def err(pred, target):
        d = np.abs(np.asarray(pred - target)).reshape(T, S, -1).mean(-1)
        return float(d[reach].mean())

    out = {name: (err(pred(st0.params), target), err(pred(st.params), target))
           for name, pred, target in (("x_h", lambda p: m.x_h(p, pts, hs), x_target),
                                      ("u_r (y)", lambda p: m.y(p, pts), y_target),
                                      ("v_r", lambda p: m.v_r(p, pts, th.eta_xi), v_target))}
    # X_h's per-sample target is w V_h^e(s, g)^zeta for the STORED goal, whose distribution in
    # the replay is not the goal sampler's p (goals are resampled when achieved, so hard goals
    # stay longer): the network approaches the expectation under the replay's goals, and the
    # gap to the p-expectation stays (measured 0.174 -> 0.122). U_r and V_r: 9.0 -> 2.1, 60 -> 15.
    factor = {"x_h": 0.8, "u_r (y)": 0.5, "v_r": 0.5}
    assert all(out[n][1] < factor[n] * out[n][0] for n in out), out


def test_boltzmann_prior_reaches_the_trainer_from_the_config():
    """``env.prior=boltzmann`` (what ``rljax run empo --set env.prior=boltzmann`` builds): the
    actor's and the evaluation's prior is the Boltzmann backward induction per step count."""
    cfg = EXPERIMENT.make_config("smoke", overrides=["env.prior=boltzmann", "env.beta_h=2", "env.horizon=6",
                                                     "env.goals=original"])
    tr = build(cfg).algorithm
    w = tr.world
    assert w.horizon == 6 and w.prior_per_step and tr.exact.prior_table.shape[0] == 6
    pol = boltzmann_prior(w.model, 2.0, cfg.empo.gamma_h)[0]
    for t in (0, 3, 5):
        np.testing.assert_array_equal(w.prior(TableSituation(t=jnp.int32(t), s=jnp.int32(0))), pol[t, 0])
    mu = tr.mu_h_table()
    assert mu.shape == (6, w.num_states, 4)
    star = tr.oracle(tr.hparams(None))
    np.testing.assert_allclose(occupancy(tr.exact, star.pi_r, mu).sum(-1), 1.0, atol=1e-5)
    # The heuristic default differs (it is time-invariant).
    assert not build(EXPERIMENT.make_config("smoke")).algorithm.world.prior_per_step


def test_exploration_policy_is_pi_r_at_its_own_beta_r():
    q = jnp.asarray([-2.0, -1.0, -4.0])
    u = (jnp.arange(20_000) + 0.5) / 20_000
    counts = lambda tr: np.bincount(np.asarray(jax.vmap(lambda x: tr._explore(x, q))(u)), minlength=3) / 20_000  # noqa: E731
    uniform = EmpoTrainer(CORRIDOR, Phase2Config(**NETS), CORRIDOR)
    np.testing.assert_allclose(counts(uniform), 1 / 3, atol=1e-3)
    soft = EmpoTrainer(CORRIDOR, Phase2Config(**NETS, exploration_beta_r=2.0), CORRIDOR)
    np.testing.assert_allclose(counts(soft), robot_policy(q, 2.0), atol=1e-3)


# Fields that no trace of the trainer reads, with the reason. Keep empty unless justified.
UNREAD: dict[str, str] = {}


def test_every_config_field_is_read_by_the_trainer():
    """Every Phase2Config field is read (attribute access on a config) while the trainer is
    built, its state initialised and its update, evaluation and oracle traced, over the
    network, table and expected-profile configurations (union of the reads)."""
    read: set[str] = set()
    fields = {f.name for f in dataclasses.fields(Phase2Config)}
    original, validate = Phase2Config.__getattribute__, Phase2Config.validate
    paused = [False]

    def recording(self, name):
        if name in fields and not paused[0]:
            read.add(name)
        return original(self, name)

    def quietly(fn):  # validation and dataclasses.replace read every field: not a use
        def run(*args, **kwargs):
            paused[0] = True
            try:
                return fn(*args, **kwargs)
            finally:
                paused[0] = False
        return run

    quiet_validate, replace = quietly(validate), dataclasses.replace

    configs = [Phase2Config(**NETS),
               Phase2Config(**{**NETS, "use_sqrt_lr_decay": True}, x_h_batch_size=64, exploration_beta_r=1.0,
                            constant_lr_then_1_over_t=False, auto_grad_clip=False, use_z_space_transform=True,
                            u_r_sum_over_humans=True, terminal_vhe_target_zero=True, include_step_count=False),
               Phase2Config(representation="table", num_training_steps=100, buffer_size=1000,
                            model_based_human_profile="expected", v_h_e_all_goals=True, x_h_direct_goal_samples=0),
               Phase2Config(num_training_steps=100, buffer_size=1000, x_h_use_network=False, env_steps_per_update=10,
                            training_steps_per_env_step=0.1)]
    Phase2Config.__getattribute__, Phase2Config.validate = recording, quiet_validate
    dataclasses.replace = quietly(replace)
    try:
        for cfg in configs:
            world = CORRIDOR.with_step_count(cfg.include_step_count)
            tr = EmpoTrainer(world, cfg, world)
            h = tr.hparams(None)
            st = jax.eval_shape(lambda k: tr.init_state(k, None, h), jax.random.PRNGKey(0))
            jax.eval_shape(tr.update, st)
            jax.eval_shape(lambda s: tr.evaluation(s, jax.random.split(jax.random.PRNGKey(0), 2), 4), st)
            _ = tr.num_updates, tr.steps_per_update
    finally:
        Phase2Config.__getattribute__, Phase2Config.validate = original, validate
        dataclasses.replace = replace
    missing = sorted(fields - read - set(UNREAD))
    assert not missing, f"Phase2Config fields read by no code path: {missing}"
