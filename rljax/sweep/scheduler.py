"""Sweeps and validations as sets of jobs.

Finished jobs are skipped on rerun, and each call to ``train_fn`` trains many
(configuration, seed) pairs as members of one compiled program.

The ``train_fn`` contract (the engine supplies it, see ``rljax.sweep.engine.make_train_fn``)::

    train_fn(configs: list[dict], seeds: list[int]) -> list[dict]

* ``configs`` are hyperparameter overrides (keys of the search space, e.g. ``lr``; ``{}`` means
  the experiment's defaults); every config of one call has the same keys;
* it trains the cross product, config-major: result ``i * len(seeds) + j`` is
  ``(configs[i], seeds[j])``;
* each result is a JSON-serialisable metrics dict with at least a float ``eval_return``
  (NaN is allowed for a diverged run and ranks last);
* it must be a deterministic function of (config, seed): a job is trained once and its
  record is reused by reruns;
* an engine that trains several task variants per job adds ``eval_return_by_variant``
  (variant -> return; ``eval_return`` is then their mean), kept per variant in the summaries;
* in a multi-process run every process calls it with the same arguments (SPMD); only the
  primary process writes the results table and summaries.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any, Callable, Sequence

from rljax.errors import ConfigError
from rljax.optional import require
from rljax.sweep.jobs import Job, ResultsTable, plain
from rljax.sweep.seeds import check_selection, check_validation, recorded_selection_seeds, selection_seeds
from rljax.sweep.space import Space, get_space

TrainFn = Callable[[list[dict], list[int]], list[dict]]
Log = Callable[[str], None]

# The seed document's validation seeds (both lists are spelled out there; all in the validation
# stream of rljax.sweep.seeds): phase 1 trains the sweep's top configurations on these ten ...
PHASE1_SEEDS = (42, 123, 456, 789, 1011, 1314, 1617, 1920, 2223, 2526)
# ... and phase 2 adds these ten for the top 3 of phase 1 (20 seeds each).
PHASE2_SEEDS = (3031, 3334, 3637, 3940, 4243, 4546, 4849, 5152, 5455, 5758)

RESULTS_FILE = "results.jsonl"


def _is_primary() -> bool:
    import jax

    return jax.process_index() == 0


def _job(experiment: str, base_config: dict, section: str, hparams: dict, seed: int, kind: str,
         variant: str | None = None) -> Job:
    config = json.loads(json.dumps(plain(base_config)))  # deep, JSON-ready copy
    node = config.setdefault(section, {})
    if not isinstance(node, dict):
        raise ConfigError(f"base config section {section!r} is not a mapping")
    node.update(hparams)
    return Job(experiment, config, int(seed), kind, variant)


def _write_json(path: str, obj: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # readers never see a half-written summary


def _objective(returns: Sequence[float]) -> float:
    """Mean eval_return; NaN (a diverged run) makes the trial rank last."""
    return float(sum(returns) / len(returns)) if returns else float("nan")


def _rank_key(score: float) -> float:
    return -score if math.isfinite(score) else math.inf


class _Runner:
    """Trains missing jobs in batches and remembers every result it has seen."""

    def __init__(self, experiment: str, base_config: dict, section: str, table: ResultsTable, train_fn: TrainFn,
                 batch: int, primary: bool, log: Log, variant: str | None = None):
        self.experiment, self.base, self.section, self.variant = experiment, base_config, section, variant
        self.table, self.train_fn, self.batch, self.primary, self.log = table, train_fn, batch, primary, log
        self.results = {jid: r["metrics"] for jid, r in table.by_id().items()}
        self.trained = 0

    def job(self, hparams: dict, seed: int, kind: str) -> Job:
        return _job(self.experiment, self.base, self.section, hparams, seed, kind, self.variant)

    def metrics(self, hparams: dict, seed: int) -> dict:
        return self.results[self.job(hparams, seed, "").id]

    def ensure(self, configs: Sequence[dict], seeds: Sequence[int], kind: str) -> None:
        """Trains every (config, seed) pair that has no result yet."""
        # Group configurations by the exact seeds they miss (and their keys), so every call
        # is a full cross product with nothing trained twice.
        groups: dict[tuple, list[dict]] = {}
        seen: set[str] = set()
        for hp in configs:
            missing = []
            for s in seeds:
                jid = self.job(hp, s, kind).id
                if jid not in self.results and jid not in seen:
                    missing.append(int(s))
                    seen.add(jid)
            if missing:
                groups.setdefault((tuple(missing), tuple(sorted(hp))), []).append(dict(hp))
        for (missing, _), hps in groups.items():
            for i in range(0, len(missing), self.batch):
                seed_chunk = list(missing[i:i + self.batch])
                per_call = max(1, self.batch // len(seed_chunk))
                for j in range(0, len(hps), per_call):
                    self._train(hps[j:j + per_call], seed_chunk, kind)

    def _train(self, hps: list[dict], seeds: list[int], kind: str) -> None:
        t0 = time.perf_counter()
        results = self.train_fn([dict(h) for h in hps], list(seeds))
        wall = time.perf_counter() - t0
        n = len(hps) * len(seeds)
        if not isinstance(results, (list, tuple)) or len(results) != n:
            raise RuntimeError(f"train_fn returned {len(results) if hasattr(results, '__len__') else results!r} "
                               f"results for {len(hps)} configuration(s) x {len(seeds)} seed(s) = {n} jobs")
        it = iter(results)
        for hp in hps:
            for s in seeds:
                m = dict(next(it))
                if "eval_return" not in m:
                    raise RuntimeError(f"train_fn result has no 'eval_return' (keys: {sorted(m)})")
                m["eval_return"] = float(m["eval_return"])
                job = self.job(hp, s, kind)
                self.results[job.id] = m
                if self.primary:
                    # Per-job wall time is the batch's time shared equally by its members.
                    self.table.append(job, m, wall / n)
        self.trained += n
        self.log(f"  {kind}: trained {len(hps)} configuration(s) x {len(seeds)} seed(s) in {wall:.1f}s")


def run_sweep(experiment: str, base_config: dict, space: Space | str, trials: int, batch: int, seed: int,
              out_dir: str, train_fn: TrainFn, *, train_seeds: Sequence[int] | None = None,
              sampler: str = "random", startup_trials: int = 20, log: Log = print,
              primary: bool | None = None, variant: str | None = None) -> dict:
    """Random search over ``space``.

    Trial ``i`` takes ``space.sample(seed, i)`` (``seed`` only samples hyperparameters); every
    trial trains on the same ``train_seeds`` from the selection stream (default
    ``selection_seeds(1)``; common random numbers make trials comparable; a seed outside the
    stream raises ``ConfigError``, see :mod:`rljax.sweep.seeds`), and its objective is the mean
    ``eval_return`` over them. ``variant``: the task variant the engine trains (part of every
    job id; ``None``: all of the experiment's variants together, as ``train_fn`` does it). Up to ``batch`` members (trials x train seeds) go to one
    ``train_fn`` call; jobs already in ``out_dir/results.jsonl`` are not trained again. Writes
    ``out_dir/sweep.json`` (trials ranked best first) and returns its content.

    ``sampler="tpe"`` (needs ``optuna``): the first ``startup_trials`` trials are the random
    ones above, then optuna's TPE proposes ``batch // len(train_seeds)`` trials per round
    through ask/tell, seeded with ``seed`` (log-normal parameters become log-uniform for TPE).
    Such a sweep is reproducible given (seed, batch, train seeds) and a rerun trains nothing
    already done, because the same history makes TPE propose the same trials.
    """
    if sampler not in ("random", "tpe"):
        raise ConfigError(f"unknown sweep sampler {sampler!r}; available: random, tpe")
    if sampler == "tpe":  # before any trial trains
        require("optuna", "--sampler tpe")
    space = get_space(space) if isinstance(space, str) else space
    if trials <= 0 or batch <= 0:
        raise ConfigError(f"trials and batch must be > 0, got trials={trials}, batch={batch}")
    train_seeds = check_selection(selection_seeds(1) if train_seeds is None else train_seeds)
    primary = _is_primary() if primary is None else primary
    os.makedirs(out_dir, exist_ok=True)
    runner = _Runner(experiment, base_config, space.section, ResultsTable(os.path.join(out_dir, RESULTS_FILE)),
                     train_fn, batch, primary, log, variant)
    log(f"sweep {experiment}/{space.name} ({sampler}): {trials} trials x {len(train_seeds)} seed(s), batch {batch}")
    if sampler == "random":
        samples = space.sample_trials(seed, trials)
        runner.ensure(samples, train_seeds, "sweep")
    else:
        samples = _tpe_samples(space, seed, trials, max(1, batch // len(train_seeds)), startup_trials,
                               lambda hps: [_objective([runner.metrics(hp, s)["eval_return"] for s in train_seeds])
                                            for hp in _ensured(runner, hps, train_seeds)])
    trials_out = []
    for i, hp in enumerate(samples):
        returns = [runner.metrics(hp, s)["eval_return"] for s in train_seeds]
        objective = _objective(returns)
        row = {"trial": i, "hparams": hp, "objective": objective, "eval_return": objective, "eval_returns": returns,
               "job_ids": [runner.job(hp, s, "sweep").id for s in train_seeds]}
        by_variant = _by_variant([runner.metrics(hp, s) for s in train_seeds])
        if by_variant:
            row["eval_returns_by_variant"] = by_variant
        trials_out.append(row)
    ranked = sorted(trials_out, key=lambda r: (_rank_key(r["objective"]), r["trial"]))
    summary = {"experiment": experiment, "space": space.name, "sampler": sampler, "section": space.section,
               "space_params": {k: {"distribution": type(d).__name__, **dataclasses.asdict(d)}
                                for k, d in space.params.items()},
               "trials": trials,
               "seed": int(seed), "selection_seeds": train_seeds, "train_seeds": train_seeds, "variant": variant,
               "batch": batch, "objective": "mean eval_return" + (" over variants" if variant is None else ""),
               "base_config": plain(base_config), "trained_now": runner.trained, "ranked": ranked}
    if primary:
        _write_json(os.path.join(out_dir, "sweep.json"), summary)
    log(f"sweep done: {runner.trained} job(s) trained now; best trial {ranked[0]['trial']} "
        f"objective {ranked[0]['objective']:.4g}")
    return summary


def _by_variant(metrics: Sequence[dict]) -> dict[str, list[float]]:
    """variant -> one return per job, where the engine scored variants separately."""
    if not metrics or "eval_return_by_variant" not in metrics[0]:
        return {}
    return {v: [float(m["eval_return_by_variant"][v]) for m in metrics] for v in metrics[0]["eval_return_by_variant"]}


def _ensured(runner: _Runner, hps: list[dict], seeds: Sequence[int]) -> list[dict]:
    runner.ensure(hps, seeds, "sweep")
    return hps


def _tpe_samples(space: Space, seed: int, trials: int, per_round: int, startup: int,
                 evaluate: Callable[[list[dict]], list[float]]) -> list[dict]:
    """Trials proposed by optuna's TPE via ask/tell; ``evaluate`` trains a round of trials."""
    import optuna

    from rljax.sweep.space import LogNormal

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {k: optuna.distributions.FloatDistribution(d.low, d.high, log=isinstance(d, LogNormal))
             for k, d in space.params.items()}
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=int(seed), n_startup_trials=0))
    samples: list[dict] = []
    while len(samples) < trials:
        start = len(samples)
        n = min(per_round, trials - start)
        startup_hps = [space.sample(seed, t) for t in range(start, min(start + n, startup))]
        asked = [study.ask(dists) for _ in range(n - len(startup_hps))] if len(startup_hps) < n else []
        hps = startup_hps + [{k: float(t.params[k]) for k in space.params} for t in asked]
        scores = evaluate(hps)
        for hp, score in zip(startup_hps, scores):
            if math.isfinite(score):
                study.add_trial(optuna.trial.create_trial(params=hp, distributions=dists, value=score))
        for t, score in zip(asked, scores[len(startup_hps):]):
            if math.isfinite(score):
                study.tell(t, score)
            else:
                study.tell(t, state=optuna.trial.TrialState.FAIL)
        samples += hps
    return samples


def run_validation(sweep_dir: str, top_k: int, seeds: Sequence[int] | None, baseline_config: dict | None,
                   train_fn: TrainFn, extra_seeds_top: int = 3, *, extra_seeds: Sequence[int] | None = None,
                   batch: int = 64, out_dir: str | None = None, log: Log = print,
                   primary: bool | None = None) -> dict:
    """Re-runs the sweep's best configurations with explicit seed lists.

    Phase 1: the top ``top_k`` trials of ``sweep_dir/sweep.json`` and the baseline on ``seeds``
    (default: the seed document's ten, ``PHASE1_SEEDS``). Every validation seed must lie in the
    validation stream and must not be one of the sweep's recorded selection seeds
    (``ConfigError`` otherwise; :mod:`rljax.sweep.seeds`), so no selection run is reused. Phase 2: the ``extra_seeds_top`` best
    of phase 1 (by mean ``eval_return``) and the baseline also on ``extra_seeds`` (default
    ``PHASE2_SEEDS``), 20 seeds in all. ``baseline_config`` holds the baseline's
    hyperparameter overrides (``None``/``{}``: the experiment's defaults in the sweep's base
    config). Validation jobs already in the results table (an earlier validation) are reused. Writes
    ``validation.json`` into ``out_dir`` (default ``sweep_dir``) and returns its content.
    """
    path = os.path.join(sweep_dir, "sweep.json")
    if not os.path.isfile(path):
        raise ConfigError(f"{sweep_dir} is not a sweep directory (no sweep.json)")
    if top_k <= 0 or batch <= 0 or extra_seeds_top < 0:
        raise ConfigError(f"top_k and batch must be > 0 and extra_seeds_top >= 0, got {top_k}, {batch}, "
                          f"{extra_seeds_top}")
    seeds = list(PHASE1_SEEDS if seeds is None else seeds)
    extra = list(PHASE2_SEEDS if extra_seeds is None else extra_seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"validation seeds must be distinct and non-empty, got {seeds}")
    extra = [int(s) for s in extra if s not in seeds]
    out_dir = out_dir or sweep_dir
    primary = _is_primary() if primary is None else primary
    with open(path) as f:
        sweep = json.load(f)
    selection = recorded_selection_seeds(sweep)
    seeds = check_validation(seeds, selection)
    extra = check_validation(extra, selection)
    runner = _Runner(sweep["experiment"], sweep["base_config"], sweep.get("section", "ppo"),
                     ResultsTable(os.path.join(sweep_dir, RESULTS_FILE)), train_fn, batch, primary, log,
                     sweep.get("variant"))

    candidates = {f"trial{r['trial']}": r for r in sweep["ranked"][:top_k]}
    configs = {name: dict(r["hparams"]) for name, r in candidates.items()}
    configs["baseline"] = dict(baseline_config or {})

    log(f"validation phase 1: {len(configs)} configurations x {len(seeds)} seeds")
    runner.ensure(list(configs.values()), seeds, "validate")
    phase1 = {n: _objective([runner.metrics(hp, s)["eval_return"] for s in seeds]) for n, hp in configs.items()}
    top = sorted(candidates, key=lambda n: (_rank_key(phase1[n]), candidates[n]["trial"]))[:extra_seeds_top]
    phase2 = top + ["baseline"] if top and extra else []
    if phase2:
        log(f"validation phase 2: {', '.join(phase2)} x {len(extra)} more seeds")
        runner.ensure([configs[n] for n in phase2], extra, "validate")

    result_configs = {}
    for name, hp in configs.items():
        used = seeds + extra if name in phase2 else seeds
        result_configs[name] = {
            "hparams": hp,
            "sweep_trial": candidates[name]["trial"] if name in candidates else None,
            "sweep_score": candidates[name]["objective"] if name in candidates else None,
            "phase1_mean": phase1[name],
            "seeds": used,
            "scores": [runner.metrics(hp, s)["eval_return"] for s in used],
            "job_ids": [runner.job(hp, s, "validate").id for s in used],
        }
        by_variant = _by_variant([runner.metrics(hp, s) for s in used])
        if by_variant:
            result_configs[name]["scores_by_variant"] = by_variant
    result = {"experiment": sweep["experiment"], "sweep_dir": os.path.abspath(sweep_dir), "space": sweep["space"],
              "top_k": top_k, "selection_seeds": selection, "phase1_seeds": seeds, "phase2_seeds": extra,
              "phase2": phase2, "variant": sweep.get("variant"),
              "trained_now": runner.trained, "configs": result_configs}
    if primary:
        os.makedirs(out_dir, exist_ok=True)
        _write_json(os.path.join(out_dir, "validation.json"), result)
    log(f"validation done: {runner.trained} job(s) trained now")
    return result
