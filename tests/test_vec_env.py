import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rljax.environments.probes import ProbeParams, TruncationProbe
from rljax.envs.environment import Environment
from rljax.envs.spaces import Discrete
from rljax.envs.vec_env import VecEnv


@struct.dataclass
class CountState:
    t: jax.Array
    start: jax.Array


class Counter(Environment):
    """obs = [start + t]; terminates when t reaches params.horizon; start drawn at reset."""

    def default_params(self):
        return ProbeParams(horizon=jnp.asarray(3, jnp.int32))

    def reset(self, key, params):
        start = jax.random.randint(key, (), 100, 200).astype(jnp.float32)
        return jnp.stack([start]), CountState(jnp.zeros((), jnp.int32), start)

    def step(self, key, state, action, params):
        t = state.t + 1
        return (jnp.stack([state.start + t]), CountState(t, state.start), jnp.asarray(2.0),
                t >= params.horizon, jnp.asarray(False), {"ep_seen": jnp.asarray(1.0), "tag": params.horizon})

    def observation_shape(self, params):
        return (1,)

    def action_space(self, params):
        return Discrete(2)

    def info_keys(self):
        return ("ep_seen", "tag")


def run_steps(venv, params, n, key=0):
    obs, state = venv.reset(jax.random.PRNGKey(key), params)
    step = jax.jit(venv.step)
    out = []
    for i in range(n):
        obs, state, r, term, trunc, info = step(jax.random.PRNGKey(1000 + i), state, jnp.zeros(venv.num_envs, jnp.int32), params)
        out.append((obs, r, term, trunc, info, state))
    return out


def test_auto_reset_keeps_final_observation_and_episode_stats():
    venv = VecEnv(Counter(), 2)
    steps = run_steps(venv, Counter().default_params(), 4)
    obs3, _, term3, trunc3, info3, _ = steps[2]
    assert bool(term3.all()) and not bool(trunc3.any())
    start = np.asarray(steps[0][4]["final_obs"])[:, 0] - 1
    # The episode ended on start+3; the returned obs is a fresh start in [100, 200).
    np.testing.assert_allclose(np.asarray(info3["final_obs"])[:, 0], start + 3)
    assert np.all((np.asarray(obs3)[:, 0] >= 100) & (np.asarray(obs3)[:, 0] < 200))
    assert not np.allclose(np.asarray(obs3)[:, 0], start + 3)
    np.testing.assert_allclose(np.asarray(info3["episode_return"]), [6.0, 6.0])
    np.testing.assert_array_equal(np.asarray(info3["episode_length"]), [3, 3])
    np.testing.assert_allclose(np.asarray(info3["episode_seen"]), [3.0, 3.0])
    # The next step starts a new episode: accumulators were reset.
    _, _, _, _, info4, state4 = steps[3]
    np.testing.assert_allclose(np.asarray(state4.ep_return), [2.0, 2.0])
    assert not bool(info4["episode_done"].any())


def test_truncation_is_not_termination():
    env = TruncationProbe()
    venv = VecEnv(env, 3)
    steps = run_steps(venv, env.default_params(), 5)
    for t, (_, _, term, trunc, info, _) in enumerate(steps):
        assert not bool(term.any())
        assert bool(trunc.all()) == (t == 4)
    assert np.all(np.asarray(steps[4][4]["episode_length"]) == 5)


def test_param_sampler_redraws_task_per_instance_at_reset():
    def sampler(key, base):
        return ProbeParams(horizon=jax.random.randint(key, (), 2, 6))

    venv = VecEnv(Counter(), 64, param_sampler=sampler)
    _, state = venv.reset(jax.random.PRNGKey(0), Counter().default_params())
    horizons = np.asarray(state.params.horizon)
    assert set(horizons.tolist()) == {2, 3, 4, 5}
    # Each instance's episode length equals its own horizon (tag records it).
    steps = run_steps(venv, Counter().default_params(), 6)
    for _, _, _, _, info, _ in steps:
        done = np.asarray(info["episode_done"])
        np.testing.assert_array_equal(np.asarray(info["episode_length"])[done], np.asarray(info["tag"])[done])
