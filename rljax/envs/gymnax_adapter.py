"""Runs a gymnax environment under rljax's protocol.

We call gymnax's ``step_env``/``reset_env`` (no built-in auto-reset) so that :class:`VecEnv`
decides when to reset; gymnax's own ``step`` computes a full reset on every step, which was
measured to dominate CartPole's step time.

gymnax is imported when an environment is made, not with this module: importing gymnax builds
arrays at module level, which starts JAX's backends, and the CLI must still be able to choose
the number of CPU devices after the experiment modules are imported.
"""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from rljax.envs.environment import Environment
from rljax.envs.spaces import Box, Discrete


class GymnaxEnv(Environment):
    def __init__(self, env_id: str, **make_kwargs: Any):
        import gymnax

        try:
            self.inner, self._default_params = gymnax.make(env_id, **make_kwargs)
        except (ValueError, KeyError) as e:
            raise ValueError(f"unknown gymnax environment {env_id!r}") from e
        self.name = env_id

    def default_params(self) -> Any:
        return self._default_params

    def reset(self, key, params):
        return self.inner.reset_env(key, params)

    def step(self, key, state, action, params):
        obs, state, reward, terminated, info = self.inner.step_env(key, state, action, params)
        truncated = self.inner.is_truncated(state, params)
        return obs, state, jnp.asarray(reward, jnp.float32), terminated, truncated, {}

    def observation_shape(self, params) -> tuple[int, ...]:
        return tuple(self.inner.observation_space(params).shape)

    def action_space(self, params):
        from gymnax.environments import spaces as gspaces

        space = self.inner.action_space(params)
        if isinstance(space, gspaces.Discrete):
            return Discrete(int(space.n))
        if isinstance(space, gspaces.Box):
            return Box(float(jnp.min(space.low)), float(jnp.max(space.high)), tuple(space.shape))
        raise TypeError(f"unsupported gymnax action space {space!r}")

    def max_steps(self, params) -> int:
        return int(getattr(params, "max_steps_in_episode", 1000))
