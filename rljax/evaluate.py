"""``rljax eval RUN_DIR``: the dispatch to the experiment's own evaluation, and the evaluation of
the experiments that have no other: greedy episode returns (:func:`returns`).

An experiment names its evaluation in ``Experiment.evaluate`` (:class:`rljax.experiment.
EvalRequest` -> exit status): distributional for communities, head-to-head and scripted
baselines for pursuit, the oracle comparison for EMPO, ``verify`` for Goodhart, returns for the
CartPole-style PPO experiments.
"""
from __future__ import annotations

import json
import os

import numpy as np

from rljax.errors import ConfigError
from rljax.experiment import EvalRequest


def evaluate_run(req: EvalRequest) -> int:
    """Runs the evaluation of the experiment that trained ``req.run_dir`` (from its
    ``run.json``); a one-line :class:`ConfigError` where that experiment has none."""
    from rljax.checkpoint import read_run_json
    from rljax.experiment import load_experiment
    from rljax.runner import find_run_dir

    if req.episodes is not None and req.episodes <= 0:
        raise ConfigError(f"--episodes must be > 0, got {req.episodes}")
    run_dir = find_run_dir(req.run_dir)
    exp = load_experiment(read_run_json(run_dir)["experiment"])
    if exp.evaluate is None:
        raise ConfigError(f"experiment {exp.name!r} has no evaluation (rljax eval); its runs' metrics are in "
                          f"{os.path.join(run_dir, 'metrics.csv')}")
    return exp.evaluate(EvalRequest(run_dir, req.episodes, req.checkpoint, req.member, req.out))


def returns(req: EvalRequest) -> int:
    """Greedy episode returns of every member (or ``req.member``): the runner's own evaluation
    (its keys, its ``eval_max_steps``) with ``req.episodes`` episodes (default the run's
    ``runner.eval_episodes``). Prints one line per member; writes ``eval.json`` into
    ``req.out`` when given."""
    from rljax.trained import member_index, restore

    extra = {} if req.episodes is None else {"eval_episodes": req.episodes}
    runner, state = restore(req.run_dir, req.checkpoint, **extra)
    picks = range(runner.num_members) if req.member is None else [member_index(runner, req.member)]
    rets = np.asarray(runner.evaluate(state)["return"])
    src = runner.restored_from
    update = int(np.max(np.asarray(runner.update_count(state))))
    print(f"{runner.experiment.name} @ update {update} (checkpoint {src['which']}/{src['step']}), "
          f"{rets.shape[1]} greedy episodes per member")
    rows = []
    for i in picks:
        m, r = runner.members[i], rets[i]
        print(f"  {m.name:<32} return {r.mean():9.2f} +- {r.std():.2f}")
        rows.append({"member": m.name, "mean": float(r.mean()), "std": float(r.std()), "returns": r.tolist()})
    if req.out is not None:
        os.makedirs(req.out, exist_ok=True)
        with open(os.path.join(req.out, "eval.json"), "w") as f:
            json.dump({"run_dir": runner.out_dir, "checkpoint": {k: src[k] for k in ("which", "step")},
                       "update": update, "members": rows}, f, indent=1)
        print(f"written: {os.path.join(req.out, 'eval.json')}")
    return 0
