"""Cue-then-choose corridor: a memory task that a feedforward policy cannot solve.

An episode is ``length`` steps. At the first step the observation shows a cue, left or right
(drawn at reset); afterwards the cue is gone. The last step is the choice point (flagged in the
observation): action 0 (left) or 1 (right) earns reward 1 when it matches the cue, else 0, and
the episode terminates. Actions before the choice point do nothing.

Observation ``[4]``: ``(cue is left, cue is right)`` at step 0 and zeros afterwards, a
choice-point flag, and the fraction of the corridor walked ``t / length``. At the choice
point every observation is the same whatever the cue, so a policy without memory succeeds
half the time, in expectation; one that remembers the cue succeeds always. ``info["ep_success"]``
is 1 for an episode that chose right.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from rljax.envs.environment import Environment
from rljax.envs.params import ParamTable, Spec
from rljax.envs.spaces import Discrete

Array = jax.Array


@struct.dataclass
class MemoryParams:
    length: Array  # int32 steps, cue at the first, choice at the last


PARAMS: ParamTable[MemoryParams] = ParamTable("memory", MemoryParams, {"length": Spec(4, "int", ge=2)})


@struct.dataclass
class MemoryState:
    t: Array
    cue: Array  # 0 left, 1 right


class CueCorridor(Environment):
    """See the module docstring. ``max_length`` bounds ``params.length`` (static)."""

    name = "cue_corridor"

    def __init__(self, max_length: int = 64):
        self.max_length = max_length

    def default_params(self, length: int | None = None) -> MemoryParams:
        v = PARAMS.values({} if length is None else {"length": length})
        PARAMS.require(v["length"] <= self.max_length, "length", v["length"], f"must be <= max_length={self.max_length}")
        return PARAMS.to_params(v)

    def observation_shape(self, params) -> tuple[int, ...]:
        return (4,)

    def action_space(self, params) -> Discrete:
        return Discrete(2)

    def max_steps(self, params) -> int:
        return self.max_length

    def info_keys(self) -> tuple[str, ...]:
        return ("ep_success",)

    def _obs(self, state: MemoryState, params: MemoryParams) -> Array:
        shown = (state.t == 0).astype(jnp.float32)
        cue = jax.nn.one_hot(state.cue, 2) * shown
        choice = (state.t == params.length - 1).astype(jnp.float32)
        return jnp.concatenate([cue, choice[None], (state.t / params.length).astype(jnp.float32)[None]])

    def reset(self, key: Array, params: MemoryParams) -> tuple[Array, MemoryState]:
        state = MemoryState(t=jnp.zeros((), jnp.int32), cue=jax.random.bernoulli(key).astype(jnp.int32))
        return self._obs(state, params), state

    def step(self, key, state: MemoryState, action: Array, params: MemoryParams):
        at_choice = state.t == params.length - 1
        success = (at_choice & (action == state.cue)).astype(jnp.float32)
        state = state.replace(t=state.t + 1)
        return (self._obs(state, params), state, success, at_choice, jnp.asarray(False),
                {"ep_success": success})
