"""PPO, the first algorithm behind :class:`rljax.algorithm.Algorithm`.

- :mod:`rljax.ppo.config`: :class:`PPOConfig` and the traced per-member :class:`HParams`;
- :mod:`rljax.ppo.policy`: :class:`Policy`, one interface for feedforward and recurrent networks;
- :mod:`rljax.ppo.rollout`, :mod:`rljax.ppo.advantages`, :mod:`rljax.ppo.learn`: the three
  steps of an update;
- :mod:`rljax.ppo.loss`: the optimiser and the clipped loss;
- :mod:`rljax.ppo.ppo`: :class:`PPO` (init, update, chunk, evaluation) and :class:`TrainState`.
"""
from rljax.ppo.config import ADVANTAGE_NORMS, NUMERIC_FIELDS, HParams, PPOConfig
from rljax.ppo.loss import Batch, make_optimizer, ppo_loss, ppo_objective
from rljax.ppo.policy import Policy, is_recurrent
from rljax.ppo.ppo import PPO, TrainState, make_lr

__all__ = ["ADVANTAGE_NORMS", "NUMERIC_FIELDS", "HParams", "PPOConfig", "Batch", "make_optimizer", "ppo_loss",
           "ppo_objective", "Policy", "is_recurrent", "PPO", "TrainState", "make_lr"]
