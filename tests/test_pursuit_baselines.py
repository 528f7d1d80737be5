"""The reference's scripted baselines (flee_away, flee_to_corner, pure_pursuit) on fixed
scenes, and the Elo arithmetic they are rated with."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.environments.pursuit_evasion import EVADER, PURSUER, PursuitEvasion, pursuit_params
from rljax.environments.pursuit_opponents import (
    arena_corners,
    baseline_policies,
    flee_away_action,
    flee_to_corner_action,
    pure_pursuit_action,
)
from rljax.experiments.pursuit.game import PursuitGame
from rljax.selfplay.elo import ELO_START, elo_expected, elo_matches, elo_update
from rljax.selfplay.evaluation import baseline_act, head_to_head

OM = 2.84


def pose(x, y, th):
    return jnp.asarray([x, y, th], jnp.float32)


def test_flee_away_turns_away_from_the_pursuer_at_full_speed():
    # pursuer behind: keep going straight
    np.testing.assert_allclose(flee_away_action(pose(0, 0, 0), pose(-2, 0, 0), 1.0, OM), [1.0, 0.0], atol=1e-6)
    # pursuer to the left (north): flee south, a right turn (clipped at omega_max)
    np.testing.assert_allclose(flee_away_action(pose(0, 0, 0), pose(0, 2, 0), 1.0, OM), [1.0, -OM], atol=1e-6)
    # a small angle: 3 x the heading error
    a = flee_away_action(pose(0, 0, 0), pose(-2, -0.2, 0), 0.8, OM)
    np.testing.assert_allclose(a, [0.8, 3.0 * math.atan2(0.2, 2.0)], rtol=1e-5)


def test_flee_to_corner_heads_for_the_nearest_centred_corner():
    np.testing.assert_allclose(arena_corners(), [[-9.5, -9.5], [9.5, -9.5], [-9.5, 9.5], [9.5, 9.5]])
    heading = math.atan2(9.5 - 4.0, 9.5 - 3.0)  # from (3, 4): the corner (9.5, 9.5)
    np.testing.assert_allclose(flee_to_corner_action(pose(3, 4, heading), 1.0, OM), [1.0, 0.0], atol=1e-5)
    a = flee_to_corner_action(pose(-3, -4, 0.0), 1.0, OM)  # nearest (-9.5, -9.5): behind-left -> clipped turn
    assert a[0] == 1.0 and abs(float(a[1])) == pytest.approx(OM)


def test_pure_pursuit_turns_toward_the_evader():
    np.testing.assert_allclose(pure_pursuit_action(pose(0, 0, 0), pose(3, 0, 0), 1.0, OM, 3.0), [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(pure_pursuit_action(pose(0, 0, 0), pose(3, 0.3, 0), 1.0, OM, 3.0),
                               [1.0, 3.0 * math.atan2(0.3, 3.0)], rtol=1e-5)


def _scene(env, params, p, e):
    """The arena reset, then moved to the given poses (no obstacles)."""
    _, state = env.reset(jax.random.key(0), params)
    return state.replace(pose=jnp.stack([p, e]))


def test_baselines_play_episodes_in_the_arena():
    """Equal speeds, the pursuer 3 m behind a fleeing evader: flee_away keeps the gap (no capture
    in 150 steps); a non-moving evader is caught by pure pursuit within 3 m / 1 m/s + turning."""
    env = PursuitEvasion(observation="full", max_obstacles=0)
    params = pursuit_params(max_obstacles=0, max_steps=150)
    acts = {name: act for name, _, act in baseline_policies(env)}
    assert {n: r for n, r, _ in baseline_policies(env)} == {"pure_pursuit": PURSUER, "flee_away": EVADER,
                                                            "flee_to_corner": EVADER}
    state = _scene(env, params, pose(-3, 0, 0), pose(0, 0, 0))
    k = jax.random.key(1)
    for _ in range(150):
        a = jnp.stack([acts["pure_pursuit"](k, state, params), acts["flee_away"](k, state, params)])
        _, state, _, term, _, _ = env.step(k, state, a, params)
        assert not bool(term)
    d = float(jnp.linalg.norm(state.pose[0, :2] - state.pose[1, :2]))
    assert d == pytest.approx(3.0, abs=1e-3)
    # the evader standing still, seen at 90 degrees: captured once the pursuer has turned and closed 2.5 m
    state = _scene(env, params, pose(0, 0, 0), pose(0, 3, 0))
    for t in range(150):
        a = jnp.stack([acts["pure_pursuit"](k, state, params), jnp.zeros(2)])
        _, state, _, term, _, _ = env.step(k, state, a, params)
        if bool(term):
            break
    assert bool(term) and 50 <= t < 70  # 2.5 m at 0.05 m/step, plus the turn


def test_head_to_head_with_a_scripted_baseline_reads_the_true_state():
    env = PursuitEvasion(observation="partial", max_obstacles=0)
    params = pursuit_params(max_obstacles=0, max_steps=300, min_init_d=2.0, max_init_d=5.0)
    game = PursuitGame(env)
    acts = {b.name: b.act for b in game.baselines()}
    keys = jax.random.split(jax.random.key(3), 16)
    still = lambda keys, obs: jnp.zeros((keys.shape[0], 2))  # noqa: E731
    r = head_to_head(game, params, keys, 300, baseline_act(acts["pure_pursuit"]), still)
    assert float(r["captured"].mean()) == 1.0  # a still evader 2-5 m away is always caught in 15 s
    r = head_to_head(game, params, keys, 300, still, baseline_act(acts["flee_away"]))
    assert float(r["captured"].mean()) == 0.0  # a still pursuer never catches


def test_elo_arithmetic():
    assert float(elo_expected(1200, 1200)) == 0.5
    assert float(elo_expected(1600, 1200)) == pytest.approx(1 / (1 + 10 ** -1))
    assert float(elo_update(1200, 1200, 1.0)) == 1216.0 and float(elo_update(1200, 1200, 0.5)) == 1200.0
    assert float(elo_update(1200, 1200, 0.0, k=16)) == 1192.0
    # one update per match, in order; a NaN score is a match not played
    r1 = 1200 + 32 * (1.0 - 0.5)
    r2 = r1 + 32 * (0.25 - 1 / (1 + 10 ** ((ELO_START - r1) / 400)))
    assert float(elo_matches(1200.0, jnp.asarray([1.0, jnp.nan, 0.25]))) == pytest.approx(r2, rel=1e-6)
    assert float(elo_matches(1300.0, jnp.asarray([1.0, 0.0]), do=False)) == 1300.0
