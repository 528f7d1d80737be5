"""1v1 unicycle pursuit-evasion arena with circular obstacles, as a pure JAX environment.

Two unicycles (pursuer = agent 0, evader = agent 1) move simultaneously in a 20 m x 20 m
arena centred at the origin. Controls ``[v, omega]`` are clipped to ``v in [0, v_max]`` (no
reverse) and ``|omega| <= omega_max`` per role, then integrated by Euler with ``dt``:

    x' = x + v cos(theta) dt,   y' = y + v sin(theta) dt,   theta' = wrap(theta + omega dt)

Positions are clipped to ``[-10 + r, 10 - r]`` (the robot radius; a ``wall_contact`` flag),
pushed radially out of any obstacle they overlap to distance ``radius + r`` (3 passes; an
agent exactly at a centre is pushed along its heading), and clipped again. During the first
``prep_steps`` steps the pursuer's ``v`` is forced to 0 (it may turn).

**Episode.** Capture, ``distance <= capture_radius`` after moving, is a *termination*; reaching
``max_steps`` without capture is a *truncation* (never both).

**Reward** (``d_max`` = arena diagonal 28.28; ``[.]`` is 0/1)::

    r_P = distance_scale (d_prev - d) / d_max + capture_bonus [captured] + timeout_penalty [timeout]
    r_E = -r_P                                                 (zero-sum default)
        + w_occlusion [LOS blocked, not captured]              (mode A)
    or  r_E = visibility_weight (+1 if LOS blocked else -1)    (mode B: use_visibility_reward,
                                                                obstacles exist, non-terminal)
    r_E += survival_bonus [non-terminal]
         + w_obs_approach (d_obs_prev - d_obs) / d_max [non-terminal, obstacles exist]
    r_i -= w_collision [agent i pushed out of an obstacle] + w_wall [agent i clipped at a wall]

``timeout_penalty`` is *added* (default -100, as the reference); ``d_obs`` is the evader's
surface distance to the nearest obstacle.

**Observations** (one float32 vector per agent, from its own perspective; static mode):

* ``"partial"`` (default): the flattened ``[history, 7 + n_rays]`` stack of raw frames
  ``[x, y, theta, v, omega, d_opp, bearing, lidar(n_rays)]``, **oldest first, newest last**,
  zero-padded at episode start. ``v, omega`` are the agent's own applied (clipped) controls,
  ``(d_opp, bearing)`` the FOV reading ((-1, 0) when unseen), the lidar is in metres. The
  newest frame is ``obs[-FRAME:]``.
* ``"full"``: the ``14 + 2K`` normalised vector (see :meth:`PursuitEvasion.full_observation`),
  with ``K = n_obstacle_obs`` nearest obstacles.

**Resets** are bounded and branch-free: obstacle ``i`` takes the first of
``obstacle_candidates`` i.i.d. candidates that keeps the gap ``obstacle_margin`` to the
obstacles placed before it (an obstacle none fits is skipped); the start poses are the first
acceptable of ``init_candidates`` independent pairs (neither agent inside an obstacle,
``min_init_d <= d <= max_init_d``), else the fallback (-5, 0, 0) / (5, 0, pi). Every
proposal used has a constant density on the acceptable set, so the result is distributed
exactly as the reference's rejection sampler; only the (tiny) chance of falling back
differs. The candidates' uniforms come from :func:`~rljax.environments.pursuit_sensors.hash_uniforms`
(one threefry draw, then a counter hash): ``VecEnv`` computes a reset for every instance
whenever any instance finishes, so resets must be cheap.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rljax.environments.pursuit_arena import ARENA_HALF, EVADER, PURSUER, ROLES  # re-exported
from rljax.environments.pursuit_sensors import (
    add_lidar_noise,
    fov_reading,
    hash_uniforms,
    lidar_ranges,
    line_of_sight_blocked,
    nearest_surface_distance,
    wrap_angle,
)
from rljax.envs.multi_agent import MultiAgentEnvironment
from rljax.envs.params import ParamTable, Spec, stack_params
from rljax.envs.spaces import Box

Array = jax.Array

ARENA_SIZE = 2.0 * ARENA_HALF
D_MAX = math.sqrt(2.0) * ARENA_SIZE  # arena diagonal, 28.28
STATE_DIM = 7  # [x, y, theta, v, omega, d_opp, bearing] of a partial-observation frame
FULL_BASE_DIM = 14  # full observation without obstacle features
DEFAULT_N_RAYS = 36
DEFAULT_HISTORY = 10
DEFAULT_MAX_OBSTACLES = 3
FRAME_DIM = STATE_DIM + DEFAULT_N_RAYS  # 43
PARTIAL_OBS_DIM = DEFAULT_HISTORY * FRAME_DIM  # 430
FULL_OBS_DIM = FULL_BASE_DIM + 2 * DEFAULT_MAX_OBSTACLES  # 20
FALLBACK_POSES = np.array([[-5.0, 0.0, 0.0], [5.0, 0.0, math.pi]], np.float32)
PUSH_PASSES = 3
OBSERVATIONS = ("partial", "full")


def frame_dim(n_rays: int) -> int:
    """Length of one partial-observation frame."""
    return STATE_DIM + n_rays


def full_obs_dim(n_obstacle_obs: int) -> int:
    """Length of the full observation with ``n_obstacle_obs`` obstacle features."""
    return FULL_BASE_DIM + 2 * n_obstacle_obs


@struct.dataclass
class PursuitParams:
    """Per-instance numeric parameters (scalar leaves; vmappable). Build with
    :func:`pursuit_params`, which validates every field."""

    pursuer_v_max: Array
    pursuer_omega_max: Array
    evader_v_max: Array
    evader_omega_max: Array
    dt: Array
    capture_radius: Array
    robot_radius: Array
    max_steps: Array  # int32
    prep_steps: Array  # int32: the pursuer cannot move (may turn) while t < prep_steps
    min_init_d: Array
    max_init_d: Array
    n_obstacles: Array  # int32, <= the env's max_obstacles
    obstacle_min_radius: Array
    obstacle_max_radius: Array
    obstacle_margin: Array  # gap between obstacles and to the walls
    distance_scale: Array
    capture_bonus: Array
    timeout_penalty: Array  # added to r_P on timeout (negative = penalty)
    w_occlusion: Array  # mode A evader bonus
    use_visibility_reward: Array  # int32 0/1: mode B evader reward
    visibility_weight: Array
    survival_bonus: Array
    w_obs_approach: Array  # evader PBRS toward the nearest obstacle
    w_collision: Array  # per-agent obstacle-contact penalty
    w_wall: Array  # per-agent wall-contact penalty
    fov_half_angle: Array  # radians
    fov_range: Array
    fov_occlusion: Array  # int32 0/1: obstacles hide the opponent from the FOV sensor
    lidar_range: Array
    lidar_noise_std: Array
    lidar_bounds_bug: Array  # int32 0/1: the reference's [0, W] lidar walls

    def v_max(self) -> Array:
        """``[2]`` speed limits (pursuer, evader)."""
        return jnp.stack([self.pursuer_v_max, self.evader_v_max])

    def omega_max(self) -> Array:
        """``[2]`` turn-rate limits (pursuer, evader)."""
        return jnp.stack([self.pursuer_omega_max, self.evader_omega_max])


def _cross_checks(v: dict[str, Any], t: ParamTable) -> None:
    t.require(v["max_init_d"] >= v["min_init_d"], "max_init_d", v["max_init_d"], f"must be >= min_init_d={v['min_init_d']}")
    t.require(v["obstacle_max_radius"] >= v["obstacle_min_radius"], "obstacle_max_radius", v["obstacle_max_radius"],
              f"must be >= obstacle_min_radius={v['obstacle_min_radius']}")
    room = v["obstacle_max_radius"] + v["obstacle_margin"]
    t.require(room < ARENA_HALF, "obstacle_max_radius", v["obstacle_max_radius"],
              f"obstacle_max_radius + obstacle_margin = {room} must be < {ARENA_HALF} (the arena half-width)")


# Defaults: the reference env's, with the rljax decisions (centred lidar walls, max_steps 1200);
# n_obstacles and the init distances are set by the curriculum.
PARAMS: ParamTable[PursuitParams] = ParamTable("pursuit", PursuitParams, {
    "pursuer_v_max": Spec(1.0, gt=0),
    "pursuer_omega_max": Spec(2.84, gt=0),
    "evader_v_max": Spec(1.0, gt=0),
    "evader_omega_max": Spec(2.84, gt=0),
    "dt": Spec(0.05, gt=0),
    "capture_radius": Spec(0.5, gt=0),
    "robot_radius": Spec(0.15, ge=0, lt=ARENA_HALF / 2),
    "max_steps": Spec(1200, "int", ge=1),
    "prep_steps": Spec(0, "int", ge=0),
    "min_init_d": Spec(3.0, ge=0),
    "max_init_d": Spec(15.0),
    "n_obstacles": Spec(0, "int", ge=0),
    "obstacle_min_radius": Spec(0.3, gt=0),
    "obstacle_max_radius": Spec(1.0),
    "obstacle_margin": Spec(0.5, ge=0),
    "distance_scale": Spec(1.0, ge=0),
    "capture_bonus": Spec(100.0, ge=0),
    "timeout_penalty": Spec(-100.0, le=0, doc="added to the pursuer's reward"),
    "w_occlusion": Spec(0.0, ge=0),
    "use_visibility_reward": Spec(False, "flag"),
    "visibility_weight": Spec(1.0, ge=0),
    "survival_bonus": Spec(0.0, ge=0),
    "w_obs_approach": Spec(0.0, ge=0),
    "w_collision": Spec(0.0, ge=0),
    "w_wall": Spec(0.0, ge=0),
    "fov_half_angle": Spec(math.radians(60.0), gt=0, le=math.pi),
    "fov_range": Spec(10.0, gt=0),
    "fov_occlusion": Spec(False, "flag"),
    "lidar_range": Spec(5.0, gt=0),
    "lidar_noise_std": Spec(0.02, ge=0),
    "lidar_bounds_bug": Spec(False, "flag"),
}, check=_cross_checks, step_limit="max_steps")


def pursuit_params(max_obstacles: int | None = None, **overrides: Any) -> PursuitParams:
    """Validated :class:`PursuitParams`: defaults replaced by ``overrides`` (by field name).

    An unknown field or a bad value raises ``ValueError`` naming the field and the value.
    ``max_obstacles`` (the env's static capacity), when given, bounds ``n_obstacles``.
    """
    v = PARAMS.values(overrides)
    if max_obstacles is not None:
        PARAMS.require(v["n_obstacles"] <= max_obstacles, "n_obstacles", v["n_obstacles"], f"must be <= max_obstacles={max_obstacles}")
    return PARAMS.to_params(v)


@struct.dataclass
class PursuitState:
    """State of one arena instance. Agent axis: 0 = pursuer, 1 = evader."""

    pose: Array  # [2, 3] float32 (x, y, theta)
    action: Array  # [2, 2] float32 applied (clipped) controls (v, omega) of the last step
    obstacles: Array  # [M, 3] float32 (x, y, radius)
    obstacle_mask: Array  # [M] bool
    t: Array  # int32 steps taken
    history: Array  # [2, H, F] float32 partial-observation frames, newest last ([2, 0, F] in full mode)


class PursuitEvasion(MultiAgentEnvironment[PursuitState, PursuitParams]):
    """The two-agent arena, a :class:`~rljax.envs.multi_agent.MultiAgentEnvironment` (agent 0
    pursuer, agent 1 evader); :func:`rljax.environments.pursuit_opponents.OpponentView` and the
    self-play view are its single-agent views (:class:`~rljax.envs.multi_agent.AgentView`).

    Static constructor arguments: ``observation`` (``"partial"`` or ``"full"``),
    ``max_obstacles`` (capacity of the obstacle arrays), ``n_rays``, ``history``,
    ``n_obstacle_obs`` (K of the full observation; default ``max_obstacles``), ``fixed_speed``
    (1-D actions ``[omega]``, ``v = v_max``), ``unit_actions`` (actions in ``[-1, 1]`` per
    dimension, rescaled affinely to ``[0, v_max] x [-omega_max, omega_max]``, as SB3 rescales
    squashed policies: a Gaussian policy's initial mean 0 then drives at half speed instead of
    having half its samples clipped to standing still), and the candidate counts of the bounded
    reset samplers.
    """

    name = "pursuit_evasion"
    num_agents = 2

    def __init__(
        self,
        observation: str = "partial",
        max_obstacles: int = DEFAULT_MAX_OBSTACLES,
        n_rays: int = DEFAULT_N_RAYS,
        history: int = DEFAULT_HISTORY,
        n_obstacle_obs: int | None = None,
        fixed_speed: bool = False,
        obstacle_candidates: int = 16,
        unit_actions: bool = False,
        init_candidates: int = 64,
    ):
        if observation not in OBSERVATIONS:
            raise ValueError(f"observation={observation!r} is invalid: must be one of {OBSERVATIONS}")
        for name, val, lo in (("max_obstacles", max_obstacles, 0), ("n_rays", n_rays, 1), ("history", history, 1),
                              ("obstacle_candidates", obstacle_candidates, 1), ("init_candidates", init_candidates, 1)):
            if not isinstance(val, int) or isinstance(val, bool) or val < lo:
                raise ValueError(f"{name}={val!r} is invalid: must be an integer >= {lo}")
        n_obstacle_obs = max_obstacles if n_obstacle_obs is None else n_obstacle_obs
        if not isinstance(n_obstacle_obs, int) or n_obstacle_obs < 0:
            raise ValueError(f"n_obstacle_obs={n_obstacle_obs!r} is invalid: must be an integer >= 0")
        self.observation = observation
        self.partial = observation == "partial"
        self.max_obstacles = max_obstacles
        self.n_rays = n_rays
        self.history = history
        self.n_obstacle_obs = n_obstacle_obs
        self.fixed_speed = fixed_speed
        self.unit_actions = bool(unit_actions)
        self.obstacle_candidates = obstacle_candidates
        self.init_candidates = init_candidates
        self.frame_dim = frame_dim(n_rays)
        self.obs_dim = history * self.frame_dim if self.partial else full_obs_dim(n_obstacle_obs)
        self.action_dim = 1 if fixed_speed else 2

    # -- protocol-like surface -------------------------------------------------------------
    def default_params(self) -> PursuitParams:
        return pursuit_params(max_obstacles=self.max_obstacles)

    def check_params(self, params: PursuitParams) -> None:
        """Raises ``ValueError`` if concrete ``params`` do not fit this env's static shapes."""
        n = int(np.max(np.asarray(params.n_obstacles)))
        PARAMS.require(n <= self.max_obstacles, "n_obstacles", n, f"must be <= max_obstacles={self.max_obstacles}")

    def observation_shape(self, params: PursuitParams | None = None) -> tuple[int, ...]:
        """Per-agent observation shape ``(D,)``."""
        return (self.obs_dim,)

    def action_space(self, params: PursuitParams, role: int = PURSUER) -> Box:
        """Actions are physical ``[v, omega]`` (or ``[omega]``), clipped by the env. ``Box``
        holds scalar bounds, so it spans ``[-omega_max, max(v_max, omega_max)]`` of the role;
        the exact per-dimension bounds are ``[0, v_max] x [-omega_max, omega_max]``. With
        ``unit_actions`` the box is ``[-1, 1]`` per dimension."""
        if self.unit_actions:
            return Box(-1.0, 1.0, (self.action_dim,))
        try:
            vm = float(np.max(np.asarray(params.v_max()[role])))
            om = float(np.max(np.asarray(params.omega_max()[role])))
        except (TypeError, jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
            vm, om = PARAMS.defaults["pursuer_v_max"], PARAMS.defaults["pursuer_omega_max"]
        return Box(-om, om if self.fixed_speed else max(vm, om), (self.action_dim,))

    def max_steps(self, params: PursuitParams) -> int:
        return PARAMS.max_steps(params)

    def info_keys(self) -> tuple[str, ...]:
        return INFO_KEYS

    # -- reset -----------------------------------------------------------------------------
    def render(self, state: PursuitState, params: PursuitParams) -> Array:
        """``uint8[240, 240, 3]``: the arena, obstacles, both robots with headings and FOV cones,
        the capture radius (:func:`rljax.environments.pursuit_render.render_state`). Draws with
        matplotlib: not jittable (call it on concrete states)."""
        from rljax.environments.pursuit_render import render_state

        return render_state(state, params)

    def reset_state(self, key: Array, params: PursuitParams) -> PursuitState:
        """A new episode's state (``reset`` adds ``obs[2, D]``)."""
        k_obs, k_pose, k_sense = jax.random.split(key, 3)
        obstacles, mask = self.place_obstacles(k_obs, params)
        pose = self.initial_poses(k_pose, obstacles, mask, params)
        action = jnp.zeros((2, 2), jnp.float32)
        history = jnp.zeros((2, self.history if self.partial else 0, self.frame_dim), jnp.float32)
        state = PursuitState(pose=pose, action=action, obstacles=obstacles, obstacle_mask=mask,
                             t=jnp.zeros((), jnp.int32), history=history)
        if self.partial:
            state = state.replace(history=self._push(history, self.frames(k_sense, state, params)))
        return state

    def place_obstacles(self, key: Array, params: PursuitParams) -> tuple[Array, Array]:
        """``(obstacles[M, 3], mask[M])``: slot ``i < n_obstacles`` takes the first of
        ``obstacle_candidates`` draws (radius ~ U(min, max), centre ~ U(+-(10 - radius -
        margin))) keeping the gap ``margin`` to the obstacles placed before it; a slot no
        candidate fits stays invalid (skipped)."""
        m, c = self.max_obstacles, self.obstacle_candidates
        if m == 0:
            return jnp.zeros((0, 3), jnp.float32), jnp.zeros((0,), bool)
        u = hash_uniforms(key, m * c * 3).reshape(m, c, 3)
        radius = params.obstacle_min_radius + (params.obstacle_max_radius - params.obstacle_min_radius) * u[..., 0]
        span = ARENA_HALF - radius - params.obstacle_margin
        centre = (2.0 * u[..., 1:] - 1.0) * span[..., None]
        cand = jnp.concatenate([centre, radius[..., None]], axis=-1)  # [M, C, 3]

        def place(carry, i):
            obstacles, mask = carry
            gap = jnp.sqrt(jnp.sum((cand[i, :, None, :2] - obstacles[None, :, :2]) ** 2, axis=-1))
            clash = (gap < cand[i, :, None, 2] + obstacles[None, :, 2] + params.obstacle_margin) & mask[None, :]
            ok = ~jnp.any(clash, axis=-1)
            take = jnp.any(ok) & (i < params.n_obstacles)
            obstacles = obstacles.at[i].set(jnp.where(take, cand[i, jnp.argmax(ok)], 0.0))
            return (obstacles, mask.at[i].set(take)), None

        # The empty carry is made from the candidates so it has their type, also under
        # shard_map (a constant carry is "unvarying" over the mapped axis, the body's output not).
        init = (jnp.zeros_like(cand[:, 0, :]), jnp.zeros_like(cand[:, 0, 0], dtype=bool))
        (obstacles, mask), _ = jax.lax.scan(place, init, jnp.arange(m))
        return obstacles, mask

    def initial_poses(self, key: Array, obstacles: Array, mask: Array, params: PursuitParams) -> Array:
        """``pose[2, 3]``: the first acceptable of ``init_candidates`` independent candidate
        pairs, else the fallback (-5, 0, 0) / (5, 0, pi).

        Acceptable (the reference's test): both agents inside ``[-10 + r, 10 - r]^2``, neither
        inside an obstacle (``d <= radius + robot_radius``), ``min_init_d <= d <= max_init_d``.
        Half the candidates are uniform pairs (the reference's proposal); the other half put
        the evader uniformly in the annulus ``[min_init_d, max_init_d]`` around a uniform
        pursuer. Both proposals have a constant density on the acceptable set, so every
        accepted candidate, and hence the first, is uniform over acceptable pairs exactly as
        the reference's; the annulus half keeps the fallback negligible for narrow distance
        bands (curriculum level 1: 2-5 m) with few candidates.
        """
        n = self.init_candidates
        n_ring = n // 2
        u = hash_uniforms(key, n * 6).reshape(n, 6)
        half = ARENA_HALF - params.robot_radius
        pursuer = (2.0 * u[:, 0:2] - 1.0) * half
        evader_box = (2.0 * u[:, 2:4] - 1.0) * half
        lo2, hi2 = params.min_init_d**2, params.max_init_d**2
        radius = jnp.sqrt(lo2 + (hi2 - lo2) * u[:, 2])
        angle = 2.0 * math.pi * u[:, 3]
        evader_ring = pursuer + radius[:, None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=-1)
        ring = jnp.arange(n) < n_ring
        evader = jnp.where(ring[:, None], evader_ring, evader_box)
        xy = jnp.stack([pursuer, evader], axis=1)  # [n, 2, 2]
        theta = jnp.minimum(2.0 * math.pi * u[:, 4:6] - math.pi, math.pi - 1e-6)  # [-pi, pi)
        in_box = jnp.all(jnp.abs(evader) <= half, axis=-1)
        inside = jnp.sqrt(jnp.sum((xy[:, :, None, :] - obstacles[None, None, :, :2]) ** 2, axis=-1))
        inside = jnp.any((inside <= obstacles[:, 2] + params.robot_radius) & mask, axis=-1)  # [n, 2]
        d = jnp.sqrt(jnp.sum((pursuer - evader) ** 2, axis=-1))
        # Ring candidates satisfy the band by construction (no float-rounding rejections).
        in_band = ring | ((d >= params.min_init_d) & (d <= params.max_init_d))
        ok = in_box & ~inside[:, 0] & ~inside[:, 1] & in_band
        pick = jnp.concatenate([xy, theta[..., None]], axis=-1)[jnp.argmax(ok)]
        return jnp.where(jnp.any(ok), pick, jnp.asarray(FALLBACK_POSES)).astype(jnp.float32)

    # -- step ------------------------------------------------------------------------------
    def step_both(
        self, key: Array, state: PursuitState, actions: Array, params: PursuitParams
    ) -> tuple[Array, PursuitState, Array, Array, Array, dict[str, Array]]:
        """Both agents act at once: ``actions[2, A]`` (row 0 pursuer, row 1 evader).

        Returns ``(obs[2, D], state, rewards[2], terminated, truncated, info)``, no auto-reset
        (the multi-agent protocol's ``step``).
        """
        return self.step(key, state, actions, params)

    def transition(
        self, key: Array, state: PursuitState, actions: Array, params: PursuitParams
    ) -> tuple[PursuitState, Array, Array, Array, dict[str, Array]]:
        """``(state, rewards[2], terminated, truncated, info)`` of ``actions[2, A]``."""
        phys = self.physics(state, self.expand_actions(actions, params), params)
        pose = phys["pose"]
        t = state.t + 1
        d_prev = agent_distance(state.pose)
        d = agent_distance(pose)
        captured = d <= params.capture_radius
        timeout = (t >= params.max_steps) & ~captured
        blocked = line_of_sight_blocked(pose[PURSUER, :2], pose[EVADER, :2], state.obstacles, state.obstacle_mask)
        d_obs_prev = nearest_surface_distance(state.pose[EVADER, :2], state.obstacles, state.obstacle_mask)
        d_obs = nearest_surface_distance(pose[EVADER, :2], state.obstacles, state.obstacle_mask)
        rewards = pursuit_rewards(params, d_prev, d, captured, timeout, blocked, jnp.any(state.obstacle_mask),
                                  d_obs_prev, d_obs, phys["collision"], phys["wall"])

        new_state = state.replace(pose=pose, action=phys["action"], t=t)
        if self.partial:
            frames = self.frames(key, new_state, params)
            new_state = new_state.replace(history=self._push(state.history, frames))
            seen = frames[:, 5] >= 0.0  # the FOV reading is (-1, 0) when unseen
        else:
            seen = self.fov_seen(new_state, params)
        f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
        info = {
            "captured": f32(captured),
            "distance": f32(d),
            "ep_captured": f32(captured),
            "ep_escaped": f32(timeout),
            "ep_occluded": f32(blocked),
            "ep_pursuer_sees": f32(seen[PURSUER]),
            "ep_evader_sees": f32(seen[EVADER]),
            "ep_pursuer_collisions": f32(phys["collision"][PURSUER]),
            "ep_evader_collisions": f32(phys["collision"][EVADER]),
            "ep_pursuer_wall": f32(phys["wall"][PURSUER]),
            "ep_evader_wall": f32(phys["wall"][EVADER]),
        }
        return new_state, rewards, captured, timeout, info

    def expand_actions(self, actions: Array, params: PursuitParams) -> Array:
        """``actions[2, A]`` -> ``[2, 2]`` commands ``(v, omega)``: with ``fixed_speed`` the
        1-D ``[omega]`` actions drive at ``v_max``; with ``unit_actions`` each dimension is
        clipped to ``[-1, 1]`` and mapped affinely onto its physical range."""
        actions = jnp.asarray(actions, jnp.float32).reshape(2, self.action_dim)
        if self.unit_actions:
            u = jnp.clip(actions, -1.0, 1.0)
            om = u[:, -1] * params.omega_max()
            v = params.v_max() if self.fixed_speed else 0.5 * (u[:, 0] + 1.0) * params.v_max()
            return jnp.stack([v, om], axis=-1)
        if self.fixed_speed:
            return jnp.concatenate([params.v_max()[:, None], actions], axis=-1)
        return actions

    def encode_action(self, command: Array, v_max: Array, omega_max: Array) -> Array:
        """A physical ``[v, omega]`` (or ``[omega]``) of one agent in this env's action format
        (the inverse of :meth:`expand_actions`; the identity without ``unit_actions``), so
        random and scripted opponents act in the same format as policies."""
        if not self.unit_actions:
            return command
        om = command[-1] / omega_max
        if self.fixed_speed:
            return om[None]
        return jnp.stack([2.0 * command[0] / v_max - 1.0, om])

    def physics(self, state: PursuitState, commands: Array, params: PursuitParams) -> dict[str, Array]:
        """Clip ``commands[2, 2] = (v, omega)``, integrate, wall-clip, push out of obstacles,
        clip again.

        Returns ``pose[2, 3]``, applied ``action[2, 2]``, ``wall[2]`` and ``collision[2]``
        flags (bool).
        """
        v_max, om_max = params.v_max(), params.omega_max()
        v = jnp.clip(commands[:, 0], 0.0, v_max)
        om = jnp.clip(commands[:, 1], -om_max, om_max)
        v = v.at[PURSUER].set(jnp.where(state.t < params.prep_steps, 0.0, v[PURSUER]))
        x, y, th = state.pose[:, 0], state.pose[:, 1], state.pose[:, 2]
        x = x + v * jnp.cos(th) * params.dt
        y = y + v * jnp.sin(th) * params.dt
        th = wrap_angle(th + om * params.dt)
        lim = ARENA_HALF - params.robot_radius
        xy = jnp.stack([x, y], axis=-1)
        clipped = jnp.clip(xy, -lim, lim)
        wall = jnp.any(clipped != xy, axis=-1)
        xy, collision = push_out(clipped, th, state.obstacles, state.obstacle_mask, params.robot_radius)
        xy = jnp.clip(xy, -lim, lim)
        pose = jnp.concatenate([xy, th[:, None]], axis=-1)
        return {"pose": pose, "action": jnp.stack([v, om], axis=-1), "wall": wall, "collision": collision}

    # -- observations ----------------------------------------------------------------------
    def observe(self, state: PursuitState, params: PursuitParams) -> Array:
        """``obs[2, D]`` of ``state`` (partial: the stored history, flattened)."""
        if self.partial:
            return state.history.reshape(2, -1)
        return jax.vmap(lambda i: self.full_observation(state, params, i))(jnp.arange(2))

    def frames(self, key: Array, state: PursuitState, params: PursuitParams) -> Array:
        """``[2, F]`` raw frames ``[x, y, theta, v, omega, d_opp, bearing, lidar]`` of ``state``."""
        head, lidar = jax.vmap(lambda i: self.frame_parts(state, params, i))(jnp.arange(2))
        lidar = add_lidar_noise(key, lidar, params.lidar_noise_std, params.lidar_range)
        return jnp.concatenate([head, lidar], axis=-1).astype(jnp.float32)

    def frame_parts(self, state: PursuitState, params: PursuitParams, i: Array | int) -> tuple[Array, Array]:
        """Agent ``i``'s frame head ``[7]`` and noiseless lidar ``[n_rays]``."""
        own, other = state.pose[i], state.pose[1 - i]
        d, b, _ = fov_reading(own, other[:2], params.fov_half_angle, params.fov_range, params.fov_occlusion,
                              state.obstacles, state.obstacle_mask)
        lidar = lidar_ranges(own, state.obstacles, state.obstacle_mask, self.n_rays, params.lidar_range,
                             ARENA_HALF, params.lidar_bounds_bug)
        return jnp.concatenate([own, state.action[i], jnp.stack([d, b])]), lidar

    def fov_seen(self, state: PursuitState, params: PursuitParams) -> Array:
        """``[2]`` bool: whether each agent's FOV sensor sees the other."""

        def one(i):
            return fov_reading(state.pose[i], state.pose[1 - i, :2], params.fov_half_angle, params.fov_range,
                               params.fov_occlusion, state.obstacles, state.obstacle_mask)[2]

        return jax.vmap(one)(jnp.arange(2))

    def _push(self, history: Array, frames: Array) -> Array:
        """Drops the oldest frame and appends ``frames[2, F]`` as the newest (last)."""
        return jnp.concatenate([history[:, 1:], frames[:, None].astype(jnp.float32)], axis=1)

    def full_observation(self, state: PursuitState, params: PursuitParams, i: Array | int) -> Array:
        """Agent ``i``'s ``14 + 2K`` vector, all roughly in [-1, 1]::

            [x/10, y/10, theta/pi, v/v_P, omega/omega_P,                 (own)
             x_o/10, y_o/10, theta_o/pi, v_o/v_P, omega_o/omega_P,       (opponent)
             d/d_max, bearing/pi, d_wall_x/10, d_wall_y/10,
             K x (surface_distance/d_max (<= 1), bearing/pi)]            (nearest by centre
                                                                           distance; pad (1, 0))

        Velocities are normalised by the *pursuer's* limits for both agents (reference).
        """
        own, other = state.pose[i], state.pose[1 - i]
        act, oact = state.action[i], state.action[1 - i]
        vs = jnp.stack([params.pursuer_v_max, params.pursuer_omega_max])
        delta = other[:2] - own[:2]
        dist = jnp.sqrt(jnp.sum(delta * delta))
        bearing = wrap_angle(jnp.arctan2(delta[1], delta[0]) - own[2])
        walls = jnp.minimum(own[:2] + ARENA_HALF, ARENA_HALF - own[:2]) / ARENA_HALF
        base = jnp.concatenate([
            own[:2] / ARENA_HALF, own[2:3] / math.pi, act / vs,
            other[:2] / ARENA_HALF, other[2:3] / math.pi, oact / vs,
            jnp.stack([dist / D_MAX, bearing / math.pi]), walls,
        ])
        k = self.n_obstacle_obs
        if k == 0:
            return base.astype(jnp.float32)
        rel = state.obstacles[:, :2] - own[None, :2]
        centre = jnp.sqrt(jnp.sum(rel * rel, axis=-1))
        surface = jnp.minimum(jnp.maximum(centre - state.obstacles[:, 2], 0.0) / D_MAX, 1.0)
        ob = wrap_angle(jnp.arctan2(rel[:, 1], rel[:, 0]) - own[2]) / math.pi
        order = jnp.argsort(jnp.where(state.obstacle_mask, centre, jnp.inf))
        feats = jnp.stack([surface, ob], axis=-1)[order]
        valid = state.obstacle_mask[order]
        feats = jnp.where(valid[:, None], feats, jnp.asarray([1.0, 0.0]))
        pad = max(k - self.max_obstacles, 0)
        feats = jnp.concatenate([feats, jnp.tile(jnp.asarray([[1.0, 0.0]]), (pad, 1))])[:k]
        return jnp.concatenate([base, feats.reshape(-1)]).astype(jnp.float32)


INFO_KEYS = (
    "captured",
    "distance",
    "ep_captured",
    "ep_escaped",
    "ep_occluded",
    "ep_pursuer_sees",
    "ep_evader_sees",
    "ep_pursuer_collisions",
    "ep_evader_collisions",
    "ep_pursuer_wall",
    "ep_evader_wall",
)


def agent_distance(pose: Array) -> Array:
    """Euclidean distance between the two agents of ``pose[2, 3]``."""
    delta = pose[PURSUER, :2] - pose[EVADER, :2]
    return jnp.sqrt(jnp.sum(delta * delta))


def push_out(xy: Array, theta: Array, obstacles: Array, mask: Array, robot_radius: Array) -> tuple[Array, Array]:
    """Pushes each of ``xy[n, 2]`` radially out of overlapping circles to distance ``radius +
    robot_radius``; ``PUSH_PASSES`` passes, each out of the first overlapped obstacle.

    The reference pushes out of every overlapped obstacle in order within a pass; the two agree
    whenever an agent overlaps at most one obstacle at a time, which the placement guarantees
    when ``2 * robot_radius < obstacle_margin`` (0.3 < 0.5 by default). An agent at a centre is
    pushed along its heading. Returns ``(xy, collided[n] bool)``.
    """
    if obstacles.shape[0] == 0:
        return xy, jnp.zeros(xy.shape[:1], bool)
    heading = jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=-1)
    collided = jnp.zeros(xy.shape[:1], bool)
    min_dist = obstacles[:, 2] + robot_radius  # [M]
    for _ in range(PUSH_PASSES):
        rel = xy[:, None, :] - obstacles[None, :, :2]  # [n, M, 2]
        dist = jnp.sqrt(jnp.sum(rel * rel, axis=-1))
        over = (dist < min_dist[None, :]) & mask[None, :]
        hit = jnp.any(over, axis=-1)
        j = jnp.argmax(over, axis=-1)
        r_j, d_j = rel[jnp.arange(xy.shape[0]), j], dist[jnp.arange(xy.shape[0]), j]
        normal = jnp.where((d_j < 1e-10)[:, None], heading, r_j / jnp.where(d_j < 1e-10, 1.0, d_j)[:, None])
        pushed = obstacles[j, :2] + normal * min_dist[j][:, None]
        xy = jnp.where(hit[:, None], pushed, xy)
        collided = collided | hit
    return xy, collided


def pursuit_rewards(
    params: PursuitParams,
    d_prev: Array,
    d: Array,
    captured: Array,
    timeout: Array,
    blocked: Array,
    has_obstacles: Array,
    d_obs_prev: Array,
    d_obs: Array,
    collision: Array,
    wall: Array,
) -> Array:
    """``[2]`` float32 rewards (pursuer, evader) of one step; see the module docstring."""
    f = lambda b: jnp.asarray(b, jnp.float32)  # noqa: E731
    r_p = params.distance_scale * (d_prev - d) / D_MAX + params.capture_bonus * f(captured) + params.timeout_penalty * f(timeout)
    live = ~captured & ~timeout
    blocked = blocked & has_obstacles
    zero_sum = -r_p + params.w_occlusion * f(blocked & ~captured)
    visibility = params.visibility_weight * jnp.where(blocked, 1.0, -1.0)
    use_vis = (params.use_visibility_reward > 0) & has_obstacles & live
    r_e = jnp.where(use_vis, visibility, zero_sum) + params.survival_bonus * f(live)
    finite = jnp.isfinite(d_obs_prev) & jnp.isfinite(d_obs)
    pbrs = params.w_obs_approach * (jnp.where(finite, d_obs_prev, 0.0) - jnp.where(finite, d_obs, 0.0)) / D_MAX
    r_e = r_e + jnp.where(finite & live, pbrs, 0.0)
    rewards = jnp.stack([r_p, r_e]) - params.w_collision * f(collision) - params.w_wall * f(wall)
    return rewards.astype(jnp.float32)


def observation_scale(env: PursuitEvasion, arena: PursuitParams) -> np.ndarray:
    """Per-feature divisors that bring the partial observation's raw frames to about [-1, 1]
    (``x, y`` by the half-width, angles by pi, controls by the role limits, the FOV distance
    by its range, lidar by its range); ones for the full observation, which is normalised."""
    if not env.partial:
        return np.ones(env.observation_shape(), np.float32)
    p = jax.tree.map(lambda x: float(np.max(np.asarray(x))), arena)
    head = [10.0, 10.0, math.pi, max(p.pursuer_v_max, p.evader_v_max), max(p.pursuer_omega_max, p.evader_omega_max),
            p.fov_range, math.pi]
    frame = np.asarray(head + [p.lidar_range] * env.n_rays, np.float32)
    return np.tile(frame, env.history)
