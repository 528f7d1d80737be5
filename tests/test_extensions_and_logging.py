"""Extension points, normalisation statistics, episode/TensorBoard logs and `rljax eval`."""
import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from rljax.environments import probes
from rljax.experiments.probe.experiment import EXPERIMENT as PROBE
from rljax.cli import main
from rljax.extensions import Extension
from rljax.networks.mlp import ActorCriticMLP
from rljax.normalize import RewardNormalizer, RunningMeanStd
from rljax.ppo import PPOConfig
from rljax.runner import Runner
from rljax.ppo import PPO

CFG = PPOConfig(num_envs=8, num_steps=16, num_minibatches=2, total_timesteps=8 * 16 * 60, lr=3e-3, clip_value=False)


class BonusReward(Extension):
    """+1 on every transition."""

    name = "bonus"

    def reward(self, state, obs, action, next_obs):
        return jnp.ones(obs.shape[:2])


class ShrinkParams(Extension):
    """A strong L2 pull of the policy towards zero, with a counter in its own state."""

    name = "shrink"

    def init(self, key, params, obs_shape):
        return {"calls": jnp.zeros((), jnp.int32)}

    def loss(self, state, params, apply_fn, obs, action):
        sq = sum(jnp.sum(x**2) for x in jax.tree.leaves(params))
        return 10.0 * sq, {"sq": sq}

    def update(self, state, params, obs, next_obs, key):
        return {"calls": state["calls"] + 1}, {"calls": state["calls"] + 1}


def train(env, extensions=()):
    p = env.default_params()
    tr = PPO(env, ActorCriticMLP(env.action_space(p), hidden=(16, 16)), CFG, extensions=tuple(extensions))
    ts, m = jax.jit(tr.train)(jax.random.PRNGKey(0), tr.hparams(p), p)
    return tr, ts, m


def test_extra_reward_term_shifts_the_value():
    tr, ts, m = train(probes.ConstantRewardProbe(), [BonusReward()])
    v = float(tr.apply(ts.params, jnp.zeros((1, 1)))[1][0])
    assert abs(v - 2.0) < 0.15
    assert float(m["bonus/reward"][-1]) == 1.0


def test_extra_loss_term_and_extension_state():
    _, plain, _ = train(probes.ConstantRewardProbe())
    _, shrunk, m = train(probes.ConstantRewardProbe(), [ShrinkParams()])
    norm = lambda ts: float(sum(jnp.sum(x**2) for x in jax.tree.leaves(ts.params)))
    assert norm(shrunk) < 0.2 * norm(plain)
    assert int(shrunk.ext["shrink"]["calls"]) == CFG.num_updates
    assert "shrink/sq" in m


def test_running_mean_std_matches_numpy():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(7, 50, 3)).astype(np.float32)
    stats = RunningMeanStd.create((3,))
    for chunk in data:
        stats = stats.update(jnp.asarray(chunk))
    flat = data.reshape(-1, 3)
    np.testing.assert_allclose(stats.mean, flat.mean(0), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(stats.var, flat.var(0), rtol=1e-3)


def test_reward_normaliser_scales_by_return_std_and_clips():
    norm = RewardNormalizer.create(2)
    rewards = []
    for t in range(200):
        norm, r = norm.step(jnp.asarray([100.0, 100.0]), jnp.asarray([t % 10 == 9] * 2), 0.9, 5.0)
        rewards.append(np.asarray(r))
    assert np.all(np.abs(rewards) <= 5.0)
    # discounted returns of a constant 100 reward have std of order 100s: rewards shrink to O(1)
    assert 0.1 < float(rewards[-1][0]) < 5.0
    assert float(norm.returns[0]) == 0.0  # reset at the episode end


def test_normalised_observations_train_end_to_end():
    env = probes.ActionRewardProbe()
    p = env.default_params()
    cfg = dataclasses.replace(CFG, normalize_obs=True, normalize_reward=True)
    tr = PPO(env, ActorCriticMLP(env.action_space(p), hidden=(16, 16)), cfg)
    ts, _ = jax.jit(tr.train)(jax.random.PRNGKey(0), tr.hparams(p), p)
    assert abs(float(ts.obs_stats.mean[0])) < 0.2 and abs(float(ts.obs_stats.var[0]) - 1.0) < 0.2
    ev = tr.evaluate(ts.params, ts.obs_stats, p, jax.random.split(jax.random.PRNGKey(1), 16), 4)
    assert float(ev["return"].mean()) == 1.0


def test_episode_csv_tensorboard_and_eval_command(tmp_path, capsys):
    cfg = PROBE.make_config(overrides=["env.name=truncation", "ppo.total_timesteps=2048", "runner.progress=false",
                                       "runner.log_episodes=true", "runner.tensorboard=true", "runner.eval_every=4"])
    Runner(PROBE, cfg, str(tmp_path)).run()
    rows = (tmp_path / "episodes_seed0.csv").read_text().strip().splitlines()
    header = rows[0].split(",")
    assert header[:3] == ["update", "env_steps", "env"] and "return" in header and "ones" in header
    # 8 envs x 256 steps each; every episode lasts exactly 5 steps and returns 5
    ret = header.index("return")
    assert len(rows) - 1 == 8 * (256 // 5)
    assert all(float(r.split(",")[ret]) == 5.0 for r in rows[1:])
    assert os.listdir(tmp_path / "tb" / "seed0")
    assert main(["eval", str(tmp_path), "--episodes", "3"]) == 0
    out = capsys.readouterr().out
    assert "seed0" in out and "return      5.00" in out


def test_per_tag_episode_metrics_and_post_update_sees_them():
    """Episodes tagged by the environment get per-tag means of every episode statistic, and a
    two-argument post_update receives this update's metrics inside the compiled program."""
    from rljax.envs.environment import Environment

    class Tagged(probes._Probe):
        """One-step episodes; the tag is drawn at reset (0 or 1) and the reward equals 1 + tag."""

        def reset(self, key, params):
            tag = jax.random.bernoulli(key).astype(jnp.int32)
            return jnp.zeros((1,)), probes.ProbeState(tag, jnp.zeros((1,)))

        def step(self, key, state, action, params):
            info = {"tag": state.t, "ep_bonus": 2.0 * state.t}
            return state.obs, state, 1.0 + state.t.astype(jnp.float32), jnp.asarray(True), jnp.asarray(False), info

        def info_keys(self):
            return ("tag", "ep_bonus")

    assert issubclass(Tagged, Environment)
    env = Tagged()
    p = env.default_params()
    seen = []

    def post(ts, metrics):
        seen.append(sorted(metrics))
        return ts.replace(ext={"ret1": metrics["episode_return_tag1"]})

    tr = PPO(env, ActorCriticMLP(env.action_space(p), hidden=(8,)), CFG, num_tags=2, post_update=post)
    ts = tr.init_state(jax.random.PRNGKey(0), p, tr.hparams(p)).replace(ext={"ret1": jnp.zeros(())})
    ts, m = jax.jit(tr.update)(ts)
    assert float(m["episode_return_tag0"]) == 1.0 and float(m["episode_return_tag1"]) == 2.0
    assert float(m["episode_bonus_tag1"]) == 2.0 and float(m["episode_bonus_tag0"]) == 0.0
    assert float(m["episodes_tag0"]) + float(m["episodes_tag1"]) == float(m["episodes"]) == CFG.batch_size
    assert float(ts.ext["ret1"]) == 2.0 and "episode_return_tag1" in seen[0]
