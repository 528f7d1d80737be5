"""PPO configuration and its vmappable numeric hyperparameters."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from rljax.errors import ConfigError

Array = jax.Array

# Numeric PPO settings that may differ between members of one compiled batch (seeds x trials).
NUMERIC_FIELDS = ("lr", "gamma", "gae_lambda", "clip_eps", "ent_coef", "vf_coef", "max_grad_norm", "adam_eps", "reward_clip")
ADVANTAGE_NORMS = ("minibatch", "batch", "none")


@dataclass(frozen=True)
class PPOConfig:
    """Shape-changing fields are static; the numeric ones (``NUMERIC_FIELDS``) become traced
    :class:`HParams` so they can form a batch axis."""

    num_envs: int = 4
    num_steps: int = 128
    num_epochs: int = 4
    num_minibatches: int = 4
    total_timesteps: int = 500_000
    lr: float = 2.5e-4
    anneal_lr: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float | tuple[float, ...] = 0.01  # one value, or one per policy head
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    adam_eps: float = 1e-5
    clip_value: bool = True
    advantage_norm: str = "minibatch"
    normalize_obs: bool = False
    normalize_reward: bool = False
    reward_clip: float = 10.0
    bootstrap_truncation: bool = True

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size

    def validate(self, prefix: str = "ppo.") -> None:
        """Raises :class:`ConfigError` naming the first bad key."""
        for name in ("num_envs", "num_steps", "num_epochs", "num_minibatches", "total_timesteps"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{prefix}{name} must be > 0, got {getattr(self, name)}")
        if self.batch_size % self.num_minibatches:
            raise ConfigError(
                f"{prefix}num_minibatches={self.num_minibatches} does not divide the batch "
                f"num_envs*num_steps={self.batch_size}"
            )
        if self.num_updates < 1:
            raise ConfigError(
                f"{prefix}total_timesteps={self.total_timesteps} is smaller than one batch ({self.batch_size})"
            )
        for name in ("lr", "adam_eps", "max_grad_norm", "reward_clip"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{prefix}{name} must be > 0, got {getattr(self, name)}")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{prefix}{name} must be in [0, 1], got {getattr(self, name)}")
        if not self.clip_eps > 0:
            raise ConfigError(f"{prefix}clip_eps must be > 0, got {self.clip_eps}")
        if self.advantage_norm not in ADVANTAGE_NORMS:
            raise ConfigError(f"{prefix}advantage_norm must be one of {ADVANTAGE_NORMS}, got {self.advantage_norm!r}")


@struct.dataclass
class HParams:
    """Traced PPO hyperparameters of one member; ``ent_coef`` has one entry per policy head."""

    lr: Array
    gamma: Array
    gae_lambda: Array
    clip_eps: Array
    ent_coef: Array
    vf_coef: Array
    max_grad_norm: Array
    adam_eps: Array
    reward_clip: Array

    @classmethod
    def from_config(cls, cfg: PPOConfig, num_heads: int, **overrides: Any) -> "HParams":
        values = {k: overrides.get(k, getattr(cfg, k)) for k in NUMERIC_FIELDS}
        ent = jnp.asarray(values.pop("ent_coef"), jnp.float32)
        if ent.ndim == 0:
            ent = jnp.full((num_heads,), ent)
        elif ent.shape != (num_heads,):
            raise ConfigError(f"ppo.ent_coef has {ent.shape[0]} entries but the policy has {num_heads} entropy terms "
                              f"(one per head)")
        return cls(ent_coef=ent, **{k: jnp.asarray(v, jnp.float32) for k, v in values.items()})
