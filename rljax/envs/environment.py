"""The functional environment protocol every rljax environment follows.

``reset(key, params) -> (obs, state)`` and
``step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)``
for ONE environment instance (and ``auto_reset(key, state, params)``, the reset after an
episode ended in ``state``: ``reset`` unless the environment's world outlives an episode); batching is done by ``jax.vmap`` in the wrappers.

``terminated`` (the MDP ended: no bootstrap) and ``truncated`` (time limit: bootstrap
from the final observation) are kept apart all the way into GAE.

``info`` is a flat dict of scalar arrays for this instance and this step. Keys whose name
starts with ``"ep_"`` are summed over the episode by :class:`rljax.envs.wrappers.EpisodeStats`
and reported when the episode ends (e.g. ``ep_poison_eaten``); ``"tag"`` (int32) is a per-episode
label (community id, observation mode) by which episode statistics can be split.
"""
from __future__ import annotations

from typing import Any, Generic, TypeVar

import jax

from rljax.envs.spaces import Box, Discrete, MultiDiscrete

TEnvState = TypeVar("TEnvState")
TEnvParams = TypeVar("TEnvParams")
Array = jax.Array


class Environment(Generic[TEnvState, TEnvParams]):
    """Base class: subclasses implement the five methods below as pure functions.

    ``params`` is a pytree of per-instance task parameters (vmappable: every instance may have
    its own), while constructor arguments of the subclass are static (shapes, modes that change
    the program).
    """

    name: str = "environment"

    def default_params(self) -> TEnvParams:
        raise NotImplementedError

    def reset(self, key: Array, params: TEnvParams) -> tuple[Array, TEnvState]:
        """Returns ``(obs, state)``; ``obs`` has ``observation_shape(params)``."""
        raise NotImplementedError

    def step(
        self, key: Array, state: TEnvState, action: Array, params: TEnvParams
    ) -> tuple[Array, TEnvState, Array, Array, Array, dict[str, Array]]:
        """Returns ``(obs, state, reward, terminated, truncated, info)`` without auto-reset."""
        raise NotImplementedError

    def auto_reset(self, key: Array, state: TEnvState, params: TEnvParams) -> tuple[Array, TEnvState]:
        """The reset an auto-reset wrapper performs after an episode ended in ``state``.

        By default a fresh :meth:`reset`; an environment whose world outlives one episode
        (e.g. foraging, where the grid persists across the agent's deaths) overrides it to
        carry that world over. Returns ``(obs, state)`` like :meth:`reset`."""
        return self.reset(key, params)

    def observation_shape(self, params: TEnvParams) -> tuple[int, ...]:
        raise NotImplementedError

    def action_space(self, params: TEnvParams) -> Discrete | MultiDiscrete | Box:
        raise NotImplementedError

    def max_steps(self, params: TEnvParams) -> int:
        """Upper bound on episode length (used to size evaluation loops)."""
        raise NotImplementedError

    def info_keys(self) -> tuple[str, ...]:
        """Names of the scalar entries ``step`` returns in ``info`` (static)."""
        return ()

    # Whether :meth:`render` is a pure JAX function (jit/vmap it) or draws in Python (matplotlib).
    render_jittable: bool = False

    def render(self, state: TEnvState, params: TEnvParams) -> Array:
        """A picture of ``state``: ``uint8[H, W, 3]`` RGB, ``H, W`` fixed by the environment's
        static arguments. Every implementation says in its docstring whether it is jittable and
        sets :attr:`render_jittable` to match; the drawing lives in a render module beside the
        environment, not in the step logic. Raises ``NotImplementedError`` where the environment
        draws nothing."""
        raise NotImplementedError(f"environment {self.name!r} has no render(state, params)")


def tree_select(pred: Array, on_true: Any, on_false: Any) -> Any:
    """``where(pred, a, b)`` leaf-wise, broadcasting a scalar ``pred`` over each leaf."""
    return jax.tree.map(lambda a, b: jax.numpy.where(pred, a, b), on_true, on_false)
