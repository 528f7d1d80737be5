"""Validation report: Markdown, JSON and plots from a validation directory's ``validation.json``."""
from __future__ import annotations

import json
import os

import numpy as np

from rljax.stats import (Summary, all_pass, performance_profile, performance_profile_ci, probability_of_improvement,
                         probability_of_improvement_ci, success_criteria, welch)

DETERMINISM = """\
**Determinism.** Every job is a pure function of (experiment, configuration, seed): all
randomness comes from JAX PRNG keys derived from the seed, and hyperparameters are sampled with
numpy `Generator`s from explicit seeds. On CPU a rerun is bit-identical given the same jax and
jaxlib versions, the same `XLA_FLAGS` and the same member layout (batch size and device count
of the compiled program): XLA may vectorise a differently shaped batch differently, which can
change the last bits of a float, far below the seed-to-seed spread reported here.

On GPU, bit-identical reruns need XLA flags. By default XLA:GPU autotunes cuBLAS/cuDNN/Triton
kernels (the choice can change between runs and machines), and scatters and some reductions
accumulate with atomics, whose order varies run to run. Set
`XLA_FLAGS=--xla_gpu_deterministic_ops=true`: it turns on
`--xla_gpu_exclude_nondeterministic_ops=true` (no atomics-based scatter or other
non-deterministic kernels; openxla/xla#12520) and also switches autotuning off (openxla/xla#16635).
`--xla_gpu_exclude_nondeterministic_ops=true` alone keeps autotuning; then pin the kernel choice
with `--xla_gpu_autotune_level=0` (no autotuning) or by loading saved autotune results
(`--xla_gpu_load_autotune_results_from=...`). Expect a speed cost, and check that two reruns
agree before relying on it: determinism flags have had bugs in some releases."""


def _fmt(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.4g}"


def build_report(validation_dir: str, seed: int = 0, out_dir: str | None = None) -> dict:
    """Writes ``report.md``, ``report.json``, ``scores.png`` and ``profile.png`` into ``out_dir``
    (default ``validation_dir``) and returns the report dict. Deterministic given ``seed``."""
    with open(os.path.join(validation_dir, "validation.json")) as f:
        val = json.load(f)
    out_dir = out_dir or validation_dir
    os.makedirs(out_dir, exist_ok=True)
    configs = val["configs"]
    base_scores = configs["baseline"]["scores"] if "baseline" in configs else None
    base = Summary.of(base_scores, seed=seed) if base_scores else None
    rows = {}
    for name, c in configs.items():
        s = Summary.of(c["scores"], seed=seed)
        row = {"hparams": c["hparams"], "sweep_trial": c.get("sweep_trial"), "sweep_score": c.get("sweep_score"),
               "seeds": c["seeds"], "scores": c["scores"], "summary": s.to_dict()}
        if "scores_by_variant" in c:
            row["by_variant"] = {v: Summary.of(sc, seed=seed).to_dict() for v, sc in c["scores_by_variant"].items()}
        if name != "baseline":
            crit = success_criteria(s, c.get("sweep_score"), base)
            row["criteria"] = {k: {"verdict": v.verdict, "value": v.value, "threshold": v.threshold,
                                   "detail": v.detail} for k, v in crit.items()}
            row["pass"] = all_pass(crit)
            row["verdict"] = "PASS" if row["pass"] else "FAIL"
            if base_scores:
                t, p = welch(c["scores"], base_scores)
                row.update(welch_t=t, welch_p=p,
                           p_improvement=probability_of_improvement(c["scores"], base_scores),
                           p_improvement_ci=list(probability_of_improvement_ci(c["scores"], base_scores, seed=seed)))
        rows[name] = row
    report = {"experiment": val["experiment"], "seed": seed, "configs": rows, "determinism": DETERMINISM,
              "selection_seeds": val.get("selection_seeds"), "validation_seeds": _validation_seeds(val)}
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    _plots(out_dir, rows, seed)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(_markdown(val, rows))
    return report


def _validation_seeds(val: dict) -> list[int]:
    return list(val.get("phase1_seeds", [])) + list(val.get("phase2_seeds", []))


def _markdown(val: dict, rows: dict) -> str:
    lines = [f"# Validation report: {val['experiment']}", "",
             f"Top {val.get('top_k', '?')} configurations of the sweep in `{val.get('sweep_dir', '')}` and the "
             f"baseline, on seeds {val.get('phase1_seeds')}; phase 2 adds seeds {val.get('phase2_seeds')} for "
             f"{', '.join(val.get('phase2', [])) or 'none'}.", "",
             f"**Seeds.** Selected (the sweep's trials trained on): {val.get('selection_seeds', 'not recorded')}. "
             f"Validated on: {_validation_seeds(val)}. The two sets are disjoint (selection and validation seed "
             "streams, `rljax.sweep.seeds`): no selection run is part of a validation sample.", "",
             "Scores are the final evaluation return of each (configuration, seed) job. std uses ddof=1; "
             "IQM is the 25%-trimmed mean; CIs are 95% percentile bootstraps (10,000 resamples). Welch's t-test "
             "is two-sided against the baseline; P(improvement) = P(X > Y) + 0.5 P(X = Y) for a run X of the "
             "configuration and Y of the baseline, with a 95% bootstrap CI.", "",
             "| config | seeds | mean | std | IQM | 95% CI (mean) | 95% CI (IQM) | sweep score "
             "| Welch p | P(improvement) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        s = r["summary"]
        poi = (f"{_fmt(r['p_improvement'])} [{_fmt(r['p_improvement_ci'][0])}, {_fmt(r['p_improvement_ci'][1])}]"
               if "p_improvement" in r else "-")
        lines.append(f"| {name} | {s['n']} | {_fmt(s['mean'])} | {_fmt(s['std'])} | {_fmt(s['iqm'])} "
                     f"| [{_fmt(s['ci_low'])}, {_fmt(s['ci_high'])}] | [{_fmt(s['iqm_ci_low'])}, "
                     f"{_fmt(s['iqm_ci_high'])}] | {_fmt(r['sweep_score'])} | {_fmt(r.get('welch_p'))} | {poi} |")
    variant_rows = [(n, v, x) for n, r in rows.items() for v, x in r.get("by_variant", {}).items()]
    if variant_rows:
        lines += ["", "## Per task variant", "",
                  "Every job trained all task variants in one program; the table above scores their mean.", "",
                  "| config | variant | seeds | mean | std | IQM | 95% CI (mean) |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {n} | {v} | {x['n']} | {_fmt(x['mean'])} | {_fmt(x['std'])} | {_fmt(x['iqm'])} "
                  f"| [{_fmt(x['ci_low'])}, {_fmt(x['ci_high'])}] |" for n, v, x in variant_rows]
    lines += ["", "## Success criteria", "",
              "1. mean >= 90% of the configuration's sweep score (written `mean >= score - 0.1 |score|` so it "
              "also holds for negative returns);",
              "2. std < 15% of |mean|;",
              "3. the 95% CI of the mean lies above the baseline's and does not overlap it.", "",
              "| config | mean vs sweep | std vs mean | CI vs baseline | overall |", "|---|---|---|---|---|"]
    for name, r in rows.items():
        if "criteria" not in r:
            continue
        c = r["criteria"]
        cell = lambda k: f"{c[k]['verdict']} ({c[k]['detail']})"
        lines.append(f"| {name} | {cell('mean_vs_sweep')} | {cell('std_vs_mean')} | {cell('ci_vs_baseline')} "
                     f"| **{r['verdict']}** |")
    lines += ["", "## Hyperparameters", ""]
    for name, r in rows.items():
        hp = ", ".join(f"{k}={v:.4g}" for k, v in sorted(r["hparams"].items())) or "experiment defaults"
        trial = f" (sweep trial {r['sweep_trial']})" if r.get("sweep_trial") is not None else ""
        lines.append(f"- **{name}**{trial}: {hp}")
    lines += ["", "![scores per seed](scores.png)", "", "![performance profile](profile.png)", "", DETERMINISM, ""]
    return "\n".join(lines)


def _plots(out_dir: str, rows: dict, seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    fig, ax = plt.subplots(figsize=(1.4 * len(names) + 2.5, 4))
    jitter = np.random.default_rng(seed)  # fixed jitter: the same report draws the same picture
    for i, n in enumerate(names):
        sc = np.asarray(rows[n]["scores"], float)
        s = rows[n]["summary"]
        ax.scatter(i - 0.1 + jitter.uniform(-0.12, 0.12, sc.size), sc, s=14, alpha=0.6, color=f"C{i % 10}")
        ax.errorbar(i + 0.22, s["mean"], yerr=[[s["mean"] - s["ci_low"]], [s["ci_high"] - s["mean"]]], fmt="o",
                    color="k", capsize=4, label="mean, 95% CI" if i == 0 else None)
        ax.errorbar(i + 0.32, s["iqm"], yerr=[[s["iqm"] - s["iqm_ci_low"]], [s["iqm_ci_high"] - s["iqm"]]],
                    fmt="s", color="0.5", capsize=4, label="IQM, 95% CI" if i == 0 else None)
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set_ylabel("evaluation return")
    ax.set_title("score per seed with 95% bootstrap CIs")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "scores.png"), dpi=100)
    plt.close(fig)

    allv = np.concatenate([np.asarray(rows[n]["scores"], float) for n in names])
    allv = allv[np.isfinite(allv)]
    lo, hi = (allv.min(), allv.max()) if allv.size else (0.0, 1.0)
    taus = np.linspace(lo - 0.05 * (hi - lo + 1e-12), hi + 0.05 * (hi - lo + 1e-12), 200)
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, n in enumerate(names):
        prof = performance_profile(rows[n]["scores"], taus)
        band_lo, band_hi = performance_profile_ci(rows[n]["scores"], taus, seed=seed)
        ax.plot(taus, prof, label=n, color=f"C{i % 10}")
        ax.fill_between(taus, band_lo, band_hi, color=f"C{i % 10}", alpha=0.15)
    ax.set_xlabel("evaluation return threshold tau")
    ax.set_ylabel("fraction of runs with score > tau")
    ax.set_title("performance profile (95% bootstrap bands)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "profile.png"), dpi=100)
    plt.close(fig)
