"""Goodhart foraging: CNN PPO on the food/poison torus in every observation mode at once.

The four modes (ground_truth, ground_truth_handhold, proxy, proxy_jammed) are *variants*: the
mode is a numeric task parameter, so modes x seeds are one batch axis of ONE compiled program.
An agent that sees only "interestingness" (proxy) cannot tell poison from food and, rewarded
for interestingness consumed, learns to eat both: it dies of poison far more often than the
ground-truth agent (docs/goodhart.md).

    python -m experiments.goodhart --seeds 2                # default budget, all 4 modes
    python -m experiments.goodhart --preset smoke --dashboard
    python -m experiments.goodhart verify checkpoints/goodhart-...   # accuracy, survival, saliency
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

from rljax.environments.foraging import FORAGING_MODES, Foraging, params_for_mode, render_observation
from rljax.environments.foraging import PARAMS as FORAGING_PARAMS
from rljax import backend
from rljax.envs.params import config_error
from rljax.errors import ConfigError
from rljax.experiment import EvalRequest, Experiment, RunnerConfig, Setup
from rljax.networks.cnn import BaseCNN
from rljax.ppo import PPO, PPOConfig

# d987f31's PPOConfig as the trainer actually used it (spec §5.6): constant lr 5e-4, 64 envs x
# 128 steps, 4 epochs of 4 minibatches, entropy 0.02, clipped values, per-update advantages.
GOODHART_PPO = PPOConfig(
    num_envs=64,
    num_steps=128,
    num_epochs=4,
    num_minibatches=4,
    total_timesteps=98_304,  # 12 updates per mode: all 4 modes in ~12-15 min on 2 CPU cores
    lr=5e-4,
    anneal_lr=False,
    gamma=0.99,
    gae_lambda=0.95,
    clip_eps=0.2,
    ent_coef=0.02,
    vf_coef=0.5,
    max_grad_norm=0.5,
    clip_value=True,
    advantage_norm="batch",
)


@dataclass(frozen=True)
class EnvConfig(FORAGING_PARAMS.settings_class("ForagingFields", exclude=("gamma",))):
    """The world and its reward: the foraging environment's parameters with their defaults (the
    d987f31 preset the seed document describes; ``gamma`` is PPO's, so that the shaping stays
    potential-based), plus the static options below.
    ``modes``: which observation modes to train side by side (each is a variant)."""

    modes: tuple[str, ...] = FORAGING_MODES
    grid_size: int = 100
    view_size: int = 11
    # The grid persists across the agent's deaths and time-outs (the spec); true: a new grid,
    # with new item counts, after every episode (this project's behaviour before issue 23).
    regrid_on_reset: bool = False

    def overrides(self, gamma: float) -> dict[str, Any]:
        return {**FORAGING_PARAMS.from_settings(self), "gamma": gamma}


@dataclass(frozen=True)
class NetworkConfig:
    channels: tuple[int, ...] = (32, 64, 64)
    hidden: int = 512
    # "patches" (patch-matmul, fastest on CPU), "lax" (XLA's convolution, fastest on GPU) or
    # "auto" (the backend's fastest, rljax.backend.conv_impl); the same function either way.
    conv_impl: str = "auto"


def _default_runner() -> RunnerConfig:
    # member_loop stays "auto": the network is conv-heavy (Setup.conv_heavy), so on CPU the
    # members run one after another (1.5x faster for this CNN, rljax.backend.member_loop).
    return RunnerConfig(log_episodes=True, eval_episodes=8, checkpoint_minutes=5.0)


@dataclass(frozen=True)
class GoodhartConfig:
    ppo: PPOConfig = field(default_factory=lambda: GOODHART_PPO)
    runner: RunnerConfig = field(default_factory=_default_runner)
    env: EnvConfig = field(default_factory=EnvConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)

    def validate(self) -> None:
        if not self.env.modes:
            raise ConfigError("env.modes is empty; choose from " + ", ".join(FORAGING_MODES))
        for m in self.env.modes:
            if m not in FORAGING_MODES:
                raise ConfigError(f"env.modes: unknown mode {m!r}; choose from {', '.join(FORAGING_MODES)}")
        if len(set(self.env.modes)) != len(self.env.modes):
            raise ConfigError(f"env.modes has duplicates: {list(self.env.modes)}")
        if self.network.conv_impl not in backend.CONV_IMPLS:
            raise ConfigError(f"network.conv_impl must be one of {', '.join(backend.CONV_IMPLS)}, "
                              f"got {self.network.conv_impl!r}")
        if not self.network.channels or min(self.network.channels) <= 0 or self.network.hidden <= 0:
            raise ConfigError(f"network.channels/hidden must be positive, got {list(self.network.channels)}/{self.network.hidden}")
        try:
            env = Foraging(self.env.grid_size, self.env.view_size, regrid_on_reset=self.env.regrid_on_reset)
            for m in self.env.modes:
                env.check_params(params_for_mode(m, **self.env.overrides(self.ppo.gamma)))
        except ValueError as e:  # the environment's messages name the field; point at the config key
            raise config_error(e, "env.") from None


def build(cfg: GoodhartConfig) -> Setup:
    env = Foraging(cfg.env.grid_size, cfg.env.view_size, regrid_on_reset=cfg.env.regrid_on_reset)
    variants = tuple((m, params_for_mode(m, **cfg.env.overrides(cfg.ppo.gamma))) for m in cfg.env.modes)
    net = BaseCNN(num_actions=8, channels=cfg.network.channels, hidden=cfg.network.hidden,
                  conv_impl=backend.conv_impl(cfg.network.conv_impl))
    return Setup(PPO(env, net, cfg.ppo, log_episodes=cfg.runner.log_episodes), variants, conv_heavy=True)


def verify_main(argv: Sequence[str]) -> int:
    """``python -m experiments.goodhart verify RUN_DIR``: see :mod:`rljax.experiments.goodhart.verify`.
    Exit 0; 1 when the zero-food starvation check fails; 2 on bad input."""
    from rljax.experiments.goodhart.verify import run_verification

    p = argparse.ArgumentParser(prog="python -m experiments.goodhart verify",
                                description="directional accuracy, survival test and saliency of a trained run")
    p.add_argument("run_dir")
    p.add_argument("--runs", type=int, default=3, help="survival: independent runs (default 3)")
    p.add_argument("--agents", type=int, default=10, help="survival: agents sharing each run's grid (default 10)")
    p.add_argument("--steps", type=int, default=1000, help="survival: steps per agent (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output folder (default RUN_DIR/verify)")
    p.add_argument("--best", action="store_true", help="use the best checkpoint instead of the latest")
    p.add_argument("--world", action="append", default=[], metavar="FIELD=VALUE",
                   help="survival worlds only: foraging param override, e.g. move_cost=0.5 (repeatable)")
    args = p.parse_args(list(argv))
    from rljax.config import parse_overrides

    world = parse_overrides(args.world)
    for name in ("runs", "agents", "steps"):
        if getattr(args, name) <= 0:
            raise ConfigError(f"--{name} must be > 0, got {getattr(args, name)}")
    report = run_verification(args.run_dir, out_dir=args.out, runs=args.runs, agents=args.agents,
                              steps=args.steps, seed=args.seed, best=args.best, world=world)
    return _print_verification(report)


def _print_verification(report: dict) -> int:
    print(report["table"])
    print(f"\nwritten: {os.path.join(report['out_dir'], 'verify.json')}, verify.png, saliency_*.png")
    return 0 if report["starvation_check"]["passed"] else 1


def evaluate(req: EvalRequest) -> int:
    """``rljax eval RUN_DIR``: ``verify`` with its defaults (directional accuracy, survival of 10
    agents on shared grids, saliency, the zero-food starvation check); ``--episodes`` is the
    number of independent survival runs (default 3). Exit 1 when the starvation check fails."""
    from rljax.experiments.goodhart.verify import run_verification

    report = run_verification(req.run_dir, out_dir=req.out, runs=req.episodes or 3, checkpoint=req.checkpoint,
                              member=req.member)
    return _print_verification(report)


EXPERIMENT = Experiment(
    name="goodhart",
    config_cls=GoodhartConfig,
    build=build,
    presets={
        "default": {},
        # About a minute on 2 cores: 2 modes, a smaller batch, a few updates. Shows the
        # pipeline (CSV, checkpoints, dashboard, verify), not the effect.
        "smoke": {
            "env": {"modes": ["ground_truth", "proxy"]},
            "ppo": {"num_envs": 16, "num_steps": 64, "total_timesteps": 8192},
            "runner": {"eval_episodes": 2, "eval_max_steps": 200},
        },
    },
    description="Food/poison torus, BaseCNN PPO on 4 observation modes in one program (+ verify).",
    commands={"verify": verify_main},
    evaluate=evaluate,
    obs_to_image=render_observation,
)

if __name__ == "__main__":
    from rljax.cli import experiment_main

    raise SystemExit(experiment_main("goodhart"))
