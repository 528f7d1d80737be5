"""PPO pieces on problems whose answers are known."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from rljax.environments import probes
from rljax.distributions import gaussian, make_distribution, multi_categorical
from rljax.envs.spaces import Box, Discrete, MultiDiscrete
from rljax.networks.mlp import ActorCriticMLP
from rljax.ppo import PPOConfig
from rljax.ppo import PPO

BASE = PPOConfig(num_envs=8, num_steps=16, num_minibatches=2, total_timesteps=8 * 16 * 60, lr=3e-3, clip_value=False)


def train(env, cfg, seed=0):
    params = env.default_params()
    tr = PPO(env, ActorCriticMLP(env.action_space(params), hidden=(16, 16)), cfg)
    ts, metrics = jax.jit(tr.train)(jax.random.PRNGKey(seed), tr.hparams(params), params)
    return tr, ts, metrics


def value_at(tr, ts, obs):
    return float(tr.apply(ts.params, jnp.asarray([[obs]], jnp.float32))[1][0])


def test_constant_reward_value():
    tr, ts, _ = train(probes.ConstantRewardProbe(), BASE)
    assert abs(value_at(tr, ts, 0.0) - 1.0) < 0.1


def test_observation_dependent_value():
    tr, ts, _ = train(probes.ObservedRewardProbe(), BASE)
    assert abs(value_at(tr, ts, 1.0) - 1.0) < 0.15
    assert abs(value_at(tr, ts, -1.0) + 1.0) < 0.15


def test_value_bootstraps_through_truncation():
    # gamma 0.9, reward 1 forever, cut at 5 steps: V = 10 with bootstrapping, ~2.6 without.
    cfg = dataclasses.replace(BASE, gamma=0.9, total_timesteps=8 * 16 * 150)
    tr, ts, _ = train(probes.TruncationProbe(), cfg)
    assert abs(value_at(tr, ts, 0.0) - 10.0) < 1.5
    tr, ts, _ = train(probes.TruncationProbe(), dataclasses.replace(cfg, bootstrap_truncation=False))
    assert value_at(tr, ts, 0.0) < 5.0


def test_policy_learns_action_probe():
    tr, ts, metrics = train(probes.ActionRewardProbe(), BASE)
    params = probes.ActionRewardProbe().default_params()
    ev = tr.evaluate(ts.params, ts.obs_stats, params, jax.random.split(jax.random.PRNGKey(3), 32), 4)
    assert float(ev["return"].mean()) == 1.0
    assert float(metrics["episode_return"][:5].mean()) < 0.8  # it started near random


def test_joint_distribution_heads():
    logits = (jnp.log(jnp.asarray([[0.7, 0.3]])), jnp.log(jnp.asarray([[0.1, 0.2, 0.7]])))
    d = multi_categorical(logits)
    a = jnp.asarray([[0, 2]])
    np.testing.assert_allclose(float(d.log_prob(a)[0]), np.log(0.7) + np.log(0.7), rtol=1e-6)
    ent = np.asarray(d.entropy())
    assert ent.shape == (1, 2)
    np.testing.assert_allclose(ent[0, 0], -(0.7 * np.log(0.7) + 0.3 * np.log(0.3)), rtol=1e-5)
    assert d.sample(jax.random.PRNGKey(0)).shape == (1, 2)
    np.testing.assert_array_equal(np.asarray(d.mode()), [[0, 2]])
    g = gaussian(jnp.zeros((4, 3)), jnp.zeros((4, 3)))
    assert g.entropy().shape == (4, 1)
    np.testing.assert_allclose(np.asarray(g.entropy())[0, 0], 1.5 * np.log(2 * np.pi * np.e), rtol=1e-5)


def test_make_distribution_dispatches_on_space():
    assert make_distribution(Discrete(3), jnp.zeros((2, 3))).num_heads == 1
    assert make_distribution(MultiDiscrete((2, 3)), (jnp.zeros((2, 2)), jnp.zeros((2, 3)))).num_heads == 2
    assert make_distribution(Box(-1, 1, (2,)), (jnp.zeros((5, 2)), jnp.zeros((5, 2)))).sample(jax.random.PRNGKey(0)).shape == (5, 2)


def test_per_head_entropy_coefficients_change_the_loss():
    from rljax.ppo import Batch, HParams, ppo_loss

    space = MultiDiscrete((2, 3))
    net = ActorCriticMLP(space, hidden=(8,))
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 1)))
    mb = Batch(obs=jnp.zeros((4, 1)), action=jnp.zeros((4, 2), jnp.int32), log_prob=jnp.zeros(4),
               value=jnp.zeros(4), advantage=jnp.ones(4), target=jnp.zeros(4))
    cfg = PPOConfig(ent_coef=(0.0, 0.0))
    h0 = HParams.from_config(cfg, 2)
    h1 = HParams.from_config(cfg, 2, ent_coef=(0.0, 1.0))
    l0, m0 = ppo_loss(params, net.apply, space, cfg, h0, mb)
    l1, m1 = ppo_loss(params, net.apply, space, cfg, h1, mb)
    np.testing.assert_allclose(float(l0 - l1), float(m0["entropy_head1"]), rtol=1e-5)


def test_distributions_agree_with_distrax():
    import distrax

    from rljax.distributions import Categorical, DiagGaussian

    logits = jax.random.normal(jax.random.PRNGKey(0), (5, 4))
    a = jnp.asarray([0, 1, 2, 3, 1])
    ours, ref = Categorical(logits), distrax.Categorical(logits=logits)
    np.testing.assert_allclose(ours.log_prob(a), ref.log_prob(a), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.entropy(), ref.entropy(), rtol=1e-5, atol=1e-6)
    mean, log_std = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 3))
    x = jax.random.normal(jax.random.PRNGKey(2), (5, 3))
    g, gref = DiagGaussian(mean, log_std), distrax.MultivariateNormalDiag(mean, jnp.exp(log_std))
    np.testing.assert_allclose(g.log_prob(x), gref.log_prob(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(g.entropy(), gref.entropy(), rtol=1e-5, atol=1e-5)
    # sampling follows the probabilities
    samples = \
        jax.vmap(lambda k: Categorical(jnp.log(jnp.asarray([0.2, 0.8]))).sample(k))(jax.random.split(jax.random.PRNGKey(3), 4000))
    assert abs(float(samples.mean()) - 0.8) < 0.03


def test_gaussian_policy_learns_continuous_probe():
    env = probes.ContinuousTargetProbe()
    cfg = dataclasses.replace(BASE, total_timesteps=8 * 16 * 150, ent_coef=0.0)
    tr, ts, metrics = train(env, cfg)
    ev = tr.evaluate(ts.params, ts.obs_stats, env.default_params(), jax.random.split(jax.random.PRNGKey(3), 32), 2)
    assert float(ev["return"].mean()) > -0.05  # greedy action within ~0.2 of the target
    assert float(metrics["episode_return"][:3].mean()) < -0.5  # it started far from it


def test_typed_keys_work_like_raw_keys():
    """New-style ``jax.random.key`` keys train as well as ``PRNGKey`` arrays."""
    env = probes.ConstantRewardProbe()
    p = env.default_params()
    tr = PPO(env, ActorCriticMLP(env.action_space(p), hidden=(8,)), PPOConfig(num_envs=4, num_steps=8, total_timesteps=64))
    ts = tr.init_state(jax.random.key(0), p, tr.hparams(p))
    ts, m = jax.jit(tr.update)(ts)
    assert m["episodes"] == 32 and bool(jnp.isfinite(m["loss"]))
