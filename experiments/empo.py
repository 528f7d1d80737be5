"""EMPO phase 2: a robot that softly maximises aggregate human power, learned in JAX and checked
against the exact oracle.

The neural (or tabular) phase-2 trainer (:class:`rljax.empo.trainer.EmpoTrainer`) runs behind the
same engine as PPO: seeds (and ``--vary empo.<key>`` settings) are members of one compiled
program, with the runner's chunks, logs, evaluation, checkpoints and resume.

    python -m experiments.empo --preset smoke                      # about a minute
    python -m experiments.empo --preset trivial --seeds 4          # the demo's trivial config
    python -m experiments.empo --preset trivial_table --seeds 4    # lookup tables: exact convergence
    python -m experiments.empo oracle trivial                      # exact values at the initial state
    python -m experiments.empo compare checkpoints/empo-...        # learned vs oracle (tables, plots)

Presets: ``default`` (the original code's defaults, trivial map), ``trivial``/``small``/
``ensemble`` (the phase-2 demo's per-environment settings), ``seed_doc`` (the seed document's
warm-up and learning-rate numbers), ``trivial_table`` (tabular, exact targets: converges to
the oracle), ``smoke``. See docs/empo.md for the results.
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import jax.numpy as jnp

from rljax.empo.config import DEMO, SEED_DOC, Phase2Config
from rljax.errors import ConfigError
from rljax.experiment import Experiment, RunnerConfig, Setup

MAPS = ("trivial", "small", "ensemble")
DYNAMICS = ("auto", "table", "model")


@dataclass(frozen=True)
class EnvConfig:
    """Which map and how the actor steps it.

    ``dynamics``: ``auto`` steps the enumerated exact transition table on the fixed maps (and
    the multigrid model on the ensemble); ``model`` always steps the multigrid model
    (``MultiGrid.robot_action_successors``): same distribution, no enumeration needed.
    ``prior_beta``: inverse temperature of the humans' heuristic potential prior (the demo's 1000).
    ``ensemble_maps``/``ensemble_seed``: the pool of random ensemble maps (each episode draws one).
    """

    map: str = "trivial"
    dynamics: str = "auto"
    prior_beta: float = 1000.0
    ensemble_maps: int = 16
    ensemble_seed: int = 0


def _default_runner() -> RunnerConfig:
    return RunnerConfig(eval_episodes=8, checkpoint_minutes=5.0)


@dataclass(frozen=True)
class EmpoConfig:
    empo: Phase2Config = field(default_factory=Phase2Config)
    env: EnvConfig = field(default_factory=EnvConfig)
    runner: RunnerConfig = field(default_factory=_default_runner)

    def validate(self) -> None:
        e = self.env
        if e.map not in MAPS:
            raise ConfigError(f"env.map must be one of {', '.join(MAPS)}, got {e.map!r}")
        if e.dynamics not in DYNAMICS:
            raise ConfigError(f"env.dynamics must be one of {', '.join(DYNAMICS)}, got {e.dynamics!r}")
        if e.map == "ensemble" and e.dynamics == "table":
            raise ConfigError("env.dynamics=table needs an enumerable map (trivial or small), got env.map=ensemble")
        if self.empo.representation == "table" and (e.map == "ensemble" or e.dynamics == "model"):
            raise ConfigError("empo.representation=table needs an enumerated map: env.map trivial or small with "
                              f"env.dynamics auto or table (got env.map={e.map}, env.dynamics={e.dynamics})")
        if not e.prior_beta > 0:
            raise ConfigError(f"env.prior_beta must be > 0, got {e.prior_beta}")
        if e.ensemble_maps < 1:
            raise ConfigError(f"env.ensemble_maps must be >= 1, got {e.ensemble_maps}")


def build(cfg: EmpoConfig) -> Setup:
    from environments.multigrid_worlds import ENUMERABLE, table_world, world
    from rljax.empo.trainer import EmpoTrainer

    e, c = cfg.env, cfg.empo
    w = world(e.map, e.dynamics, e.prior_beta, c.include_step_count, pool_size=e.ensemble_maps,
              pool_seed=e.ensemble_seed) if e.map == "ensemble" else world(e.map, e.dynamics, e.prior_beta,
                                                                            c.include_step_count)
    exact = table_world(e.map, e.prior_beta, c.include_step_count) if e.map in ENUMERABLE else None
    # One variant per run: the map fixes every shape, so different maps cannot share a program.
    return Setup(EmpoTrainer(w, c, exact), ((e.map, {"map": jnp.int32(MAPS.index(e.map))}),))


def _demo(n: int, **extra: Any) -> dict:
    """The phase-2 demo's overrides for ``n`` training steps (epsilons decay over 2/3 of it;
    the original's multigrid networks use hidden_dim for the state features too)."""
    out = dict(DEMO, num_training_steps=n, epsilon_r_decay_steps=n // 3 * 2, epsilon_h_decay_steps=n // 3 * 2)
    out.update(extra)
    out.setdefault("state_feature_dim", out.get("hidden_dim", 256))
    return out


# The demo's trivial config. Deviation: include_step_count (the demo has False) because values
# on a finite horizon depend on the time left, and the oracle we compare with is indexed by t.
TRIVIAL = _demo(1_000_000, batch_size=32, x_h_batch_size=64, hidden_dim=16, goal_feature_dim=8, agent_embedding_dim=4,
                x_h_use_network=False, steps_per_episode=10, include_step_count=True)

PRESETS: dict[str, dict] = {
    "default": {},
    "trivial": {"empo": TRIVIAL, "runner": {"eval_every": 50_000}},
    "small": {"env": {"map": "small"}, "runner": {"eval_every": 1_000},
              "empo": _demo(20_000, batch_size=16, x_h_batch_size=32, hidden_dim=32, goal_feature_dim=16,
                            agent_embedding_dim=8, steps_per_episode=15, include_step_count=True)},
    "ensemble": {"env": {"map": "ensemble"}, "runner": {"eval_every": 2_500},
                 "empo": _demo(50_000, batch_size=32, x_h_batch_size=64, hidden_dim=64, goal_feature_dim=32,
                               agent_embedding_dim=8, steps_per_episode=30)},
    # The seed document's numbers (WARMUP_DESIGN.md) with the code's other defaults.
    "seed_doc": {"empo": dict(SEED_DOC), "runner": {"eval_every": 5_000}},
    # Lookup tables with exact targets (the full expectation over the human prior, every goal,
    # the exact X_h expectation, target copies every step): converges to the oracle.
    "trivial_table": {"runner": {"eval_every": 50, "chunk_updates": 50},
                      "empo": dict(representation="table", num_training_steps=6_000, training_steps_per_env_step=0.1,
                                   batch_size=64, buffer_size=50_000, model_based_human_profile="expected",
                                   v_h_e_all_goals=True, x_h_use_network=False, x_h_direct_goal_samples=0,
                                   lr_v_h_e=1.0, lr_q_r=1.0, q_r_target_update_interval=1,
                                   v_h_e_target_update_interval=1, epsilon_h_start=0.0, epsilon_h_end=0.0,
                                   epsilon_r_end=0.1, epsilon_r_decay_steps=3_000, steps_per_episode=10)},
    # About a minute on 2 cores: the pipeline (CSV, checkpoints, evaluation vs the oracle), not the result.
    "smoke": {"runner": {"eval_episodes": 2, "eval_every": 25, "chunk_updates": 25},
              "empo": _demo(500, batch_size=16, x_h_batch_size=16, buffer_size=2_000, hidden_dim=8,
                            goal_feature_dim=4, agent_embedding_dim=2, x_h_use_network=False, steps_per_episode=10,
                            include_step_count=True)},
}


def oracle_main(argv: Sequence[str]) -> int:
    """``python -m experiments.empo oracle MAP``: the exact phase-2 values at the initial state."""
    import jax
    import numpy as np

    from environments.multigrid import ACTION_NAMES, num_reachable_pairs
    from environments.multigrid_worlds import ENUMERABLE, enumeration, table_world, task
    from rljax.empo.oracle import solve_oracle

    p = argparse.ArgumentParser(prog="python -m experiments.empo oracle",
                                description="exact phase-2 values (backward induction) at the initial state")
    p.add_argument("map", help="trivial or small")
    p.add_argument("--beta-r", type=float, default=None, help="robot policy exponent (default: the trivial preset's 1000)")
    for name, default in (("gamma-r", 0.99), ("gamma-h", 0.99), ("zeta", 2.0), ("xi", 1.0), ("eta", 1.1)):
        p.add_argument(f"--{name}", type=float, default=default)
    p.add_argument("--prior-beta", type=float, default=1000.0, help="heuristic prior's inverse temperature")
    p.add_argument("--u-r-sum", action="store_true", help="the paper's sum over humans instead of the mean")
    p.add_argument("--x-h-min", type=float, default=1e-3,
                   help="clamp X_h to at least this before X_h^-xi, as the trainer does (default 1e-3; 0: the "
                        "unclamped equations, where a human who can reach no goal makes U_r = -inf)")
    args = p.parse_args(list(argv))
    if args.map not in ENUMERABLE:
        raise ConfigError(f"oracle: map must be one of {', '.join(ENUMERABLE)} (the ensemble is not enumerable), got {args.map!r}")
    beta_r = DEMO["beta_r"] if args.beta_r is None else args.beta_r
    for name in ("beta_r", "prior_beta", "x_h_min"):
        if getattr(args, name) is not None and getattr(args, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0")
    t0 = time.perf_counter()
    w = table_world(args.map, args.prior_beta)
    t_enum = time.perf_counter() - t0
    solve = jax.jit(lambda: solve_oracle(w, beta_r=beta_r, gamma_r=args.gamma_r, gamma_h=args.gamma_h, zeta=args.zeta,
                                         xi=args.xi, eta=args.eta, u_r_sum=args.u_r_sum, x_h_min=args.x_h_min))
    res = jax.block_until_ready(solve())
    t0 = time.perf_counter()
    jax.block_until_ready(solve())
    t_solve = time.perf_counter() - t0
    t = task(args.map)
    env = t.env
    goals = [tuple(int(v) for v in np.argwhere(np.asarray(c))[0][::-1]) for c in np.asarray(t.goals.cells)[0]]
    names = [" ".join(ACTION_NAMES[int(d)] for d in np.unravel_index(a, [4] * env.n_robots)) for a in range(env.num_robot_actions)]
    print(f"{args.map} map: {w.num_states} configurations, {num_reachable_pairs(enumeration(args.map)[0], w.horizon)} (t, s) pairs "
          f"within horizon {w.horizon}; heuristic prior beta={args.prior_beta:g}; beta_r={beta_r:g}, gamma_r={args.gamma_r}, "
          f"gamma_h={args.gamma_h}, zeta={args.zeta}, xi={args.xi}, eta={args.eta}, U_r {'sum' if args.u_r_sum else 'mean'} over humans, "
          f"X_h clamped to >= {args.x_h_min:g}")
    print(f"enumeration {t_enum:.2f} s (cached per process), oracle {t_solve * 1e3:.2f} ms after compilation")
    print("initial state (t=0, s=0):")
    print(f"  V_r = {float(res.v_r[0, 0]):.6f}   U_r = {float(res.u_r[0, 0]):.6f}   X_h = "
          + ", ".join(f"{float(x):.6f}" for x in np.asarray(res.x_h[0, 0])))
    print("  pi_r: " + ", ".join(f"{n}={float(v):.6f}" for n, v in zip(names, np.asarray(res.pi_r[0, 0]))))
    print("  Q_r:  " + ", ".join(f"{n}={float(v):.6f}" for n, v in zip(names, np.asarray(res.q_r[0, 0]))))
    for h in range(w.n_humans):
        print(f"  V_h^e (human {h}): " + ", ".join(f"{g}={float(v):.6f}" for g, v in zip(goals, np.asarray(res.v_h_e[0, 0, h]))))
    return 0


def compare_main(argv: Sequence[str]) -> int:
    """``python -m experiments.empo compare RUN_DIR``: see :mod:`rljax.empo.compare`."""
    from rljax.empo.compare import compare_run

    p = argparse.ArgumentParser(prog="python -m experiments.empo compare",
                                description="a trained run's quantities against the exact oracle (tables, plots, JSON)")
    p.add_argument("run_dir")
    p.add_argument("--best", action="store_true", help="the best checkpoint instead of the latest")
    p.add_argument("--out", default=None, help="output folder (default RUN_DIR/compare)")
    args = p.parse_args(list(argv))
    report = compare_run(args.run_dir, best=args.best, out_dir=args.out)
    print(report["table"])
    print(f"\nwritten: {os.path.join(report['out_dir'], 'compare.json')}, compare.png, curves.png")
    return 0


EXPERIMENT = Experiment(
    name="empo",
    config_cls=EmpoConfig,
    build=build,
    presets=PRESETS,
    description="EMPO phase 2 (robot softly maximising human power), networks or tables vs the exact oracle.",
    commands={"oracle": oracle_main, "compare": compare_main},
)

if __name__ == "__main__":
    from rljax.cli import experiment_main

    raise SystemExit(experiment_main("empo"))
