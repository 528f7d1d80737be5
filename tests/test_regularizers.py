"""EWC and RND as PPO extensions: exact penalty gradient, the batch-level Fisher, RND's reward
normalisation and novelty, both inside the PPO trainer, and both vmapped over members.

Compiled functions are shared at module level; networks and rollouts are tiny.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.environments import probes
from rljax.distributions import make_distribution
from rljax.envs.spaces import Box, Discrete
from rljax.networks.mlp import ActorCriticMLP
from rljax.ppo import PPO, PPOConfig
from rljax.regularizers import EWC, RND, fisher_diagonal
from rljax.regularizers.rnd import EPS

# 8 envs x 16 steps per update, 2 minibatches (as tests/test_extensions_and_logging.py).
CFG = PPOConfig(num_envs=8, num_steps=16, num_minibatches=2, total_timesteps=8 * 16 * 40, lr=3e-3, clip_value=False)
FISHER_OBS = jnp.where(jnp.arange(256) % 2 == 0, 1.0, -1.0)[:, None]  # the probes' two observations


def tree_close(a, b, rtol=1e-5, atol=1e-6):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(la, lb):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


# --------------------------------------------------------------------------------------------
# EWC: the penalty and its gradient
# --------------------------------------------------------------------------------------------
def random_tree(key, scale=1.0, positive=False):
    k1, k2, k3 = jax.random.split(key, 3)
    draw = (lambda k, s: jax.random.uniform(k, s, minval=0.0, maxval=2.0)) if positive else jax.random.normal
    return {"dense": {"kernel": scale * draw(k1, (3, 5)), "bias": scale * draw(k2, (5,))}, "log_std": scale * draw(k3, (2,))}


def test_ewc_penalty_gradient_is_lambda_fisher_times_displacement():
    ewc = EWC(lam=1000.0)
    kf, kt, ka = jax.random.split(jax.random.PRNGKey(0), 3)
    fisher, theta, anchor = random_tree(kf, positive=True), random_tree(kt), random_tree(ka)
    state = EWC.snapshot(ewc.init(None, theta, (1,)), anchor, fisher)
    assert float(state.active) == 1.0
    tree_close(state.anchor, anchor, rtol=0, atol=0)

    value_and_grad = jax.jit(jax.value_and_grad(lambda p, s: ewc.loss(s, p, None, None, None), has_aux=True))
    (loss, metrics), grad = value_and_grad(theta, state)
    expected = jax.tree.map(lambda f, t, a: 1000.0 * f * (t - a), fisher, theta, anchor)
    tree_close(grad, expected, rtol=1e-6, atol=1e-4)
    f64 = lambda t: [np.asarray(x, np.float64) for x in jax.tree.leaves(t)]
    penalty = 0.5 * 1000.0 * sum(np.sum(f * (t - a) ** 2) for f, t, a in zip(f64(fisher), f64(theta), f64(anchor)))
    assert float(loss) == pytest.approx(penalty, rel=1e-5)
    assert float(metrics["penalty"]) == float(loss)

    # Inactive (the initial state): no penalty and exactly zero gradient, whatever the params.
    inactive = state.replace(active=jnp.zeros((), jnp.float32))
    (loss0, metrics0), grad0 = value_and_grad(theta, inactive)
    assert float(loss0) == 0.0 and float(metrics0["penalty"]) == 0.0
    assert all(bool(jnp.all(g == 0.0)) for g in jax.tree.leaves(grad0))
    # update leaves the state alone
    same_state, _ = ewc.update(state, theta, None, None, None)
    assert same_state is state


def test_ewc_snapshot_fits_a_cond_and_has_the_init_structure():
    """The protocol snapshots inside the compiled program under lax.cond: both branches must
    have identical structure, shapes and dtypes."""
    ewc = EWC()
    params = random_tree(jax.random.PRNGKey(1))
    fisher = random_tree(jax.random.PRNGKey(2), positive=True)
    init = ewc.init(jax.random.PRNGKey(0), params, (1,))
    assert float(init.active) == 0.0 and init.active.dtype == jnp.float32 and init.active.shape == ()
    assert all(bool(jnp.all(x == 0)) for x in jax.tree.leaves((init.fisher, init.anchor)))

    @jax.jit
    def maybe_snapshot(advance, state, p, f):
        return jax.lax.cond(advance, lambda: EWC.snapshot(state, p, f), lambda: state)

    taken = maybe_snapshot(True, init, params, fisher)
    kept = maybe_snapshot(False, init, params, fisher)
    assert float(taken.active) == 1.0 and float(kept.active) == 0.0
    tree_close(taken.anchor, params, rtol=0, atol=0)
    tree_close(taken.fisher, fisher, rtol=0, atol=0)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="EWC.lam"):
        EWC(lam=-1.0)
    with pytest.raises(ValueError, match="RND.hidden"):
        RND(hidden=(128, 0))
    with pytest.raises(ValueError, match="RND.lr"):
        RND(lr=0.0)
    with pytest.raises(ValueError, match="RND.minibatch"):
        RND(minibatch=0)
    with pytest.raises(ValueError, match="minibatch"):
        fisher_diagonal(None, Discrete(2), {}, jnp.zeros((4, 1)), jax.random.PRNGKey(0), minibatch=0)
    assert RND(hidden=[8, 8]).hidden == (8, 8)  # lists from YAML become a hashable tuple


# --------------------------------------------------------------------------------------------
# EWC: the batch-level Fisher, against a hand-written loop
# --------------------------------------------------------------------------------------------
# Policies without a value head (fisher_diagonal's contract: PolicyApply).
def linear_discrete(p, obs):
    return obs @ p["w"] + p["b"]


def linear_gaussian(p, obs):
    mean = obs @ p["w"] + p["b"]
    return mean, jnp.broadcast_to(p["log_std"], mean.shape)


def hand_fisher(log_prob, params, obs, actions, minibatch):
    """The seed document's recipe written out: loop over minibatches, square the gradient of
    the summed log-probability, add up, divide by the number of observations."""
    total = jax.tree.map(lambda x: np.zeros(x.shape, np.float64), params)
    for start in range(0, obs.shape[0], minibatch):
        o, a = obs[start:start + minibatch], actions[start:start + minibatch]
        g = jax.grad(lambda p: jnp.sum(log_prob(p, o, a)))(params)
        total = jax.tree.map(lambda t, x: t + np.asarray(x, np.float64) ** 2, total, g)
    return jax.tree.map(lambda t: t / obs.shape[0], total)


@pytest.mark.parametrize("kind", ["discrete", "gaussian"])
def test_fisher_diagonal_matches_a_minibatch_loop(kind):
    key = jax.random.PRNGKey(3)
    kw, kb, ko, ka = jax.random.split(key, 4)
    obs = jax.random.normal(ko, (320, 3))  # 2 full minibatches of 128 and one of 64
    if kind == "discrete":
        space, apply_fn = Discrete(4), linear_discrete
        params = {"w": jax.random.normal(kw, (3, 4)), "b": 0.3 * jax.random.normal(kb, (4,))}

        def log_prob(p, o, a):
            logits = linear_discrete(p, o)
            return jnp.take_along_axis(jax.nn.log_softmax(logits), a[:, None], axis=1)[:, 0]
    else:
        space, apply_fn = Box(-1.0, 1.0, (2,)), linear_gaussian
        params = {"w": jax.random.normal(kw, (3, 2)), "b": 0.3 * jax.random.normal(kb, (2,)), "log_std": jnp.array([-0.5, 0.2])}

        def log_prob(p, o, a):
            mean, log_std = linear_gaussian(p, o)
            return jnp.sum(-0.5 * ((a - mean) / jnp.exp(log_std)) ** 2 - log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1)

    # The documented sampling rule: one draw for the whole batch with the given key.
    actions = make_distribution(space, apply_fn(params, obs)).sample(ka)
    got = jax.jit(lambda p, o, k: fisher_diagonal(apply_fn, space, p, o, k, minibatch=128))(params, obs, ka)
    tree_close(got, hand_fisher(log_prob, params, obs, actions, 128), rtol=1e-4, atol=1e-7)

    # It is the batch-level approximation, not the per-sample Fisher (cross terms stay in).
    per_sample = jax.vmap(jax.grad(lambda p, o, a: log_prob(p, o[None], a[None])[0]), (None, 0, 0))(params, obs, actions)
    per_sample = jax.tree.map(lambda g: jnp.mean(g**2, axis=0), per_sample)
    assert not np.allclose(np.asarray(got["w"]), np.asarray(per_sample["w"]), rtol=0.05)


def test_fisher_diagonal_takes_the_policy_without_its_value_head():
    """The contract (PolicyApply): an actor-critic's ``(policy_out, value)`` is refused with a
    clear error while tracing; its policy head (the self-play trainer's ``policy_apply``) gives
    the Fisher, for a Gaussian head too (a Box ``(mean, log_std)`` once lost its log_std here)."""
    space = Box(-1.0, 1.0, (2,))
    net = ActorCriticMLP(space, hidden=(8,))
    obs = jax.random.normal(jax.random.PRNGKey(0), (16, 3))
    params = net.init(jax.random.PRNGKey(1), obs)
    with pytest.raises(TypeError, match="without its value head"):
        fisher_diagonal(net.apply, space, params, obs, jax.random.PRNGKey(2), minibatch=8)
    fisher = jax.jit(lambda p: fisher_diagonal(lambda q, o: net.apply(q, o)[0], space, p, obs, jax.random.PRNGKey(2), minibatch=8))(params)
    assert jax.tree.structure(fisher) == jax.tree.structure(params)
    log_std = [x for path, x in jax.tree_util.tree_leaves_with_path(fisher) if "log_std" in jax.tree_util.keystr(path)]
    assert len(log_std) == 1 and bool(jnp.all(log_std[0] > 0)), "the log_std's Fisher is positive"


# --------------------------------------------------------------------------------------------
# EWC inside the PPO trainer
# --------------------------------------------------------------------------------------------
ACTION_ENV = probes.ActionRewardProbe()
ACTION_P = ACTION_ENV.default_params()
EWC_TRAINER = PPO(ACTION_ENV, ActorCriticMLP(ACTION_ENV.action_space(ACTION_P), hidden=(16, 16)), CFG,
                      extensions=(EWC(lam=1000.0),))


@jax.jit
def ewc_run(ts, active):
    """Snapshot (Fisher + anchor) at the initial parameters, active or not, then train."""
    space = ACTION_ENV.action_space(ACTION_P)
    fisher = fisher_diagonal(lambda p, o: EWC_TRAINER.apply(p, o)[0], space, ts.params, FISHER_OBS, jax.random.PRNGKey(5))
    snap = EWC.snapshot(ts.ext["ewc"], ts.params, fisher)
    state = jax.tree.map(lambda a, b: jnp.where(active, a, b), snap, ts.ext["ewc"])
    out, metrics = EWC_TRAINER.chunk(ts.replace(ext={"ewc": state}), CFG.num_updates)
    weighted = sum(jax.tree.leaves(jax.tree.map(lambda f, x, y: jnp.sum(f * (x - y) ** 2), fisher, out.params, ts.params)))
    return out, metrics, weighted


def test_ewc_in_trainer_logs_the_penalty_and_pulls_towards_the_anchor():
    ts0 = EWC_TRAINER.init_state(jax.random.PRNGKey(0), ACTION_P, EWC_TRAINER.hparams(ACTION_P))
    with_ewc, m_on, dist_on = ewc_run(ts0, True)
    without, m_off, dist_off = ewc_run(ts0, False)
    assert m_on["ewc/penalty"].shape == (CFG.num_updates,)
    assert float(m_on["ewc/penalty"].min()) > 0.0  # the policy moves off the anchor and pays for it
    assert float(jnp.abs(m_off["ewc/penalty"]).max()) == 0.0
    # The Fisher-weighted distance to the anchor (what EWC penalises) is far smaller with EWC
    # (about 0.08x over seeds 0-4); without it the policy learns the probe and moves away.
    assert float(dist_off) > 0.0
    assert float(dist_on) < 0.25 * float(dist_off)
    # the penalty logged is the one the final parameters pay, up to the last minibatch step
    final_penalty = 0.5 * 1000.0 * float(dist_on)
    assert float(m_on["ewc/penalty"][-1]) == pytest.approx(final_penalty, rel=0.05)
    # the snapshot survives the updates unchanged
    tree_close(with_ewc.ext["ewc"].anchor, ts0.params, rtol=0, atol=0)


# --------------------------------------------------------------------------------------------
# RND: normalisation, novelty, predictor learning
# --------------------------------------------------------------------------------------------
SMALL_RND = RND(coef=0.1, lr=3e-3, hidden=(32, 32), features=16, minibatch=64)
rnd_update = jax.jit(SMALL_RND.update)
rnd_reward = jax.jit(SMALL_RND.reward)
rnd_raw = jax.jit(SMALL_RND.raw_intrinsic)
FAMILIAR = jnp.ones((6,))  # the stream stays near this point; the novel observations near -FAMILIAR


def familiar_batch(key, t=4, n=64):
    return FAMILIAR + 0.1 * jax.random.normal(key, (t, n, 6))


def stream(num_updates=20):
    """Rollouts of [4, 64] observations near FAMILIAR: per update the rewards given, the raw
    rewards recomputed, the stats used, and the update's metrics."""
    state = SMALL_RND.init(jax.random.PRNGKey(0), None, (6,))
    log = []
    for i, key in enumerate(jax.random.split(jax.random.PRNGKey(1), num_updates)):
        k_obs, k_upd = jax.random.split(key)
        next_obs = familiar_batch(k_obs)
        given = rnd_reward(state, None, None, next_obs)
        raw = rnd_raw(state, next_obs)
        used = (np.asarray(state.stats.mean), np.asarray(state.stats.var), np.asarray(state.stats.count))
        state, metrics = rnd_update(state, None, next_obs.reshape(-1, 6), next_obs.reshape(-1, 6), k_upd)
        log.append((given, raw, used, metrics))
    return state, log


STREAM = {}


def trained_stream():
    if not STREAM:
        STREAM["state"], STREAM["log"] = stream()
    return STREAM["state"], STREAM["log"]


def test_rnd_reward_is_raw_over_the_stored_running_std():
    state, log = trained_stream()
    given0, raw0, (_, var0, _), _ = log[0]
    assert float(var0) == 1.0  # the first rollout sees the empty prior: reward = coef * raw
    for given, raw, (_, var, _), metrics in log:
        expected = 0.1 * np.asarray(raw, np.float64) / np.sqrt(np.float64(var) + EPS)
        np.testing.assert_allclose(np.asarray(given), expected, rtol=1e-5)
    # After k updates the statistics are those of every raw reward handed out so far.
    all_raw = np.concatenate([np.asarray(raw, np.float64).ravel() for _, raw, _, _ in log])
    assert float(state.stats.mean) == pytest.approx(all_raw.mean(), rel=1e-4)
    assert float(state.stats.var) == pytest.approx(all_raw.var(), rel=1e-3)
    assert float(log[-1][3]["running_std"]) == pytest.approx(np.sqrt(all_raw.var()), rel=1e-3)
    # The last batch's raw statistics are reported as they are.
    assert float(log[-1][3]["intrinsic_mean"]) == pytest.approx(float(np.mean(log[-1][1])), rel=1e-5)
    assert float(log[-1][3]["intrinsic_std"]) == pytest.approx(float(np.std(log[-1][1])), rel=1e-4)
    # An observation's reward does not depend on the rest of its batch.
    obs = familiar_batch(jax.random.PRNGKey(9))
    full = rnd_reward(state, None, None, obs)
    alone = rnd_reward(state, None, None, obs[:1, :1])
    np.testing.assert_allclose(np.asarray(alone)[0, 0], np.asarray(full)[0, 0], rtol=1e-6)


def test_rnd_novel_observations_earn_more_and_predictor_loss_falls():
    state, log = trained_stream()
    losses = np.array([float(m["loss"]) for *_, m in log])
    assert losses[-1] < 0.2 * losses[0]
    familiar = familiar_batch(jax.random.PRNGKey(11))
    novel = -familiar
    r_familiar = float(rnd_reward(state, None, None, familiar).mean())
    r_novel = float(rnd_reward(state, None, None, novel).mean())
    assert r_novel > 5.0 * r_familiar
    # Before any training there is no such preference (both are random-network errors).
    fresh = SMALL_RND.init(jax.random.PRNGKey(0), None, (6,))
    before = float(rnd_reward(fresh, None, None, novel).mean()) / float(rnd_reward(fresh, None, None, familiar).mean())
    assert before < 5.0


def test_rnd_update_minibatches_and_leaves_the_target_alone():
    state = SMALL_RND.init(jax.random.PRNGKey(0), None, (2, 3))  # 2-D observations are flattened
    obs = jax.random.normal(jax.random.PRNGKey(2), (40, 2, 3))  # fewer than one minibatch: one step of 40
    new, metrics = jax.jit(SMALL_RND.update)(state, None, obs, obs, jax.random.PRNGKey(3))
    tree_close(new.target, state.target, rtol=0, atol=0)
    assert int(new.opt_state[0].count) == 1
    assert jax.tree.structure(new) == jax.tree.structure(state)
    assert all(a.shape == b.shape and a.dtype == b.dtype for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(state)))
    obs = jax.random.normal(jax.random.PRNGKey(2), (200, 2, 3))  # 3 minibatches of 64, 8 left out
    new, _ = jax.jit(SMALL_RND.update)(state, None, obs, obs, jax.random.PRNGKey(3))
    assert int(new.opt_state[0].count) == 3
    assert float(new.stats.count) == pytest.approx(200.0, abs=1e-3)  # but all 200 enter the stats


# --------------------------------------------------------------------------------------------
# RND inside the trainer
# --------------------------------------------------------------------------------------------
OBS_ENV = probes.ObservedRewardProbe()
OBS_P = OBS_ENV.default_params()
# The predictor learns slowly here, so each observation's intrinsic reward is stationary and
# the value must converge to extrinsic + intrinsic.
TRAINER_RND = RND(coef=0.1, lr=1e-7, hidden=(32, 32), features=16, minibatch=64)
RND_TRAINER = PPO(OBS_ENV, ActorCriticMLP(OBS_ENV.action_space(OBS_P), hidden=(16, 16)), CFG,
                      extensions=(TRAINER_RND,))


def test_rnd_in_trainer_shifts_the_value_like_an_extra_reward():
    ts, metrics = jax.jit(RND_TRAINER.train)(jax.random.PRNGKey(0), RND_TRAINER.hparams(OBS_P), OBS_P)
    assert metrics["rnd/reward"].shape == (CFG.num_updates,)
    assert "rnd/loss" in metrics and "rnd/running_std" in metrics
    s = jnp.array([[1.0], [-1.0]])
    value = RND_TRAINER.apply(ts.params, s)[1]
    intrinsic = TRAINER_RND.reward(ts.ext["rnd"], None, None, s[:, None])[:, 0]  # [2]
    assert float(intrinsic.min()) > 0.05  # a shift large enough to see
    # V(s) = extrinsic (= s) + the intrinsic reward of s
    np.testing.assert_allclose(np.asarray(value), np.asarray(s[:, 0] + intrinsic), atol=0.03)
    # the logged mean intrinsic reward is the mean of the two (the observations are 50/50)
    assert float(metrics["rnd/reward"][-10:].mean()) == pytest.approx(float(intrinsic.mean()), abs=0.03)


# --------------------------------------------------------------------------------------------
# Both over a member axis
# --------------------------------------------------------------------------------------------
def member(key):
    """One member's inputs: policy parameters, Fisher observations, an RND observation stream."""
    kp, ko, ks = jax.random.split(key, 3)
    params = {"w": jax.random.normal(kp, (3, 4)), "b": jnp.zeros((4,))}
    return key, params, jax.random.normal(ko, (192, 3)), jax.random.normal(ks, (3, 4, 32, 3))


def member_program(key, params, obs, rnd_stream):
    """Everything a member does with the two extensions: Fisher, snapshot, the penalty's value
    and gradient after a parameter change; RND init, rewards and updates over a stream."""
    ewc = EWC(lam=10.0)
    fisher = fisher_diagonal(linear_discrete, Discrete(4), params, obs, key, minibatch=64)
    state = EWC.snapshot(ewc.init(key, params, (3,)), params, fisher)
    moved = jax.tree.map(lambda x: x + 0.1, params)
    (penalty, _), grad = jax.value_and_grad(lambda p: ewc.loss(state, p, None, None, None), has_aux=True)(moved)

    rnd = RND(hidden=(16,), features=8, minibatch=32, lr=1e-2)
    rstate = rnd.init(key, None, (3,))
    rewards, metrics = [], []
    for i, next_obs in enumerate(rnd_stream):
        rewards.append(rnd.reward(rstate, None, None, next_obs))
        rstate, m = rnd.update(rstate, None, next_obs.reshape(-1, 3), next_obs.reshape(-1, 3), jax.random.fold_in(key, i))
        metrics.append(m)
    return fisher, state, penalty, grad, rstate, jnp.stack(rewards), metrics


member_single = jax.jit(member_program)
member_batch = jax.jit(jax.vmap(member_program))


def test_two_members_vmapped_equal_each_member_alone():
    members = [member(jax.random.PRNGKey(s)) for s in (0, 1)]
    batched = member_batch(*jax.tree.map(lambda *x: jnp.stack(x), *members))
    assert batched[1].active.shape == (2,) and batched[4].stats.var.shape == (2,)
    for i, args in enumerate(members):
        tree_close(jax.tree.map(lambda x: x[i], batched), member_single(*args), rtol=1e-5, atol=1e-6)
    # and the members really differ
    assert not np.allclose(np.asarray(batched[5][0]), np.asarray(batched[5][1]))
    assert not np.allclose(np.asarray(batched[0]["w"][0]), np.asarray(batched[0]["w"][1]))
