"""Recurrent PPO: a memory task only a recurrent policy solves, the carry reset at episode
starts (exactly), the loss's sequence re-run, chunked == compiled and resume exactness with
the carry in the train state."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.environments.memory import CueCorridor
from rljax.experiments.memory.experiment import EXPERIMENT
from rljax.errors import ConfigError
from rljax.networks.recurrent import recurrent_cnn, recurrent_mlp
from rljax.ppo import PPO, PPOConfig
from rljax.ppo.learn import make_batch
from rljax.ppo.rollout import rollout
from rljax.regularizers.rnd import RND
from rljax.runner import Runner, resume_runner
from tests.bits import same

# The experiment's defaults (16 envs x 16 steps, 128 updates, corridors of 5 steps so episodes
# straddle rollouts): the GRU reaches 100% success, the MLP stays at chance.
TINY = ["runner.progress=false", "runner.chunk_updates=8", "runner.checkpoint_every=8", "runner.keep_latest=10"]


def config(*extra):
    return EXPERIMENT.make_config(overrides=TINY + list(extra))


@pytest.fixture(scope="module")
def gru_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gru")
    runner = Runner(EXPERIMENT, config(), str(out))
    return runner, runner.run(), out


def test_memory_task_needs_memory(gru_run, tmp_path):
    """Success rate over 64 greedy evaluation episodes: the GRU remembers the cue shown at the
    first step; the feedforward MLP can only guess (50% in expectation, std 6% over 64)."""
    _, summary, _ = gru_run
    assert summary["members"][0]["eval_return"] > 0.9
    mlp = Runner(EXPERIMENT, config("network.kind=mlp"), str(tmp_path)).run()
    assert mlp["members"][0]["eval_return"] < 0.7
    assert abs(mlp["members"][0]["train_episode_return"] - 0.5) < 0.2


def test_chunked_run_equals_compiled_run_with_carry(gru_run):
    runner, _, _ = gru_run
    assert runner.state.carry.shape == (1, 16, 32)
    compiled, _ = runner.train_compiled()
    assert same(runner.state, compiled)


def test_resume_after_interruption_is_exact(gru_run, tmp_path):
    """A run stopped mid-way (after the checkpoint of update 24) and resumed from its checkpoint
    ends with the bits of the uninterrupted run, the policy's carry included."""
    straight, _, _ = gru_run

    class Stop(Exception):
        pass

    def stop(ctx):
        if ctx.update >= 24:
            raise Stop

    killed = Runner(EXPERIMENT, config(), str(tmp_path), on_chunk_end=[stop])
    killed._chunk_fns = straight._chunk_fns  # the very same program: skip compiling it again
    with pytest.raises(Stop):
        killed.run()
    resumed = resume_runner(str(tmp_path))
    summary = resumed.run()
    assert summary["resumed_from_update"] == 24
    assert np.any(np.asarray(resumed.state.carry) != 0)  # a live memory was restored and carried on
    assert same(resumed.state, straight.state)


def tiny_ppo(num_envs=4, num_minibatches=2, num_steps=12, **kw):
    env = CueCorridor()
    net = recurrent_mlp(env.action_space(env.default_params()), embed=(8,), cell_size=8, head_hidden=(8,))
    cfg = PPOConfig(num_envs=num_envs, num_steps=num_steps, num_minibatches=num_minibatches,
                    total_timesteps=num_envs * num_steps)
    return PPO(env, net, cfg, **kw), env.default_params(5)


def test_carry_resets_exactly_at_episode_starts():
    """The carry entering the first step of an episode is the initial carry, bit for bit: the
    rollout's outputs from an episode's first step on do not depend on the carry the rollout
    started with, and the loss's re-run of the stored sequence reproduces the rollout."""
    ppo, params = tiny_ppo(num_steps=15)  # three 5-step episodes per env
    ts = jax.jit(ppo.init_state)(jax.random.PRNGKey(0), params, ppo.hparams(params))
    # a live memory, as in the middle of a run
    ts = ts.replace(carry=jax.random.normal(jax.random.PRNGKey(1), ts.carry.shape))
    traj, end, _ = jax.jit(lambda s, k: rollout(ppo, s, k))(ts, jax.random.PRNGKey(2))
    done = np.asarray(traj["terminated"] | traj["truncated"])  # [T, N]
    assert done[4::5].all() and done.sum() == 12
    # the carry after a finished episode is the initial carry exactly
    assert np.array_equal(np.asarray(end.carry), np.zeros((4, 8)))

    batch = make_batch(ppo, traj, traj["value"], traj["value"])
    seq = jax.jit(ppo.policy.sequence)
    pi_out, value = seq(ts.params, batch.carry, batch.obs, batch.reset)
    np.testing.assert_allclose(value, traj["value"], rtol=1e-6, atol=1e-6)
    log_prob = jnp.take_along_axis(jax.nn.log_softmax(pi_out), batch.action[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(log_prob, traj["log_prob"], rtol=1e-6, atol=1e-6)
    # another starting carry changes the outputs before each env's first reset, nothing after it
    other_value = seq(ts.params, -batch.carry, batch.obs, batch.reset)[1]
    after_reset = np.cumsum(np.asarray(batch.reset), axis=0) > 0  # [T, N]
    assert np.array_equal(np.asarray(other_value)[after_reset], np.asarray(value)[after_reset])
    assert not np.array_equal(np.asarray(other_value)[~after_reset], np.asarray(value)[~after_reset])


def test_sequences_are_shuffled_whole():
    """Recurrent minibatches hold whole environment sequences: [num_minibatches, T, envs/mb]."""
    from rljax.ppo.learn import minibatches

    ppo, params = tiny_ppo()
    ts = jax.jit(ppo.init_state)(jax.random.PRNGKey(0), params, ppo.hparams(params))
    traj, _, _ = rollout(ppo, ts, jax.random.PRNGKey(2))
    batch = make_batch(ppo, traj, traj["value"], traj["value"])
    mbs = minibatches(ppo, batch, jax.random.PRNGKey(3))
    assert mbs.obs.shape == (2, 12, 2, 4) and mbs.carry.shape == (2, 2, 8) and mbs.reset.shape == (2, 12, 2)
    assert np.array_equal(np.asarray(batch.reset[:, 0]), (np.arange(12) % 5 == 0) & (np.arange(12) > 0)) and not batch.reset[0].any()
    seqs = {tuple(np.asarray(batch.obs[:, n]).ravel()) for n in range(4)}
    got = {tuple(np.asarray(mbs.obs[m, :, j]).ravel()) for m in range(2) for j in range(2)}
    assert got == seqs


def test_bad_recurrent_configs_fail_clearly():
    with pytest.raises(ConfigError, match="ppo.num_minibatches=3 does not divide ppo.num_envs=4"):
        tiny_ppo(num_minibatches=3)
    with pytest.raises(ConfigError, match="rnd"):
        tiny_ppo(extensions=(RND(),))


def test_recurrent_cnn_shapes():
    net = recurrent_cnn(5, channels=(4, 4), hidden=16, cell_size=8, conv_impl="lax")
    obs = jnp.zeros((3, 7, 7, 2))
    params = net.init(jax.random.PRNGKey(0), net.initial_carry((3,)), obs)
    carry, (logits, value) = net.apply(params, net.initial_carry((3,)), obs)
    assert carry.shape == (3, 8) and logits.shape == (3, 5) and value.shape == (3,)
