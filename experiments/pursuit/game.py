"""The pursuit-evasion arena as a self-play game: what :mod:`rljax.selfplay` needs to know
about it (:class:`~rljax.selfplay.game.TwoPlayerGame`).

* the curriculum task ``(min_d, max_d, n_obstacles)`` sets the arena's start distances and
  obstacle count (capped by the arena's capacity);
* the random opponent is uniform over the role's action box ``[0, v_max] x [-omega_max,
  omega_max]`` in the arena's action format;
* the scripted baselines (the reference's ``FixedBaselineEvalCallback``): the pure-pursuit
  pursuer, the flee-away and flee-to-corner evaders (:func:`rljax.environments.pursuit_opponents.
  baseline_policies`);
* the outcome: a capture (termination) is the pursuer's win, a timeout (truncation) the
  evader's;
* the cold start (S0) is the evader's navigation task (:mod:`rljax.environments.navigation`), whose
  state embeds the arena's (the partial observation only).
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rljax.environments.navigation import Navigation, NavigationParams, NavigationState
from rljax.environments.pursuit_evasion import PursuitEvasion, PursuitParams, PursuitState
from rljax.environments.pursuit_opponents import baseline_policies, random_action
from rljax.errors import ConfigError
from rljax.selfplay.game import Baseline, TwoPlayerGame

Array = jax.Array


class PursuitGame(TwoPlayerGame):
    """:class:`~rljax.environments.pursuit_evasion.PursuitEvasion` for self-play (see the module
    docstring)."""

    def __init__(self, env: PursuitEvasion):
        self.env = env

    def validate(self, protocol_cfg: Any) -> None:
        if protocol_cfg.cold_start_timesteps > 0 and not self.env.partial:
            raise ConfigError("protocol.cold_start_timesteps must be 0 with env.observation=full "
                              "(the navigation cold start trains the partial-observation policy)")

    def curriculum_params(self, params: PursuitParams, min_d: Array, max_d: Array, n_obstacles: Array) -> PursuitParams:
        return params.replace(min_init_d=min_d, max_init_d=max_d,
                              n_obstacles=jnp.minimum(n_obstacles, self.env.max_obstacles))

    def obstacles(self, params: PursuitParams) -> Array:
        return params.n_obstacles

    def task_metrics(self, params: PursuitParams) -> dict[str, Array]:
        return {"max_init_d": params.max_init_d, "min_init_d": params.min_init_d, "n_obstacles": params.n_obstacles}

    def random_action(self, key: Array, params: PursuitParams, role: Array | int) -> Array:
        vm, om = params.v_max()[role], params.omega_max()[role]
        return self.env.encode_action(random_action(key, vm, om, self.env.fixed_speed), vm, om)

    def baselines(self) -> tuple[Baseline, ...]:
        return tuple(Baseline(name, role, act) for name, role, act in baseline_policies(self.env))

    def cold_env(self) -> Navigation:
        return Navigation(self.env)

    def cold_params(self, cold: NavigationParams, params: PursuitParams) -> NavigationParams:
        return cold.replace(arena=params)

    def embed(self, arena_state: PursuitState) -> NavigationState:
        z = jnp.zeros((), jnp.int32)
        return NavigationState(arena=arena_state, mode=z, goal=jnp.zeros((2,), jnp.float32), goals_reached=z, t=z)

    def arena_state(self, state: NavigationState) -> PursuitState:
        return state.arena

    def with_arena_state(self, state: NavigationState, arena_state: PursuitState) -> NavigationState:
        return state.replace(arena=arena_state)
