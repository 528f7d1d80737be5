"""Old import path of PPO's trainer; it lives in :mod:`rljax.ppo.trainer` now."""
from rljax.ppo.trainer import TrainState, Trainer, make_lr

__all__ = ["TrainState", "Trainer", "make_lr"]
