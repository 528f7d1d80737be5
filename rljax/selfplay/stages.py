"""The environment of every self-play stage: the game's cold-start task (S0) or the self-play
view, chosen by a flag bound per update, so the protocol has ONE PPO update (one compiled
training graph instead of two).
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from rljax.envs.environment import Environment
from rljax.selfplay.view import SelfPlayView, SelfPlayViewParams, make_lane_sampler

Array = jax.Array


@struct.dataclass
class StageParams:
    view: SelfPlayViewParams
    cold: Any  # the cold-start task's params (``()`` without one)


class ProtocolEnv(Environment):
    """The game's cold start or the self-play view, by the bound flag ``cold`` (a game without
    :meth:`~rljax.selfplay.game.TwoPlayerGame.cold_env`: the view alone).

    The state has the cold-start environment's type (the game embeds the arena's state in it),
    so both stages share one state type, one observation and one ``info`` (the union of both,
    zeros where a key does not apply). ``any_cold`` must be True whenever ``cold`` is for any
    member of a vmapped batch (reduce it over the member axis): the cold-start step runs under
    ``lax.cond(any_cold, ...)`` and costs nothing outside the cold start (the view's step
    always runs; during the cold start its result is dropped). With a recurrent opponent the
    state is the view's :class:`~rljax.selfplay.view.OpponentMemory` around that state.
    """

    def __init__(self, view: SelfPlayView, use_cold_start: bool = True, cold: Any = False, any_cold: Any = False):
        self.view = view
        self.game = view.game
        self.cold_env = self.game.cold_env() if use_cold_start else None
        if self.cold_env is None and not (isinstance(any_cold, bool) and not any_cold):
            raise ValueError("a cold start needs the game's cold-start environment (none given)")
        self.use_cold_start = use_cold_start
        self.cold = cold
        self.any_cold = any_cold
        self.name = f"{view.env.name}_protocol"
        self._keys = tuple(dict.fromkeys(view.info_keys() + (self.cold_env.info_keys() if self.cold_env is not None else ())))

    def bind(self, role: Any, lane_params: Any = None, lane_random: Any = None, cold: Any = False,
             any_cold: Any = False) -> "ProtocolEnv":
        return ProtocolEnv(self.view.bind(role, lane_params, lane_random), self.use_cold_start, cold, any_cold)

    def default_params(self) -> StageParams:
        return StageParams(self.view.default_params(), self.cold_env.default_params() if self.cold_env is not None else ())

    def observation_shape(self, params: StageParams | None = None) -> tuple[int, ...]:
        return self.view.observation_shape()

    def action_space(self, params: StageParams):
        return self.view.action_space(params.view)

    def max_steps(self, params: StageParams) -> int:
        return self.view.max_steps(params.view)

    def info_keys(self) -> tuple[str, ...]:
        return self._keys

    def _fill(self, info: dict[str, Array]) -> dict[str, Array]:
        return {k: info[k] if k in info else jnp.zeros((), jnp.int32 if k == "tag" else jnp.float32) for k in self._keys}

    def _switch(self, cold_fn: Callable, view_fn: Callable):
        # The view always runs (one trace of it, not one per branch); the cold start only while
        # some member is in it.
        out = view_fn()
        if isinstance(self.any_cold, bool) and not self.any_cold:
            return out
        cold_out = jax.lax.cond(jnp.asarray(self.any_cold), cold_fn,
                           lambda: jax.tree.map(jnp.zeros_like, jax.eval_shape(cold_fn)))
        return jax.tree.map(lambda a, b: jnp.where(self.cold, a, b), cold_out, out)

    def reset(self, key: Array, params: StageParams) -> tuple[Array, Any]:
        view_ = self.view

        def view():
            obs, state = view_.reset(key, params.view)
            return obs, view_.with_world(state, self.game.embed(view_.world(state)))

        def cold():
            obs, state = self.cold_env.reset(key, params.cold)
            return obs, view_.remember(state)

        return self._switch(cold, view)

    def step(self, key: Array, state: Any, action: Array, params: StageParams):
        # A recurrent opponent's carry rides beside the cold-start shaped state
        # (:class:`~rljax.selfplay.view.OpponentMemory`); the cold start leaves it as it is.
        view_, world = self.view, self.view.world(state)

        def cold():
            obs, st, r, term, trunc, info = self.cold_env.step(key, world, action, params.cold)
            return obs, view_.with_world(state, st), r, jnp.asarray(term, bool), jnp.asarray(trunc, bool), self._fill(info)

        def view():
            vstate = view_.with_world(state, self.game.arena_state(world))
            obs, vstate, r, term, trunc, info = view_.step(key, vstate, action, params.view)
            new = view_.with_world(vstate, self.game.with_arena_state(world, view_.world(vstate)))
            return obs, new, r, jnp.asarray(term, bool), jnp.asarray(trunc, bool), self._fill(info)

        return self._switch(cold, view)


def protocol_sampler(num_lanes: int) -> Callable[[Array, StageParams], StageParams]:
    """:func:`~rljax.selfplay.view.make_lane_sampler` on the view part of :class:`StageParams`."""
    lanes = make_lane_sampler(num_lanes)

    def sampler(key: Array, base: StageParams, index: Array = 0) -> StageParams:
        return base.replace(view=lanes(key, base.view, index))

    sampler.indexed = True
    return sampler
