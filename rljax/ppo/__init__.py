"""PPO, the first algorithm behind :class:`rljax.algorithm.Algorithm`.

- :mod:`rljax.ppo.config`: :class:`PPOConfig` and the traced per-member :class:`HParams`;
- :mod:`rljax.ppo.loss`: the optimiser and the clipped loss;
- :mod:`rljax.ppo.trainer`: :class:`Trainer`, the compiled rollout/GAE/epochs update.
"""
from rljax.ppo.config import ADVANTAGE_NORMS, NUMERIC_FIELDS, HParams, PPOConfig
from rljax.ppo.loss import Batch, make_optimizer, ppo_loss
from rljax.ppo.trainer import TrainState, Trainer, make_lr

__all__ = ["ADVANTAGE_NORMS", "NUMERIC_FIELDS", "HParams", "PPOConfig", "Batch", "make_optimizer", "ppo_loss",
           "TrainState", "Trainer", "make_lr"]
