"""Statistics for comparing training configurations over seeds.

Conventions (following rliable, Agarwal et al. 2021, "Deep RL at the edge of the statistical
precipice"):

* the interquartile mean (IQM) is ``scipy.stats.trim_mean(x, 0.25)``: ``floor(n/4)`` runs are
  cut from each end (with 10 runs, the mean of the middle 6);
* confidence intervals are percentile bootstraps. With several tasks, runs are resampled within
  each task (stratified bootstrap) and the statistic is applied to all resampled runs together;
* probability of improvement is ``P(X > Y) + 0.5 P(X = Y)`` for a run X of one configuration and
  a run Y of the other (the Mann-Whitney U statistic over ``n * m``);
* a performance profile is the fraction of runs scoring strictly above each threshold tau.

Every random quantity takes an explicit ``seed`` and is deterministic given it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import stats as sps

# A statistic maps an array (..., runs) to (...): it reduces the last axis, so bootstrap
# replicates can be computed in one vectorised call.
Stat = Callable[[np.ndarray], np.ndarray]

Samples = Sequence[float] | Sequence[Sequence[float]] | np.ndarray


def mean(x: Samples) -> float:
    return float(np.mean(np.asarray(x, float)))


def std(x: Samples) -> float:
    """Sample standard deviation (ddof=1); NaN for fewer than two runs."""
    x = np.asarray(x, float).ravel()
    return float(x.std(ddof=1)) if x.size > 1 else float("nan")


def iqm(x: Samples) -> float:
    """Interquartile mean of all runs (25% trimmed from each end)."""
    return float(sps.trim_mean(np.asarray(x, float).ravel(), 0.25))


def _mean_last(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=-1)


def _iqm_last(x: np.ndarray) -> np.ndarray:
    return sps.trim_mean(x, 0.25, axis=-1)


def _median_last(x: np.ndarray) -> np.ndarray:
    return np.median(x, axis=-1)


STATS: dict[str, Stat] = {"mean": _mean_last, "iqm": _iqm_last, "median": _median_last}


def _strata(samples: Samples) -> list[np.ndarray]:
    """One array of runs per task. A 1-D input is one task; a 2-D array is (runs, tasks) as in
    rliable; a list of 1-D sequences is one per task (lengths may differ)."""
    if isinstance(samples, np.ndarray) and samples.ndim == 2:
        return [samples[:, j].astype(float) for j in range(samples.shape[1])]
    if len(samples) and np.ndim(samples[0]) > 0:
        return [np.asarray(s, float).ravel() for s in samples]
    return [np.asarray(samples, float).ravel()]


def bootstrap_ci(samples: Samples, stat: str | Stat = "mean", reps: int = 10_000, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap ``(1 - alpha)`` interval of ``stat`` (stratified over tasks).

    ``stat`` is ``"mean"``, ``"iqm"``, ``"median"`` or a function reducing the last axis.
    """
    fn = STATS[stat] if isinstance(stat, str) else stat
    strata = _strata(samples)
    if any(s.size == 0 for s in strata):
        raise ValueError("bootstrap_ci needs at least one run per task")
    rng = np.random.default_rng(seed)
    resampled = np.concatenate([s[rng.integers(0, s.size, (reps, s.size))] for s in strata], axis=1)
    values = np.asarray(fn(resampled), float)
    return float(np.quantile(values, alpha / 2)), float(np.quantile(values, 1 - alpha / 2))


def welch(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Welch's t statistic and two-sided p-value (unequal variances); NaN if undefined."""
    t, p = sps.ttest_ind(np.asarray(x, float), np.asarray(y, float), equal_var=False)
    return float(t), float(p)


def probability_of_improvement(x: Sequence[float], y: Sequence[float]) -> float:
    """``P(X > Y) + 0.5 P(X = Y)`` over all pairs of runs of ``x`` and ``y``."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    return float(_poi(x[None], y[None])[0])


def _poi(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Batched over the leading axis: x (B, n), y (B, m) -> (B,)."""
    gt = (x[:, :, None] > y[:, None, :]).mean(axis=(1, 2))
    eq = (x[:, :, None] == y[:, None, :]).mean(axis=(1, 2))
    return gt + 0.5 * eq


def probability_of_improvement_ci(x: Sequence[float], y: Sequence[float], reps: int = 2_000, alpha: float = 0.05,
                                  seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the probability of improvement, resampling the runs of
    ``x`` and of ``y`` independently."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    rng = np.random.default_rng(seed)
    xs = x[rng.integers(0, x.size, (reps, x.size))]
    ys = y[rng.integers(0, y.size, (reps, y.size))]
    values = _poi(xs, ys)
    return float(np.quantile(values, alpha / 2)), float(np.quantile(values, 1 - alpha / 2))


def performance_profile(scores: Samples, taus: Sequence[float]) -> np.ndarray:
    """Fraction of runs (over all tasks) scoring strictly above each threshold in ``taus``."""
    s = np.asarray(scores, float).ravel()[:, None]
    return (s > np.asarray(taus, float)[None, :]).mean(axis=0)


def performance_profile_ci(scores: Samples, taus: Sequence[float], reps: int = 2_000, alpha: float = 0.05,
                           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise percentile bootstrap band of the performance profile."""
    taus = np.asarray(taus, float)
    strata = _strata(scores)
    rng = np.random.default_rng(seed)
    resampled = np.concatenate([s[rng.integers(0, s.size, (reps, s.size))] for s in strata], axis=1)
    frac = (resampled[:, :, None] > taus[None, None, :]).mean(axis=1)  # (reps, taus)
    lo = np.quantile(frac, alpha / 2, axis=0)
    hi = np.quantile(frac, 1 - alpha / 2, axis=0)
    return lo, hi


@dataclass(frozen=True)
class Summary:
    """Point estimates and 95% bootstrap intervals of one configuration's runs."""

    n: int
    mean: float
    std: float
    iqm: float
    ci_low: float
    ci_high: float
    iqm_ci_low: float
    iqm_ci_high: float

    @classmethod
    def of(cls, x: Samples, seed: int = 0, reps: int = 10_000) -> "Summary":
        arr = np.asarray(x, float).ravel()
        lo, hi = bootstrap_ci(x, "mean", reps=reps, seed=seed)
        ilo, ihi = bootstrap_ci(x, "iqm", reps=reps, seed=seed)
        return cls(int(arr.size), mean(arr), std(arr), iqm(arr), lo, hi, ilo, ihi)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Criterion:
    """One success criterion: ``passed`` is None when it cannot be decided (missing input)."""

    name: str
    passed: bool | None
    value: float
    threshold: float
    detail: str

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "N/A"}[self.passed]


def success_criteria(summary: Summary, sweep_score: float | None, baseline: Summary | None,
                     mean_fraction: float = 0.9, std_fraction: float = 0.15) -> dict[str, Criterion]:
    """The seed document's three criteria.

    ``mean_vs_sweep``
        ``mean >= sweep_score - (1 - mean_fraction) * |sweep_score|``: the validated mean keeps at
        least 90% of the configuration's own sweep score. For positive scores this is
        ``mean >= 0.9 * sweep_score``; writing it with ``|sweep_score|`` keeps "lose at most 10%"
        meaningful for negative returns.
    ``std_vs_mean``
        ``std < std_fraction * |mean|`` (ddof=1; FAIL with fewer than two runs).
    ``ci_vs_baseline``
        the 95% bootstrap CI of the mean lies entirely above the baseline's
        (``ci_low > baseline.ci_high``). A CI entirely below the baseline's does not overlap
        either, but it is not an improvement, so it FAILs.
    """
    out: dict[str, Criterion] = {}
    if sweep_score is None or not np.isfinite(sweep_score):
        out["mean_vs_sweep"] = Criterion("mean_vs_sweep", None, summary.mean, float("nan"), "no sweep score")
    else:
        thr = sweep_score - (1.0 - mean_fraction) * abs(sweep_score)
        out["mean_vs_sweep"] = Criterion("mean_vs_sweep", bool(summary.mean >= thr), summary.mean, thr,
                                         f"mean {summary.mean:.4g}, needs >= {thr:.4g} ({mean_fraction:.0%} of "
                                         f"sweep score {sweep_score:.4g})")
    thr = std_fraction * abs(summary.mean)
    out["std_vs_mean"] = Criterion("std_vs_mean", bool(summary.std < thr), summary.std, thr,
                                   f"std {summary.std:.4g}, needs < {thr:.4g} ({std_fraction:.0%} of abs(mean))")
    if baseline is None:
        out["ci_vs_baseline"] = Criterion("ci_vs_baseline", None, summary.ci_low, float("nan"), "no baseline")
    else:
        out["ci_vs_baseline"] = Criterion(
            "ci_vs_baseline", bool(summary.ci_low > baseline.ci_high), summary.ci_low, baseline.ci_high,
            f"CI [{summary.ci_low:.4g}, {summary.ci_high:.4g}], needs to lie above baseline CI "
            f"[{baseline.ci_low:.4g}, {baseline.ci_high:.4g}]")
    return out


def all_pass(criteria: dict[str, Criterion]) -> bool:
    """True when every criterion passed (an undecidable one counts as not passed)."""
    return all(c.passed is True for c in criteria.values())
