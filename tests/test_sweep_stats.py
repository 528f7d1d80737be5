"""Search-space sampling and the statistics of multi-seed validation."""
import math

import numpy as np
import pytest
from scipy import stats as sps

from rljax import stats
from rljax.errors import ConfigError
from rljax.sweep.space import LogNormal, Space, Uniform, get_space, ppo6, register_space

N = 4000


@pytest.fixture(scope="module")
def ppo6_samples():
    space = get_space("ppo6")
    rows = space.sample_trials(seed=7, trials=N)
    return {k: np.array([r[k] for r in rows]) for k in space.params}


# ----------------------------------------------------------------------------- search space

def test_ppo6_keys_and_bounds(ppo6_samples):
    space = ppo6()
    assert set(space.params) == {"lr", "clip_eps", "ent_coef", "gae_lambda", "vf_coef", "adam_eps"}
    for k, d in space.params.items():
        x = ppo6_samples[k]
        assert np.all((x >= d.low) & (x <= d.high)), k
        # no spike at a bound: truncation, not clipping
        assert np.mean(np.isclose(x, d.low, rtol=1e-9, atol=0)) + np.mean(np.isclose(x, d.high, rtol=1e-9, atol=0)) < 1e-3, k


@pytest.mark.parametrize("key", ["clip_eps", "gae_lambda", "vf_coef"])
def test_uniform_parameters_pass_ks(ppo6_samples, key):
    d = ppo6().params[key]
    assert sps.kstest(ppo6_samples[key], sps.uniform(d.low, d.high - d.low).cdf).pvalue > 1e-3


@pytest.mark.parametrize("key", ["lr", "ent_coef", "adam_eps"])
def test_log_normal_parameters_match_truncated_normal_in_log_space(ppo6_samples, key):
    d = ppo6().params[key]
    a, b = d.standardised_bounds
    ref = sps.truncnorm(a, b, loc=d.mu, scale=d.sigma)
    logx = np.log10(ppo6_samples[key])
    assert sps.kstest(logx, ref.cdf).pvalue > 1e-3
    assert abs(np.median(logx) - ref.median()) < 0.05


def test_log_normal_centres():
    sp = ppo6().params
    assert sp["lr"].mu == pytest.approx(-3.0)  # around 1e-3
    assert sp["ent_coef"].mu == pytest.approx(-3.0)  # geometric midpoint of [1e-4, 1e-2]
    assert sp["adam_eps"].mu == pytest.approx(-6.0)
    assert sp["lr"].sigma == pytest.approx(0.75)  # 3 decades span 4 sigmas
    rng = np.random.default_rng(0)
    x = np.log10([LogNormal(1e-4, 1e-2).sample(rng) for _ in range(N)])
    assert abs(np.median(x) + 3.0) < 0.05  # symmetric truncation keeps the median


def test_sampling_is_reproducible_and_per_trial():
    s = get_space("ppo6")
    assert s.sample(3, 5) == s.sample(3, 5)
    assert s.sample_trials(3, 10)[5] == s.sample(3, 5)  # independent of batch/order
    assert s.sample(3, 5) != s.sample(3, 6)
    assert s.sample(3, 5) != s.sample(4, 5)
    # adding a parameter to a space leaves the others' values unchanged
    bigger = Space("x", {**s.params, "extra": Uniform(0.0, 1.0)})
    assert {k: v for k, v in bigger.sample(3, 5).items() if k != "extra"} == s.sample(3, 5)


def test_registry():
    with pytest.raises(ValueError, match="'nope'"):
        get_space("nope")
    register_space("tiny_test_space", lambda: Space("tiny_test_space", {"lr": Uniform(0.1, 0.2)}))
    assert 0.1 <= get_space("tiny_test_space").sample(0, 0)["lr"] <= 0.2
    with pytest.raises(ConfigError, match="already registered"):
        register_space("ppo6", ppo6)
    with pytest.raises(ConfigError):
        LogNormal(1e-3, 1e-5)
    with pytest.raises(ConfigError):
        LogNormal(1e-5, 1e-3, median=1.0)


# ----------------------------------------------------------------------------- statistics

def test_point_estimates():
    x = [1, 2, 3, 4, 5, 6, 7, 8, 9, 100]
    assert stats.mean(x) == pytest.approx(14.5)
    assert stats.std(x) == pytest.approx(np.std(x, ddof=1))
    assert stats.iqm(x) == pytest.approx(np.mean([3, 4, 5, 6, 7, 8]))  # floor(10/4)=2 cut each end
    assert stats.iqm(np.arange(8.0)) == pytest.approx(np.mean([2, 3, 4, 5]))
    assert math.isnan(stats.std([3.0]))


def test_welch_matches_scipy():
    rng = np.random.default_rng(1)
    x, y = rng.normal(1, 1, 10), rng.normal(0, 3, 14)
    t, p = stats.welch(x, y)
    ref = sps.ttest_ind(x, y, equal_var=False)
    assert (t, p) == pytest.approx((ref.statistic, ref.pvalue))
    # hand check of the Welch statistic
    se = np.sqrt(x.var(ddof=1) / 10 + y.var(ddof=1) / 14)
    assert t == pytest.approx((x.mean() - y.mean()) / se)


def test_bootstrap_ci_contains_mean_and_is_deterministic():
    rng = np.random.default_rng(2)
    x = rng.normal(5, 2, 20)
    lo, hi = stats.bootstrap_ci(x, "mean", seed=3)
    assert lo < x.mean() < hi
    assert (lo, hi) == stats.bootstrap_ci(x, "mean", seed=3)
    assert (lo, hi) != stats.bootstrap_ci(x, "mean", seed=4)
    # close to the normal-theory interval
    half = 1.96 * x.std(ddof=1) / np.sqrt(20)
    assert lo == pytest.approx(x.mean() - half, abs=0.35 * half)
    assert hi == pytest.approx(x.mean() + half, abs=0.35 * half)
    ilo, ihi = stats.bootstrap_ci(x, "iqm", seed=3)
    assert ilo < stats.iqm(x) < ihi


def test_stratified_bootstrap_resamples_within_tasks():
    # Two tasks with very different scales: a stratified resample always keeps 3 runs of each,
    # so the mean of every replicate stays between the two task means.
    task_a, task_b = [0.0, 0.1, 0.2], [100.0, 100.1, 100.2]
    lo, hi = stats.bootstrap_ci([task_a, task_b], "mean", reps=2000, seed=0)
    assert 49.9 < lo <= hi < 50.3
    arr = np.stack([task_a, task_b], axis=1)  # (runs, tasks) as rliable
    assert stats.bootstrap_ci(arr, "mean", reps=2000, seed=0) == (lo, hi)


def test_bootstrap_against_rliable_if_installed():
    try:  # optional cross-check; rliable 1.2 (via arch 7.2) fails to import with pandas 3
        from rliable import library as rly
    except Exception as e:  # noqa: BLE001 - any import failure means "not available"
        pytest.skip(f"rliable not usable: {e!r}")
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, (12, 3))
    ours = stats.bootstrap_ci(x, "iqm", reps=4000, seed=0)
    agg = lambda s: np.array([sps.trim_mean(s.ravel(), 0.25)])
    _, cis = rly.get_interval_estimates({"a": x}, agg, reps=4000)
    assert ours == pytest.approx(tuple(cis["a"][:, 0]), abs=0.08)


def test_probability_of_improvement_hand_cases():
    assert stats.probability_of_improvement([2, 3], [0, 1]) == 1.0
    assert stats.probability_of_improvement([1, 1], [1, 1]) == 0.5
    assert stats.probability_of_improvement([0, 1], [2, 3]) == 0.0
    assert stats.probability_of_improvement([1, 3], [2]) == 0.5
    assert stats.probability_of_improvement([1, 2], [1]) == pytest.approx(0.75)
    x, y = np.random.default_rng(0).normal(1, 1, 10), np.random.default_rng(1).normal(0, 1, 10)
    lo, hi = stats.probability_of_improvement_ci(x, y, seed=0)
    assert 0 <= lo <= stats.probability_of_improvement(x, y) <= hi <= 1
    assert (lo, hi) == stats.probability_of_improvement_ci(x, y, seed=0)
    u = sps.mannwhitneyu(x, y).statistic
    assert stats.probability_of_improvement(x, y) == pytest.approx(u / 100)


def test_performance_profile():
    prof = stats.performance_profile([1, 2, 3, 4], [0, 1, 2.5, 4])
    np.testing.assert_allclose(prof, [1.0, 0.75, 0.5, 0.0])
    lo, hi = stats.performance_profile_ci([1, 2, 3, 4], [0, 2.5, 4], seed=0)
    assert np.all(lo <= np.array([1.0, 0.5, 0.0]) + 1e-12) and np.all(hi >= np.array([1.0, 0.5, 0.0]) - 1e-12)


# ----------------------------------------------------------------------------- criteria

def _summary(x, seed=0):
    return stats.Summary.of(x, seed=seed, reps=2000)


BASE = _summary([10.0, 11, 9, 10.5, 9.5, 10, 10.2, 9.8, 10.1, 9.9])


def test_criteria_all_pass():
    s = _summary([20.0, 21, 19, 20.5, 19.5, 20, 20.2, 19.8, 20.1, 19.9])
    c = stats.success_criteria(s, sweep_score=21.0, baseline=BASE)
    assert {k: v.verdict for k, v in c.items()} == {"mean_vs_sweep": "PASS", "std_vs_mean": "PASS",
                                                    "ci_vs_baseline": "PASS"}
    assert stats.all_pass(c)


def test_criteria_each_can_fail():
    good = [20.0, 21, 19, 20.5, 19.5, 20, 20.2, 19.8, 20.1, 19.9]
    # mean 20 < 90% of 25
    c = stats.success_criteria(_summary(good), 25.0, BASE)
    assert c["mean_vs_sweep"].verdict == "FAIL" and c["std_vs_mean"].passed and c["ci_vs_baseline"].passed
    # exactly 90% passes (>=)
    assert stats.success_criteria(_summary(good), _summary(good).mean / 0.9, BASE)["mean_vs_sweep"].passed
    # std >= 15% of mean
    noisy = [10.0, 30, 12, 28, 15, 25, 14, 26, 20, 20]
    c = stats.success_criteria(_summary(noisy), 20.0, BASE)
    assert c["mean_vs_sweep"].passed and c["std_vs_mean"].verdict == "FAIL"
    # CI overlapping the baseline's
    close = [10.2, 10.4, 10.0, 10.6, 10.3, 10.1, 10.5, 10.2, 10.4, 10.3]
    c = stats.success_criteria(_summary(close), 10.5, BASE)
    assert c["mean_vs_sweep"].passed and c["std_vs_mean"].passed and c["ci_vs_baseline"].verdict == "FAIL"
    # entirely below the baseline does not overlap, but is no improvement
    low = [5.0, 5.1, 4.9, 5.0, 5.05, 4.95, 5.0, 5.0, 5.1, 4.9]
    assert stats.success_criteria(_summary(low), 5.0, BASE)["ci_vs_baseline"].verdict == "FAIL"
    assert not stats.all_pass(c)


def test_criteria_negative_scores_and_missing_inputs():
    s = _summary([-10.0, -10.5, -9.5, -10.2, -9.8, -10.0, -10.1, -9.9, -10.0, -10.0])
    assert stats.success_criteria(s, -9.5, None)["mean_vs_sweep"].passed  # -10 >= -9.5 - 0.95
    assert not stats.success_criteria(s, -8.0, None)["mean_vs_sweep"].passed  # -10 < -8.8
    c = stats.success_criteria(s, None, None)
    assert c["mean_vs_sweep"].verdict == "N/A" and c["ci_vs_baseline"].verdict == "N/A"
    assert not stats.all_pass(c)
    one = _summary([3.0])
    assert stats.success_criteria(one, 3.0, None)["std_vs_mean"].verdict == "FAIL"  # std undefined
