"""rljax.load: a run's policy, environment and task parameters, without the runner.

The loaded policy's greedy episodes must reproduce the run's own evaluation bit for bit (same
keys, same env, same parameters and observation statistics), feedforward and recurrent."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rljax
from rljax.experiments.cartpole.experiment import EXPERIMENT as CARTPOLE
from rljax.experiments.memory.experiment import EXPERIMENT as MEMORY
from rljax.errors import ConfigError
from rljax.runner import Runner

# Two updates, a checkpoint after each, greedy evaluation of 3 episodes at the end.
RUNNER = ["runner.progress=false", "runner.chunk_updates=1", "runner.checkpoint_every=1", "runner.keep_latest=5",
          "runner.eval_episodes=3"]


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("cartpole"))
    cfg = CARTPOLE.make_config(overrides=RUNNER + ["ppo.total_timesteps=1024", "ppo.normalize_obs=true",
                                                   "runner.num_seeds=2", "runner.eval_max_steps=60"])
    return out, Runner(CARTPOLE, cfg, out).run()


@pytest.fixture(scope="module")
def memory_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("memory"))
    cfg = MEMORY.make_config(overrides=RUNNER + ["ppo.total_timesteps=512"])
    return out, Runner(MEMORY, cfg, out).run()


def greedy_returns(policy, env, env_params, run_dir, max_steps):
    """The runner's evaluation episodes (rljax.ppo.PPO.evaluate's keys), played by ``policy``."""
    run = json.load(open(f"{run_dir}/run.json"))["config"]["runner"]
    keys = jax.random.split(jax.random.PRNGKey(run["eval_seed"]), run["eval_episodes"])

    def episode(key):
        _, rkey, skey = jax.random.split(key, 3)
        obs, state = env.reset(rkey, env_params)

        def step(c, k):
            obs, state, alive, ret, carry = c
            if policy.recurrent:
                action, carry = policy(obs, k, carry=carry, deterministic=True)
            else:
                action = policy(obs, k, deterministic=True)
            obs, state, reward, term, trunc, _ = env.step(k, state, action, env_params)
            return (obs, state, alive * (1.0 - jnp.logical_or(term, trunc)), ret + alive * reward, carry), None

        init = (obs, state, jnp.ones(()), jnp.zeros(()), policy.initial_carry(()))
        return jax.lax.scan(step, init, jax.random.split(skey, max_steps))[0][3]

    return np.asarray(jax.jit(jax.vmap(episode))(keys))


def test_feedforward_policy_replays_the_runs_evaluation(cartpole_run):
    out, summary = cartpole_run
    for i, name in enumerate(("seed0", "seed1")):
        policy, env, env_params = rljax.load(out, member=name if i else 0)
        assert policy.info["member"] == name and policy.info["checkpoint"] == {"which": "latest", "step": 2}
        assert policy.obs_stats is not None and not policy.recurrent
        np.testing.assert_array_equal(greedy_returns(policy, env, env_params, out, 60),
                                      np.asarray(summary["members"][i]["eval_returns"], np.float32))


def test_feedforward_policy_is_batched_jittable_and_samples(cartpole_run):
    out, _ = cartpole_run
    policy, env, env_params = rljax.load(out, member="seed1")
    obs = jax.vmap(lambda k: env.reset(k, env_params)[0])(jax.random.split(jax.random.key(0), 64))
    greedy = policy(obs, jax.random.key(1), deterministic=True)
    assert greedy.shape == (64,)
    jitted = jax.jit(policy)
    np.testing.assert_array_equal(jitted(obs, jax.random.key(1), deterministic=True), greedy)  # traced flag
    dist, _ = policy.distribution(obs)
    np.testing.assert_array_equal(greedy, dist.mode())
    # sampling: same key, same actions; different keys differ somewhere among 64 draws at p ~ 0.5
    a, b = jitted(obs, jax.random.key(2)), jitted(obs, jax.random.key(3))
    np.testing.assert_array_equal(a, jitted(obs, jax.random.key(2)))
    assert (np.asarray(a) != np.asarray(b)).any()


def test_checkpoint_choice(cartpole_run):
    out, _ = cartpole_run
    first = rljax.load(out, checkpoint=1, member="seed0").policy
    last = rljax.load(out, checkpoint=2, member="seed0").policy
    assert first.info["checkpoint"] == {"which": "latest", "step": 1} and first.info["update"] == 1
    assert last.info["update"] == 2
    assert any((np.asarray(x) != np.asarray(y)).any()
               for x, y in zip(jax.tree.leaves(first.params), jax.tree.leaves(last.params)))
    best = rljax.load(out, checkpoint="best", member="seed0").policy
    assert best.info["checkpoint"]["which"] == "best"
    with pytest.raises(ConfigError, match=r"^no checkpoint at step 7 in .*; saved steps: 1, 2$"):
        rljax.load(out, checkpoint=7, member=0)
    with pytest.raises(ConfigError, match="checkpoint must be"):
        rljax.load(out, checkpoint="newest", member=0)


def test_member_choice_errors(cartpole_run, tmp_path):
    out, _ = cartpole_run
    with pytest.raises(ConfigError, match="the run has 2 members; pass member= one of: seed0, seed1"):
        rljax.load(out)
    with pytest.raises(ConfigError, match="member='seed9' is not in the run"):
        rljax.load(out, member="seed9")
    with pytest.raises(ConfigError, match="member=2 is out of range"):
        rljax.load(out, member=2)
    with pytest.raises(ConfigError, match="role='pursuer' is for self-play runs; cartpole trains one policy"):
        rljax.load(out, member=0, role="pursuer")
    with pytest.raises(ConfigError, match="not an rljax run directory"):
        rljax.load(str(tmp_path))


def test_recurrent_policy_replays_the_runs_evaluation(memory_run):
    out, summary = memory_run
    policy, env, env_params = rljax.load(out)
    assert policy.recurrent and policy.info["experiment"] == "memory"
    max_steps = json.load(open(f"{out}/run.json"))["config"]["runner"]["eval_max_steps"] or env.max_steps(env_params)
    np.testing.assert_array_equal(greedy_returns(policy, env, env_params, out, max_steps),
                                  np.asarray(summary["members"][0]["eval_returns"], np.float32))
    with pytest.raises(ConfigError, match="this policy is recurrent"):
        policy(jnp.zeros((2,) + env.observation_shape(env_params)), jax.random.key(0))
    # batched and jitted, carry in and out, reset where an episode ended
    obs = jax.vmap(lambda k: env.reset(k, env_params)[0])(jax.random.split(jax.random.key(0), 8))
    carry = policy.initial_carry(8)
    action, carry2 = jax.jit(policy)(obs, jax.random.key(1), carry=carry)
    assert action.shape == (8,)
    assert jax.tree.structure(carry2) == jax.tree.structure(carry)
    assert any((np.asarray(a) != np.asarray(b)).any() for a, b in zip(jax.tree.leaves(carry2), jax.tree.leaves(carry)))
    done = jnp.arange(8) % 2 == 0
    reset = policy.reset(carry2, done)
    for r, c0, c in zip(jax.tree.leaves(reset), jax.tree.leaves(carry), jax.tree.leaves(carry2)):
        np.testing.assert_array_equal(np.asarray(r)[::2], np.asarray(c0)[::2])
        np.testing.assert_array_equal(np.asarray(r)[1::2], np.asarray(c)[1::2])


# The tiny AMS-DRL protocol of tests/test_selfplay.py, one seed.
SELFPLAY = ["ppo.num_envs=8", "ppo.num_steps=16", "ppo.num_minibatches=2", "ppo.num_epochs=2", "network.hidden=[16,16]",
            "env.max_steps=40", "protocol.cold_start_timesteps=256", "protocol.max_phases=2",
            "protocol.timesteps_per_phase=256", "protocol.warmup_timesteps=[256]", "protocol.warm_start_timesteps=128",
            "curriculum.ne_gap_threshold=1.0", "curriculum.ne_gap_consecutive=1", "selfplay.eval_episodes=4",
            "selfplay.pool_lanes=2", "selfplay.pool_size=4", "selfplay.nav_max_steps=40", "runner.chunk_updates=4",
            "runner.eval_episodes=3", "runner.eval_max_steps=40", "runner.progress=false"]


@pytest.fixture(scope="module")
def pursuit_run(tmp_path_factory):
    from rljax.experiments.pursuit.experiment import EXPERIMENT as PURSUIT

    cfg = PURSUIT.make_config(overrides=SELFPLAY)
    out = str(tmp_path_factory.mktemp("pursuit") / "run")
    return out, cfg, Runner(PURSUIT, cfg, out).run()


def test_selfplay_roles_replay_the_runs_head_to_head(pursuit_run):
    from rljax.experiments.pursuit.experiment import EXPERIMENT as PURSUIT
    from rljax.selfplay.evaluation import head_to_head

    out, cfg, summary = pursuit_run
    with pytest.raises(ConfigError, match="is a self-play run: pass role='pursuer' or role='evader'"):
        rljax.load(out)
    pursuer, env, arena = rljax.load(out, role="pursuer")
    evader, _, _ = rljax.load(out, role="evader")
    assert (pursuer.info["role_index"], evader.info["role_index"]) == (0, 1)
    assert any((np.asarray(a) != np.asarray(b)).any()
               for a, b in zip(jax.tree.leaves(pursuer.params), jax.tree.leaves(evader.params)))
    act = lambda policy: lambda keys, obs: policy(obs, keys[0], deterministic=True)  # noqa: E731
    keys = jax.random.split(jax.random.PRNGKey(cfg.runner.eval_seed), 3)
    game = PURSUIT.build(cfg).algorithm.game
    assert type(game.env) is type(env)
    r = jax.jit(lambda: head_to_head(game, arena, keys, 40, act(pursuer), act(evader)))()
    np.testing.assert_array_equal(np.asarray(r["return"]), np.asarray(summary["members"][0]["eval_returns"], np.float32))


# -- the command line: rljax eval / rljax render on these tiny runs ---------------------------------
def test_cli_eval_of_a_ppo_run_is_its_greedy_evaluation(cartpole_run, tmp_path, capsys):
    from rljax.cli import main

    out, summary = cartpole_run
    assert main(["eval", out, "--member", "seed1", "--checkpoint", "latest", "--out", str(tmp_path)]) == 0
    report = json.load(open(tmp_path / "eval.json"))
    assert [m["member"] for m in report["members"]] == ["seed1"] and report["checkpoint"] == {"which": "latest", "step": 2}
    np.testing.assert_array_equal(np.asarray(report["members"][0]["returns"], np.float32),
                                  np.asarray(summary["members"][1]["eval_returns"], np.float32))
    assert "seed1" in capsys.readouterr().out


def _gif(path):
    from PIL import Image

    im = Image.open(path)
    frames = []
    for i in range(im.n_frames):
        im.seek(i)
        frames.append(np.asarray(im.convert("RGB")))
    return frames


def test_cli_render_writes_the_episodes_as_a_gif(cartpole_run, tmp_path, capsys):
    from rljax.cli import main

    out, _ = cartpole_run
    gif = str(tmp_path / "episode.gif")
    assert main(["render", out, "--member", "seed0", "--episodes", "2", "--max-steps", "12", "--out", gif]) == 0
    frames = _gif(gif)
    assert all(f.shape == (160, 240, 3) for f in frames) and len(frames) > 2
    assert not np.array_equal(frames[0], frames[-1])
    assert "12 steps, 12 steps" in capsys.readouterr().out
    from rljax.optional import installed

    mp4 = tmp_path / "e.mp4"
    if installed("imageio") and installed("imageio_ffmpeg"):
        assert main(["render", out, "--member", "seed0", "--max-steps", "5", "--out", str(mp4)]) == 0
        assert mp4.stat().st_size > 0
    else:  # without the writer: one line naming the extra, before anything is loaded
        assert main(["render", out, "--member", "seed0", "--out", str(mp4)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "pip install 'rljax[video]'" in err and not mp4.exists()


def test_pursuit_eval_and_episode_command(pursuit_run, tmp_path, capsys):
    from rljax.cli import experiment_main, main

    out, _, _ = pursuit_run
    assert main(["eval", out, "--episodes", "4", "--out", str(tmp_path / "eval")]) == 0
    rows = json.load(open(tmp_path / "eval" / "eval.json"))["rows"]
    assert [r["matchup"] for r in rows] == ["trained pursuer vs trained evader", "trained pursuer vs random evader",
                                            "random pursuer vs trained evader"]
    for r in rows:
        assert r["episodes"] == 4 and 0.0 <= r["capture_rate"] + r["escape_rate"] <= 1.0 and 0 < r["length"] <= 40
    assert rows[0]["ne_gap"] == pytest.approx(abs(rows[0]["capture_rate"] - rows[0]["escape_rate"]))
    # the per-system GIF command is rljax render with its defaults: both learners, one episode
    gif = str(tmp_path / "ep.gif")
    assert experiment_main("pursuit", ["episode", out, "--every", "10", "--out", gif]) == 0
    frames = _gif(gif)
    assert all(f.shape == (240, 240, 3) for f in frames) and len(frames) >= 2
