"""PPO on the probe environments (tests, sweeps and debugging; seconds per run).

    rljax run probe --set env.name=truncation
"""
from __future__ import annotations

from dataclasses import dataclass, field

from rljax.environments import probes
from rljax.errors import ConfigError
from rljax.evaluate import returns
from rljax.experiment import Experiment, RunnerConfig, Setup
from rljax.networks.mlp import ActorCriticMLP
from rljax.ppo import PPO, PPOConfig

PROBES = {
    "constant": probes.ConstantRewardProbe,
    "observed": probes.ObservedRewardProbe,
    "action": probes.ActionRewardProbe,
    "truncation": probes.TruncationProbe,
}


@dataclass(frozen=True)
class ProbeEnvConfig:
    name: str = "action"


@dataclass(frozen=True)
class ProbeConfig:
    env: ProbeEnvConfig = field(default_factory=ProbeEnvConfig)
    ppo: PPOConfig = field(default_factory=lambda: PPOConfig(
        num_envs=8, num_steps=16, num_minibatches=2, total_timesteps=16_384, lr=3e-3))
    runner: RunnerConfig = field(default_factory=lambda: RunnerConfig(eval_episodes=16))

    def validate(self) -> None:
        if self.env.name not in PROBES:
            raise ConfigError(f"env.name must be one of {sorted(PROBES)}, got {self.env.name!r}")


def build(cfg: ProbeConfig) -> Setup:
    env = PROBES[cfg.env.name]()
    params = env.default_params()
    net = ActorCriticMLP(env.action_space(params), hidden=(16, 16))
    return Setup(PPO(env, net, cfg.ppo, log_episodes=cfg.runner.log_episodes), ((cfg.env.name, params),))


EXPERIMENT = Experiment(
    name="probe",
    config_cls=ProbeConfig,
    build=build,
    presets={"default": {}},
    description="Probe environments with known values (tests, sweeps, debugging).",
    evaluate=returns,  # rljax eval: greedy episode returns
)

if __name__ == "__main__":
    from rljax.cli import experiment_main

    raise SystemExit(experiment_main("probe"))
