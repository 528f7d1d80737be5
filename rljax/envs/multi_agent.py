"""The functional multi-agent environment protocol and its ONE single-agent view.

:class:`MultiAgentEnvironment` is the multi-agent counterpart of
:class:`~rljax.envs.Environment` for ONE instance of an ``n``-agent world (batch with ``vmap``)::

    reset(key, params)                -> (obs[n, *O], state)
    step(key, state, actions, params) -> (obs[n, *O], state, rewards[n], terminated, truncated, info)

``actions`` is ``[n, *A]``; row ``i`` belongs to agent ``i``. Agents may have different spaces
(``action_space(params, agent)``: a pursuer's and an evader's speed limits differ), but the
per-agent arrays are stacked along a leading agent axis, so all agents share one observation
shape ``O`` and one action shape ``A`` (pad where a world's agents differ). The stacked
layout is what lets a learner's index be a traced number (self-play trains either role with
one compiled update: ``obs[role]``). ``terminated``/``truncated`` are shared by all agents and
kept apart as in the single-agent protocol; ``info`` is a flat dict of scalars.

Subclasses implement three pure functions, from which ``reset`` and ``step`` are built:
``reset_state(key, params) -> state``, ``transition(key, state, actions, params) -> (state,
rewards[n], terminated, truncated, info)`` and ``observe(state, params) -> obs[n, *O]``
(observations are a function of the state; sensor noise drawn in ``transition`` is stored in
it). ``observe_agent`` may be overridden where one agent's observation is much cheaper than
all of them (the harvest world: 1 of 16 views).

:class:`AgentView` is the single-agent view of such a world: the learner controls agent
``learner``, every other agent acts from a policy function. See its docstring.
"""
from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

import jax
import jax.numpy as jnp
from flax import struct

from rljax.envs.environment import Environment
from rljax.envs.spaces import Box, Discrete, MultiDiscrete

TState = TypeVar("TState")
TParams = TypeVar("TParams")
Array = jax.Array
Space = Discrete | MultiDiscrete | Box


class MultiAgentEnvironment(Generic[TState, TParams]):
    """Base class of an ``num_agents``-agent world (see the module docstring for shapes)."""

    name: str = "multi_agent_environment"
    num_agents: int = 2

    def default_params(self) -> TParams:
        raise NotImplementedError

    def reset_state(self, key: Array, params: TParams) -> TState:
        """The state of a new episode."""
        raise NotImplementedError

    def transition(self, key: Array, state: TState, actions: Array, params: TParams
                   ) -> tuple[TState, Array, Array, Array, dict[str, Array]]:
        """All agents act at once: ``actions[n, *A]`` -> ``(state, rewards[n], terminated,
        truncated, info)``, without auto-reset."""
        raise NotImplementedError

    def observe(self, state: TState, params: TParams) -> Array:
        """``obs[n, *O]``: every agent's observation of ``state``."""
        raise NotImplementedError

    def observe_agent(self, state: TState, params: TParams, agent: int | Array) -> Array:
        """Agent ``agent``'s observation ``[*O]`` (``agent`` may be traced)."""
        return self.observe(state, params)[agent]

    def reset(self, key: Array, params: TParams) -> tuple[Array, TState]:
        """``(obs[n, *O], state)`` of a new episode."""
        state = self.reset_state(key, params)
        return self.observe(state, params), state

    def step(self, key: Array, state: TState, actions: Array, params: TParams
             ) -> tuple[Array, TState, Array, Array, Array, dict[str, Array]]:
        """``(obs[n, *O], state, rewards[n], terminated, truncated, info)``, without auto-reset."""
        state, rewards, terminated, truncated, info = self.transition(key, state, actions, params)
        return self.observe(state, params), state, rewards, terminated, truncated, info

    def observation_shape(self, params: TParams | None = None) -> tuple[int, ...]:
        """Per-agent observation shape ``O``."""
        raise NotImplementedError

    def action_space(self, params: TParams, agent: int = 0) -> Space:
        """Agent ``agent``'s action space (all agents' actions have its shape)."""
        raise NotImplementedError

    def max_steps(self, params: TParams) -> int:
        raise NotImplementedError

    def info_keys(self) -> tuple[str, ...]:
        return ()

    render_jittable: bool = False  # see Environment.render_jittable

    def render(self, state: TState, params: TParams) -> Array:
        """A picture of the whole world (every agent): ``uint8[H, W, 3]`` RGB, as
        :meth:`rljax.envs.Environment.render` (each implementation says whether it is jittable)."""
        raise NotImplementedError(f"environment {self.name!r} has no render(state, params)")


# ``others(policy_params, key, state, env_params) -> (actions[n, *A], state)``: the actions of
# every agent (the learner's row is overwritten by the view) computed from the state BEFORE the
# step, and the state with the policy's own memory updated (stateless policies return it as is).
OthersPolicy = Callable[[Any, Array, Any, Any], tuple[Array, Any]]


@struct.dataclass
class AgentViewParams:
    """The default parameter layout of :class:`AgentView`: the world's params and the other
    agents' policy params (per instance under ``vmap``: e.g. a pool member's index)."""

    env: Any
    others: Any


def _default_split(params: AgentViewParams) -> tuple[Any, Any]:
    return params.env, params.others


class AgentView(Environment):
    """A :class:`MultiAgentEnvironment` seen by ONE agent, ``learner`` (an int, or a traced
    number bound per update as self-play does), as a single-agent
    :class:`~rljax.envs.Environment`.

    Every other agent acts from ``others(policy_params, key, state, env_params) -> (actions[n,
    *A], state)``: a function of the state *before* the step (privileged agents read it
    directly; observing agents call ``env.observe`` on it), never of the learner's action of
    the same frame. Scripted agents, a frozen network, a pool member drawn per instance: all
    are such a function and its params. A policy with memory keeps it in the state it is given
    and returns it updated (the harvest residents' patrol and plant gate); it must not change
    anything else.

    Parameters. The view's params are one pytree holding the world's params and the policy's;
    ``split_params(view_params) -> (env_params, policy_params)`` picks them out (default:
    :class:`AgentViewParams`). Both may then differ per instance under ``VecEnv``'s vmap (a
    sampler redraws e.g. an opponent index at every reset); what is shared by all instances
    (a pool's network weights) is best bound into ``others`` itself, so it is not copied per
    instance.

    Options:

    * ``takeover(view_params) -> bool``: where true the learner's action is ignored and the
      policy's own action for the learner's slot is played (a scripted counterfactual of the
      learner, e.g. harvest's baseline ``ego_is_resident``).
    * ``tag(view_params) -> int32``: added to ``info`` as ``"tag"`` (e.g. which opponent).

    ``step`` splits its key into ``(world key, others' key)`` in that order.
    """

    def __init__(
        self,
        env: MultiAgentEnvironment,
        learner: int | Array,
        others: OthersPolicy,
        split_params: Callable[[Any], tuple[Any, Any]] = _default_split,
        default_params: Callable[[], Any] | None = None,
        takeover: Callable[[Any], Array] | None = None,
        tag: Callable[[Any], Array] | None = None,
        name: str | None = None,
    ):
        if isinstance(learner, int) and not isinstance(learner, bool) and not 0 <= learner < env.num_agents:
            raise ValueError(f"learner={learner!r} is invalid: must be in [0, {env.num_agents})")
        self.env = env
        self.learner = learner
        self.others = others
        self.split_params = split_params
        self._default_params = default_params
        self.takeover = takeover
        self.tag = tag
        self.name = name or f"{env.name}_agent_view"

    # -- protocol --------------------------------------------------------------------------
    def default_params(self) -> Any:
        if self._default_params is None:
            raise NotImplementedError("AgentView: pass default_params to build the view's params")
        return self._default_params()

    def observation_shape(self, params: Any = None) -> tuple[int, ...]:
        return self.env.observation_shape(None if params is None else self.split_params(params)[0])

    def action_space(self, params: Any) -> Space:
        learner = self.learner if isinstance(self.learner, int) else 0  # a traced learner: shapes agree
        return self.env.action_space(self.split_params(params)[0], learner)

    def max_steps(self, params: Any) -> int:
        return self.env.max_steps(self.split_params(params)[0])

    def info_keys(self) -> tuple[str, ...]:
        keys = self.env.info_keys()
        return keys + ("tag",) if self.tag is not None and "tag" not in keys else keys

    @property
    def render_jittable(self) -> bool:
        return self.env.render_jittable

    def render(self, state: Any, params: Any) -> Array:
        """The world's picture (:meth:`MultiAgentEnvironment.render`, every agent drawn);
        jittable where the world's is."""
        return self.env.render(state, self.split_params(params)[0])

    def reset(self, key: Array, params: Any) -> tuple[Array, Any]:
        env_params = self.split_params(params)[0]
        state = self.env.reset_state(key, env_params)
        return self.env.observe_agent(state, env_params, self.learner), state

    def joint_actions(self, key: Array, state: Any, action: Array, params: Any) -> tuple[Array, Any]:
        """The ``[n, *A]`` actions of one step (``key``: the others' key) and the state with the
        policy's memory updated."""
        env_params, policy_params = self.split_params(params)
        joint, state = self.others(policy_params, key, state, env_params)
        mine = jnp.asarray(action, joint.dtype).reshape(joint.shape[1:])
        if self.takeover is not None:
            mine = jnp.where(self.takeover(params), joint[self.learner], mine)
        joint = joint.at[self.learner].set(mine)
        return joint, state

    def step(self, key: Array, state: Any, action: Array, params: Any):
        """``(obs[*O], state, reward, terminated, truncated, info)`` of the learner."""
        k_env, k_others = jax.random.split(key)
        joint, state = self.joint_actions(k_others, state, action, params)
        return self.advance(k_env, state, joint, params)

    def advance(self, key: Array, state: Any, joint: Array, params: Any):
        """The world's step under the joint actions ``joint[n, *A]`` (``key``: the world's key),
        as :meth:`step` returns it."""
        env_params = self.split_params(params)[0]
        state, rewards, terminated, truncated, info = self.env.transition(key, state, joint, env_params)
        obs = self.env.observe_agent(state, env_params, self.learner)
        if self.tag is not None:
            info = dict(info, tag=jnp.asarray(self.tag(params), jnp.int32))
        return obs, state, rewards[self.learner], terminated, truncated, info
