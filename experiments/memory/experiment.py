"""Recurrent PPO on the cue-then-choose corridor (:mod:`rljax.environments.memory`): the cue is shown
only at the first step, the choice comes at the last. A GRU policy learns it; the feedforward
MLP (``network.kind=mlp``) stays at chance (eval return = success rate, about 0.5).

    rljax run memory --seeds 2
    rljax run memory --set network.kind=mlp
    python -m experiments.memory --preset smoke
"""
from __future__ import annotations

from dataclasses import dataclass, field

from rljax.environments.memory import CueCorridor
from rljax.environments.memory import PARAMS as MEMORY_PARAMS
from rljax.envs.params import config_error
from rljax.errors import ConfigError
from rljax.evaluate import returns
from rljax.experiment import Experiment, RunnerConfig, Setup
from rljax.networks.mlp import ActorCriticMLP
from rljax.networks.recurrent import recurrent_mlp
from rljax.ppo import PPO, PPOConfig

NETWORK_KINDS = ("gru", "mlp")


@dataclass(frozen=True)
class NetworkConfig:
    kind: str = "gru"  # "gru": recurrent_mlp; "mlp": the feedforward ActorCriticMLP
    hidden: int = 32  # embedding, head and (for gru) memory width
    cell_size: int = 32


@dataclass(frozen=True)
class EnvConfig(MEMORY_PARAMS.settings_class("MemoryFields")):
    # 5 steps, not the corridor's 4: an odd length makes episodes straddle the 16-step rollouts,
    # so the carried recurrent state crosses rollout boundaries in the test of it
    length: int = 5


@dataclass(frozen=True)
class MemoryConfig:
    ppo: PPOConfig = field(default_factory=lambda: PPOConfig(
        num_envs=16, num_steps=16, num_epochs=4, num_minibatches=4, total_timesteps=32_768, lr=3e-3,
        gamma=0.9, ent_coef=0.03))
    runner: RunnerConfig = field(default_factory=lambda: RunnerConfig(eval_episodes=64, eval_max_steps=16))
    network: NetworkConfig = field(default_factory=NetworkConfig)
    env: EnvConfig = field(default_factory=EnvConfig)

    def validate(self) -> None:
        if self.network.kind not in NETWORK_KINDS:
            raise ConfigError(f"network.kind must be one of {', '.join(NETWORK_KINDS)}, got {self.network.kind!r}")
        for name in ("hidden", "cell_size"):
            if getattr(self.network, name) <= 0:
                raise ConfigError(f"network.{name} must be > 0, got {getattr(self.network, name)}")
        try:
            CueCorridor().default_params(self.env.length)
        except ValueError as e:
            raise config_error(e, "env.") from None


def build(cfg: MemoryConfig) -> Setup:
    env = CueCorridor()
    params = env.default_params(cfg.env.length)  # validated in MemoryConfig.validate
    space = env.action_space(params)
    w = cfg.network.hidden
    if cfg.network.kind == "gru":
        net = recurrent_mlp(space, embed=(w,), cell_size=cfg.network.cell_size, head_hidden=(w,))
    else:
        net = ActorCriticMLP(space, hidden=(w, w))
    return Setup(PPO(env, net, cfg.ppo, log_episodes=cfg.runner.log_episodes), (("corridor", params),),
                 cheap_reset=True)


EXPERIMENT = Experiment(
    name="memory",
    config_cls=MemoryConfig,
    build=build,
    presets={
        "default": {},
        "smoke": {"ppo": {"total_timesteps": 8192}},
        "mlp": {"network": {"kind": "mlp"}},
        "long": {"env": {"length": 16}, "ppo": {"num_steps": 64, "total_timesteps": 131_072}},
    },
    description="Recurrent PPO (GRU) on a cue-then-choose corridor; a feedforward MLP stays at chance.",
    evaluate=returns,  # rljax eval: greedy episode returns
)

if __name__ == "__main__":
    from rljax.cli import experiment_main

    raise SystemExit(experiment_main("memory"))
