"""Scripted opponents, the single-agent OpponentView (pool selection, random sentinel, both
roles) inside VecEnv, and the episode renderer."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.environments.pursuit_evasion import EVADER, PURSUER, PursuitEvasion, pursuit_params, stack_params
from rljax.environments.pursuit_opponents import (
    RANDOM_OPPONENT,
    OpponentView,
    chaser_params,
    make_chaser_policy,
    make_opponent_sampler,
    make_random_policy,
    pure_pursuit_action,
    random_action,
    random_policy_params,
    view_params,
)
from rljax.environments.pursuit_render import render_frames, rollout_episode, save_episode
from rljax.envs.vec_env import VecEnv

ENV = PursuitEvasion()
ARENA = pursuit_params(n_obstacles=2, min_init_d=2.0, max_init_d=5.0, max_steps=400)
CHASE = make_chaser_policy(ENV)
POOL = stack_params([chaser_params(speed=0.3), chaser_params(speed=0.9)])  # leaves [P=2]
N = 8


def test_random_action_is_uniform_over_the_roles_box():
    keys = jax.random.split(jax.random.key(0), 4000)
    a = np.asarray(jax.jit(jax.vmap(lambda k: random_action(k, 0.95, 2.0)))(keys))
    assert (a[:, 0] >= 0).all() and (a[:, 0] <= 0.95).all() and (np.abs(a[:, 1]) <= 2.0).all()
    # Uniform: means 0.475 and 0, std 0.95/sqrt(12) and 4/sqrt(12); 5-sigma bounds on the means.
    assert abs(a[:, 0].mean() - 0.475) < 5 * 0.274 / math.sqrt(4000)
    assert abs(a[:, 1].mean()) < 5 * 1.155 / math.sqrt(4000)
    assert abs(a[:, 1].std() - 4 / math.sqrt(12)) < 0.05
    p = random_policy_params(ARENA, "evader")
    b = make_random_policy()(p, jax.random.key(1), jnp.zeros(430))
    assert b.shape == (2,)


def test_pure_pursuit_turns_toward_the_target_with_clipped_gain():
    a = pure_pursuit_action(jnp.asarray([0.0, 0.0, 0.0]), jnp.asarray([1.0, 0.1]), 0.5, 2.84)
    np.testing.assert_allclose(a, [0.5, 3 * math.atan2(0.1, 1.0)], atol=1e-6)
    a = pure_pursuit_action(jnp.asarray([0.0, 0.0, 0.0]), jnp.asarray([-1.0, -0.1]), 0.5, 2.84)
    np.testing.assert_allclose(a, [0.5, -2.84], atol=1e-6)


def test_chaser_policy_reads_the_fov_and_searches_when_blind():
    obs = np.zeros((10, 43), np.float32)
    obs[-1, 5:7] = [4.0, 0.2]
    p = chaser_params(speed=0.7, search_omega=1.5)
    np.testing.assert_allclose(CHASE(p, jax.random.key(0), jnp.asarray(obs.reshape(-1))), [0.7, 0.6], atol=1e-6)
    obs[-1, 5:7] = [-1.0, 0.0]
    np.testing.assert_allclose(CHASE(p, jax.random.key(0), jnp.asarray(obs.reshape(-1))), [0.7, 1.5], atol=1e-6)
    full = PursuitEvasion(observation="full")
    o = np.zeros(full.obs_dim, np.float32)
    o[11] = -0.5  # bearing -pi/2
    np.testing.assert_allclose(make_chaser_policy(full)(p, jax.random.key(0), jnp.asarray(o)), [0.7, -2.84], atol=1e-6)
    with pytest.raises(ValueError, match="speed"):
        chaser_params(speed=-1.0)


# -- the view --------------------------------------------------------------------------------
EVADER_VIEW = OpponentView(ENV, "evader", CHASE, POOL)  # the learner is the evader; chasers pursue
PURSUER_VIEW = OpponentView(ENV, "pursuer", CHASE, POOL)
_view_reset = jax.jit(EVADER_VIEW.reset)
_view_step = jax.jit(EVADER_VIEW.step)
_pview_step = jax.jit(PURSUER_VIEW.step)
_step_both = jax.jit(ENV.step_both)


@jax.jit
def _by_hand(key, st, mine, index):
    """The view's step recomputed: the same key split, the chaser on the pursuer's own
    observation, then the two-agent step."""
    k_env, k_opp = jax.random.split(key)
    k_pol, _ = jax.random.split(k_opp)
    member = jax.tree.map(lambda x: x[index], POOL)
    opp = CHASE(member, k_pol, ENV.observe(st, ARENA)[PURSUER])
    o2, s2, r2, *_ = ENV.step_both(k_env, st, jnp.stack([opp, mine]), ARENA)
    return o2, s2, r2


@pytest.mark.parametrize("index", [0, 1])
def test_view_step_equals_step_both_with_the_selected_pool_members_action(index):
    vp = view_params(ARENA, index, pool_size=2)
    obs, st = _view_reset(jax.random.key(3), vp)
    np.testing.assert_array_equal(obs, st.history[EVADER].reshape(-1))
    key = jax.random.key(4)
    mine = jnp.asarray([0.8, -0.3])
    o1, s1, r1, te1, tr1, info = _view_step(key, st, mine, vp)
    o2, s2, r2 = _by_hand(key, st, mine, index)
    np.testing.assert_array_equal(o1, o2[EVADER])
    np.testing.assert_array_equal(r1, r2[EVADER])
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s2)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(s1.action[PURSUER, 0], [0.3, 0.9][index], atol=1e-6)
    assert info["tag"] == index + 1


def test_view_for_the_pursuer_role_returns_the_pursuers_side():
    vp = view_params(ARENA, 1, pool_size=2)
    _, st = _view_reset(jax.random.key(5), vp)
    o, s1, r, *_ = _pview_step(jax.random.key(6), st, jnp.asarray([1.0, 0.0]), vp)
    np.testing.assert_array_equal(o, ENV.observe(s1, ARENA)[PURSUER])
    np.testing.assert_allclose(s1.action, [[1.0, 0.0], [0.9, s1.action[EVADER, 1]]], atol=1e-6)


def test_index_minus_one_is_the_uniform_random_policy():
    vp = view_params(ARENA, RANDOM_OPPONENT, pool_size=2)
    _, st = _view_reset(jax.random.key(7), vp)
    acts = np.stack([np.asarray(_view_step(k, st, jnp.zeros(2), vp)[1].action[PURSUER])
                     for k in jax.random.split(jax.random.key(8), 64)])
    v, w = acts[:, 0], acts[:, 1]
    assert (v >= 0).all() and (v <= 1.0).all() and (np.abs(w) <= 2.84).all()
    assert v.std() > 0.2 and w.std() > 1.2, "random actions, not the chasers' fixed speeds"
    with pytest.raises(ValueError, match="opponent_index=2"):
        view_params(ARENA, 2, pool_size=2)
    with pytest.raises(ValueError, match="opponent_index=-2"):
        view_params(ARENA, -2)


def test_view_runs_in_vecenv_with_per_instance_opponents_and_counts_captures():
    """A chaser pool against a still evader: every episode ends in a capture, a random pursuer
    rarely captures; ep_* sums give the capture / escape counts per finished episode."""
    idx = [RANDOM_OPPONENT, 0, 1, 1] * (N // 4)
    vp = stack_params([view_params(ARENA, i, pool_size=2) for i in idx])
    venv = VecEnv(EVADER_VIEW, N, batched_params=True)

    @jax.jit
    def run(key):
        obs, vs = venv.reset(key, vp)

        def body(vs, k):
            _, vs, _, _, _, info = venv.step(k, vs, jnp.zeros((N, 2)), vp)
            return vs, (info["episode_done"], info["episode_captured"], info["episode_escaped"], info["tag"])

        return jax.lax.scan(body, vs, jax.random.split(key, 400))[1]

    done, captured, escaped, tag = (np.asarray(x) for x in run(jax.random.key(9)))
    np.testing.assert_array_equal(tag, np.broadcast_to(np.asarray(idx) + 1, tag.shape))
    ended = done.astype(bool)
    assert ((captured + escaped)[ended] == 1).all(), "each finished episode is a capture or an escape"
    chaser_cols = np.asarray(idx) >= 0
    assert ended[:, chaser_cols].sum(0).min() >= 1, "every chaser instance finishes episodes"
    chaser_caps = captured[:, chaser_cols][ended[:, chaser_cols]]
    assert chaser_caps.mean() >= 0.8, chaser_caps
    # Captures per instance over the same 400 steps: the chasers' rate far above the random pursuer's.
    per_chaser = captured[:, chaser_cols].sum() / chaser_cols.sum()
    per_random = captured[:, ~chaser_cols].sum() / (~chaser_cols).sum()
    assert per_chaser >= 2.0 and per_random <= 0.5 * per_chaser, (per_chaser, per_random)


def test_opponent_sampler_redraws_the_index_per_reset_over_the_valid_pool_and_random():
    """The PPO path: shared base params and a param_sampler; each reset draws an index
    uniformly over {-1} + the first pool_count members (here 2 of a pool of capacity 3)."""
    pool3 = stack_params([chaser_params(speed=0.3), chaser_params(speed=0.9), chaser_params(speed=0.1)])
    view = EVADER_VIEW.with_pool(pool3)
    base = view_params(ARENA, RANDOM_OPPONENT, pool_size=3, pool_count=2)
    venv = VecEnv(view, 512, param_sampler=make_opponent_sampler())
    _, vs = jax.jit(venv.reset)(jax.random.key(11), base)
    idx = np.asarray(vs.params.opponent_index)
    counts = np.bincount(idx + 1, minlength=4)
    assert counts[3] == 0, "members beyond pool_count are never drawn"
    assert (np.abs(counts[:3] - 512 / 3) < 4 * np.sqrt(512 * 2 / 9)).all(), counts
    assert vs.params.arena.pursuer_v_max.shape == (512,), "only the small params are per instance"
    no_random = jax.vmap(make_opponent_sampler(include_random=False), in_axes=(0, None))(
        jax.random.split(jax.random.key(12), 256), base)
    assert set(np.unique(no_random.opponent_index).tolist()) == {0, 1}
    with pytest.raises(ValueError, match="pool_count=4"):
        view_params(ARENA, 0, pool_size=3, pool_count=4)


def test_view_without_a_pool_uses_the_random_policy_and_needs_opponent_act_with_one():
    plain = OpponentView(ENV, "pursuer")
    assert plain.pool_size == 0 and plain.info_keys()[-1] == "tag"
    with pytest.raises(ValueError, match="opponent_act"):
        OpponentView(ENV, "evader", pool=POOL)
    with pytest.raises(ValueError, match="role='chaser'"):
        OpponentView(ENV, "chaser")
    assert EVADER_VIEW.with_pool(stack_params([chaser_params()] * 3)).pool_size == 3


# -- rendering -------------------------------------------------------------------------------
def test_rollout_and_render_an_episode_to_png_frames_and_gif(tmp_path):
    from PIL import Image

    states, rewards, alive = rollout_episode(ENV, ARENA, jax.random.key(10), CHASE, chaser_params(speed=1.0),
                                             make_random_policy(), random_policy_params(ARENA, EVADER), num_steps=12)
    assert states.pose.shape == (13, 2, 3) and rewards.shape == (12, 2) and bool(alive[0])
    np.testing.assert_allclose(np.asarray(rewards).sum(-1), 0.0, atol=1e-5)  # zero-sum by default
    frames = render_frames(states, ARENA, lidar=True, every=4, size=2.0, dpi=50)
    assert len(frames) == 4 and frames[0].shape == (100, 100, 3) and frames[0].dtype == np.uint8
    red = (frames[0][..., 0] > 180) & (frames[0][..., 1] < 80) & (frames[0][..., 2] < 80)
    assert red.any(), "the pursuer is drawn in red"
    gif = save_episode(states, ARENA, str(tmp_path / "ep.gif"), every=6, size=2.0, dpi=50)
    assert Image.open(gif[0]).n_frames == 3
    pngs = save_episode(jax.tree.map(lambda x: x[:2], states), ARENA, str(tmp_path / "frames"), size=2.0, dpi=50)
    assert len(pngs) == 2 and Image.open(pngs[1]).size == (100, 100)
