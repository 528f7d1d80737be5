"""Episode-level properties of the harvest environment: counterfactual baselines, arm invariance,
the reward decomposition, community sampling and tagging, and the original's acceptance tests
(R1, R3/R6/T5, R5, M1, T2, D1-D3) on whole episodes."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from rljax.environments.harvest import (
    NUM_COMMUNITIES, NUM_PATCHES, NUM_PLAYERS, OBS_DIM, color_counts, env_step_keys, harvest_params,
    reset_world, sample_community, stack_params, step_all,
)
from rljax.environments.harvest_view import HarvestEnv
from rljax.envs.vec_env import VecEnv

ENV = HarvestEnv()
T = 300


def rollout(key, params, ego_actions):
    """One episode of ``len(ego_actions)`` steps: per-step outputs and the world after each."""
    k0, key = jax.random.split(key)
    obs0, st = ENV.reset(k0, params)

    def body(st, x):
        k, a = x
        joint, _ = ENV.joint_actions(env_step_keys(k)[1], st, a, params)
        obs, st2, r, term, trunc, info = ENV.step(k, st, a, params)
        world = dict(pos=st2.pos, facing=st2.facing, body=st2.body, color=st2.berry_color, ripe=st2.berry_ripe,
                     immune=st2.immune, zap_timer=st2.zap_timer, patrol=st2.patrol_action, last_plant=st2.last_plant_t)
        return st2, dict(obs=obs, r=r, term=term, trunc=trunc, info=info, world=world, joint=joint)

    _, out = jax.lax.scan(body, st, (jax.random.split(key, ego_actions.shape[0]), ego_actions))
    return obs0, out


_rollout = jax.jit(rollout)


def random_actions(seed):
    return jax.random.randint(jax.random.key(seed), (T,), 0, 11)


def assert_trees_equal(a, b):
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


def test_baseline_is_an_exact_counterfactual_of_the_ego_episode():
    key = jax.random.key(11)
    base = harvest_params(ego_is_resident=1, episode_length=T)
    _, b1 = _rollout(key, base, jnp.zeros(T, jnp.int32))
    _, b2 = _rollout(key, base, random_actions(1))  # the ego's action is ignored in the baseline
    assert_trees_equal(b1, b2)
    # An ego that happens to take the resident's actions reproduces the baseline world exactly.
    ego = harvest_params(ego_is_resident=0, episode_length=T)
    _, e = _rollout(key, ego, b1["joint"][:, 0])
    assert_trees_equal(e["world"], b1["world"])
    assert_trees_equal(e["info"], b1["info"])
    np.testing.assert_array_equal(e["r"], b1["r"])
    w = b1["world"]
    assert int(w["body"][-1].max()) > 0 and bool((w["color"][-1] != w["color"][0]).any()), "a non-trivial world"
    assert int(w["ripe"][T // 2].sum()) > 0
    # Another ego changes the world (the same random streams, different consequences).
    _, e2 = _rollout(key, ego, random_actions(2))
    assert not np.array_equal(np.asarray(e2["world"]["pos"]), np.asarray(b1["world"]["pos"]))


def test_treatment_and_control_see_the_same_world_and_differ_only_in_the_permitted_colour():
    """R5 (residents act identically across arms) and T2 (space parity)."""
    key = jax.random.key(12)
    acts = random_actions(3)
    for permitted in range(3):
        pt = harvest_params(permitted=permitted, treatment=1, episode_length=T)
        pc = harvest_params(permitted=permitted, treatment=0, episode_length=T)
        ot0, t = _rollout(key, pt, acts)
        oc0, c = _rollout(key, pc, acts)
        assert_trees_equal(t["joint"], c["joint"])
        assert_trees_equal(t["world"], c["world"])
        np.testing.assert_array_equal(t["r"], c["r"])
        obs_t = np.concatenate([ot0[None], np.asarray(t["obs"])])
        obs_c = np.concatenate([oc0[None], np.asarray(c["obs"])])
        assert obs_t.shape == obs_c.shape == (T + 1, OBS_DIM)
        np.testing.assert_array_equal(obs_t[:, :-3], obs_c[:, :-3])
        np.testing.assert_array_equal(obs_t[:, -3:], np.broadcast_to(np.eye(3)[permitted], (T + 1, 3)))
        np.testing.assert_array_equal(obs_c[:, -3:], 0.0)
    assert ENV.action_space(pt) == ENV.action_space(pc) and ENV.observation_shape(pt) == ENV.observation_shape(pc)


def test_reward_decomposition_m1_and_final_step_metrics():
    params = harvest_params("as_run", ego_is_resident=1, episode_length=T)  # agent 0 sanctions
    _, out = _rollout(jax.random.key(513), params, jnp.zeros(T, jnp.int32))
    info = {k: np.asarray(v, np.float64) for k, v in out["info"].items()}
    r = np.asarray(out["r"], np.float64)
    np.testing.assert_allclose(r, info["ep_r_env"] + info["ep_alpha"] - info["ep_beta"] - info["ep_c"], atol=1e-5)
    np.testing.assert_allclose(info["ep_r_env"], info["ep_berry_reward"] - 10 * info["ep_minus10_received"], atol=1e-6)
    np.testing.assert_allclose(info["ep_alpha"], 5.0 * info["ep_minus10_issued_correct"])
    np.testing.assert_allclose(info["ep_c"], 0.5 * info["ep_zap_presses"])
    assert r.sum() - info["ep_r_eval"].sum() == pytest.approx(info["ep_alpha"].sum(), abs=1e-3), "M1"
    assert info["ep_alpha"].sum() > 0 and info["ep_c"].sum() > 0, "the test must see sanctions"
    # No termination; truncation exactly at T.
    assert not np.asarray(out["term"]).any() and np.asarray(out["trunc"]).tolist() == [False] * (T - 1) + [True]
    # Final-step quantities appear once, on the truncating step, so their episode sum is the final value.
    counts = np.asarray(color_counts(out["world"]["color"][-1]))
    for k, value in [("ep_permitted_share", counts[0] / NUM_PATCHES), ("ep_monoculture", counts.max() / NUM_PATCHES)]:
        assert (info[k][:-1] == 0).all() and info[k][-1] == pytest.approx(value, rel=1e-6)
    assert (np.asarray(out["info"]["tag"]) == 0).all()


# -- residents-only episodes: the original's acceptance tests R1, R3/R6/T5 ---------------------------
def residents_episode(key, params):
    k0, key = jax.random.split(key)
    st = reset_world(k0, params)

    def body(st, k):
        k_world, k_res = env_step_keys(k)
        a, st = ENV.joint_actions(k_res, st, jnp.int32(0), params)  # all 16 residents, as the env step does
        st, _, ev = step_all(k_world, st, a, params)
        return st, {n: ev[n] for n in ("received", "correct", "mis", "planted", "greyed")}

    return jax.lax.scan(body, st, jax.random.split(key, 2000))


def test_residents_only_episodes_r1_r3_r6_t5():
    K = 200
    guards = (2, 1)  # the default (the state-only guard), and the bystander guard alone
    params = stack_params([harvest_params(permitted=c, ego_is_resident=1, resident_guard=g)
                           for g in guards for c in range(NUM_COMMUNITIES)])
    _, ev = jax.jit(jax.vmap(residents_episode))(
        jnp.concatenate([jax.random.split(jax.random.key(14), NUM_COMMUNITIES)] * len(guards)), params)
    both = {k: np.asarray(v).reshape(len(guards), NUM_COMMUNITIES, *v.shape[1:]) for k, v in ev.items()}
    ev = {k: v[0] for k, v in both.items()}  # the default: [3, 2000, 16]
    landed, mis = ev["received"].sum(), ev["mis"].sum()
    assert landed == ev["correct"].sum() + mis and landed > 100, "residents enforce"
    # R1 (selectivity): residents never mis-sanction.
    assert mis == 0, (mis, landed)
    # The test can fail: with the bystander guard alone, avatars that step into the beam or change colour in the
    # frame of the zap are mis-sanctioned (a few per episode).
    assert both["mis"][1].sum() > 0
    # R3/R6: at most one -10 per target per frame.
    assert ev["received"].max() == 1
    # T5: no second -10 within K frames unless planting or turning grey cleared the immunity between.
    cleared = (ev["planted"] > 0) | ev["greyed"]
    pairs = 0
    for e in range(NUM_COMMUNITIES):
        for i in range(NUM_PLAYERS):
            frames = np.nonzero(ev["received"][e, :, i])[0]
            for s1, s2 in zip(frames[:-1], frames[1:]):
                if s2 - s1 <= K:
                    pairs += 1
                    assert cleared[e, s1 + 1: s2 + 1, i].any(), (e, i, s1, s2)
    assert pairs > 0, "the test must see re-sanctions after a colour change"


# -- community sampling and tagging: D1-D3 ---------------------------------------------------------
@pytest.mark.parametrize("probs", [(1 / 3, 1 / 3, 1 / 3), (0.5, 0.3, 0.2), (0.5, 0.5, 0.0)])
def test_community_sampling_frequencies(probs):
    n = 30000
    base = harvest_params(community_probs=probs)
    draws = np.asarray(jax.jit(jax.vmap(sample_community, in_axes=(0, None)))(jax.random.split(jax.random.key(15), n), base).permitted)
    counts = np.bincount(draws, minlength=3)
    expected = n * np.asarray(probs)
    support = expected > 0
    assert (counts[~support] == 0).all(), "a held-out community is never drawn"
    chi2 = (((counts - expected) ** 2)[support] / expected[support]).sum()
    assert chi2 < stats.chi2.ppf(0.999, support.sum() - 1), (counts, expected)


def test_vecenv_draws_a_community_per_instance_and_reset_and_tags_episodes():
    n, length, steps = 16, 4, 24
    venv = VecEnv(ENV, n, param_sampler=sample_community)
    base = harvest_params(episode_length=length)
    obs, vs = jax.jit(venv.reset)(jax.random.key(16), base)
    step = jax.jit(venv.step)
    tags, dones = [], []
    np.testing.assert_array_equal(obs[:, -3:], np.eye(3)[np.asarray(vs.params.permitted)])
    for i in range(steps):
        before = np.asarray(vs.params.permitted)
        obs, vs, r, term, trunc, info = step(jax.random.key(100 + i), vs, jax.random.randint(jax.random.key(i), (n,), 0, 11), base)
        np.testing.assert_array_equal(info["tag"], before)  # D2: every step is tagged with its community
        np.testing.assert_array_equal(obs[:, -3:], np.eye(3)[np.asarray(vs.params.permitted)])  # the new episode's
        tags.append(before)
        dones.append(np.asarray(info["episode_done"]))
        if info["episode_done"].any():
            share = np.asarray(info["episode_permitted_share"])
            assert ((share > 0) & (share <= 1)).all()
    dones = np.array(dones)
    assert (dones == ((np.arange(steps) % length) == length - 1)[:, None]).all()
    tags = np.array(tags)[::length]  # [episodes, instances]
    assert len(set(tags[0].tolist())) == 3, "D1: instances draw independently"
    assert (np.array([len(set(tags[:, j].tolist())) for j in range(n)]) > 1).mean() > 0.8, "redrawn at every reset"
