"""The communities experiment end to end: a tiny CLI run of both arms in one program (per-community
CSV columns, curriculum probabilities changing inside the compiled update, learning), the
distributional eval command, community sampling modes (statistical), M7, the FiLM policy's
shapes and initialisation, and config errors."""
from __future__ import annotations

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pyarrow.csv as pcsv
import pytest
from scipy import stats

from rljax.environments.harvest import NUM_COMMUNITIES, OBS_DIM, harvest_params
from rljax.environments.harvest_view import HarvestEnv
from rljax.experiments.communities.experiment import (
    EXPERIMENT, CommunitySampler, CommunityTask, SamplingConfig, baseline_metrics, community_params, draw_task,
    episode_metrics, play_episode,
)
from rljax.cli import experiment_main
from rljax.networks.film import FiLMPolicy, conv2d
from tests.bits import same

ENV = HarvestEnv()
# Both arms, short episodes, a small batch; curriculum from RED to uniform after one update.
# Long enough (16 updates of 512 steps per arm) for the zap rate to fall from its initial 1/2.
TINY = [
    "env.episode_length=64", "ppo.num_envs=16", "ppo.num_steps=32", "ppo.num_epochs=2", "ppo.num_minibatches=2",
    "ppo.total_timesteps=8192", "ppo.lr=1e-3", "sampling.mode=curriculum", "sampling.curriculum_updates=1",
    "runner.chunk_updates=8", "runner.eval_episodes=3", "runner.progress=false", "runner.tensorboard=true",
    "runner.checkpoint_every=8",
    # A zap press costs 1 here (0.2 by default), so the learning test's signal does not hinge on how
    # often a zap happens to land a correct sanction (+alpha) in this tiny world.
    "env.c=1.0",
]


def _set(items):
    return [x for kv in items for x in ("--set", kv)]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("communities") / "run")
    assert experiment_main("communities", ["--out", out, *_set(TINY)]) == 0
    return out


def _csv(path):
    return pcsv.read_csv(path).to_pydict()


def test_run_trains_both_arms_and_logs_per_community(tiny_run):
    summary = json.load(open(os.path.join(tiny_run, "summary.json")))
    assert [m["variant"] for m in summary["members"]] == ["treatment", "control"]
    assert summary["env_steps_per_member"] == 8192
    files = set(os.listdir(tiny_run))
    assert {"metrics_treatment_seed0.csv", "episodes_control_seed0.csv", "eval.csv", "tb", "checkpoints"} <= files
    assert sorted(os.listdir(os.path.join(tiny_run, "tb"))) == ["control_seed0", "treatment_seed0"]
    m = _csv(os.path.join(tiny_run, "metrics.csv"))
    for c in ("red", "green", "blue"):
        for k in ("episode_r_eval", "episode_return", "episode_minus10_received", "compliance_pct", "zaps_per_1k",
                  "episodes", "community_prob", "correct_sanction_rate", "immunity_rate", "selectivity",
                  "collective_cost_per_sanction"):
            assert f"{k}_{c}" in m, f"{k}_{c}"
        # after the first update the sampling is uniform: every community has finished episodes
        assert np.nansum(m[f"episodes_{c}"]) > 10
    assert not any(k.endswith(("_tag0", "_tag1", "_tag2")) for k in m)
    # the curriculum: RED alone during update 1, uniform from update 2 (post_update in the compiled update)
    upd = np.asarray(m["update"])
    for c, first in (("red", 1.0), ("green", 0.0), ("blue", 0.0)):
        p = np.asarray(m[f"community_prob_{c}"])
        np.testing.assert_allclose(p[upd == 1], first, atol=1e-6)
        np.testing.assert_allclose(p[upd > 1], 1 / 3, atol=1e-6)
    # every training episode is tagged with its community; episodes of update 1 are all RED
    ep = _csv(os.path.join(tiny_run, "episodes.csv"))
    tags, eu = np.asarray(ep["tag"]), np.asarray(ep["update"])
    assert set(tags.tolist()) == {"RED", "GREEN", "BLUE"} and (tags[eu == 1] == "RED").all(), "tags are names"
    assert set(np.asarray(_csv(os.path.join(tiny_run, "episodes_control_seed0.csv"))["tag"]).tolist()) == {"RED", "GREEN", "BLUE"}
    # the runner's evaluation pairs every episode with its baseline; its return (ranking the best
    # checkpoints) is R_eval, and every metric is also logged per community
    ev = _csv(os.path.join(tiny_run, "eval.csv"))
    assert {"eval_value_gap", "eval_r_eval", "eval_r_train", "eval_compliance_pct", "eval_sanction_regret"} <= set(ev)
    np.testing.assert_allclose(np.asarray(ev["eval_value_gap"]), np.asarray(ev["eval_baseline_r_eval"]) - np.asarray(ev["eval_r_eval"]),
                               rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(ev["eval_return"], ev["eval_r_eval"])
    # 3 evaluation episodes: one per community, so each community's value is that episode's ...
    for c in ("red", "green", "blue"):
        for k in ("value_gap", "r_eval", "compliance_pct", "correct_sanction_rate", "selectivity", "immunity_rate",
                  "collective_cost_per_sanction"):
            assert f"eval_{k}_{c}" in ev, (k, c)
    # ... and the overall mean is the mean over communities
    np.testing.assert_allclose(np.mean([ev[f"eval_value_gap_{c}"] for c in ("red", "green", "blue")], axis=0),
                               ev["eval_value_gap"], rtol=1e-5, atol=1e-4)
    from tensorboardX.event_file_writer import EventFileWriter  # noqa: F401  (tensorboard is installed)
    tb = os.path.join(tiny_run, "tb", "treatment_seed0")
    assert any(b"eval_value_gap_blue" in open(os.path.join(tb, f), "rb").read() for f in os.listdir(tb))


def test_tiny_run_learns_to_stop_pressing_zap(tiny_run):
    """At initialisation p(zap) = sigmoid(~0) = 1/2; every press costs c = 1 and a mis-sanction
    beta, against alpha = 0.5 for a correct one, so PPO must drive the zap rate down. A learner that
    does not learn stays near 1/2 (about 0.08 of it after 8192 steps here)."""
    m = _csv(os.path.join(tiny_run, "metrics.csv"))
    upd, names = np.asarray(m["update"]), np.asarray(m["name"])
    frac = np.asarray(m["action_frac7"])
    for arm in ("treatment_seed0", "control_seed0"):
        first = frac[(names == arm) & (upd == 1)][0]
        last = frac[(names == arm) & (upd >= upd.max() - 1)].mean()
        assert 0.4 < first < 0.6, first
        assert last < 0.3 * first, (arm, first, last)


def test_eval_command_end_to_end(tiny_run, tmp_path, capsys):
    """A saved step other than the latest (--checkpoint 8 of 16), with the intervention (the
    treatment member sees the next community's token)."""
    out = str(tmp_path / "eval")
    code = experiment_main("communities", ["eval", tiny_run, "--episodes", "2", "--episode-length", "40", "--out", out,
                                           "--checkpoint", "8", "--swap-token", "shift"])
    assert code == 0
    printed = capsys.readouterr().out
    for s in ("baseline", "treatment_seed0", "control_seed0", "RED", "GREEN", "BLUE", "avg dV", "verdict", "@ update 8",
              "intervention --swap-token shift", "ok%", "select"):
        assert s in printed, s
    report = json.load(open(os.path.join(out, "eval.json")))
    assert os.path.getsize(os.path.join(out, "eval.png")) > 10_000
    assert report["episode_length"] == 40 and report["episodes_per_community"] == 2
    assert report["updates"] == [8] and report["checkpoint"] == 8 and report["swap_token"] == "shift"
    assert [m["arm"] for m in report["members"]] == ["treatment", "control"]
    eps = report["episodes"]
    assert eps["community"] == ["RED", "RED", "GREEN", "GREEN", "BLUE", "BLUE"], "communities as names"
    assert eps["token"] == ["GREEN", "GREEN", "BLUE", "BLUE", "RED", "RED"]
    for m in report["members"]:
        for c in ("RED", "GREEN", "BLUE"):
            assert {"correct_sanction_rate", "immunity_rate", "selectivity", "collective_cost_per_sanction",
                    "plants_token"} <= set(m["per_community"][c])
    # a step that was not kept: one line naming the kept ones
    assert experiment_main("communities", ["eval", tiny_run, "--checkpoint", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no checkpoint at step 3" in err and "8" in err and "16" in err and len(err.splitlines()) == 1, err
    for m in report["members"]:
        s, pc = m["summary"], m["per_community"]
        gaps = {c: pc[c]["value_gap"]["mean"] for c in ("RED", "GREEN", "BLUE")}
        assert s["avg_value_gap"] == pytest.approx(np.mean(list(gaps.values())))
        assert s["worst_value_gap"] == max(gaps.values()) and gaps[s["worst_community"]] == s["worst_value_gap"]
        assert s["best_value_gap"] == min(gaps.values())
        # dV per episode = R_eval(baseline on the same key) - R_eval(ego)
        np.testing.assert_allclose(eps[m["name"]]["value_gap"], np.asarray(eps["baseline_r_eval"]) - np.asarray(eps[m["name"]]["r_eval"]),
                                   atol=1e-4)
        bal = m["training_balance"]
        assert sum(bal["episodes"].values()) > 0 and bal["balance_ratio"] >= 1.0
    crit = report["criteria"]
    assert set(crit["arms"]) == {"treatment", "control"} and crit["treatment_beats_control"] in (True, False)
    assert crit["verdict"] in ("strong", "acceptable", "failure", "below acceptable")


def test_curves_command(tiny_run, tmp_path, capsys):
    png = str(tmp_path / "curves.png")
    assert experiment_main("communities", ["curves", tiny_run, "--out", png]) == 0
    printed = capsys.readouterr().out
    assert "treatment" in printed and "control" in printed and "episode_r_eval" in printed
    assert os.path.getsize(png) > 10_000


# -- community sampling --------------------------------------------------------------------------
def _task(probs) -> CommunityTask:
    return CommunityTask(harvest=harvest_params(community_probs=tuple(float(p) for p in probs)),
                         score=jnp.full((3,), jnp.nan))


_draw = jax.jit(jax.vmap(lambda k, t: draw_task(k, t).permitted, in_axes=(0, None)))


def _assert_draws_follow(probs, n=20000, seed=0):
    draws = np.asarray(_draw(jax.random.split(jax.random.key(seed), n), _task(probs)))
    counts = np.bincount(draws, minlength=3)
    expected = n * np.asarray(probs, np.float64)
    support = expected > 0
    assert (counts[~support] == 0).all(), (counts, probs)
    if support.sum() > 1:
        chi2 = (((counts - expected) ** 2)[support] / expected[support]).sum()
        assert chi2 < stats.chi2.ppf(0.999, support.sum() - 1), (counts, expected)


def _sampler(**kw) -> CommunitySampler:
    return CommunitySampler.from_config(SamplingConfig(**kw), num_updates=100)


@pytest.mark.parametrize("kw, expected", [
    ({}, (1 / 3, 1 / 3, 1 / 3)),
    ({"mode": "single", "community": "GREEN"}, (0, 1, 0)),
    ({"held_out": "BLUE"}, (0.5, 0.5, 0)),
    ({"mode": "curriculum", "community": "BLUE"}, (0, 0, 1)),
])
def test_initial_distribution_and_draws(kw, expected):
    probs = _sampler(**kw).initial_probs()
    np.testing.assert_allclose(probs, expected, atol=1e-7)
    _assert_draws_follow(probs)


def test_curriculum_anneals_from_one_community_to_uniform_without_the_held_out_one():
    s = _sampler(mode="curriculum", community="GREEN", held_out="RED", curriculum_updates=10)
    at = lambda u: np.asarray(s.curriculum_probs(jnp.asarray(u)))
    np.testing.assert_allclose(at(0), [0, 1, 0], atol=1e-7)
    np.testing.assert_allclose(at(5), [0, 0.75, 0.25], atol=1e-6)
    np.testing.assert_allclose(at(10), [0, 0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(at(50), [0, 0.5, 0.5], atol=1e-6)
    _assert_draws_follow(at(5), seed=1)
    # 0 = half the run
    assert _sampler(mode="curriculum").curriculum_updates == 50


def _metrics(r_eval, episodes=(4, 4, 4)):
    m = {}
    for i in range(3):
        m[f"episode_r_eval_tag{i}"] = jnp.asarray(r_eval[i], jnp.float32)
        m[f"episode_violating_steps_tag{i}"] = jnp.asarray(0.0)
        m[f"episode_length_tag{i}"] = jnp.asarray(100.0)
        m[f"episode_minus10_received_tag{i}"] = jnp.asarray(0.0)
        m[f"episodes_tag{i}"] = jnp.asarray(float(episodes[i]))
    return m


class _TS:
    """The part of a TrainState that post_update reads and writes."""

    def __init__(self, env_params, update_step=1):
        self.env_params, self.update_step = env_params, jnp.asarray(update_step)

    def replace(self, **kw):
        return _TS(kw.get("env_params", self.env_params), kw.get("update_step", self.update_step))


def test_adaptive_oversamples_the_worst_community():
    s = _sampler(mode="adaptive", adaptive_weight=0.6, adaptive_rate=0.5)
    ts = _TS(_task(s.initial_probs()))
    # GREEN has not finished an episode yet: stay uniform, but remember the others
    ts = s.post_update(ts, _metrics([-10.0, np.nan, -30.0], episodes=(4, 0, 4)))
    np.testing.assert_allclose(ts.env_params.harvest.community_probs, [1 / 3] * 3, atol=1e-6)
    np.testing.assert_allclose(ts.env_params.score, [10.0, np.nan, 30.0])
    # now every community is scored: BLUE (lowest R_eval) is oversampled
    ts = s.post_update(ts, _metrics([-10.0, -20.0, -30.0]))
    probs = np.asarray(ts.env_params.harvest.community_probs)
    np.testing.assert_allclose(probs, [0.4 / 3, 0.4 / 3, 0.4 / 3 + 0.6], atol=1e-6)
    _assert_draws_follow(probs, seed=2)
    # the EMA moves toward new values: RED becomes the worst after two bad updates
    ts = s.post_update(ts, _metrics([-80.0, np.nan, -30.0], episodes=(4, 0, 4)))
    np.testing.assert_allclose(ts.env_params.score, [45.0, 20.0, 30.0])
    assert int(np.argmax(ts.env_params.harvest.community_probs)) == 0
    # a held-out community is never oversampled (nor drawn), however bad
    h = _sampler(mode="adaptive", held_out="RED", adaptive_weight=0.5)
    ts = h.post_update(_TS(_task(h.initial_probs())), _metrics([-99.0, -1.0, -2.0]))
    np.testing.assert_allclose(ts.env_params.harvest.community_probs, [0, 0.25, 0.75], atol=1e-6)
    # other metrics: compliance (violation rate) and sanctions received
    c = _sampler(mode="adaptive", adaptive_metric="sanctions")
    m = _metrics([0.0, 0.0, 0.0])
    m["episode_minus10_received_tag1"] = jnp.asarray(5.0)
    assert int(np.argmax(c.post_update(_TS(_task(c.initial_probs())), m).env_params.harvest.community_probs)) == 1


# -- M7 and the episode metrics ------------------------------------------------------------------
_T = 200
_play_base = jax.jit(jax.vmap(lambda k, p: play_episode(ENV, None, k, p, _T)))


def test_m7_baseline_vs_baseline_value_gap_is_zero():
    comm = jnp.arange(48) % NUM_COMMUNITIES
    params = community_params(harvest_params(), comm, _T, baseline=True)
    keys = jax.random.split(jax.random.key(3), 48)
    a, b = _play_base(keys, params), _play_base(keys, params)
    # the same keys: an exact counterfactual, so the gap is exactly 0 ...
    m = episode_metrics(a, b, float(_T))
    assert float(jnp.abs(m["value_gap"]).max()) == 0.0 and float(jnp.abs(m["sanction_regret"]).max()) == 0.0
    assert same(baseline_metrics(a, float(_T))["value_gap"], jnp.zeros(48))
    # ... and on independent keys it is 0 in expectation (within 3 standard errors)
    c = _play_base(jax.random.split(jax.random.key(4), 48), params)
    gap = np.asarray(episode_metrics(c, a, float(_T))["value_gap"])
    assert gap.std() > 0, "the test must see varied episodes"
    assert abs(gap.mean()) < 3 * gap.std(ddof=1) / np.sqrt(gap.size), gap


# -- the FiLM policy ----------------------------------------------------------------------------
NET = FiLMPolicy()
OBS = (jax.random.uniform(jax.random.key(5), (6, OBS_DIM)) < 0.15).astype(jnp.float32)
PARAMS = NET.init(jax.random.key(6), OBS[:1])


def _with_context(obs, ctx):
    return obs.at[:, -3:].set(ctx)


def test_film_policy_shapes_and_two_entropy_terms():
    dist, value = NET.apply(PARAMS, OBS)
    g = dist.heads[0]
    assert g.logits.shape == (6, 10) and g.gate_logit.shape == (6,) and g.gate_action == 7 and value.shape == (6,)
    assert dist.entropy().shape == (6, 2)
    assert np.asarray(dist.heads[0].full_log_probs()).shape == (6, 11)
    p = PARAMS["params"]
    assert p["conv0"]["kernel"].shape[-1] == 32 and p["conv1"]["kernel"].shape[-1] == 64 and p["conv2"]["kernel"].shape[-1] == 64
    assert p["visual"]["kernel"].shape[1] == 256 and p["hidden"]["kernel"].shape == (258, 256)
    assert p["game_hidden"]["kernel"].shape == (256, 128) and p["game_logits"]["kernel"].shape == (128, 10)
    assert p["sanction_linear"]["kernel"].shape == (256, 1) and p["sanction_hidden"]["kernel"].shape == (256, 128)
    assert p["value_hidden0"]["kernel"].shape == (256, 128) and p["value_hidden1"]["kernel"].shape == (128, 64)
    # a single unbatched observation works too (evaluation episodes are vmapped)
    d1, v1 = NET.apply(PARAMS, OBS[0])
    assert d1.heads[0].logits.shape == (10,) and v1.shape == ()
    full = FiLMPolicy(trunk="full")
    assert full.init(jax.random.key(0), OBS[:1])["params"]["visual"]["kernel"].shape == (3136, 256)


def test_film_initialisation_u_zero_identity_films_and_arm_parity():
    p = PARAMS["params"]
    assert not np.asarray(p["u"]).any()
    for film in ("film", "film_sanction"):
        assert not np.asarray(p[film]["gamma"]["kernel"]).any() and (np.asarray(p[film]["gamma"]["bias"]) == 1).all()
        assert not np.asarray(p[film]["beta"]["kernel"]).any() and not np.asarray(p[film]["beta"]["bias"]).any()
    # u = 0: the sanction logit is the linear term alone
    (dist, _), inter = NET.apply(PARAMS, OBS, capture_intermediates=True)
    linear = inter["intermediates"]["sanction_linear"]["__call__"][0][..., 0]
    assert same(dist.heads[0].gate_logit, linear)
    nonzero_u = jax.tree.map(lambda x: x, PARAMS)
    nonzero_u["params"]["u"] = jnp.ones(128)
    assert not np.allclose(NET.apply(nonzero_u, OBS)[0].heads[0].gate_logit, linear)
    # treatment (one-hot context) and control (zeros) give identical outputs at initialisation
    treat, ctrl = _with_context(OBS, jnp.asarray([0.0, 1.0, 0.0])), _with_context(OBS, 0.0)
    (dt, vt), (dc, vc) = NET.apply(PARAMS, treat), NET.apply(PARAMS, ctrl)
    assert same((dt.heads[0].logits, dt.heads[0].gate_logit, vt), (dc.heads[0].logits, dc.heads[0].gate_logit, vc))
    # ... and the context is wired in: once the FiLM weights move, the arms differ
    moved = jax.tree.map(lambda x: x, PARAMS)
    moved["params"]["film"]["beta"]["kernel"] = jnp.ones_like(p["film"]["beta"]["kernel"])
    assert not np.allclose(NET.apply(moved, treat)[1], NET.apply(moved, ctrl)[1])


@pytest.mark.parametrize("stride, padding", [(1, "VALID"), (2, "VALID"), (1, "SAME")])
def test_patch_convolution_matches_xla(stride, padding):
    x = jax.random.normal(jax.random.key(7), (37, 9, 9, 5))  # 37: a ragged last chunk
    k = jax.random.normal(jax.random.key(8), (3, 3, 5, 4))
    f = lambda impl: lambda x, k: (conv2d(x, k, stride, padding, impl, chunk=8) ** 2).sum()
    np.testing.assert_allclose(conv2d(x, k, stride, padding, "patches", 8), conv2d(x, k, stride, padding, "lax"),
                               rtol=1e-5, atol=1e-4)
    for a, b in zip(jax.grad(f("patches"), (0, 1))(x, k), jax.grad(f("lax"), (0, 1))(x, k)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-2)


def test_ppo_sees_two_entropy_terms_with_the_headwise_coefficients():
    cfg = EXPERIMENT.make_config()
    setup = EXPERIMENT.build(cfg)
    h = setup.algorithm.hparams(setup.variants[0][1])
    np.testing.assert_allclose(h.ent_coef, [0.01, 0.02])
    assert cfg.ppo.normalize_reward and cfg.ppo.gamma == 0.995 and cfg.ppo.reward_clip == 10.0
    assert [v for v, _ in setup.variants] == ["treatment", "control"]
    assert [int(t.harvest.treatment) for _, t in setup.variants] == [1, 0]


# -- sanction metrics on a scripted episode ---------------------------------------------------------
def test_sanction_metrics_against_hand_computed_values_on_a_scripted_episode():
    """The ego (east) faces a BLUE violator 2 ahead on its centre ray and a compliant RED avatar on
    its left ray (community RED, t >= grace); the residents cannot move, plant or ripen anything.
    Ego actions by step: NOOP, ZAP (lands on both: 1 correct, 1 mis), ZAP (cooling), 3 x NOOP,
    2 x NOOP (ready again, both immune), ZAP (2 fizzles)."""
    from tests.test_harvest import make_state, rel
    from rljax.environments.harvest import BLUE, FIRE_ZAP, NEVER, NOOP, NUM_PATCHES, NUM_PLAYERS, RED
    from rljax.experiments.communities.episodes import pooled_rates, sanction_rates

    z = (12, 14)
    st = make_state({0: (*z, 1), 1: (*rel(z, 1, 0, 2), 1, BLUE), 2: (*rel(z, 1, -1, 1), 3, RED)}, t=30,
                    patrol_action=np.full(NUM_PLAYERS, 5, np.int32), patrol_left=np.full(NUM_PLAYERS, 100, np.int32),
                    last_plant_t=np.full(NUM_PLAYERS, -NEVER, np.int32), berry_ripe=np.zeros(NUM_PATCHES, bool))
    params = harvest_params(permitted="RED")
    step = jax.jit(ENV.step)
    sums = {}
    for i, a in enumerate([NOOP, FIRE_ZAP, FIRE_ZAP, NOOP, NOOP, NOOP, NOOP, NOOP, FIRE_ZAP]):
        _, st, _, _, _, info = step(jax.random.key(i), st, jnp.int32(a), params)
        sums = {k: sums.get(k, 0.0) + float(v) for k, v in info.items() if k.startswith("ep_")}
    assert (sums["ep_minus10_issued_correct"], sums["ep_minus10_issued_mis"], sums["ep_immune_fizzles"]) == (1, 1, 2)
    assert (sums["ep_ready_violator_steps"], sums["ep_ready_violator_zaps"]) == (2, 1)  # steps 0 and 1
    assert (sums["ep_ready_clear_steps"], sums["ep_ready_clear_zaps"]) == (3, 1)  # steps 6-8: both immune
    r = {k: float(v) for k, v in sanction_rates({k: jnp.asarray(v) for k, v in sums.items()}).items()}
    assert r["correct_sanction_rate"] == pytest.approx(1 / 2)
    assert r["immunity_rate"] == pytest.approx(2 / 4)
    assert r["selectivity"] == pytest.approx(1 / 2 - 1 / 3)
    assert r["collective_cost_per_sanction"] == pytest.approx((10 * 2 + 0.2 * 3 + 0.5 * 1) / 2)
    # pooled over episodes = the rates of the summed counts; undefined rates are NaN
    m = episode_metrics({k: jnp.asarray([v, v, 0.0]) for k, v in {**sums, "return": 0.0}.items()},
                        {k: jnp.zeros(3) for k in list(sums) + ["return"]}, 9.0)
    pooled = pooled_rates(m, np.asarray([True, True, False]))
    assert float(pooled["selectivity"]) == pytest.approx(1 / 2 - 1 / 3)
    assert np.isnan(np.asarray(m["correct_sanction_rate"])[2]) and np.isnan(float(pooled_rates(m, np.asarray([0, 0, 1]))["immunity_rate"]))


# -- presets: the reference's runs ------------------------------------------------------------------
SEED_TABLE = {  # the reference's phase 5 (SB3) and phase 4
    "phase5": dict(total=10_000_000, envs=32, steps=256, batch=4096, epochs=10),
    "phase4": dict(total=5_000_000, envs=16, steps=256, batch=2048, epochs=10),
}


@pytest.mark.parametrize("preset, table, arms", [
    ("phase5", "phase5", ["treatment", "control"]), ("treatment_multi", "phase5", ["treatment"]),
    ("control_multi", "phase5", ["control"]), ("phase4", "phase4", ["treatment", "control"]),
])
def test_presets_are_the_reference_runs(preset, table, arms):
    cfg = EXPERIMENT.make_config(preset)
    ref, ppo = SEED_TABLE[table], cfg.ppo
    assert (ppo.num_envs, ppo.num_steps, ppo.num_epochs, ppo.batch_size // ppo.num_minibatches) == (
        ref["envs"], ref["steps"], ref["epochs"], ref["batch"])
    # SB3 stops at the first rollout that reaches total_timesteps
    assert ref["total"] <= ppo.num_updates * ppo.batch_size < ref["total"] + ppo.batch_size
    assert (ppo.lr, ppo.anneal_lr, ppo.gamma, ppo.gae_lambda, ppo.clip_eps, tuple(ppo.ent_coef)) == (
        3e-4, False, 0.995, 0.95, 0.2, (0.01, 0.02))
    assert (ppo.vf_coef, ppo.max_grad_norm, ppo.normalize_reward, ppo.normalize_obs) == (0.5, 0.5, True, False)
    assert cfg.env.episode_length == 2000 and list(cfg.env.arms) == arms
    assert (cfg.env.alpha, cfg.env.beta, cfg.env.c, cfg.env.immunity_cooldown, cfg.env.startup_grey_grace) == (0.5, 0.5, 0.2, 200, 25)
    assert cfg.sampling.mode == ("single" if table == "phase4" else "uniform")


def test_smoke_and_cpu_study_presets_differ_from_phase5_only_in_steps_and_seeds():
    five = EXPERIMENT.make_config("phase5")
    smoke, study = EXPERIMENT.make_config("smoke"), EXPERIMENT.make_config("cpu_study")
    assert 200_000 <= smoke.ppo.total_timesteps < 200_000 + smoke.ppo.batch_size
    assert study.runner.num_seeds >= 3 and list(study.env.arms) == ["treatment", "control"]
    for cfg in (smoke, study):
        assert dataclasses.replace(cfg.ppo, total_timesteps=five.ppo.total_timesteps) == five.ppo
        assert cfg.env == five.env and cfg.sampling == five.sampling and cfg.network == five.network


# -- any policy, and the token intervention -----------------------------------------------------------
def test_swap_token_changes_the_token_and_nothing_else():
    from rljax.experiments.communities.episodes import swap_token

    # an observation (one-hot view, ready flag) seen in community GREEN
    obs = jnp.asarray(OBS[0]).at[-4].set(0.75).at[-3:].set(jnp.asarray([0.0, 1.0, 0.0]))
    for c in range(3):
        swapped = np.asarray(swap_token(obs, c))
        np.testing.assert_array_equal(swapped[:-3], np.asarray(obs)[:-3])
        np.testing.assert_array_equal(swapped[-3:], np.eye(3)[c])
    np.testing.assert_array_equal(np.asarray(obs)[-3:], np.eye(3)[1])


def test_evaluate_policy_runs_any_policy_and_the_intervention():
    """A hand-written rule that plants the colour of the token it sees: with the token shifted, it
    plants the next community's colour, never the permitted one."""
    from rljax.environments.harvest import FIRE_ONE
    from rljax.experiments.communities.evaluation import evaluate_policy

    plant_token = lambda obs, key: FIRE_ONE + jnp.argmax(obs[-3:])
    r = evaluate_policy(plant_token, episodes=1, episode_length=30, swap_token="shift")
    assert r["episodes"]["community"] == ["RED", "GREEN", "BLUE"] and r["swap_token"] == "shift"
    for c, token in (("RED", "green"), ("GREEN", "blue"), ("BLUE", "red")):
        pc = r["per_community"][c]
        assert pc[f"plants_{token}"]["mean"] > 0 and pc["plants_token"]["mean"] == pc[f"plants_{token}"]["mean"]
        assert pc["plants_permitted"]["mean"] == 0, c
    assert set(r["summary"]) >= {"avg_value_gap", "worst_value_gap", "worst_community"}
    assert r["baseline"]["per_community"]["RED"]["value_gap"]["mean"] == 0.0


# -- config errors ------------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--set", "env.alpha=-1"], "env.alpha"),
    (["--set", "env.episode_length=0"], "env.episode_length"),
    (["--set", "env.arms=[treatment,placebo]"], "env.arms"),
    (["--set", "env.bogus=1"], "env.bogus"),
    (["--set", "sampling.mode=weekly"], "sampling.mode"),
    (["--set", "sampling.community=PURPLE"], "sampling.community"),
    (["--set", "sampling.held_out=PURPLE"], "sampling.held_out"),
    (["--set", "sampling.mode=single", "--set", "sampling.held_out=RED"], "sampling.held_out"),
    (["--set", "sampling.adaptive_metric=luck"], "sampling.adaptive_metric"),
    (["--set", "sampling.adaptive_weight=2"], "sampling.adaptive_weight"),
    (["--set", "sampling.curriculum_updates=-1"], "sampling.curriculum_updates"),
    (["--set", "network.trunk=resnet"], "network.trunk"),
    (["--set", "network.conv_impl=fft"], "network.conv_impl"),
    (["--set", "ppo.ent_coef=[0.1,0.2,0.3]"], "ppo.ent_coef"),
    (["eval", "/nonexistent/run"], "not found"),
    (["eval", "/tmp", "--episodes", "0"], "--episodes"),
])
def test_bad_input_is_one_line_naming_the_key(args, message, capsys):
    assert experiment_main("communities", args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


# -- distributional summary and success criteria (pure arithmetic) -------------------------------
def test_distributional_summary_balance_and_verdicts(tmp_path):
    from rljax.experiments.communities.evaluation import arm_verdict, criteria, distributional_summary, per_community, training_balance

    comm = np.repeat(np.arange(3), 2)
    em = {"value_gap": np.asarray([1.0, 3.0, -1.0, 0.0, 4.0, 6.0]), "compliance_pct": np.asarray([90, 80, 100, 100, 50, 70.0]),
          "sanction_regret": np.asarray([1.0, 1, 0, 0, 2, 2])}
    s = distributional_summary(per_community(em, comm))
    assert s["avg_value_gap"] == pytest.approx((2.0 - 0.5 + 5.0) / 3)
    assert (s["worst_value_gap"], s["worst_community"]) == (5.0, "BLUE")
    assert (s["best_value_gap"], s["best_community"]) == (-0.5, "GREEN")
    assert s["worst_compliance_pct"] == 60.0 and s["worst_compliance_community"] == "BLUE"
    assert s["avg_compliance_pct"] == pytest.approx((85 + 100 + 60) / 3)
    # over the trained communities only (BLUE held out)
    assert distributional_summary(per_community(em, comm), ("RED", "GREEN"))["worst_community"] == "RED"
    # balance: episodes per community summed over the run's updates, for one member
    (tmp_path / "metrics.csv").write_text("name,update,episodes_red,episodes_green,episodes_blue\n"
                                          "a,1,10,20,30\na,2,10,,30\nb,1,99,99,99\n")
    b = training_balance(str(tmp_path), "a", ("RED", "GREEN", "BLUE"))
    assert b["episodes"] == {"RED": 20.0, "GREEN": 20.0, "BLUE": 60.0}
    assert b["min_ratio"] == pytest.approx(20 / (100 / 3)) and b["max_ratio"] == pytest.approx(60 / (100 / 3))
    assert b["balance_ratio"] == pytest.approx(3.0)
    assert training_balance(str(tmp_path), "a", ("RED", "GREEN"))["balance_ratio"] == pytest.approx(1.0)
    # the spec's levels
    assert arm_verdict(0.5, 1.2)[0] == "strong" and arm_verdict(1.5, 2.5)[0] == "acceptable"
    assert arm_verdict(3.5, 3.6)[0] == "failure" and arm_verdict(0.5, 4.0)[0] == "failure"
    assert arm_verdict(2.5, 2.9)[0] == "below acceptable"
    # an ego far above the resident baseline (the cpu_study's free-riders) does not pass vacuously
    assert arm_verdict(-400.9, -255.5)[0] == "out-earns the baseline" and arm_verdict(-2.0, -1.0)[0] == "strong"
    # treatment must beat control (paired over seeds) for a success
    def member(arm, seed, avg, worst):
        return {"arm": arm, "seed": seed, "name": f"{arm}_seed{seed}", "summary": {"avg_value_gap": avg, "worst_value_gap": worst}}
    good = [member("treatment", s, 0.5 + 0.1 * s, 1.0) for s in range(4)] + [member("control", s, 2.5 + 0.05 * s, 4.0) for s in range(4)]
    c = criteria(good, {})
    assert c["treatment_beats_control"] is True and c["verdict"] == "strong"
    tie = [member("treatment", s, 0.5 + 0.1 * s, 1.0) for s in range(4)] + [member("control", s, 0.5 + 0.1 * (3 - s), 1.0) for s in range(4)]
    c = criteria(tie, {})
    assert c["treatment_beats_control"] is False and c["verdict"] == "failure"
    riders = [member("treatment", s, -400.0 - s, -250.0) for s in range(3)] + [member("control", s, -366.0 + s, -210.0) for s in range(3)]
    c = criteria(riders, {})
    assert c["treatment_beats_control"] is True and c["verdict"] == "not applicable"
