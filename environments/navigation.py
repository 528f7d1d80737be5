"""The evader's cold-start environment (AMS-DRL phase S0): goal reaching or fleeing.

Each episode is, with probability ``flee_prob`` (1/2), a **flee** episode against the
scripted pure-pursuit chaser (``chaser_speed_ratio * pursuer_v_max``, gain 3), else a
**goal-reaching** episode in which the pursuer stands still where it spawned. The learner is
the evader; its observation has exactly the format of the arena's partial observation (the
flattened 10-frame history of ``[x, y, theta, v, omega, d, bearing, lidar]``, newest last), so
weights transfer to self-play. In goal episodes ``(d, bearing)`` is the goal's (``(-1, 0)``
beyond ``fov_range``), in flee episodes the FOV reading of the chaser.

Rewards (reference ``NavigationEnv``; ``d_max`` = arena diagonal):

* goal: ``-goal_distance_weight * d_goal / d_max`` per step, ``+goal_bonus`` when ``d_goal <
  goal_radius`` (then a new goal, or termination after ``max_goals``), ``-boundary_penalty``
  within ``boundary_margin`` of a wall;
* flee: ``+flee_distance_weight * d / d_max`` per step; capture gives ``-capture_penalty``
  and terminates.

Capture by the (standing) pursuer also terminates a goal episode, without the penalty, as in
the reference. Episodes are truncated after ``max_steps`` (300); the arena's own time limit is
ignored. ``goal_bounds_bug`` reproduces the reference's goal sampling and boundary test in
``[0, 20]`` coordinates (the arena is ``[-10, 10]``); off by default (rljax decision).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rljax.environments.pursuit_evasion import (
    ARENA_HALF,
    ARENA_SIZE,
    D_MAX,
    EVADER,
    PURSUER,
    STATE_DIM,
    PursuitEvasion,
    PursuitParams,
    PursuitState,
    agent_distance,
)
from rljax.environments.pursuit_opponents import DEFAULT_CHASER_GAIN, pure_pursuit_action
from rljax.environments.pursuit_sensors import add_lidar_noise, hash_uniforms, wrap_angle
from rljax.envs.environment import Environment
from rljax.envs.params import ParamTable, Spec
from rljax.envs.spaces import Box

Array = jax.Array
GOAL, FLEE = 0, 1
NAV_MODES = ("goal", "flee")


@struct.dataclass
class NavigationParams:
    """Per-instance params: the arena's plus the navigation task's. Build with
    :func:`navigation_params`."""

    arena: PursuitParams
    max_steps: Array  # int32
    flee_prob: Array
    goal_radius: Array
    max_goals: Array  # int32
    goal_bonus: Array
    goal_distance_weight: Array
    boundary_margin: Array
    boundary_penalty: Array
    goal_margin: Array  # goals keep this distance from the walls
    goal_clearance: Array  # goals keep radius + this from obstacle centres
    flee_distance_weight: Array
    capture_penalty: Array
    chaser_speed_ratio: Array
    chaser_gain: Array
    goal_bounds_bug: Array  # int32 0/1


PARAMS: ParamTable[NavigationParams] = ParamTable("navigation", NavigationParams, {
    "max_steps": Spec(300, "int", ge=1),
    "flee_prob": Spec(0.5, ge=0.0, le=1.0),
    "goal_radius": Spec(0.5, gt=0),
    "max_goals": Spec(3, "int", ge=1),
    "goal_bonus": Spec(10.0, ge=0),
    "goal_distance_weight": Spec(0.5, ge=0),
    "boundary_margin": Spec(0.5, ge=0),
    "boundary_penalty": Spec(0.1, ge=0),
    "goal_margin": Spec(1.0, ge=0, lt=ARENA_HALF, doc="goals keep this distance from the walls"),
    "goal_clearance": Spec(0.5, ge=0, doc="goals keep radius + this from obstacle centres"),
    "flee_distance_weight": Spec(0.5, ge=0),
    "capture_penalty": Spec(10.0, ge=0),
    "chaser_speed_ratio": Spec(0.5, ge=0),
    "chaser_gain": Spec(DEFAULT_CHASER_GAIN, ge=0),
    "goal_bounds_bug": Spec(0, "flag"),
}, extra=("arena",), step_limit="max_steps")


def navigation_params(arena: PursuitParams | None = None, **overrides: Any) -> NavigationParams:
    """Validated :class:`NavigationParams`; ``arena`` defaults to the arena's defaults.

    An unknown field or a bad value raises ``ValueError`` naming the field and the value.
    """
    v = PARAMS.values(overrides)
    if arena is None:
        arena = PursuitEvasion().default_params()
    if not isinstance(arena, PursuitParams):
        PARAMS.fail("arena", arena, "must be PursuitParams (see pursuit_params)")
    return PARAMS.to_params(v, arena=arena)


@struct.dataclass
class NavigationState:
    arena: PursuitState
    mode: Array  # int32: GOAL or FLEE
    goal: Array  # [2] float32
    goals_reached: Array  # int32
    t: Array  # int32


class Navigation(Environment[NavigationState, NavigationParams]):
    """Single-agent cold-start environment for the evader (see the module docstring).

    ``arena`` must use partial observations (the cold start trains the partial-observation
    policy). ``goal_candidates``: draws of the bounded goal sampler (first valid one wins;
    the fallback is the arena centre, ``(10, 10)`` under ``goal_bounds_bug``).
    """

    name = "pursuit_navigation"

    def __init__(self, arena: PursuitEvasion | None = None, goal_candidates: int = 32):
        arena = arena if arena is not None else PursuitEvasion()
        if not arena.partial:
            raise ValueError(f"arena observation={arena.observation!r} is invalid: Navigation needs 'partial'")
        if not isinstance(goal_candidates, int) or goal_candidates < 1:
            raise ValueError(f"goal_candidates={goal_candidates!r} is invalid: must be an integer >= 1")
        self.arena = arena
        self.goal_candidates = goal_candidates

    # -- protocol --------------------------------------------------------------------------
    def default_params(self) -> NavigationParams:
        return navigation_params(self.arena.default_params())

    def observation_shape(self, params: NavigationParams | None = None) -> tuple[int, ...]:
        return self.arena.observation_shape()

    def action_space(self, params: NavigationParams) -> Box:
        return self.arena.action_space(params.arena, EVADER)

    def max_steps(self, params: NavigationParams) -> int:
        return PARAMS.max_steps(params)

    def info_keys(self) -> tuple[str, ...]:
        return ("ep_goals_reached", "ep_captured", "ep_wall", "tag")

    def reset(self, key: Array, params: NavigationParams) -> tuple[Array, NavigationState]:
        k_arena, k_mode, k_goal, k_sense = jax.random.split(key, 4)
        _, arena_state = self.arena.reset(k_arena, params.arena)
        mode = jnp.where(jax.random.uniform(k_mode) < params.flee_prob, FLEE, GOAL).astype(jnp.int32)
        goal = self.sample_goal(k_goal, arena_state, params)
        state = NavigationState(arena=arena_state, mode=mode, goal=goal, goals_reached=jnp.zeros((), jnp.int32),
                                t=jnp.zeros((), jnp.int32))
        # Rebuild the first frame with the goal reading (the arena's frame has the FOV one).
        history = jnp.zeros_like(arena_state.history[EVADER])
        state = state.replace(arena=arena_state.replace(history=arena_state.history.at[EVADER].set(
            self._push(history, self.frame(k_sense, state, params)))))
        return state.arena.history[EVADER].reshape(-1), state

    def step(self, key: Array, state: NavigationState, action: Array, params: NavigationParams):
        """``(obs[D], state, reward, terminated, truncated, info)``."""
        k_goal, k_sense = jax.random.split(key)
        a = params.arena
        arena = state.arena
        flee = state.mode == FLEE
        chase = pure_pursuit_action(arena.pose[PURSUER], arena.pose[EVADER], params.chaser_speed_ratio * a.pursuer_v_max,
                                    a.pursuer_omega_max, params.chaser_gain)
        p_command = jnp.where(flee, chase, 0.0)
        # The learner's action in the arena's format (``[omega]`` under fixed_speed).
        mine = self.arena.expand_actions(jnp.stack([jnp.zeros(self.arena.action_dim), jnp.reshape(action, -1)]), a)[EVADER]
        phys = self.arena.physics(arena, jnp.stack([p_command, mine]), a)
        pose = phys["pose"]
        captured = agent_distance(pose) <= a.capture_radius
        t = state.t + 1
        arena = arena.replace(pose=pose, action=phys["action"], t=arena.t + 1)

        # Goal episode.
        d_goal = jnp.sqrt(jnp.sum((pose[EVADER, :2] - state.goal) ** 2))
        reached = ~flee & (d_goal < params.goal_radius)
        goals = state.goals_reached + reached.astype(jnp.int32)
        all_done = reached & (goals >= params.max_goals)
        new_goal = jnp.where(reached & ~all_done, self.sample_goal(k_goal, arena, params), state.goal)
        bug = params.goal_bounds_bug > 0
        lo = jnp.where(bug, 0.0, -ARENA_HALF) + params.boundary_margin
        hi = jnp.where(bug, ARENA_SIZE, ARENA_HALF) - params.boundary_margin
        near_wall = jnp.any((pose[EVADER, :2] < lo) | (pose[EVADER, :2] > hi))
        r_goal = (-params.goal_distance_weight * d_goal / D_MAX + params.goal_bonus * reached
                  - params.boundary_penalty * (near_wall & ~all_done))
        # Flee episode.
        r_flee = params.flee_distance_weight * agent_distance(pose) / D_MAX - params.capture_penalty * captured
        reward = jnp.where(flee, r_flee, r_goal).astype(jnp.float32)
        terminated = captured | all_done
        truncated = t >= params.max_steps

        state = state.replace(arena=arena, goal=new_goal, goals_reached=goals, t=t)
        frame = self.frame(k_sense, state, params)
        state = state.replace(arena=arena.replace(history=arena.history.at[EVADER].set(
            self._push(arena.history[EVADER], frame))))
        info = {
            "ep_goals_reached": reached.astype(jnp.float32),
            "ep_captured": captured.astype(jnp.float32),
            "ep_wall": phys["wall"][EVADER].astype(jnp.float32),
            "tag": state.mode,
        }
        return state.arena.history[EVADER].reshape(-1), state, reward, terminated, truncated, info

    def render(self, state: NavigationState, params: NavigationParams) -> Array:
        """``uint8[240, 240, 3]``: the arena (:meth:`PursuitEvasion.render`'s picture) with the
        goal as a gold star in goal episodes and the episode's mode in the caption. Draws with
        matplotlib: not jittable."""
        import numpy as np

        from rljax.environments.pursuit_render import render_state

        flee = int(np.asarray(state.mode)) == FLEE
        caption = f"t={int(np.asarray(state.t))}  " + ("flee" if flee else f"goal {int(np.asarray(state.goals_reached))} reached")
        return render_state(state.arena, params.arena, goal=None if flee else np.asarray(state.goal), caption=caption)

    # -- pieces ----------------------------------------------------------------------------
    def frame(self, key: Array, state: NavigationState, params: NavigationParams) -> Array:
        """The evader's ``[F]`` frame: the arena frame with the goal reading in goal episodes."""
        head, lidar = self.arena.frame_parts(state.arena, params.arena, EVADER)
        lidar = add_lidar_noise(key, lidar, params.arena.lidar_noise_std, params.arena.lidar_range)
        own = state.arena.pose[EVADER]
        delta = state.goal - own[:2]
        d = jnp.sqrt(jnp.sum(delta * delta))
        bearing = wrap_angle(jnp.arctan2(delta[1], delta[0]) - own[2])
        far = d > params.arena.fov_range
        goal_reading = jnp.stack([jnp.where(far, -1.0, d), jnp.where(far, 0.0, bearing)])
        reading = jnp.where(state.mode == FLEE, head[STATE_DIM - 2:], goal_reading)
        return jnp.concatenate([head[:STATE_DIM - 2], reading, lidar]).astype(jnp.float32)

    def sample_goal(self, key: Array, arena: PursuitState, params: NavigationParams) -> Array:
        """First of ``goal_candidates`` uniform points ``goal_margin`` inside the walls and
        ``radius + goal_clearance`` away from every obstacle centre; else the centre."""
        bug = params.goal_bounds_bug > 0
        lo = jnp.where(bug, 0.0, -ARENA_HALF) + params.goal_margin
        hi = jnp.where(bug, ARENA_SIZE, ARENA_HALF) - params.goal_margin
        cand = lo + (hi - lo) * hash_uniforms(key, 2 * self.goal_candidates).reshape(self.goal_candidates, 2)
        dist = jnp.sqrt(jnp.sum((cand[:, None, :] - arena.obstacles[None, :, :2]) ** 2, axis=-1))
        clash = jnp.any((dist < arena.obstacles[:, 2] + params.goal_clearance) & arena.obstacle_mask, axis=-1)
        ok = ~clash
        centre = jnp.where(bug, ARENA_HALF, 0.0) * jnp.ones(2)
        return jnp.where(jnp.any(ok), cand[jnp.argmax(ok)], centre).astype(jnp.float32)

    def _push(self, history: Array, frame: Array) -> Array:
        return jnp.concatenate([history[1:], frame[None].astype(jnp.float32)], axis=0)

