"""Tiny probe environments whose correct values and policies are known in closed form.

They isolate one piece of the learner each (value fitting, discounting, bootstrapping through
truncation, action-dependent reward), so a failing test points at the broken piece.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from rljax.envs.environment import Environment
from rljax.envs.params import ParamTable, Spec
from rljax.envs.spaces import Box, Discrete


@struct.dataclass
class ProbeParams:
    horizon: jax.Array  # int32 steps before truncation (TruncationProbe only)


PARAMS: ParamTable[ProbeParams] = ParamTable("probe", ProbeParams, {"horizon": Spec(1, "int", ge=1)})


@struct.dataclass
class ProbeState:
    t: jax.Array
    obs: jax.Array


class _Probe(Environment):
    """Shared plumbing: observation ``[1]`` float, ``num_actions`` actions."""

    num_actions = 2

    def default_params(self) -> ProbeParams:
        return PARAMS.build()

    def observation_shape(self, params) -> tuple[int, ...]:
        return (1,)

    def action_space(self, params) -> Discrete:
        return Discrete(self.num_actions)

    def max_steps(self, params) -> int:
        return 64


class ConstantRewardProbe(_Probe):
    """One step, reward 1, terminated: V(s0) = 1."""

    def reset(self, key, params):
        return jnp.zeros((1,)), ProbeState(jnp.zeros((), jnp.int32), jnp.zeros((1,)))

    def step(self, key, state, action, params):
        return state.obs, state, jnp.ones(()), jnp.asarray(True), jnp.asarray(False), {}


class ObservedRewardProbe(_Probe):
    """Observation +-1 drawn at reset; one step; reward = observation: V(s) = obs."""

    def reset(self, key, params):
        obs = jnp.where(jax.random.bernoulli(key), 1.0, -1.0).reshape((1,))
        return obs, ProbeState(jnp.zeros((), jnp.int32), obs)

    def step(self, key, state, action, params):
        return state.obs, state, state.obs[0], jnp.asarray(True), jnp.asarray(False), {}


class ActionRewardProbe(_Probe):
    """Observation +-1; reward 1 if the action matches the sign (1 for +1, 0 for -1), else 0.
    The optimal policy is read off the observation; a random policy earns 0.5."""

    def reset(self, key, params):
        obs = jnp.where(jax.random.bernoulli(key), 1.0, -1.0).reshape((1,))
        return obs, ProbeState(jnp.zeros((), jnp.int32), obs)

    def step(self, key, state, action, params):
        good = jnp.where(state.obs[0] > 0, action == 1, action == 0)
        return state.obs, state, good.astype(jnp.float32), jnp.asarray(True), jnp.asarray(False), {}


class TruncationProbe(_Probe):
    """Reward 1 every step, never terminates, truncated after ``params.horizon`` steps, constant
    observation. Bootstrapping through truncation gives V = 1/(1-gamma); treating the time
    limit as termination gives the mean remaining return, much less."""

    def default_params(self) -> ProbeParams:
        return PARAMS.build({"horizon": 5})

    def reset(self, key, params):
        return jnp.zeros((1,)), ProbeState(jnp.zeros((), jnp.int32), jnp.zeros((1,)))

    def step(self, key, state, action, params):
        t = state.t + 1
        return state.obs, ProbeState(t, state.obs), jnp.ones(()), jnp.asarray(False), t >= params.horizon, {"ep_ones": jnp.ones(())}

    def info_keys(self):
        return ("ep_ones",)


class ContinuousTargetProbe(_Probe):
    """Observation +-1; one continuous action; reward -(action - observation)^2; one step.
    The optimal mean action equals the observation (return 0); a zero-mean policy earns -1."""

    def action_space(self, params) -> Box:
        return Box(-2.0, 2.0, (1,))

    def reset(self, key, params):
        obs = jnp.where(jax.random.bernoulli(key), 1.0, -1.0).reshape((1,))
        return obs, ProbeState(jnp.zeros((), jnp.int32), obs)

    def step(self, key, state, action, params):
        reward = -jnp.sum((action - state.obs) ** 2)
        return state.obs, state, reward, jnp.asarray(True), jnp.asarray(False), {}
