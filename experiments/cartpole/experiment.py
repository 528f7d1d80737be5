"""PPO on CartPole-v1 with PureJaxRL's settings (4 envs x 128 steps, 4 epochs, 4 minibatches,
lr 2.5e-4 annealed, 64x64 tanh MLPs, 500k steps).

    rljax run cartpole --seeds 4
    python -m experiments.cartpole --preset smoke
"""
from __future__ import annotations

from dataclasses import dataclass, field

from rljax.environments.cartpole import make_cartpole
from rljax.evaluate import returns
from rljax.experiment import Experiment, RunnerConfig, Setup
from rljax.networks.mlp import ActorCriticMLP
from rljax.ppo import PPO, PPOConfig


@dataclass(frozen=True)
class NetworkConfig:
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"


@dataclass(frozen=True)
class CartPoleConfig:
    ppo: PPOConfig = field(default_factory=PPOConfig)
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)

    def validate(self) -> None:
        from rljax.errors import ConfigError
        from rljax.networks.mlp import ACTIVATIONS

        if self.network.activation not in ACTIVATIONS:
            raise ConfigError(f"network.activation must be one of {sorted(ACTIVATIONS)}, got {self.network.activation!r}")
        if not self.network.hidden or min(self.network.hidden) <= 0:
            raise ConfigError(f"network.hidden must be positive widths, got {list(self.network.hidden)}")


def build(cfg: CartPoleConfig) -> Setup:
    env = make_cartpole()
    params = env.default_params()
    net = ActorCriticMLP(env.action_space(params), hidden=cfg.network.hidden, activation=cfg.network.activation)
    return Setup(PPO(env, net, cfg.ppo, log_episodes=cfg.runner.log_episodes), (("cartpole", params),),
                 cheap_reset=True)


EXPERIMENT = Experiment(
    name="cartpole",
    config_cls=CartPoleConfig,
    build=build,
    presets={
        "default": {},
        "smoke": {"ppo": {"total_timesteps": 100_000}, "runner": {"eval_episodes": 5}},
    },
    description="PPO on CartPole-v1 (PureJaxRL settings); reaches return 500 in 500k steps.",
    evaluate=returns,  # rljax eval: greedy episode returns
)

if __name__ == "__main__":
    from rljax.cli import experiment_main

    raise SystemExit(experiment_main("cartpole"))
