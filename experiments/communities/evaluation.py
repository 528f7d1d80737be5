"""Distributional evaluation of trained harvest communities runs (``python -m experiments.communities
eval RUN_DIR [RUN_DIR ...]``).

For every trained member (arm x seed) and every community (RED, GREEN, BLUE) it plays
``--episodes`` episodes (default 20, the spec's protocol), and the resident baseline
(``ego_is_resident=1``: slot 0 runs the resident policy) on the SAME environment keys: every
reset and step key of a baseline episode equals its ego episode's, so the value gap of an
episode is an exact counterfactual (the original could not seed its substrate). The keys are the
same for every member, so treatment and control are compared on identical episodes, and members
with the same seed started from identical networks (the FiLMs are identity at initialisation).
All members x communities x episodes run in one compiled program.

Policy: **stochastic** by default (actions sampled from the policy, as in training). A greedy
argmax over the 11-way gated distribution zaps only where ``p(zap)`` exceeds every single game
action's probability, which changes the sanctioning behaviour the metrics are about; ``--greedy``
evaluates the mode instead.

Per episode (ego; baseline is agent 0 of the all-resident episode): R_train, R_eval, value gap
``dV = R_eval(baseline) - R_eval(ego)``, sanction regret ``SR = -10s(ego) - -10s(baseline)``,
compliance %, violations/1k, zaps/1k (presses), correct and mistaken -10s issued, immunity
fizzles, permitted share and monoculture fraction at the final step. Per member the
distributional summary: ``avg_value_gap`` (mean over communities of the per-community mean),
``worst_value_gap`` (max) and its community, ``best_value_gap`` (min) and its community, and the
training sampling balance (episodes per community in ``metrics.csv``: ``min_ratio``/``max_ratio``
= min/max count / (N / allowed communities), ``balance_ratio`` = max/min).

Success criteria (spec): *strong* = avg dV < 1.0 and worst dV < 1.5; *acceptable* = avg dV < 2.0
and worst dV < 3.0; both require treatment to beat control. *Failure* = avg dV > 3.0, or worst
>> avg (here: ``worst - avg > max(1.5, |avg|)``, one community failing), or treatment ~ control.
An arm whose avg dV is below ``-3.0`` out-earns the resident in its slot: the criteria (written
for an ego that pays the norm's costs) would pass it vacuously, so its verdict is "not
applicable" and the report points at compliance and sanctions instead.
"Treatment beats control": the paired difference ``avg dV(control) - avg dV(treatment)`` over
seeds present in both arms is positive with a one-sided 95% t lower bound above 0 (with a single
seed pair: over the shared episode keys instead). Arm figures are means over seeds.

Writes ``eval.json`` and ``eval.png`` (value gap, compliance and -10s received, faceted by
community) into ``--out`` (default ``RUN_DIR/communities_eval``).
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rljax.environments.harvest import COMMUNITY_NAMES, NUM_COMMUNITIES
from rljax.errors import ConfigError

METRICS = ("r_train", "r_eval", "value_gap", "sanction_regret", "compliance_pct", "violations_per_1k", "zaps_per_1k",
           "minus10_received", "minus10_issued_correct", "minus10_issued_mis", "immune_fizzles", "permitted_share",
           "monoculture", "berries", "plants", "plants_permitted", "plants_red", "plants_green", "plants_blue",
           "baseline_r_eval", "r_env", "correct_sanction_rate", "immunity_rate", "p_zap_violator", "p_zap_clear",
           "selectivity", "collective_cost_per_sanction")
TABLE = (("R_train", "r_train", 8, 1), ("R_eval", "r_eval", 8, 1), ("dV", "value_gap", 8, 1),
         ("SR", "sanction_regret", 6, 1), ("compl%", "compliance_pct", 7, 1), ("viol/1k", "violations_per_1k", 8, 0),
         ("zaps/1k", "zaps_per_1k", 8, 1), ("-10 ok", "minus10_issued_correct", 7, 2), ("-10 mis", "minus10_issued_mis", 8, 2),
         ("fizz", "immune_fizzles", 6, 2), ("ok%", "correct_sanction_rate", 6, 2), ("imm%", "immunity_rate", 6, 2),
         ("select", "selectivity", 7, 2), ("cost/-10", "collective_cost_per_sanction", 9, 1),
         ("perm", "permitted_share", 6, 2), ("mono", "monoculture", 6, 2))
STRONG, ACCEPTABLE, FAILURE_AVG = (1.0, 1.5), (2.0, 3.0), 3.0


# ----------------------------------------------------------------------------------------
# Running the episodes
# ----------------------------------------------------------------------------------------
def episode_keys(seed: int, episodes: int) -> tuple[jax.Array, np.ndarray]:
    """``keys[3 * episodes]`` and their communities (``episodes`` per community, in blocks)."""
    keys = jax.random.split(jax.random.PRNGKey(seed), NUM_COMMUNITIES * episodes)
    return keys, np.repeat(np.arange(NUM_COMMUNITIES), episodes)


def token_communities(swap: str | None, communities: np.ndarray) -> np.ndarray | None:
    """The token each episode's treatment policy sees under ``--swap-token``: ``None`` (its own),
    ``"shift"`` (the next community: RED -> GREEN -> BLUE -> RED) or a community name."""
    if swap is None or swap == "none":
        return None
    if swap == "shift":
        return (communities + 1) % NUM_COMMUNITIES
    if swap.upper() not in COMMUNITY_NAMES:
        raise ConfigError(f"--swap-token must be none, shift or one of {', '.join(COMMUNITY_NAMES)}, got {swap!r}")
    return np.full_like(communities, COMMUNITY_NAMES.index(swap.upper()))


def play_run(runner: Any, state: Any, keys: jax.Array, communities: np.ndarray, steps: int, greedy: bool,
             loop: str = "map", tokens: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every member's ego episodes ``[M, K]`` and the baseline episodes ``[K]`` (episode sums),
    one compiled program each. ``loop``: members one after another (``"map"``, cheaper for
    convolutions on CPU) or batched (``"vmap"``). ``tokens[K]``: the permitted-colour token the
    treatment members see (the intervention; default: the episode's own community)."""
    from rljax.experiments.communities.episodes import community_params, play_episode

    trainer = runner.algorithm
    env = trainer.env
    comm = jnp.asarray(communities)

    def member(params, obs_stats, harvest):
        policy = trainer.ego_policy(params, obs_stats)
        ps = community_params(harvest, comm, steps)
        if tokens is None:
            return jax.vmap(lambda k, p: play_episode(env, policy, k, p, steps, greedy))(keys, ps)
        return jax.vmap(lambda k, p, tok: play_episode(env, policy, k, p, steps, greedy, tok))(keys, ps, jnp.asarray(tokens))

    args = (state.params, state.obs_stats, state.env_params.harvest)
    if loop == "vmap":
        ego = jax.jit(jax.vmap(member))(*args)
    else:
        ego = jax.jit(lambda a: jax.lax.map(lambda t: member(*t), a))(args)

    def baseline(harvest):
        ps = community_params(harvest, comm, steps, baseline=True)
        return jax.vmap(lambda k, p: play_episode(env, None, k, p, steps))(keys, ps)

    # The baseline does not depend on the member (residents act the same in both arms).
    base = jax.jit(baseline)(jax.tree.map(lambda x: x[0], state.env_params.harvest))
    return jax.tree.map(np.asarray, ego), jax.tree.map(np.asarray, base)


# ----------------------------------------------------------------------------------------
# Aggregation
# ----------------------------------------------------------------------------------------
def per_community(metrics: dict[str, np.ndarray], communities: np.ndarray,
                  sanction_penalty: float = 10.0) -> dict[str, dict[str, dict[str, float]]]:
    """``{community: {metric: {mean, std, median}}}`` from per-episode ``metrics[name][K]``. The
    sanction rates' ``mean`` is pooled over the community's episodes (ratio of summed counts,
    NaN where the denominator is 0); their ``std``/``median`` are over the episodes where defined."""
    import warnings

    from rljax.experiments.communities.episodes import RATES, pooled_rates

    out = {}
    for c, name in enumerate(COMMUNITY_NAMES):
        sel = communities == c
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rates where nothing was landed
            out[name] = {k: {"mean": float(np.mean(v[sel])), "std": float(np.nanstd(v[sel])),
                             "median": float(np.nanmedian(v[sel]))} for k, v in metrics.items()}
        if all(k in metrics for k in ("minus10_issued_correct", "ready_clear_steps")):
            pooled = pooled_rates(metrics, sel, sanction_penalty)
            for k in RATES:
                out[name][k]["mean"] = float(pooled[k])
    return out


def distributional_summary(by_comm: dict[str, dict[str, dict[str, float]]], communities: Sequence[str] = COMMUNITY_NAMES) -> dict:
    """The spec's summary over ``communities``: avg/worst/best value gap (worst = largest) with
    their communities, and compliance avg/worst (worst = lowest)."""
    gaps = {c: by_comm[c]["value_gap"]["mean"] for c in communities}
    comp = {c: by_comm[c]["compliance_pct"]["mean"] for c in communities}
    worst, best = max(gaps, key=gaps.get), min(gaps, key=gaps.get)
    return {
        "communities": list(communities),
        "avg_value_gap": float(np.mean(list(gaps.values()))),
        "worst_value_gap": gaps[worst], "worst_community": worst,
        "best_value_gap": gaps[best], "best_community": best,
        "avg_compliance_pct": float(np.mean(list(comp.values()))),
        "worst_compliance_pct": min(comp.values()), "worst_compliance_community": min(comp, key=comp.get),
        "avg_sanction_regret": float(np.mean([by_comm[c]["sanction_regret"]["mean"] for c in communities])),
    }


def training_balance(run_dir: str, member: str, allowed: Sequence[str]) -> dict:
    """Episodes per community over the whole training run (``metrics.csv``) and the spec's
    balance check over the ``allowed`` (not held-out) communities."""
    path = os.path.join(run_dir, "metrics.csv")
    counts = {c: 0.0 for c in COMMUNITY_NAMES}
    if os.path.exists(path):
        import pyarrow.compute as pc
        import pyarrow.csv as pcsv

        table = pcsv.read_csv(path)
        table = table.filter(pc.equal(table["name"], member))
        for c in COMMUNITY_NAMES:
            col = f"episodes_{c.lower()}"
            if col in table.column_names:
                counts[c] = float(np.nansum(np.asarray(table[col].to_numpy(zero_copy_only=False), np.float64)))
    n = np.asarray([counts[c] for c in allowed])
    total = n.sum()
    out: dict[str, Any] = {"episodes": counts}
    if total > 0:
        expected = total / len(allowed)
        out.update(min_ratio=float(n.min() / expected), max_ratio=float(n.max() / expected),
                   balance_ratio=float(n.max() / n.min()) if n.min() > 0 else float("inf"))
    return out


def _mean_std(xs: Sequence[float]) -> dict:
    """Mean and std over the finite values (a rate is NaN for a member that never landed a sanction)."""
    a = np.asarray(xs, np.float64)
    f = a[np.isfinite(a)]
    return {"mean": float(f.mean()) if f.size else float("nan"), "std": float(f.std(ddof=1)) if f.size > 1 else 0.0,
            "n": int(f.size), "values": [float(x) for x in a]}


def paired_test(diffs: np.ndarray) -> dict:
    """Mean of paired differences with a one-sided 95% t lower bound (NaN for one pair)."""
    from scipy import stats

    d = np.asarray(diffs, np.float64)
    mean = float(d.mean())
    if d.size < 2:
        return {"mean": mean, "lower95": float("nan"), "n": int(d.size)}
    se = d.std(ddof=1) / np.sqrt(d.size)
    lower = mean - stats.t.ppf(0.95, d.size - 1) * se if se > 0 else mean
    return {"mean": mean, "lower95": float(lower), "n": int(d.size)}


def arm_verdict(avg: float, worst: float) -> tuple[str, str]:
    """(level, reason) for one arm's mean avg/worst value gap, before the treatment-vs-control test."""
    if avg > FAILURE_AVG:
        return "failure", f"avg dV {avg:.2f} > {FAILURE_AVG}"
    if avg < -FAILURE_AVG:
        # The criteria rank an ego that pays the norm's costs (planting, sanctioning) by how close
        # it comes to a resident in its slot; an ego that earns far MORE than that resident is
        # doing something else (the cpu_study arms: harvesting, absorbing the -10s, 3%
        # compliance against the residents' 55%), and "dV < 1" would pass it vacuously.
        return "out-earns the baseline", (f"avg dV {avg:.2f} < -{FAILURE_AVG}: the ego earns more than a resident in "
                                          "its slot, so the value-gap criteria do not measure its compliance; read "
                                          "compliance and sanctions")
    if worst - avg > max(1.5, abs(avg)):
        return "failure", f"worst dV {worst:.2f} >> avg {avg:.2f} (one community failing)"
    if avg < STRONG[0] and worst < STRONG[1]:
        return "strong", f"avg {avg:.2f} < {STRONG[0]} and worst {worst:.2f} < {STRONG[1]}"
    if avg < ACCEPTABLE[0] and worst < ACCEPTABLE[1]:
        return "acceptable", f"avg {avg:.2f} < {ACCEPTABLE[0]} and worst {worst:.2f} < {ACCEPTABLE[1]}"
    return "below acceptable", f"avg {avg:.2f}, worst {worst:.2f}: neither acceptable nor failure"


def criteria(members: list[dict], episode_gaps: dict[str, np.ndarray]) -> dict:
    """The spec's success criteria from the members' summaries (see the module docstring)."""
    arms = {}
    for arm in ("treatment", "control"):
        mine = [m for m in members if m["arm"] == arm]
        if mine:
            avg = float(np.mean([m["summary"]["avg_value_gap"] for m in mine]))
            worst = float(np.mean([m["summary"]["worst_value_gap"] for m in mine]))
            level, why = arm_verdict(avg, worst)
            arms[arm] = {"avg_value_gap": avg, "worst_value_gap": worst, "level": level, "reason": why}
    out: dict[str, Any] = {"arms": arms}
    t = {m["seed"]: m for m in members if m["arm"] == "treatment"}
    c = {m["seed"]: m for m in members if m["arm"] == "control"}
    seeds = sorted(set(t) & set(c))
    if not seeds:
        out["treatment_beats_control"] = None
        out["comparison"] = "no seed trained in both arms: evaluate both runs together (eval RUN_A RUN_B)"
    else:
        if len(seeds) >= 2:
            diffs = np.asarray([c[s]["summary"]["avg_value_gap"] - t[s]["summary"]["avg_value_gap"] for s in seeds])
            unit = f"{len(seeds)} seed pairs"
        else:
            s = seeds[0]
            diffs = episode_gaps[c[s]["name"]] - episode_gaps[t[s]["name"]]
            unit = f"{diffs.size} shared episodes of seed {s}"
        test = paired_test(diffs)
        beats = bool(test["mean"] > 0 and (test["lower95"] > 0 if np.isfinite(test["lower95"]) else False))
        out["treatment_beats_control"] = beats
        out["comparison"] = (f"avg dV(control) - avg dV(treatment) = {test['mean']:.2f} over {unit} "
                             f"(one-sided 95% lower bound {test['lower95']:.2f})")
        out["paired_test"] = dict(test, unit=unit)
    tr = arms.get("treatment")
    if tr is None:
        out["verdict"], out["verdict_reason"] = "n/a", "no treatment arm"
    elif tr["level"] == "failure":
        out["verdict"], out["verdict_reason"] = "failure", "treatment: " + tr["reason"]
    elif tr["level"] == "out-earns the baseline":
        out["verdict"], out["verdict_reason"] = "not applicable", (
            "treatment: " + tr["reason"] + "; a lower dV then means more profit, not better norm-following")
    elif out["treatment_beats_control"] is False:
        out["verdict"], out["verdict_reason"] = "failure", "treatment ~ control (A/B difference not established)"
    elif out["treatment_beats_control"] is None:
        out["verdict"], out["verdict_reason"] = tr["level"] + " (treatment vs control not tested)", tr["reason"]
    else:
        out["verdict"], out["verdict_reason"] = tr["level"], tr["reason"] + "; treatment beats control"
    return out


# ----------------------------------------------------------------------------------------
# Any policy
# ----------------------------------------------------------------------------------------
def evaluate_policy(act: Any, *, treatment: bool = True, episodes: int = 20, episode_length: int = 2000,
                    seed: int = 42, swap_token: str | None = None, **env_overrides: Any) -> dict:
    """The distributional evaluation of ANY ego policy, with the resident baseline on the same keys.

    ``act(obs, key) -> action``: a pure JAX function of the ego's observation ``float32[OBS_DIM]``
    (:func:`rljax.environments.harvest.split_observation` splits it; the last 3 entries are the
    permitted-colour token, zeros with ``treatment=False``) and a PRNG key, returning an int
    action in ``[0, 11)``; it is traced once and run under ``vmap``/``scan``. Wrap a
    distribution-valued policy ``obs -> distribution`` with
    :func:`experiments.communities_episodes.distribution_act`; a trained run's with
    ``distribution_act(runner.algorithm.ego_policy(params, obs_stats))``. ``act="resident"``
    plays the resident policy in the ego slot (value gap 0 by construction: a sanity check).

    ``episodes`` per community (RED, GREEN, BLUE) of ``episode_length`` steps from the same keys as
    ``eval`` (``seed``), ``swap_token`` the intervention of :func:`token_communities`, and
    ``env_overrides`` any :func:`rljax.environments.harvest.harvest_params` field (e.g. ``alpha=5.0``).

    Returns ``{"per_community": {RED: {metric: {mean, std, median}}, ...}, "summary": {avg/worst/
    best value gap, compliance, ...}, "baseline": {"per_community": ...}, "episodes": {...}}``
    with the metrics of :data:`METRICS` (sanction rates pooled per community).

    Example (a hand-written rule that always plants the token's colour)::

        from rljax.experiments.communities.evaluation import evaluate_policy
        plant = lambda obs, key: 8 + jnp.argmax(obs[-3:])   # FIRE_ONE + community
        report = evaluate_policy(plant, episodes=5, episode_length=500)
        print(report["summary"]["avg_value_gap"])
    """
    from rljax.environments.harvest import harvest_params
    from rljax.environments.harvest_view import HarvestEnv

    from rljax.experiments.communities.episodes import baseline_metrics, community_params, episode_metrics, play_episode_act

    if episodes <= 0 or episode_length <= 0:
        raise ConfigError(f"evaluate_policy: episodes and episode_length must be > 0, got {episodes}, {episode_length}")
    env = HarvestEnv()
    try:
        base_p = harvest_params(**env_overrides, treatment=int(bool(treatment)), episode_length=episode_length)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    keys, communities = episode_keys(seed, episodes)
    tokens = token_communities(swap_token, communities)
    comm = jnp.asarray(communities)
    resident = isinstance(act, str) and act == "resident"
    if isinstance(act, str) and not resident:
        raise ConfigError(f"evaluate_policy: act must be a function or 'resident', got {act!r}")

    def run(baseline: bool, fn: Any):
        ps = community_params(base_p, comm, episode_length, baseline=baseline)
        tok = jnp.asarray(tokens if tokens is not None else communities)
        play = lambda k, p, t: play_episode_act(env, fn, k, p, episode_length, None if tokens is None else t)
        return jax.tree.map(np.asarray, jax.jit(jax.vmap(play))(keys, ps, tok))

    base = run(True, None)
    ego = base if resident else run(False, act)
    penalty = float(base_p.sanction_penalty)
    em = {k: np.asarray(v, np.float64) for k, v in episode_metrics(ego, base, float(episode_length), penalty).items()}
    if tokens is not None:
        em["plants_token"] = np.stack([em[f"plants_{c.lower()}"] for c in COMMUNITY_NAMES], -1)[np.arange(tokens.size), tokens]
    by_comm = per_community(em, communities, penalty)
    base_np = {k: np.asarray(v, np.float64) for k, v in baseline_metrics(base, float(episode_length), penalty).items()}
    return {
        "episodes_per_community": episodes, "episode_length": episode_length, "seed": seed,
        "treatment": bool(treatment), "swap_token": swap_token if tokens is not None else None,
        "per_community": by_comm, "summary": distributional_summary(by_comm),
        "baseline": {"per_community": per_community(base_np, communities, penalty)},
        "episodes": {"community": [COMMUNITY_NAMES[c] for c in communities],
                     **{k: em[k].tolist() for k in ("value_gap", "r_eval", "compliance_pct", "minus10_received")}},
    }


# ----------------------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------------------
def evaluate_runs(run_dirs: Sequence[str], episodes: int = 20, episode_length: int | None = None, greedy: bool = False,
                  best: bool = False, seed: int = 42, out_dir: str | None = None, checkpoint: str | int | None = None,
                  member: str | int | None = None, swap_token: str | None = None) -> dict:
    """Evaluates the runs, writes ``eval.json`` and ``eval.png``; returns the report (with the
    printed ``table`` text). ``checkpoint``: ``"latest"``, ``"best"`` or a saved step (update) of
    every run (default: ``best`` chooses); ``member``: that member of each run alone (default
    every member). ``swap_token``: the intervention (:func:`token_communities`): treatment
    members see another community's token while the world keeps its own rule; the report adds
    ``plants_token`` (plantings in the token's colour) per episode and community."""
    from rljax.runner import find_run_dir
    from rljax.trained import restore_members

    from rljax.experiments.communities.episodes import baseline_metrics, episode_metrics

    keys, communities = episode_keys(seed, episodes)
    tokens = token_communities(swap_token, communities)
    members, episode_gaps, per_episode = [], {}, {}
    baseline = None
    held_out, steps_used, updates = set(), None, []
    for path in run_dirs:
        run_dir = find_run_dir(path)
        if not os.path.isfile(os.path.join(run_dir, "run.json")):
            raise ConfigError(f"run not found: {path} (no run.json)")
        which = checkpoint if checkpoint is not None else ("best" if best else "latest")
        runner, state = restore_members(run_dir, which, member)
        if runner.experiment.name != "communities":
            raise ConfigError(f"{path} is a {runner.experiment.name!r} run, not a communities run")
        cfg = runner.cfg
        steps = int(episode_length or cfg.env.episode_length)
        if steps_used not in (None, steps):
            raise ConfigError(f"the runs have different episode lengths ({steps_used} vs {steps}); pass --episode-length")
        steps_used = steps
        if cfg.sampling.held_out:
            held_out.add(cfg.sampling.held_out)
        updates.append(runner.update_count(state))
        from rljax import backend

        loop = backend.member_loop(cfg.runner.member_loop, conv_heavy=True)
        ego, base = play_run(runner, state, keys, communities, steps, greedy, loop, tokens)
        penalty = float(np.asarray(state.env_params.harvest.sanction_penalty).reshape(-1)[0])
        if baseline is None:
            baseline = baseline_metrics(base, float(steps), penalty)
        allowed = [c for c in COMMUNITY_NAMES if c != cfg.sampling.held_out]
        for i, m in enumerate(runner.members):
            sums = {k: v[i] for k, v in ego.items()}
            em = {k: np.asarray(v, np.float64) for k, v in episode_metrics(sums, base, float(steps), penalty).items()}
            if tokens is not None:
                em["plants_token"] = np.stack([em[f"plants_{c.lower()}"] for c in COMMUNITY_NAMES], -1)[
                    np.arange(tokens.size), tokens]
            name = m.name if len(run_dirs) == 1 else f"{os.path.basename(run_dir.rstrip('/'))}/{m.name}"
            by_comm = per_community(em, communities, penalty)
            members.append({
                "name": name, "run": run_dir, "arm": m.variant, "seed": m.seed, "hparams": m.hparams,
                "held_out": cfg.sampling.held_out or None, "sampling": cfg.sampling.mode,
                "per_community": by_comm,
                "summary": distributional_summary(by_comm),
                "summary_trained": distributional_summary(by_comm, allowed) if len(allowed) < NUM_COMMUNITIES else None,
                "training_balance": training_balance(run_dir, m.name, allowed),
            })
            episode_gaps[name] = em["value_gap"]
            per_episode[name] = {k: em[k].tolist() for k in ("value_gap", "r_eval", "compliance_pct", "minus10_received")}
    base_np = {k: np.asarray(v, np.float64) for k, v in baseline.items()}
    base_by_comm = per_community(base_np, communities, penalty)
    arms = {}
    for arm in ("treatment", "control"):
        mine = [m for m in members if m["arm"] == arm]
        if not mine:
            continue
        arms[arm] = {
            "members": [m["name"] for m in mine],
            **{k: _mean_std([m["summary"][k] for m in mine]) for k in
               ("avg_value_gap", "worst_value_gap", "best_value_gap", "avg_compliance_pct", "worst_compliance_pct",
                "avg_sanction_regret")},
            "per_community": {c: {k: _mean_std([m["per_community"][c][k]["mean"] for m in mine]) for k in METRICS}
                              for c in COMMUNITY_NAMES},
        }
    report = {
        "runs": [find_run_dir(p) for p in run_dirs], "updates": updates, "episodes_per_community": episodes,
        "episode_length": steps_used, "policy": "greedy" if greedy else "stochastic", "seed": seed,
        "checkpoint": which, "held_out": sorted(held_out),
        "swap_token": None if tokens is None else swap_token,
        "baseline": {"per_community": base_by_comm},
        "members": members, "arms": arms, "criteria": criteria(members, episode_gaps),
        "episodes": {"community": [COMMUNITY_NAMES[c] for c in communities],
                     **({} if tokens is None else {"token": [COMMUNITY_NAMES[c] for c in tokens]}),
                     "baseline_r_eval": base_np["r_eval"].tolist(), **per_episode},
    }
    report["table"] = format_table(report)
    out_dir = out_dir or os.path.join(report["runs"][0], "communities_eval")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "eval.json"), "w") as f:
        json.dump({k: v for k, v in report.items() if k != "table"}, f, indent=1, default=_json_default)
    plot_report(report, os.path.join(out_dir, "eval.png"))
    report["out_dir"] = out_dir
    return report


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    raise TypeError(type(x))


def format_table(report: dict) -> str:
    lines = [f"communities eval: {', '.join(report['runs'])} @ update {', '.join(map(str, report['updates']))}; "
             f"{report['episodes_per_community']} episodes x {NUM_COMMUNITIES} communities of {report['episode_length']} "
             f"steps; {report['policy']} policy; baseline on the same keys"
             + (f"; held out in training: {', '.join(report['held_out'])}" if report["held_out"] else "")]
    head = f"{'condition':<10}{'member':<24}{'community':<10}" + "".join(f"{h:>{w}}" for h, _, w, _ in TABLE)
    lines += ["", "per community (means over episodes; dV = R_eval(baseline) - R_eval(ego), per episode)", head,
              "-" * len(head)]

    def row(cond, name, c, pc):
        return f"{cond:<10}{name[:23]:<24}{c:<10}" + "".join(f"{pc[k]['mean']:>{w}.{d}f}" for _, k, w, d in TABLE)

    for c in COMMUNITY_NAMES:
        lines.append(row("baseline", "residents", c, report["baseline"]["per_community"][c]))
    for m in report["members"]:
        for c in COMMUNITY_NAMES:
            mark = c + ("*" if m["held_out"] == c else "")
            lines.append(row(m["arm"], m["name"], mark, m["per_community"][c]))
    if report["held_out"]:
        lines.append("(* held out in training)")
    if report.get("swap_token"):
        lines += ["", f"intervention --swap-token {report['swap_token']}: treatment members saw another community's "
                  "token (the world kept its rule); plantings in the permitted vs the token's colour, correct-sanction rate"]
        for m in report["members"]:
            if m["arm"] != "treatment":
                continue
            for c in COMMUNITY_NAMES:
                pc = m["per_community"][c]
                lines.append(f"  {m['name'][:23]:<24}{c:<7} plants permitted {pc['plants_permitted']['mean']:6.2f}  "
                             f"token {pc['plants_token']['mean']:6.2f}  correct-sanction rate "
                             f"{pc['correct_sanction_rate']['mean']:.2f}  zaps/1k {pc['zaps_per_1k']['mean']:.1f}")
    lines += ["", "distributional summary per member",
              f"{'member':<28}{'avg dV':>8}{'worst dV':>10}{'(comm)':>8}{'best dV':>9}{'(comm)':>8}"
              f"{'avg compl%':>11}{'worst compl%':>13}{'train eps R/G/B':>18}{'balance':>9}"]
    for m in report["members"]:
        s, b = m["summary"], m["training_balance"]
        eps = "/".join(f"{b['episodes'][c]:.0f}" for c in COMMUNITY_NAMES)
        lines.append(f"{m['name'][:27]:<28}{s['avg_value_gap']:>8.2f}{s['worst_value_gap']:>10.2f}{s['worst_community']:>8}"
                     f"{s['best_value_gap']:>9.2f}{s['best_community']:>8}{s['avg_compliance_pct']:>11.1f}"
                     f"{s['worst_compliance_pct']:>13.1f}{eps:>18}{b.get('balance_ratio', float('nan')):>9.2f}")
    lines += ["", "arms (mean +- std over seeds)"]
    for arm, a in report["arms"].items():
        f = lambda k: f"{a[k]['mean']:.2f} +- {a[k]['std']:.2f}"
        lines.append(f"{arm:<10} n={a['avg_value_gap']['n']}: avg dV {f('avg_value_gap')}, worst dV {f('worst_value_gap')}, "
                     f"best dV {f('best_value_gap')}, compliance avg {f('avg_compliance_pct')} worst {f('worst_compliance_pct')}, "
                     f"SR {f('avg_sanction_regret')}")
    crit = report["criteria"]
    lines += ["", f"success criteria (spec): strong = avg dV < {STRONG[0]} and worst < {STRONG[1]}; acceptable = avg dV < "
              f"{ACCEPTABLE[0]} and worst < {ACCEPTABLE[1]}; both with treatment beating control; failure = avg dV > "
              f"{FAILURE_AVG}, worst >> avg, or treatment ~ control"]
    for arm, a in crit["arms"].items():
        lines.append(f"  {arm}: {a['level']} ({a['reason']})")
    lines.append(f"  treatment beats control: {crit['treatment_beats_control']} - {crit['comparison']}")
    lines.append(f"  verdict: {crit['verdict'].upper()} ({crit['verdict_reason']})")
    return "\n".join(lines)


ARM_COLORS = {"baseline": "0.4", "treatment": "tab:purple", "control": "tab:orange"}


def plot_report(report: dict, path: str) -> None:
    """Faceted figure: rows value gap / compliance % / -10s received, one column per community;
    per arm the seeds' means (dots) and their mean +- std; the baseline as a reference."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = (("value_gap", "value gap dV (per episode)"), ("compliance_pct", "compliance %"),
            ("minus10_received", "-10s received per episode"))
    conds = ["baseline"] + [a for a in ("treatment", "control") if a in report["arms"]]
    fig, axes = plt.subplots(len(rows), NUM_COMMUNITIES, figsize=(3.4 * NUM_COMMUNITIES, 2.6 * len(rows)),
                             sharey="row", squeeze=False)
    for j, c in enumerate(COMMUNITY_NAMES):
        for i, (metric, label) in enumerate(rows):
            ax = axes[i, j]
            for x, cond in enumerate(conds):
                if cond == "baseline":
                    vals = [report["baseline"]["per_community"][c][metric]["mean"]] if metric != "value_gap" else [0.0]
                else:
                    vals = report["arms"][cond]["per_community"][c][metric]["values"]
                vals = np.asarray(vals)
                ax.scatter(np.full(vals.size, x) + np.linspace(-0.12, 0.12, vals.size), vals, s=14,
                           color=ARM_COLORS[cond], alpha=0.7, zorder=3)
                ax.errorbar([x], [vals.mean()], yerr=[vals.std(ddof=1) if vals.size > 1 else 0.0], fmt="_",
                            color="k", capsize=6, markersize=18, zorder=4)
            ax.set_xticks(range(len(conds)), conds, fontsize=8)
            ax.set_xlim(-0.6, len(conds) - 0.4)
            if metric == "value_gap":
                ax.axhline(0, color="0.7", lw=0.8, zorder=1)
            if i == 0:
                title = c + (" (held out)" if c in report["held_out"] else "")
                ax.set_title(title, color={"RED": "firebrick", "GREEN": "forestgreen", "BLUE": "royalblue"}[c])
            if j == 0:
                ax.set_ylabel(label, fontsize=9)
            ax.grid(alpha=0.3, axis="y")
    crit = report["criteria"]
    lines = [f"{arm}: avg dV {a['avg_value_gap']['mean']:.1f}, worst {a['worst_value_gap']['mean']:.1f}"
             for arm, a in report["arms"].items()]
    fig.suptitle(f"{report['episodes_per_community']} episodes/community of {report['episode_length']} steps, "
                 f"{report['policy']}; " + "; ".join(lines) + f"; verdict: {crit['verdict']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.communities eval",
                                description="distributional evaluation: every member x community, with the resident "
                                            "baseline on the same keys; table, eval.json, eval.png, success criteria")
    p.add_argument("run_dirs", nargs="+", help="one or more communities run directories (e.g. a treatment_multi and a "
                                              "control_multi run, compared seed by seed)")
    p.add_argument("--episodes", type=int, default=20, help="episodes per community (default 20)")
    p.add_argument("--episode-length", type=int, default=None, help="steps per episode (default: the run's env.episode_length)")
    p.add_argument("--greedy", action="store_true", help="act with the policy's mode instead of sampling")
    p.add_argument("--best", action="store_true", help="use the best checkpoint (by in-training R_eval) instead of the latest")
    p.add_argument("--checkpoint", type=int, default=None, metavar="STEP",
                   help="evaluate the checkpoint saved at update STEP (any kept step, latest or best)")
    p.add_argument("--swap-token", default=None, metavar="TOKEN",
                   help="intervention: treatment members see another community's token (shift = the next "
                        "community, or RED/GREEN/BLUE) while the world keeps its rule")
    p.add_argument("--seed", type=int, default=42, help="seed of the episode keys (default 42)")
    p.add_argument("--out", default=None, help="output folder (default FIRST_RUN/communities_eval)")
    args = p.parse_args(list(argv))
    if args.episodes <= 0:
        raise ConfigError(f"--episodes must be > 0, got {args.episodes}")
    if args.episode_length is not None and args.episode_length <= 0:
        raise ConfigError(f"--episode-length must be > 0, got {args.episode_length}")
    for d in args.run_dirs:
        if not os.path.exists(d):
            raise ConfigError(f"run not found: {d}")
    if args.checkpoint is not None and args.best:
        raise ConfigError("--checkpoint and --best exclude each other")
    token_communities(args.swap_token, np.zeros(1, np.int64))  # validates --swap-token before any work
    report = evaluate_runs(args.run_dirs, episodes=args.episodes, episode_length=args.episode_length, greedy=args.greedy,
                           best=args.best, seed=args.seed, out_dir=args.out, checkpoint=args.checkpoint,
                           swap_token=args.swap_token)
    print(report["table"])
    print(f"\nwritten: {os.path.join(report['out_dir'], 'eval.json')}, eval.png")
    return 0


# ----------------------------------------------------------------------------------------
# Training curves (``python -m experiments.communities curves RUN_DIR``)
# ----------------------------------------------------------------------------------------
CURVES = (("episode_r_eval", "training R_eval / episode"), ("compliance_pct", "compliance %"),
          ("zaps_per_1k", "zap presses / 1k steps"), ("episode_minus10_received", "-10s received / episode"),
          ("episode_plants_permitted", "permitted-colour plantings / episode"),
          ("correct_sanction_rate", "correct-sanction rate"))


def plot_curves(run_dir: str, path: str) -> dict:
    """Treatment vs control training curves from ``metrics.csv``: per arm the mean over seeds and
    the min-max band, one row per metric, one column for all episodes and one per community.
    Returns the final values per arm (mean and std over seeds of the last 20% of updates)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import pyarrow.csv as pcsv

    t = pcsv.read_csv(os.path.join(run_dir, "metrics.csv")).to_pydict()
    names, steps = np.asarray(t["name"]).astype(str), np.asarray(t["env_steps"], np.float64)
    cols = [("all", "")] + [(c, "_" + c.lower()) for c in COMMUNITY_NAMES]
    fig, axes = plt.subplots(len(CURVES), len(cols), figsize=(3.3 * len(cols), 2.3 * len(CURVES)), sharex=True,
                             sharey="row", squeeze=False)
    final: dict[str, dict] = {}
    for arm in ("treatment", "control"):
        members = sorted({n for n in names if n.startswith(arm + "_")})
        if not members:
            continue
        for i, (metric, label) in enumerate(CURVES):
            for j, (cname, suffix) in enumerate(cols):
                key = metric + suffix
                if key not in t:
                    continue
                v = np.asarray(t[key], np.float64)
                if not all(np.isfinite(v[names == m]).any() for m in members):
                    continue  # e.g. a rate that stayed undefined (no sanction landed) for a member
                xs = np.unique(steps[names == members[0]])
                ys = np.stack([np.interp(xs, steps[names == m][np.isfinite(v[names == m])],
                                         v[names == m][np.isfinite(v[names == m])]) for m in members])
                ax = axes[i, j]
                ax.plot(xs, ys.mean(0), color=ARM_COLORS[arm], label=f"{arm} (n={len(members)})")
                ax.fill_between(xs, ys.min(0), ys.max(0), color=ARM_COLORS[arm], alpha=0.2, lw=0)
                if i == 0:
                    ax.set_title(cname)
                if j == 0:
                    ax.set_ylabel(label, fontsize=9)
                if i == len(CURVES) - 1:
                    ax.set_xlabel("ego-steps per member")
                ax.grid(alpha=0.3)
                tail = ys[:, int(0.8 * ys.shape[1]):].mean(1)
                final.setdefault(arm, {})[key] = {"mean": float(tail.mean()), "std": float(tail.std(ddof=1)) if tail.size > 1 else 0.0}
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"training curves: mean over seeds, band = min..max ({os.path.basename(run_dir.rstrip('/'))})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return final


def curves_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.communities curves",
                                description="treatment vs control training curves (overall and per community) from metrics.csv")
    p.add_argument("run_dir")
    p.add_argument("--out", default=None, help="PNG path (default RUN_DIR/curves.png)")
    args = p.parse_args(list(argv))
    if not os.path.isfile(os.path.join(args.run_dir, "metrics.csv")):
        raise ConfigError(f"run not found: {args.run_dir} (no metrics.csv)")
    out = args.out or os.path.join(args.run_dir, "curves.png")
    final = plot_curves(args.run_dir, out)
    print("last 20% of updates, mean +- std over seeds:")
    for arm, f in final.items():
        print(f"  {arm:<10}" + ", ".join(f"{k} {v['mean']:.2f} +- {v['std']:.2f}" for k, v in f.items() if not k.endswith(("_red", "_green", "_blue"))))
    print(f"written: {out}")
    return 0
