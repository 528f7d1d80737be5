"""Scripted opponents and the single-agent view of the pursuit-evasion arena.

Policies have the signature ``act(opp_params, key, obs[D]) -> action[A]`` (one instance; vmap
for batches), so a frozen PPO policy, a scripted chaser and the uniform random policy are
interchangeable inside :class:`OpponentView`.

* :func:`random_action` / :func:`make_random_policy`: uniform over the role's action box
  ``[0, v_max] x [-omega_max, omega_max]`` (the reference's ``action_space.sample()``).
* :func:`pure_pursuit_action`: the reference's scripted chaser on true positions (``v`` fixed,
  ``omega = clip(gain * bearing, +-omega_max)``); :func:`make_chaser_policy` is the same
  chaser reading the arena's observation (full: the exact bearing; partial: the newest FOV
  reading, and a search turn while the target is unseen).

:class:`OpponentView` (an :class:`~rljax.envs.multi_agent.AgentView`) turns the two-agent arena
into an :class:`~rljax.envs.Environment` for ONE role: its ``step`` takes the learner's action, computes the other role's action from
``opponent_act(member, key, obs_opp)`` and steps both.

**Memory layout of the opponent pool.** The pool is a pytree whose leaves have a leading
``[P]`` axis (stacked frozen policies, e.g. their network parameters and observation
statistics). It is bound to the view object (:meth:`OpponentView.with_pool`), not stored in
the per-instance params: inside a compiled self-play phase the trainer builds the view from
its own state (the pool may be a tracer), so under ``VecEnv``'s vmap the pool is one
unbatched constant shared by all ``N`` instances (and one copy per seed under an outer seed
vmap). The per-instance params :class:`OpponentViewParams` carry only the arena params, an
``int32`` ``opponent_index`` (``-1`` selects the built-in random policy) and ``pool_count``
(how many leading pool slots are filled: a fixed-capacity FIFO pool keeps one compiled
program while it grows). Each step gathers the selected member's leaves (``[N, ...]`` under
vmap, transient) and runs ``opponent_act`` on it; the random action is computed alongside and
selected (branch-free).

Two ways to give instances their opponents: fixed per instance (``VecEnv(...,
batched_params=True)`` with stacked :func:`view_params`), or redrawn per episode by
:func:`make_opponent_sampler` as the ``param_sampler`` of ``VecEnv``/``PPO`` (uniform over
the filled slots plus the random policy).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from rljax.environments.pursuit_evasion import (
    ARENA_HALF,
    EVADER,
    PURSUER,
    ROLES,
    STATE_DIM,
    PursuitEvasion,
    PursuitParams,
    PursuitState,
)
from rljax.environments.pursuit_sensors import wrap_angle
from rljax.envs.multi_agent import AgentView
from rljax.envs.spaces import Box

Array = jax.Array
OpponentAct = Callable[[Any, Array, Array], Array]
RANDOM_OPPONENT = -1  # opponent_index of the uniform random policy
FULL_BEARING = 11  # index of bearing/pi in the full observation
DEFAULT_CHASER_GAIN = 3.0


def role_index(role: int | str) -> int:
    """``"pursuer"``/0 -> 0, ``"evader"``/1 -> 1; anything else raises ``ValueError``."""
    if role in ROLES:
        return ROLES.index(role)
    if role in (PURSUER, EVADER) and not isinstance(role, bool):
        return int(role)
    raise ValueError(f"role={role!r} is invalid: must be one of {ROLES} or 0/1")


# -- the uniform random policy ---------------------------------------------------------------
def random_action(key: Array, v_max: Array, omega_max: Array, fixed_speed: bool = False) -> Array:
    """Uniform action over ``[0, v_max] x [-omega_max, omega_max]`` (``[omega]`` if
    ``fixed_speed``)."""
    u = jax.random.uniform(key, (2,))
    a = jnp.stack([u[0] * v_max, (2.0 * u[1] - 1.0) * omega_max]).astype(jnp.float32)
    return a[1:] if fixed_speed else a


@struct.dataclass
class RandomPolicyParams:
    v_max: Array
    omega_max: Array


def make_random_policy(fixed_speed: bool = False) -> OpponentAct:
    """``act(RandomPolicyParams, key, obs) -> action``: uniform over the box, ignoring ``obs``."""

    def act(p: RandomPolicyParams, key: Array, obs: Array) -> Array:
        return random_action(key, p.v_max, p.omega_max, fixed_speed)

    return act


def random_policy_params(params: PursuitParams, role: int | str) -> RandomPolicyParams:
    """The random policy's box for ``role`` under arena ``params``."""
    r = role_index(role)
    return RandomPolicyParams(v_max=params.v_max()[r], omega_max=params.omega_max()[r])


# -- the pure-pursuit chaser -------------------------------------------------------------------
def pure_pursuit_action(pose: Array, target: Array, speed: Array, omega_max: Array, gain: Array = DEFAULT_CHASER_GAIN) -> Array:
    """``[speed, clip(gain * wrap(atan2(target - pos) - heading), +-omega_max)]`` (reference
    NavigationEnv chaser: ``speed = 0.5 v_max``, ``gain = 3``)."""
    delta = target[:2] - pose[:2]
    bearing = wrap_angle(jnp.arctan2(delta[1], delta[0]) - pose[2])
    return jnp.stack([jnp.asarray(speed, jnp.float32), jnp.clip(gain * bearing, -omega_max, omega_max)]).astype(jnp.float32)


# -- the reference's scripted baselines (FixedBaselineEvalCallback) -------------------------------
BASELINE_GAIN = 3.0  # the reference's turn gain of its scripted baselines
CORNER_INSET = 0.5  # the reference's corners lie 0.5 m inside the walls


def _steer(pose: Array, heading: Array, speed: Array, omega_max: Array, gain: float = BASELINE_GAIN) -> Array:
    """``[speed, clip(gain * wrap(heading - theta), +-omega_max)]``."""
    turn = wrap_angle(heading - pose[2])
    return jnp.stack([jnp.asarray(speed, jnp.float32), jnp.clip(gain * turn, -omega_max, omega_max)]).astype(jnp.float32)


def flee_away_action(pose: Array, chaser: Array, speed: Array, omega_max: Array) -> Array:
    """The reference's ``flee_away_policy``: full speed, steering straight away from the
    chaser (``heading = atan2(pose - chaser)``, turn gain 3)."""
    delta = pose[:2] - chaser[:2]
    return _steer(pose, jnp.arctan2(delta[1], delta[0]), speed, omega_max)


def arena_corners(half: float = ARENA_HALF, inset: float = CORNER_INSET) -> Array:
    """``[4, 2]`` corners of the centred arena, ``inset`` inside the walls. (The reference's
    ``flee_to_corner_policy`` uses ``[0, W]`` coordinates, so in its centred arena three of
    its "corners" lie at or beyond the walls; rljax uses the centred corners, as for the lidar.)"""
    c = half - inset
    return jnp.asarray([[-c, -c], [c, -c], [-c, c], [c, c]], jnp.float32)


def flee_to_corner_action(pose: Array, speed: Array, omega_max: Array, corners: Array | None = None) -> Array:
    """The reference's ``flee_to_corner_policy``: full speed toward the nearest corner (turn gain 3)."""
    corners = arena_corners() if corners is None else corners
    nearest = corners[jnp.argmin(jnp.sum((corners - pose[None, :2]) ** 2, axis=-1))]
    delta = nearest - pose[:2]
    return _steer(pose, jnp.arctan2(delta[1], delta[0]), speed, omega_max)


def baseline_policies(env: PursuitEvasion) -> tuple[tuple[str, int, Callable], ...]:
    """``(name, role, act(key, state, params) -> action)`` of the reference's scripted
    baselines on true poses, in ``env``'s action format: ``pure_pursuit`` (pursuer: full speed,
    ``omega = 3 bearing``), ``flee_away`` and ``flee_to_corner`` (evaders, full speed)."""

    def enc(command, role, params):
        return env.encode_action(command[1:] if env.fixed_speed else command, params.v_max()[role], params.omega_max()[role])

    def pursue(key, state, params):
        cmd = pure_pursuit_action(state.pose[PURSUER], state.pose[EVADER], params.pursuer_v_max, params.pursuer_omega_max,
                                  BASELINE_GAIN)
        return enc(cmd, PURSUER, params)

    def away(key, state, params):
        return enc(flee_away_action(state.pose[EVADER], state.pose[PURSUER], params.evader_v_max, params.evader_omega_max),
                   EVADER, params)

    def corner(key, state, params):
        return enc(flee_to_corner_action(state.pose[EVADER], params.evader_v_max, params.evader_omega_max), EVADER, params)

    return (("pure_pursuit", PURSUER, pursue), ("flee_away", EVADER, away), ("flee_to_corner", EVADER, corner))


@struct.dataclass
class ChaserParams:
    """Scripted chaser: drives at ``speed``, turns ``gain * bearing`` (clipped to
    ``omega_max``) toward the target, and turns at ``search_omega`` while it cannot see it."""

    speed: Array
    omega_max: Array
    gain: Array
    search_omega: Array


def chaser_params(speed: float = 1.0, omega_max: float = 2.84, gain: float = DEFAULT_CHASER_GAIN,
                  search_omega: float = 1.0) -> ChaserParams:
    """Validated :class:`ChaserParams` (``ValueError`` naming a bad field)."""
    for name, val in (("speed", speed), ("omega_max", omega_max), ("gain", gain)):
        if not (isinstance(val, (int, float)) and math.isfinite(val) and val >= 0):
            raise ValueError(f"chaser params: {name}={val!r} is invalid: must be a finite number >= 0")
    if not (isinstance(search_omega, (int, float)) and math.isfinite(search_omega)):
        raise ValueError(f"chaser params: search_omega={search_omega!r} is invalid: must be a finite number")
    f = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    return ChaserParams(f(speed), f(omega_max), f(gain), f(search_omega))


def make_chaser_policy(env: PursuitEvasion) -> OpponentAct:
    """``act(ChaserParams, key, obs) -> action`` reading ``env``'s observation format.

    Full observation: the exact bearing (``obs[11] * pi``). Partial: the newest frame's FOV
    reading (``d >= 0`` when seen); unseen -> turn at ``search_omega``.
    """
    if getattr(env, "unit_actions", False):  # its speed/omega are physical, not in [-1, 1]
        raise ValueError("unit_actions=True is invalid for the scripted chaser: it acts in physical [v, omega]")
    fd = env.frame_dim

    def act(p: ChaserParams, key: Array, obs: Array) -> Array:
        if env.partial:
            frame = obs[-fd:]
            seen = frame[STATE_DIM - 2] >= 0.0
            bearing = frame[STATE_DIM - 1]
        else:
            seen = jnp.asarray(True)
            bearing = obs[FULL_BEARING] * math.pi
        omega = jnp.where(seen, jnp.clip(p.gain * bearing, -p.omega_max, p.omega_max), p.search_omega)
        a = jnp.stack([p.speed, omega]).astype(jnp.float32)
        return a[1:] if env.fixed_speed else a

    return act


# -- the single-agent view ---------------------------------------------------------------------
@struct.dataclass
class OpponentViewParams:
    """Per-instance params of :class:`OpponentView` (small: no pool in here)."""

    arena: PursuitParams
    opponent_index: Array  # int32: pool member, or RANDOM_OPPONENT (-1) for the random policy
    pool_count: Array  # int32: valid members at the front of the pool (what samplers draw from)


def view_params(arena: PursuitParams | None = None, opponent_index: int = RANDOM_OPPONENT,
                pool_size: int | None = None, pool_count: int | None = None) -> OpponentViewParams:
    """Validated :class:`OpponentViewParams`: ``opponent_index`` in ``[-1, pool_size)``;
    ``pool_count`` (default ``pool_size`` or 0) in ``[0, pool_size]``."""
    arena = arena if arena is not None else PursuitEvasion().default_params()
    ok = isinstance(opponent_index, int) and not isinstance(opponent_index, bool) and opponent_index >= RANDOM_OPPONENT
    if ok and pool_size is not None:
        ok = opponent_index < pool_size
    if not ok:
        raise ValueError(f"opponent view params: opponent_index={opponent_index!r} is invalid: must be an integer "
                         f"in [-1, {pool_size if pool_size is not None else 'pool size'})")
    count = (pool_size or 0) if pool_count is None else pool_count
    if not (isinstance(count, int) and 0 <= count <= (pool_size if pool_size is not None else count)):
        raise ValueError(f"opponent view params: pool_count={pool_count!r} is invalid: must be an integer in [0, {pool_size}]")
    return OpponentViewParams(arena=arena, opponent_index=jnp.asarray(opponent_index, jnp.int32),
                              pool_count=jnp.asarray(count, jnp.int32))


def sample_opponent_index(key: Array, pool_count: Array, include_random: bool = True) -> Array:
    """Uniform ``int32`` over ``{-1, 0, .., pool_count - 1}`` (without -1 if not
    ``include_random``; with an empty pool that gives 0, which the view clips to member 0)."""
    lo = RANDOM_OPPONENT if include_random else 0
    return jax.random.randint(key, (), lo, jnp.maximum(pool_count, lo + 1)).astype(jnp.int32)


def make_opponent_sampler(include_random: bool = True):
    """A ``VecEnv``/``PPO`` ``param_sampler(key, base) -> params`` that redraws each
    instance's ``opponent_index`` at every reset, uniformly over the first ``pool_count``
    members plus the random policy (the reference's per-env pool sample with its "random"
    sentinel, redrawn per episode). The per-instance copies are a few scalars: the pool itself
    stays bound to the view."""

    def sampler(key: Array, base: OpponentViewParams) -> OpponentViewParams:
        return base.replace(opponent_index=sample_opponent_index(key, base.pool_count, include_random))

    return sampler


class OpponentView(AgentView):
    """The arena seen by ONE ``role``; the other role acts from a frozen policy: an
    :class:`~rljax.envs.multi_agent.AgentView` whose others-policy is
    :meth:`opponent_policy`.

    ``opponent_act(member, key, obs_opp[D]) -> action[A]`` is applied to pool member
    ``params.opponent_index`` of ``pool`` (leaves ``[P, ...]``); index ``-1`` (or no pool)
    uses the uniform random policy over the opponent's action box. The opponent sees its own
    observation of the same state (its history, its perspective). ``info`` is the arena's plus
    ``tag = opponent_index + 1`` (0 = random policy).
    """

    def __init__(self, env: PursuitEvasion, role: int | str, opponent_act: OpponentAct | None = None, pool: Any = None):
        if pool is not None and opponent_act is None:
            raise ValueError("opponent_act is required when a pool is given")
        self.role = role_index(role)
        self.opp = 1 - self.role
        self.opponent_act = opponent_act
        self.pool = pool
        super().__init__(env, self.role, self.opponent_policy, split_params=lambda p: (p.arena, p),
                         default_params=self._default_view_params,
                         tag=lambda p: p.opponent_index + 1, name="pursuit_opponent_view")

    def with_pool(self, pool: Any) -> "OpponentView":
        """The same view bound to another pool (cheap; call inside a jitted phase with the
        pool from the trainer's state)."""
        return OpponentView(self.env, self.role, self.opponent_act, pool)

    @property
    def pool_size(self) -> int:
        if self.pool is None:
            return 0
        return int(jax.tree.leaves(self.pool)[0].shape[0])

    def _default_view_params(self) -> OpponentViewParams:
        return view_params(self.env.default_params(), RANDOM_OPPONENT, pool_size=self.pool_size)

    def action_space(self, params: OpponentViewParams) -> Box:
        return self.env.action_space(params.arena, self.role)

    def opponent_action(self, key: Array, state: PursuitState, params: OpponentViewParams) -> Array:
        """The opponent's ``action[A]`` in ``state``."""
        k_pol, k_rand = jax.random.split(key)
        arena = params.arena
        vm, om = arena.v_max()[self.opp], arena.omega_max()[self.opp]
        rand = self.env.encode_action(random_action(k_rand, vm, om, self.env.fixed_speed), vm, om)
        if self.pool is None:
            return rand
        obs_opp = self.env.observe(state, arena)[self.opp]
        idx = params.opponent_index
        member = jax.tree.map(lambda x: x[jnp.clip(idx, 0, self.pool_size - 1)], self.pool)
        act = jnp.asarray(self.opponent_act(member, k_pol, obs_opp), jnp.float32).reshape(rand.shape)
        return jnp.where(idx < 0, rand, act)

    def opponent_policy(self, params: OpponentViewParams, key: Array, state: PursuitState, arena: PursuitParams
                        ) -> tuple[Array, PursuitState]:
        """The view's others-policy: both rows hold the opponent's action (the view
        overwrites the learner's)."""
        opp = self.opponent_action(key, state, params)
        return jnp.stack([opp, opp]), state
