"""Episodes you can watch: every environment's ``render(state, params)`` gives ``uint8[H, W, 3]``
frames of one fixed shape that change as the episode goes on (a few random steps each, no
training), jitted where the environment says its render is jittable."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.environments.cartpole import make_cartpole
from rljax.environments.foraging import Foraging, params_for_mode
from rljax.environments.harvest_view import HarvestEnv
from rljax.environments.multigrid import trivial_task
from rljax.environments.navigation import Navigation
from rljax.environments.pursuit_evasion import PursuitEvasion

STEPS = 6


def _random_action(env, params, key):
    space = env.action_space(params)
    if hasattr(space, "n"):
        return jax.random.randint(key, (), 0, space.n)
    return jax.random.uniform(key, space.shape, minval=space.low, maxval=space.high)


def _frames(env, params, step, state, key):
    render = jax.jit(env.render) if env.render_jittable else env.render
    frames = [np.asarray(render(state, params))]
    for k in jax.random.split(key, STEPS):
        state = step(k, state)
        frames.append(np.asarray(render(state, params)))
    return frames


def single_agent(env, params, action=None):
    def step(k, state):
        k_a, k_s = jax.random.split(k)
        a = _random_action(env, params, k_a) if action is None else action
        return env.step(k_s, state, a, params)[1]

    _, state = jax.jit(env.reset)(jax.random.key(0), params)
    return _frames(env, params, jax.jit(step), state, jax.random.key(1))


def cartpole():
    env = make_cartpole()
    return single_agent(env, env.default_params(), action=jnp.int32(1)), (160, 240), True  # always push right


def foraging():
    env = Foraging(grid_size=20)
    return single_agent(env, params_for_mode("ground_truth", min_food=10, max_food=20)), (4 + 20 * 16, 20 * 16), True  # 16 px per cell (the cap)


def harvest():
    env = HarvestEnv()  # the ego's AgentView: forwards to the world's picture
    return single_agent(env, env.default_params()), (240, 232), True


def navigation():
    env = Navigation()
    return single_agent(env, env.default_params()), (240, 240), False


def pursuit():
    env = PursuitEvasion()
    params = env.default_params()

    def step(k, state):
        actions = jnp.stack([jnp.array([1.0, 0.5]), jnp.array([1.0, -0.5])])[:, : env.action_space(params).shape[0]]
        return env.step(k, state, actions, params)[1]

    _, state = jax.jit(env.reset)(jax.random.key(0), params)
    return _frames(env, params, jax.jit(step), state, jax.random.key(1)), (240, 240), False


def multigrid():
    task = trivial_task()
    env = task.env

    def step(k, state):
        k_a, k_s = jax.random.split(k)
        return env.step(k_s, state, jax.random.randint(k_a, (), 0, env.num_joint_actions), task.params)

    frames = _frames(env, task.params, jax.jit(step), task.initial_state, jax.random.key(3))
    return frames, (24 * env.height, 24 * env.width), True


@pytest.mark.parametrize("make", [cartpole, foraging, harvest, navigation, pursuit, multigrid],
                         ids=lambda f: f.__name__)
def test_frames_have_one_shape_and_change_over_an_episode(make):
    frames, (h, w), jittable = make()
    for f in frames:
        assert f.dtype == np.uint8 and f.shape == (h, w, 3)
    assert len({f.tobytes() for f in frames}) > 1, "the picture never changed"
    assert not np.array_equal(frames[0], frames[-1])
    assert frames[0].min() < 100 and frames[0].max() > 150  # something drawn on a background


def test_jittable_flags_match_the_implementations():
    assert make_cartpole().render_jittable and Foraging(grid_size=20).render_jittable and HarvestEnv().render_jittable
    assert trivial_task().env.render_jittable
    assert not PursuitEvasion().render_jittable and not Navigation().render_jittable
