"""The pursuit-evasion arena as self-play sees it: one learner whose role is a traced value,
opponents in a few shared "lanes", per-episode opponent and curriculum draws, and the
deterministic head-to-head evaluation.

**Why a role-parametric view.** Under the runner's member vmap every seed has its own
phase schedule, so at a given update one seed trains its pursuer while another trains its
evader. A ``lax.cond`` on the role would become a select that runs both learners' updates.
:class:`SelfPlayView` instead takes the role as a (traced) number bound to the view: the
learner's observation is ``obs[role]``, the opponent's ``obs[1 - role]``, the reward
``rewards[role]``; both roles have the same observation and action shapes, so ONE PPO
update serves either role.

**Why lanes.** The reference gives each of its 4 sub-environments an opponent sampled from
the pool (plus a "random policy" sentinel) for the whole phase. Gathering a different
network per environment instance at every step is slow on CPU (a batched mat-vec with
per-instance weights: 6x slower than one shared matmul at 32 instances). Here a phase
draws ``num_lanes`` opponents (pool members or the random policy; :func:`bind`), each
lane's network runs as one matmul over all instances (weights shared, not gathered), and
every instance draws its lane per episode (``SelfPlayViewParams.lane``, redrawn at reset
by :func:`make_lane_sampler`). Per episode the opponent is uniform over the lanes; lanes are
uniform over the pool plus the random policy, so per episode the opponent is uniform over
the pool plus the random policy, as the reference's per-sub-env draw.

**The cold start in the same program.** :class:`ProtocolEnv` is the environment of every
stage: the navigation cold start (S0) or the self-play view, chosen by a flag bound per
update, so the protocol has ONE PPO update (one compiled training graph instead of two).

**Mixed-level replay** is a per-episode draw too: with probability ``mixed_prob`` an
episode starts at the previous curriculum distances (``prev_min_init_d``,
``prev_max_init_d``); the reference fixes ``max(1, floor(0.2 n_envs))`` of its 4
sub-environments there for the phase (the same share in expectation).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from environments.navigation import Navigation, NavigationParams, NavigationState
from environments.pursuit_evasion import EVADER, PURSUER, PursuitEvasion, PursuitParams, PursuitState
from environments.pursuit_opponents import random_action
from rljax.distributions import make_distribution
from rljax.envs.environment import Environment
from rljax.envs.multi_agent import AgentView
from rljax.envs.spaces import Box

Array = jax.Array
PolicyApply = Callable[[Any, Array], Any]  # (params, obs[B, D]) -> policy output for make_distribution
BatchAct = Callable[[Array, Array], Array]  # (keys[E], obs[E, D]) -> action[E, A], one key per episode


@struct.dataclass
class SelfPlayViewParams:
    """Per-instance params of :class:`SelfPlayView`: this episode's arena and opponent lane,
    and what the per-episode sampler draws them from."""

    arena: PursuitParams
    lane: Array  # int32 in [0, num_lanes): this episode's opponent lane
    mixed_prob: Array  # probability that an episode starts at the previous curriculum distances
    prev_min_init_d: Array
    prev_max_init_d: Array


def selfplay_view_params(arena: PursuitParams, mixed_prob: float = 0.0, prev_min_init_d: float | None = None,
                         prev_max_init_d: float | None = None) -> SelfPlayViewParams:
    """Validated base params (``ValueError`` naming a bad field); ``prev_*`` default to the
    arena's own distances."""
    if not (isinstance(mixed_prob, (int, float)) and 0.0 <= mixed_prob <= 1.0):
        raise ValueError(f"self-play view params: mixed_prob={mixed_prob!r} is invalid: must be in [0, 1]")
    lo = float(arena.min_init_d) if prev_min_init_d is None else prev_min_init_d
    hi = float(arena.max_init_d) if prev_max_init_d is None else prev_max_init_d
    if not (0 <= lo <= hi):
        raise ValueError(f"self-play view params: prev_max_init_d={hi!r} is invalid: must be >= prev_min_init_d={lo!r} >= 0")
    f = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    return SelfPlayViewParams(arena=arena, lane=jnp.zeros((), jnp.int32), mixed_prob=f(mixed_prob),
                              prev_min_init_d=f(lo), prev_max_init_d=f(hi))


def make_lane_sampler(num_lanes: int) -> Callable[[Array, SelfPlayViewParams], SelfPlayViewParams]:
    """``param_sampler(key, base) -> params`` for ``VecEnv``/``Trainer``: at every reset an
    instance draws its opponent lane uniformly from ``num_lanes`` and, with probability
    ``base.mixed_prob``, the previous curriculum distances."""
    if not isinstance(num_lanes, int) or num_lanes < 1:
        raise ValueError(f"num_lanes={num_lanes!r} is invalid: must be an integer >= 1")

    def sampler(key: Array, base: SelfPlayViewParams) -> SelfPlayViewParams:
        k_lane, k_mix = jax.random.split(key)
        lane = jax.random.randint(k_lane, (), 0, num_lanes).astype(jnp.int32)
        mixed = jax.random.uniform(k_mix) < base.mixed_prob
        arena = base.arena.replace(min_init_d=jnp.where(mixed, base.prev_min_init_d, base.arena.min_init_d),
                                   max_init_d=jnp.where(mixed, base.prev_max_init_d, base.arena.max_init_d))
        return base.replace(arena=arena, lane=lane)

    return sampler


def _lane_count(lane_params: Any) -> int:
    return int(jax.tree.leaves(lane_params)[0].shape[0])


class SelfPlayView(AgentView):
    """The arena seen by the learner of role ``role`` (0 pursuer, 1 evader; may be traced): an
    :class:`~rljax.envs.multi_agent.AgentView` whose others-policy is :meth:`lane_policy`.

    The opponent acts from lane ``params.lane``: the policy network ``policy_apply`` with
    lane parameters ``lane_params`` (leaves ``[num_lanes, ...]``), sampled stochastically as
    the reference's frozen opponents, or the uniform random policy where
    ``lane_random[lane]``. Without bound lanes the opponent is the random policy. ``info`` is
    the arena's plus ``tag = lane + 1`` (0 when the episode's opponent is the random policy).
    """

    def __init__(self, env: PursuitEvasion, policy_apply: PolicyApply | None = None, num_lanes: int = 1,
                 role: Any = PURSUER, lane_params: Any = None, lane_random: Any = None):
        if not isinstance(num_lanes, int) or num_lanes < 1:
            raise ValueError(f"num_lanes={num_lanes!r} is invalid: must be an integer >= 1")
        if lane_params is not None:
            if policy_apply is None:
                raise ValueError("policy_apply is required when lane_params are bound")
            if _lane_count(lane_params) != num_lanes:
                raise ValueError(f"lane_params have {_lane_count(lane_params)} lanes, the view {num_lanes}")
        self.policy_apply = policy_apply
        self.num_lanes = num_lanes
        self.role = role
        self.lane_params = lane_params
        if lane_random is None:  # without bound networks every lane is the random policy
            lane_random = jnp.full((num_lanes,), lane_params is None)
        self.lane_random = lane_random
        super().__init__(env, role, self.lane_policy, split_params=lambda p: (p.arena, p),
                         default_params=lambda: selfplay_view_params(env.default_params()),
                         tag=self._tag, name="pursuit_selfplay_view")

    def bind(self, role: Any, lane_params: Any = None, lane_random: Any = None) -> "SelfPlayView":
        """The same view for learner ``role`` against the given lanes (cheap: call inside the
        compiled update with values from the train state). ``lane_random[num_lanes]`` (bool)
        marks lanes played by the random policy (default: none)."""
        return SelfPlayView(self.env, self.policy_apply, self.num_lanes, role, lane_params, lane_random)

    def action_space(self, params: SelfPlayViewParams) -> Box:
        # Both roles act in [v, omega] (or [omega]); the Box only fixes the shape for the policy.
        return self.env.action_space(params.arena, PURSUER)

    def _tag(self, params: SelfPlayViewParams) -> Array:
        lane = jnp.clip(params.lane, 0, self.num_lanes - 1)
        return jnp.where(self.lane_random[lane], 0, lane + 1)

    def opponent_action(self, key: Array, state: PursuitState, params: SelfPlayViewParams) -> Array:
        """The opponent's ``action[A]`` in ``state`` (its lane's policy, or random)."""
        k_pol, k_rand = jax.random.split(key)
        arena, opp = params.arena, 1 - jnp.asarray(self.role)
        rand = self.env.encode_action(random_action(k_rand, arena.v_max()[opp], arena.omega_max()[opp], self.env.fixed_speed),
                                      arena.v_max()[opp], arena.omega_max()[opp])
        if self.lane_params is None:
            return rand
        obs_opp = self.env.observe(state, arena)[opp]
        lane = jnp.clip(params.lane, 0, self.num_lanes - 1)
        # Every lane's network on this instance's observation: under VecEnv's vmap the lane
        # weights are shared by all instances, so each lane is one matmul over the batch.
        outs = jax.vmap(lambda p: self.policy_apply(p, obs_opp[None]))(self.lane_params)
        pi = jax.tree.map(lambda x: x[lane, 0], outs)
        act = make_distribution(self.action_space(params), pi).sample(k_pol)
        return jnp.where(self.lane_random[lane], rand, jnp.asarray(act, jnp.float32).reshape(rand.shape))

    def lane_policy(self, params: SelfPlayViewParams, key: Array, state: PursuitState, arena: PursuitParams
                    ) -> tuple[Array, PursuitState]:
        """The view's others-policy: both rows hold the opponent's action."""
        opp = self.opponent_action(key, state, params)
        return jnp.stack([opp, opp]), state


# -- policies as batched act functions ---------------------------------------------------------
def network_act(policy_apply: PolicyApply, space: Box, params: Any, deterministic: bool = True) -> BatchAct:
    """``act(keys[E], obs[E, D]) -> action[E, A]`` of a policy network (greedy, or sampled
    with each episode's own key)."""

    def act(keys: Array, obs: Array) -> Array:
        if deterministic:
            return make_distribution(space, policy_apply(params, obs)).mode()
        return jax.vmap(lambda k, o: make_distribution(space, policy_apply(params, o[None])).sample(k)[0])(keys, obs)

    return act


def random_batch_act(env: PursuitEvasion, arena: PursuitParams, role: int) -> BatchAct:
    """The uniform random policy of ``role`` as a batched act function."""

    def act(keys: Array, obs: Array) -> Array:
        vm, om = arena.v_max()[role], arena.omega_max()[role]
        return jax.vmap(lambda k: env.encode_action(random_action(k, vm, om, env.fixed_speed), vm, om))(keys)

    return act


def head_to_head(env: PursuitEvasion, arena: PursuitParams, keys: Array, max_steps: int, pursuer_act: BatchAct,
                 evader_act: BatchAct, chunk: int = 100) -> dict[str, Array]:
    """``E = len(keys)`` episodes of two policies in ``arena``, one per key, at most
    ``max_steps`` steps each (and the arena's own limit).

    Steps run in chunks of ``chunk`` inside a ``while_loop`` that stops once every episode
    has ended (captures end early episodes; evaluations at short distances finish fast).
    Per-step keys are ``fold_in(run key, t)`` (``reset key, run key = split(episode key)``), so results do not depend on ``chunk``.
    Returns per-episode ``captured``, ``escaped`` (1.0/0.0; an episode cut by ``max_steps``
    below the arena's limit is neither), ``length`` and the pursuer's ``return``.
    """
    e = keys.shape[0]
    reset_keys, keys = jnp.moveaxis(jax.vmap(jax.random.split)(keys), 1, 0)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, arena)
    zeros = jnp.zeros((e,), jnp.float32)

    def one_step(carry, _):
        obs, state, alive, t, cap, esc, length, ret = carry
        k_p, k_e, k_env = jnp.moveaxis(jax.vmap(lambda k: jax.random.split(jax.random.fold_in(k, t), 3))(keys), 1, 0)
        a_p = pursuer_act(k_p, obs[:, PURSUER])
        a_e = evader_act(k_e, obs[:, EVADER])
        actions = jnp.stack([a_p, a_e], axis=1)
        new_obs, new_state, rewards, term, trunc, _ = jax.vmap(env.step_both, in_axes=(0, 0, 0, None))(k_env, state, actions, arena)
        live = alive.astype(jnp.float32)
        cap = cap + live * term
        esc = esc + live * trunc
        ret = ret + live * rewards[:, PURSUER]
        length = length + alive.astype(jnp.int32)
        alive = alive & ~(term | trunc) & (t + 1 < max_steps)
        keep = lambda a, b: jnp.where(alive.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)  # noqa: E731
        return (keep(new_obs, obs), jax.tree.map(keep, new_state, state), alive, t + 1, cap, esc, length, ret), None

    def body(carry):
        return jax.lax.scan(one_step, carry, None, length=chunk)[0]

    def cond(carry):
        return jnp.any(carry[2]) & (carry[3] < max_steps)

    init = (obs, state, jnp.ones((e,), bool), jnp.zeros((), jnp.int32), zeros, zeros, jnp.zeros((e,), jnp.int32), zeros)
    _, _, _, _, cap, esc, length, ret = jax.lax.while_loop(cond, body, init)
    return {"captured": cap, "escaped": esc, "length": length, "return": ret}


def ne_gap(capture_rate: Array, escape_rate: Array) -> Array:
    """``|SR_P - SR_E|``; with every episode a capture or a timeout, ``|2 SR_P - 1|``."""
    return jnp.abs(capture_rate - escape_rate)


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


# -- the environment of every stage ---------------------------------------------------------------
@struct.dataclass
class ProtocolEnvParams:
    view: SelfPlayViewParams
    nav: NavigationParams


class ProtocolEnv(Environment[NavigationState, ProtocolEnvParams]):
    """The navigation cold start or the self-play view, by the bound flag ``cold``
    (``nav=None``: the view alone, no cold start).

    The state is a :class:`~environments.navigation.NavigationState` (the arena state plus
    the navigation task's fields, unused by the view), so both stages share one state type,
    one observation (the evader's partial observation in navigation) and one ``info`` (the
    union of both, zeros where a key does not apply). ``any_cold`` must be True whenever
    ``cold`` is for any member of a vmapped batch (reduce it over the member axis): the
    navigation step runs under ``lax.cond(any_cold, ...)`` and costs nothing outside the
    cold start (the view's step always runs; during the cold start its result is dropped).
    """

    name = "pursuit_protocol"

    def __init__(self, view: SelfPlayView, nav: Navigation | None, cold: Any = False, any_cold: Any = False):
        if nav is not None and nav.arena.observation_shape() != view.env.observation_shape():
            raise ValueError("the navigation arena and the view's arena must have the same observation shape")
        if nav is None and not (isinstance(any_cold, bool) and not any_cold):
            raise ValueError("a cold start needs the navigation environment (nav=None given)")
        self.view = view
        self.nav = nav
        self.cold = cold
        self.any_cold = any_cold
        self._keys = tuple(dict.fromkeys(view.info_keys() + (nav.info_keys() if nav is not None else ())))

    def bind(self, role: Any, lane_params: Any = None, lane_random: Any = None, cold: Any = False,
             any_cold: Any = False) -> "ProtocolEnv":
        return ProtocolEnv(self.view.bind(role, lane_params, lane_random), self.nav, cold, any_cold)

    def default_params(self) -> ProtocolEnvParams:
        from environments.navigation import navigation_params

        nav = self.nav.default_params() if self.nav is not None else navigation_params()
        return ProtocolEnvParams(self.view.default_params(), nav)

    def observation_shape(self, params: ProtocolEnvParams | None = None) -> tuple[int, ...]:
        return self.view.observation_shape()

    def action_space(self, params: ProtocolEnvParams) -> Box:
        return self.view.action_space(params.view)

    def max_steps(self, params: ProtocolEnvParams) -> int:
        return self.view.max_steps(params.view)

    def info_keys(self) -> tuple[str, ...]:
        return self._keys

    def _fill(self, info: dict[str, Array]) -> dict[str, Array]:
        return {k: info[k] if k in info else jnp.zeros((), jnp.int32 if k == "tag" else jnp.float32) for k in self._keys}

    def _as_nav(self, obs: Array, state: PursuitState) -> tuple[Array, NavigationState]:
        z = jnp.zeros((), jnp.int32)
        return obs, NavigationState(arena=state, mode=z, goal=jnp.zeros((2,), jnp.float32), goals_reached=z, t=z)

    def _switch(self, nav_fn: Callable, view_fn: Callable):
        # The view always runs (one trace of it, not one per branch); navigation only while
        # some member is in the cold start.
        out = view_fn()
        if isinstance(self.any_cold, bool) and not self.any_cold:
            return out
        nav = jax.lax.cond(jnp.asarray(self.any_cold), nav_fn,
                           lambda: jax.tree.map(jnp.zeros_like, jax.eval_shape(nav_fn)))
        return jax.tree.map(lambda a, b: jnp.where(self.cold, a, b), nav, out)

    def reset(self, key: Array, params: ProtocolEnvParams) -> tuple[Array, NavigationState]:
        return self._switch(lambda: self.nav.reset(key, params.nav),
                            lambda: self._as_nav(*self.view.reset(key, params.view)))

    def step(self, key: Array, state: NavigationState, action: Array, params: ProtocolEnvParams):
        def nav():
            obs, st, r, term, trunc, info = self.nav.step(key, state, action, params.nav)
            return obs, st, r, jnp.asarray(term, bool), jnp.asarray(trunc, bool), self._fill(info)

        def view():
            obs, arena, r, term, trunc, info = self.view.step(key, state.arena, action, params.view)
            return obs, state.replace(arena=arena), r, jnp.asarray(term, bool), jnp.asarray(trunc, bool), self._fill(info)

        return self._switch(nav, view)


def protocol_sampler(num_lanes: int) -> Callable[[Array, ProtocolEnvParams], ProtocolEnvParams]:
    """:func:`make_lane_sampler` on the view part of :class:`ProtocolEnvParams`."""
    lanes = make_lane_sampler(num_lanes)

    def sampler(key: Array, base: ProtocolEnvParams) -> ProtocolEnvParams:
        return base.replace(view=lanes(key, base.view))

    return sampler
