"""Extension points: extra reward and loss terms that plug into PPO without copying it.

An extension keeps its own state (e.g. RND's predictor and its optimiser, EWC's Fisher and
anchor parameters) in ``TrainState.ext[name]``. All methods are pure and are traced into the
compiled update.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

Array = jax.Array


class Extension:
    """Base class; override what you need. Defaults add nothing."""

    name: str = "extension"

    def init(self, key: Array, params: Any, obs_shape: tuple[int, ...]) -> Any:
        """Initial extension state (a pytree)."""
        return ()

    def reward(self, state: Any, obs: Array, action: Array, next_obs: Array) -> Array | None:
        """Extra reward per transition, ``[T, N]`` from ``obs[T, N, ...]``; ``None`` for none.

        ``next_obs`` is the observation each transition led to (the final observation where
        an episode ended), so intrinsic rewards never look across a reset.
        """
        return None

    def loss(self, state: Any, params: Any, apply_fn: Callable, obs: Array, action: Array) -> tuple[Array, dict[str, Array]]:
        """Extra term added to the PPO loss of every minibatch (differentiated w.r.t. ``params``)."""
        return jnp.zeros(()), {}

    def update(self, state: Any, params: Any, obs: Array, next_obs: Array, key: Array) -> tuple[Any, dict[str, Array]]:
        """Called once per PPO update after the epochs, with the whole rollout ``[T*N, ...]``."""
        return state, {}
