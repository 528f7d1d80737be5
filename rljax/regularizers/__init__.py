"""Regularisers for continual self-play, as PPO extensions (:mod:`rljax.extensions`).

- :mod:`rljax.regularizers.ewc`: elastic weight consolidation: :class:`EWC` (a loss term
  pulling the policy towards an anchor snapshot, weighted by :func:`fisher_diagonal`);
- :mod:`rljax.regularizers.rnd`: random network distillation: :class:`RND` (an intrinsic
  reward for novel observations, normalised by its running standard deviation).
"""
from rljax.regularizers.ewc import EWC, EWCState, fisher_diagonal
from rljax.regularizers.rnd import RND, RNDNetwork, RNDState

__all__ = ["EWC", "EWCState", "fisher_diagonal", "RND", "RNDNetwork", "RNDState"]
