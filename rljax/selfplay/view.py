"""A two-player game as self-play's learner sees it: one learner whose role is a traced value,
opponents in a few shared "lanes", and per-episode opponent and curriculum draws.

**Why a role-parametric view.** Under the runner's member vmap every seed has its own phase
schedule, so at a given update one seed trains its pursuer while another trains its evader. A
``lax.cond`` on the role would become a select that runs both learners' updates.
:class:`SelfPlayView` instead takes the role as a (traced) number bound to the view (the
:class:`~rljax.envs.multi_agent.AgentView`'s learner): the learner's observation is
``obs[role]``, the opponent's ``obs[1 - role]``, the reward ``rewards[role]``; both roles have the
same observation and action shapes, so ONE PPO update serves either role.

**Why lanes.** The reference gives each of its 4 sub-environments an opponent sampled from the
pool (plus a "random policy" sentinel) for the whole phase. Gathering a different network per
environment instance at every step is slow on CPU (a batched mat-vec with per-instance weights:
6x slower than one shared matmul at 32 instances). Here a phase draws ``num_lanes`` opponents
(pool members or the random policy), each lane's network runs as one matmul over all instances
(weights shared, not gathered), and every instance draws its lane per episode
(``SelfPlayViewParams.lane``, redrawn at reset by :func:`make_lane_sampler`). Per episode the
opponent is uniform over the lanes; lanes are uniform over the pool plus the random policy, so
per episode the opponent is uniform over the pool plus the random policy, as the reference's
per-sub-env draw.

**A recurrent opponent** (a :class:`~rljax.ppo.policy.Policy` over a recurrent network) keeps
its carry in the view's per-instance state (:class:`OpponentMemory`: the world's state and the
carry), set to the initial carry by ``reset``, i.e. at every episode start (``VecEnv``'s
auto-reset included). Lanes share one carry shape (every lane runs the same network), so an
instance carries one memory: each step every lane's network reads it and the instance keeps
its own lane's next carry. A feedforward opponent keeps the world's state as it is.

**Mixed-level replay**, as the reference: the first ``mixed_envs`` environment instances run
every episode at the previous curriculum task (``prev_env``) for the whole phase (the
reference fixes ``max(1, floor(0.2 n_envs))`` of its sub-environments there). Or, an option,
a per-episode draw: with probability ``mixed_prob`` an episode runs there (the same share in
expectation, spread over all instances).
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from rljax.distributions import PolicyApply, make_distribution
from rljax.envs.multi_agent import AgentView
from rljax.ppo.policy import Policy
from rljax.selfplay.game import TwoPlayerGame

Array = jax.Array
PURSUER = 0


@struct.dataclass
class SelfPlayViewParams:
    """Per-instance params of :class:`SelfPlayView`: this episode's game params and opponent
    lane, and what the per-episode sampler draws them from."""

    env: Any  # this episode's game params
    prev_env: Any  # the previous curriculum task's params (mixed-level replay)
    lane: Array  # int32 in [0, num_lanes): this episode's opponent lane
    mixed_prob: Array  # probability that an episode runs at the previous curriculum task
    mixed_envs: Array  # int32: instances [0, mixed_envs) run every episode at the previous task


def selfplay_view_params(env: Any, mixed_prob: float | Array = 0.0, prev_env: Any = None,
                         mixed_envs: int | Array = 0) -> SelfPlayViewParams:
    """Base params (``ValueError`` naming a bad ``mixed_prob``/``mixed_envs``); ``prev_env``
    defaults to ``env``."""
    if isinstance(mixed_prob, (int, float)) and not 0.0 <= mixed_prob <= 1.0:
        raise ValueError(f"self-play view params: mixed_prob={mixed_prob!r} is invalid: must be in [0, 1]")
    if isinstance(mixed_envs, int) and mixed_envs < 0:
        raise ValueError(f"self-play view params: mixed_envs={mixed_envs!r} is invalid: must be >= 0")
    return SelfPlayViewParams(env=env, prev_env=env if prev_env is None else prev_env, lane=jnp.zeros((), jnp.int32),
                              mixed_prob=jnp.asarray(mixed_prob, jnp.float32),
                              mixed_envs=jnp.asarray(mixed_envs, jnp.int32))


def make_lane_sampler(num_lanes: int) -> Callable[[Array, SelfPlayViewParams, Array], SelfPlayViewParams]:
    """``param_sampler(key, base, index) -> params`` for ``VecEnv``/PPO (an indexed sampler:
    ``index`` is the environment instance): at every reset an instance draws its opponent lane
    uniformly from ``num_lanes``, and runs at the previous curriculum task when
    ``index < base.mixed_envs`` or, with probability ``base.mixed_prob``, by a draw."""
    if not isinstance(num_lanes, int) or num_lanes < 1:
        raise ValueError(f"num_lanes={num_lanes!r} is invalid: must be an integer >= 1")

    def sampler(key: Array, base: SelfPlayViewParams, index: Array = 0) -> SelfPlayViewParams:
        k_lane, k_mix = jax.random.split(key)
        lane = jax.random.randint(k_lane, (), 0, num_lanes).astype(jnp.int32)
        mixed = (jax.random.uniform(k_mix) < base.mixed_prob) | (index < base.mixed_envs)
        env = jax.tree.map(lambda p, c: jnp.where(mixed, p, c), base.prev_env, base.env)
        return base.replace(env=env, lane=lane)

    sampler.indexed = True
    return sampler


@struct.dataclass
class OpponentMemory:
    """The state of a :class:`SelfPlayView` with a recurrent opponent: the world's state and the
    opponent's carry (leaves without a batch axis: one instance)."""

    world: Any
    carry: Any


def _lane_count(lane_params: Any) -> int:
    return int(jax.tree.leaves(lane_params)[0].shape[0])


class SelfPlayView(AgentView):
    """``game.env`` seen by the learner of role ``role`` (0 pursuer, 1 evader; may be traced).

    The opponent acts from lane ``params.lane``: the policy network ``policy_apply`` with lane
    parameters ``lane_params`` (leaves ``[num_lanes, ...]``), sampled stochastically as the
    reference's frozen opponents, or the game's uniform random policy where
    ``lane_random[lane]``. Without bound lanes the opponent is the random policy. ``info`` is
    the game's plus ``tag = lane + 1`` (0 when the episode's opponent is the random policy).

    ``policy``: the opponent network as a :class:`~rljax.ppo.policy.Policy`, instead of
    ``policy_apply``; a recurrent one keeps its carry in the state (:class:`OpponentMemory`).
    """

    def __init__(self, game: TwoPlayerGame, policy_apply: PolicyApply | None = None, num_lanes: int = 1,
                 role: Any = PURSUER, lane_params: Any = None, lane_random: Any = None, policy: Policy | None = None):
        if not isinstance(num_lanes, int) or num_lanes < 1:
            raise ValueError(f"num_lanes={num_lanes!r} is invalid: must be an integer >= 1")
        if policy_apply is not None and policy is not None:
            raise ValueError("give the opponent network as policy_apply or as policy, not both")
        if lane_params is not None:
            if policy_apply is None and policy is None:
                raise ValueError("policy_apply (or policy) is required when lane_params are bound")
            if _lane_count(lane_params) != num_lanes:
                raise ValueError(f"lane_params have {_lane_count(lane_params)} lanes, the view {num_lanes}")
        self.game = game
        self.policy_apply = policy_apply
        self.policy = policy
        self.recurrent = policy is not None and policy.recurrent
        self.num_lanes = num_lanes
        self.role = role
        self.lane_params = lane_params
        if lane_random is None:  # without bound networks every lane is the random policy
            lane_random = jnp.full((num_lanes,), lane_params is None)
        self.lane_random = lane_random
        super().__init__(game.env, role, self.lane_policy, split_params=lambda p: (p.env, p),
                         default_params=lambda: selfplay_view_params(game.env.default_params()),
                         tag=self._tag, name=f"{game.env.name}_selfplay_view")

    def bind(self, role: Any, lane_params: Any = None, lane_random: Any = None) -> "SelfPlayView":
        """The same view for learner ``role`` against the given lanes (cheap: call inside the
        compiled update with values from the train state). ``lane_random[num_lanes]`` (bool)
        marks lanes played by the random policy (default: none)."""
        return SelfPlayView(self.game, self.policy_apply, self.num_lanes, role, lane_params, lane_random, self.policy)

    # -- the opponent's memory in the state ------------------------------------------------------
    def world(self, state: Any) -> Any:
        """The world's part of a view state."""
        return state.world if self.recurrent else state

    def with_world(self, state: Any, world: Any) -> Any:
        """``state`` with its world's part replaced (the opponent's carry kept)."""
        return state.replace(world=world) if self.recurrent else world

    def remember(self, world: Any) -> Any:
        """A view state of ``world`` at an episode start: the opponent's initial carry."""
        return OpponentMemory(world, self.policy.initial_carry(())) if self.recurrent else world

    def reset(self, key: Array, params: SelfPlayViewParams) -> tuple[Array, Any]:
        obs, world = super().reset(key, params)
        return obs, self.remember(world)

    def step(self, key: Array, state: Any, action: Array, params: SelfPlayViewParams):
        if not self.recurrent:
            return super().step(key, state, action, params)
        # AgentView's step with the world's part of the state: the others' policy (lane_policy)
        # reads and writes the carry in the whole state, the world steps its own part.
        k_env, k_others = jax.random.split(key)
        joint, state = self.joint_actions(k_others, state, action, params)
        obs, world, reward, terminated, truncated, info = self.advance(k_env, state.world, joint, params)
        return obs, state.replace(world=world), reward, terminated, truncated, info

    def action_space(self, params: SelfPlayViewParams):
        # Both roles act in one action shape; the pursuer's space fixes it for the policy.
        return self.env.action_space(params.env, PURSUER)

    def _tag(self, params: SelfPlayViewParams) -> Array:
        lane = jnp.clip(params.lane, 0, self.num_lanes - 1)
        return jnp.where(self.lane_random[lane], 0, lane + 1)

    def opponent_action(self, key: Array, state: Any, params: SelfPlayViewParams) -> tuple[Array, Any]:
        """The opponent's action in ``state`` (its lane's policy, or random), and the state
        with the opponent's carry advanced (a recurrent opponent; else ``state`` as is)."""
        k_pol, k_rand = jax.random.split(key)
        opp = 1 - jnp.asarray(self.role)
        rand = self.game.random_action(k_rand, params.env, opp)
        if self.lane_params is None:
            return rand, state
        obs_opp = self.env.observe_agent(self.world(state), params.env, opp)
        lane = jnp.clip(params.lane, 0, self.num_lanes - 1)
        # Every lane's network on this instance's observation: under VecEnv's vmap the lane
        # weights are shared by all instances, so each lane is one matmul over the batch.
        if self.recurrent:
            carry = jax.tree.map(lambda c: c[None], state.carry)
            carries, outs = jax.vmap(lambda p: self.policy.apply(p, carry, obs_opp[None])[:2])(self.lane_params)
            state = state.replace(carry=jax.tree.map(lambda c: c[lane, 0], carries))
        else:
            outs = jax.vmap(lambda p: self.policy_apply(p, obs_opp[None]))(self.lane_params)
        pi = jax.tree.map(lambda x: x[lane, 0], outs)
        act = make_distribution(self.action_space(params), pi).sample(k_pol)
        return jnp.where(self.lane_random[lane], rand, jnp.asarray(act, rand.dtype).reshape(rand.shape)), state

    def lane_policy(self, params: SelfPlayViewParams, key: Array, state: Any, env_params: Any) -> tuple[Array, Any]:
        """The view's others-policy: both rows hold the opponent's action (the view writes the
        learner's)."""
        opp, state = self.opponent_action(key, state, params)
        return jnp.stack([opp, opp]), state
