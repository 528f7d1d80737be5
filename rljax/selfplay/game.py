"""What self-play needs to know about a two-player game: the small arena-specific interface.

:class:`~rljax.selfplay.trainer.SelfPlayTrainer` drives any two-player
:class:`~rljax.envs.multi_agent.MultiAgentEnvironment` through a :class:`TwoPlayerGame`. The
AMS-DRL vocabulary names the roles: agent 0 is the *pursuer*, agent 1 the *evader* (the role that
the cold start, the warm start, EWC and RND train). Both roles must have the same observation and
action shapes (one network serves either role).

A game supplies:

* ``env``: the two-player world; its ``step`` ends an episode by ``terminated`` (the pursuer
  won: a capture) or ``truncated`` (the evader survived the time limit). :meth:`outcome`
  may say otherwise. Its ``info`` has ``ep_captured`` (1.0 on the step of a capture): the
  health monitor's rolling capture rate reads it.
* the curriculum parameter, :meth:`curriculum_params`: the AMS-DRL curricula
  (:mod:`rljax.selfplay.curriculum`) produce a task ``(min_d, max_d, n_obstacles)`` (start
  distances and a hazard count); the game writes it into its params.
* :meth:`random_action`: the uniform random policy of a role (the pool's "random" opponent).
* scripted baselines (optional), :meth:`baselines`: fixed strategies of either role that each
  phase's agents are rated against (Elo, :mod:`rljax.selfplay.elo`); the game's random policy
  is always one (the trainer adds it per role).
* the cold-start task (optional): :meth:`cold_env` is a single-agent environment for the evader
  whose observations have the arena's shape and whose state embeds the arena's
  (:meth:`embed`, :meth:`arena_state`, :meth:`with_arena_state`), so both stages share one
  state type and one PPO update.

Subclasses override what they use; the defaults describe a game without a cold start.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax

from rljax.envs.environment import Environment
from rljax.envs.multi_agent import MultiAgentEnvironment

Array = jax.Array


@dataclass(frozen=True)
class Baseline:
    """A scripted strategy of ``role`` (0 pursuer, 1 evader): ``act(key, state, params) ->
    action`` for one instance, reading the true state (the reference's baselines read the
    simulator), in the env's action format."""

    name: str
    role: int
    act: Callable[[Array, Any, Any], Array]


class TwoPlayerGame:
    """Base class of the arena-specific half of self-play (see the module docstring)."""

    env: MultiAgentEnvironment

    def validate(self, protocol_cfg: Any) -> None:
        """Raise :class:`~rljax.errors.ConfigError` for a protocol this game cannot run."""

    # -- the curriculum parameter ------------------------------------------------------------
    def curriculum_params(self, params: Any, min_d: Array, max_d: Array, n_obstacles: Array) -> Any:
        """``params`` at the curriculum task ``(min_d, max_d, n_obstacles)``."""
        raise NotImplementedError

    def obstacles(self, params: Any) -> Array:
        """The task's hazard count (``protocol.evader_training_multiplier`` lengthens the
        evader's phases where it is > 0); 0 by default."""
        return jax.numpy.zeros((), jax.numpy.int32)

    def task_metrics(self, params: Any) -> dict[str, Array]:
        """Scalars describing the current task, logged with every update (default none)."""
        return {}

    # -- the random opponent -----------------------------------------------------------------
    def random_action(self, key: Array, params: Any, role: Array | int) -> Array:
        """An action of the uniform random policy for ``role`` (may be traced), in the env's
        action format (shape and dtype of a policy's action)."""
        raise NotImplementedError

    def baselines(self) -> tuple[Baseline, ...]:
        """Scripted strategies to rate the agents against after every phase (default none)."""
        return ()

    # -- the head-to-head outcome ------------------------------------------------------------
    def outcome(self, terminated: Array, truncated: Array, info: dict[str, Array]) -> tuple[Array, Array]:
        """``(pursuer_won, evader_won)`` of a step that may end an episode (bool)."""
        return terminated, truncated

    # -- the cold-start task (optional) ------------------------------------------------------
    def cold_env(self) -> Environment | None:
        """The evader's cold-start environment, or ``None`` (no cold start)."""
        return None

    def cold_params(self, cold: Any, params: Any) -> Any:
        """The cold-start params ``cold`` set to the arena task ``params`` (S0 runs at the
        first curriculum task)."""
        return cold

    def embed(self, arena_state: Any) -> Any:
        """An arena state as a cold-start state (the cold-start fields zero)."""
        return arena_state

    def arena_state(self, state: Any) -> Any:
        """The arena part of a (cold-start shaped) state."""
        return state

    def with_arena_state(self, state: Any, arena_state: Any) -> Any:
        """``state`` with its arena part replaced."""
        return arena_state
