"""Two-agent AMS-DRL self-play as ONE compiled algorithm behind the runner's protocol, for any
two-player game (:class:`~rljax.selfplay.game.TwoPlayerGame`: a two-player multi-agent
environment plus its curriculum parameter, random policy, outcome and optional cold start).

:class:`SelfPlayTrainer` keeps both learners (pursuer = row 0, evader = row 1) in its state:
parameters, optimiser states, extension states and reward normalisers stacked on a leading
``[2]`` axis. ``update(state)`` is one PPO update of the *active* learner, done by
:meth:`rljax.ppo.PPO.update` on the role-parametric
:class:`~rljax.selfplay.view.SelfPlayView` (the learner's row is gathered by
role, updated, scattered back), followed by the protocol's bookkeeping:

* the health monitor (:mod:`rljax.selfplay.health`): rolling snapshots of parameters and
  optimiser state in an in-memory ring, the rolling capture window, the entropy check, and
  (bilateral) rollback with a cooldown;
* at the end of a stage: the 100-episode deterministic head-to-head evaluation (capture
  rate, escape rate, NE gap), milestones and the opponent pool, the curriculum step
  (:mod:`rljax.selfplay.curriculum`), the EWC snapshot on advance, the warm start of the
  evader, the convergence test, and the next stage (:mod:`rljax.selfplay.protocol`).

**One code path for both roles.** Under the runner's member vmap each seed has its own
role, so nothing branches on the role: rows are gathered and scattered with the role as an
index and the view takes the role as a traced number. Rare events run as masked one-slot
writes (pool, ring, milestones). The expensive rare work (evaluation, Fisher rollout, the
environment reset of a new stage) runs under ``lax.cond`` on a predicate reduced over the
member axis (:func:`rljax.envs.vec_env.any_member`): it runs when any member needs it and
the others discard the result. The cold start (S0, e.g. navigation) goes through the same PPO
update: :class:`~rljax.selfplay.stages.ProtocolEnv` steps the game's cold-start task
instead of the arena while the member is in S0 (every member is in S0 at the same updates,
so that choice stays a real conditional too).

The whole protocol state (both learners, pools, ring, curriculum, health, schedule, keys) is
in the state, so the runner's Orbax checkpoints resume a killed run exactly.

**A recurrent network** (``network.recurrent``, :class:`~rljax.networks.recurrent.
RecurrentActorCritic`) serves both roles as the feedforward one does, with its carry wherever
it acts: the learner's is PPO's (:attr:`SelfPlayState.carry`, reset at episode ends by PPO's
rollout and at every stage start with the environments), a lane opponent's rides in the view's
state (:class:`~rljax.selfplay.view.OpponentMemory`, reset with its episode), and evaluation
and baseline episodes carry both agents' (:func:`~rljax.selfplay.evaluation.policy_act`). A
feedforward carry is ``()`` (no leaves): that path compiles as without this support.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.flatten_util import ravel_pytree

from rljax.algorithm import Algorithm, tree_all_finite
from rljax.distributions import make_distribution
from rljax.envs.vec_env import VecEnv, any_member
from rljax.errors import ConfigError
from rljax.extensions import Extension
from rljax.normalize import RewardNormalizer, RunningMeanStd
from rljax.ppo import NUMERIC_FIELDS, PPO, HParams, PPOConfig, TrainState, make_optimizer
from rljax.ppo.policy import Policy
from rljax.selfplay.elo import ELO_START, elo_matches
from rljax.selfplay.evaluation import MemoryAct, baseline_act, head_to_head, ne_gap, network_act, policy_act
from rljax.selfplay.game import Baseline, TwoPlayerGame
from rljax.selfplay.policy import clamp_log_std
from rljax.selfplay.stages import ProtocolEnv, StageParams, protocol_sampler
from rljax.selfplay.view import SelfPlayView, make_lane_sampler, selfplay_view_params
from rljax.selfplay.curriculum import (
    CurriculumConfig,
    CurriculumState,
    at_max_level,
    curriculum_init,
    curriculum_step,
    curriculum_task,
    display_level,
    mixed_level_active,
    previous_distances,
)
from rljax.selfplay.health import (
    CaptureWindow,
    HealthConfig,
    should_rollback,
    snapshot_due,
    window_clear,
    window_init,
    window_push,
    window_rate,
)
from rljax.selfplay.pool import RANDOM, Pool, Ring, pool_init, pool_insert, pool_sample, ring_init, ring_push, ring_rollback, write_slot
from rljax.selfplay.protocol import (
    COLD,
    DONE,
    EVADER,
    PURSUER,
    PHASE,
    WARM,
    ProtocolConfig,
    ProtocolState,
    max_total_updates,
    phase_timesteps,
    protocol_init,
    segment_end,
    updates_for,
)

Array = jax.Array
ROWS = 2  # pursuer, evader
MIXED_LEVEL = ("fixed", "episode")


@dataclass(frozen=True)
class SelfPlayConfig:
    """Opponents, evaluation and the evader's regularisers (the ``selfplay`` section)."""

    opponent_pool: bool = True  # sample opponents from the pool (+ random policy) once non-empty
    pool_size: int = 20
    pool_lanes: int = 4  # opponents drawn per phase (the reference's 4 sub-envs); see SelfPlayView
    mixed_level_ratio: float = 0.2
    # "fixed": max(1, floor(ratio n_envs)) instances play the previous level all phase (the
    # reference); "episode": each episode does with that probability
    mixed_level: str = "fixed"
    eval_episodes: int = 100
    eval_chunk: int = 100  # evaluation steps per early-exit check
    # The reference evaluates both policies deterministically (the Gaussian's mean). With an
    # unsquashed Gaussian whose speed mean sits near the v=0 clip, the mean policy can stand
    # still while the trained (sampled) policy captures; True samples both policies instead.
    eval_stochastic: bool = False
    # The reference's EntropyMonitorCallback clamps the Gaussian's log_std to >= -2 during
    # every phase; None leaves it free
    log_std_floor: float | None = None
    # After every phase (and the cold start) both agents play the game's scripted baselines and
    # its random policy (deterministic policies, baseline_episodes each) and are rated by Elo
    # (the reference's FixedBaselineEvalCallback: 20 episodes, k = 32, baselines fixed at 1200)
    baselines: bool = True
    baseline_episodes: int = 20
    nav_max_steps: int = 300
    nav_flee_prob: float = 0.5
    ewc: bool = False
    ewc_lambda: float = 1000.0
    ewc_samples: int = 1024
    ewc_minibatch: int = 128
    rnd: bool = False
    rnd_coef: float = 0.1
    rnd_lr: float = 1e-3
    rnd_hidden: tuple[int, ...] = (128, 128)
    rnd_features: int = 64
    rnd_minibatch: int = 256

    def validate(self, prefix: str = "selfplay.") -> None:
        for name in ("pool_size", "pool_lanes", "eval_episodes", "baseline_episodes", "eval_chunk", "nav_max_steps", "ewc_samples",
                     "ewc_minibatch", "rnd_features", "rnd_minibatch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{prefix}{name} must be >= 1, got {getattr(self, name)}")
        for name in ("mixed_level_ratio", "nav_flee_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{prefix}{name} must be in [0, 1], got {getattr(self, name)}")
        if self.mixed_level not in MIXED_LEVEL:
            raise ConfigError(f"{prefix}mixed_level must be one of {', '.join(MIXED_LEVEL)}, got {self.mixed_level!r}")
        if self.log_std_floor is not None and not math.isfinite(self.log_std_floor):
            raise ConfigError(f"{prefix}log_std_floor must be a finite number or null, got {self.log_std_floor}")
        if self.ewc_samples % self.ewc_minibatch:
            raise ConfigError(f"{prefix}ewc_minibatch={self.ewc_minibatch} does not divide ewc_samples={self.ewc_samples}")
        for name in ("ewc_lambda", "rnd_coef", "rnd_lr"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{prefix}{name} must be >= 0, got {getattr(self, name)}")


@struct.dataclass
class SelfPlayTask:
    """A member's task (the runner's variant): the game's params and the cold-start task's
    (``()`` without a cold start). The curriculum writes its task into ``env``
    (:meth:`~rljax.selfplay.game.TwoPlayerGame.curriculum_params`)."""

    env: Any
    cold: Any = ()


@struct.dataclass
class Evaluation:
    """The last head-to-head evaluation (NaN before the first)."""

    capture_rate: Array
    escape_rate: Array
    ne_gap: Array
    length: Array
    phase: Array  # the phase it followed (0 = the cold start)
    count: Array  # evaluations so far


@struct.dataclass
class SelfPlayState:
    """One member's whole protocol. Leaves of ``params``, ``opt_state``, ``ext``,
    ``rew_norm``, ``milestone`` and the first axis of ``ring``/``pool`` are ``[2]`` (row 0
    pursuer, row 1 evader). The stores hold flat vectors (:meth:`SelfPlayTrainer.codec`):
    ``pool``/``milestone`` raveled parameters, ``ring`` raveled ``{params, opt_state}`` (one
    array per store keeps the program small)."""

    params: Any
    opt_state: Any
    ext: dict[str, Any]
    rew_norm: RewardNormalizer
    learner_updates: Array  # int32[2] PPO updates per learner
    learner_steps: Array  # int32[2] env steps trained per learner
    env_state: Any  # the environment instances (ProtocolEnv: cold start or self-play view)
    obs: Array
    obs_stats: RunningMeanStd  # placeholder for TrainState (the policy scales its inputs)
    key: Array
    eval_key: Array
    hparams: HParams
    task: SelfPlayTask
    env_params: StageParams  # base params of the current stage
    protocol: ProtocolState
    curriculum: CurriculumState
    window: CaptureWindow
    ring: Ring
    pool: Pool
    milestone: Array  # [2, n_params] latest milestone (raveled parameters) per role
    lanes: Array  # int32[G] pool slots of this phase's opponent lanes (RANDOM = -1)
    use_pool: Array  # bool: this phase's opponents come from the pool
    last_rollback: Array  # learner steps at the last rollback of this phase
    rollbacks: Array  # int32 rollbacks triggered so far
    phase_rollbacks: Array
    evaluation: Evaluation
    elo: Array  # float32[2] Elo of the pursuer and the evader against the scripted baselines
    baseline_rates: Array  # float32[max(K, 1)] win rate against each rated baseline at the last evaluation
    update: Array
    carry: Any = ()  # a recurrent learner's memory per environment instance ``[N, ...]``; () if feedforward


@dataclass(frozen=True)
class SelfPlayTrainer(Algorithm):
    """AMS-DRL behind :class:`~rljax.algorithm.Algorithm` (see the module docstring).

    ``game``: the two-player game (:class:`~rljax.selfplay.game.TwoPlayerGame`).
    ``network``: the policy of both roles (``obs -> (policy_out, value)``), or a recurrent one
    (``(carry, obs) -> (carry, (policy_out, value))``, :mod:`rljax.ppo.policy`).
    ``evader_extensions``: PPO extensions wrapped in :class:`EvaderOnly` (e.g. RND): their
    states live in both rows and act only while the evader trains a phase.
    ``ewc``/``fisher``: the EWC extension (wrapped in :class:`EvaderOnly` here) and
    ``(policy_apply, space, params, obs[B, D], key) -> fisher`` for its snapshot on advance
    (both or neither), e.g. :func:`~rljax.regularizers.fisher_diagonal`: it is given
    :meth:`policy_apply`, the policy without its value head
    (:data:`~rljax.distributions.PolicyApply`).
    """

    game: TwoPlayerGame
    network: nn.Module
    ppo: PPOConfig
    protocol_cfg: ProtocolConfig = field(default_factory=ProtocolConfig)
    curriculum_cfg: CurriculumConfig = field(default_factory=CurriculumConfig)
    health_cfg: HealthConfig = field(default_factory=HealthConfig)
    selfplay_cfg: SelfPlayConfig = field(default_factory=SelfPlayConfig)
    evader_extensions: Sequence[Extension] = ()
    ewc: Any = None
    fisher: Callable | None = None
    member_axis: str | None = None
    reset_branch: str = "cond"
    bootstrap_branch: str = "cond"

    config_section = "ppo"

    def __post_init__(self):
        if self.ppo.normalize_obs:
            raise ConfigError("ppo.normalize_obs is not supported by self-play (the policy scales its inputs)")
        if (self.ewc is None) != (self.fisher is None):
            raise ConfigError("self-play: EWC needs both the extension and its Fisher function")
        self.game.validate(self.protocol_cfg)
        if self.protocol_cfg.cold_start_timesteps > 0 and self.game.cold_env() is None:
            raise ConfigError("protocol.cold_start_timesteps must be 0: this game has no cold-start task")
        if self.policy.recurrent:
            if self.extensions:
                raise ConfigError(f"selfplay.ewc and selfplay.rnd need a feedforward network (PPO's extensions do); "
                                  f"got {', '.join(e.name for e in self.extensions)} with a recurrent one")
            if self.ppo.num_envs % self.ppo.num_minibatches:
                raise ConfigError(f"ppo.num_minibatches={self.ppo.num_minibatches} does not divide ppo.num_envs="
                                  f"{self.ppo.num_envs}: a recurrent policy's minibatches are whole environment sequences")

    @property
    def env(self):
        """The game's two-player environment."""
        return self.game.env

    # -- static facts ----------------------------------------------------------------------
    @property
    def steps_per_update(self) -> int:
        return self.ppo.batch_size

    @property
    def num_lanes(self) -> int:
        return self.selfplay_cfg.pool_lanes if self.selfplay_cfg.opponent_pool else 1

    @property
    def max_advances(self) -> int:
        c = self.curriculum_cfg
        if c.kind == "none":
            return 0
        n = self.protocol_cfg.max_phases
        return n // c.ne_gap_consecutive if c.ne_gap_advancement else n

    @property
    def num_updates(self) -> int:
        return max_total_updates(self.protocol_cfg, self.steps_per_update, self.max_advances)

    @property
    def vary_keys(self) -> tuple[str, ...]:
        return NUMERIC_FIELDS

    @property
    def policy(self) -> Policy:
        return Policy(self.network)

    @property
    def view(self) -> SelfPlayView:
        if self.policy.recurrent:
            return SelfPlayView(self.game, num_lanes=self.num_lanes, policy=self.policy)
        return SelfPlayView(self.game, self.policy_apply, self.num_lanes)

    @property
    def extensions(self) -> tuple[Extension, ...]:
        return tuple(self.evader_extensions) + ((EvaderOnly(self.ewc),) if self.ewc is not None else ())

    @property
    def protocol_env(self) -> ProtocolEnv:
        return ProtocolEnv(self.view, self.has_cold_start)

    @property
    def has_cold_start(self) -> bool:
        return self.protocol_cfg.cold_start_timesteps > 0

    @property
    def ppo_trainer(self) -> PPO:
        """PPO on :class:`ProtocolEnv` (bound to a role, lanes and the cold-start flag per update)."""
        cfg = dataclasses.replace(self.ppo, total_timesteps=self.num_updates * self.ppo.batch_size)
        return PPO(self.protocol_env, self.network, cfg, extensions=self.extensions,
                       param_sampler=protocol_sampler(self.num_lanes), log_episodes=True,
                       member_axis=self.member_axis, reset_branch=self.reset_branch,
                       bootstrap_branch=self.bootstrap_branch)

    def policy_apply(self, params: Any, obs: Array) -> Any:
        """The policy without its value head (:data:`~rljax.distributions.PolicyApply`); a
        recurrent one from its initial carry (its policy at an episode's first step)."""
        if self.policy.recurrent:
            return self.policy.apply(params, self.policy.initial_carry(obs.shape[:-1]), obs)[1]
        return self.network.apply(params, obs)[0]

    def agent_act(self, params: Any, arena: Any, deterministic: bool = True) -> Callable | MemoryAct:
        """One role's parameters as a batched act function of :func:`~rljax.selfplay.evaluation.
        head_to_head` at the game's params ``arena`` (a recurrent one carries its memory through
        each episode)."""
        space = self.env.action_space(arena, PURSUER)
        if self.policy.recurrent:
            return policy_act(self.policy, space, params, deterministic)
        return network_act(self.policy_apply, space, params, deterministic)

    def codec(self) -> tuple[Callable, Callable, Callable, Callable]:
        """``(ravel_params, unravel_params, ravel_snapshot, unravel_snapshot)``: parameters,
        and ``{"params", "opt_state"}`` snapshots, to and from flat float32 vectors (exact:
        float32 leaves are copied, the optimiser's int32 step count stays below 2**24)."""
        shapes = jax.eval_shape(lambda: self.policy.init(jax.random.key(0), self.env.observation_shape()))
        p0 = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), shapes)
        o0 = make_optimizer(HParams.from_config(self.ppo, 1), self.ppo).init(p0)
        _, unravel_p = ravel_pytree(p0)
        _, unravel_s = ravel_pytree({"params": p0, "opt_state": o0})
        ravel = lambda t: ravel_pytree(t)[0]  # noqa: E731
        return ravel, unravel_p, ravel, unravel_s

    def space(self, task: SelfPlayTask):
        return self.env.action_space(task.env, PURSUER)

    # -- per member --------------------------------------------------------------------------
    def hparams(self, variant: SelfPlayTask, **overrides: Any) -> HParams:
        return HParams.from_config(self.ppo, 1, **overrides)

    def eval_steps(self, variant: SelfPlayTask) -> int:
        return self.env.max_steps(variant.env)

    def update_count(self, state: SelfPlayState) -> Array:
        return state.update

    def env_steps(self, state: SelfPlayState) -> Array:
        """Steps both learners actually trained: once a protocol is done its updates idle, and the
        static count reserves room for warm starts that may not happen."""
        return jnp.sum(state.learner_steps, axis=-1)

    def observation(self, state: SelfPlayState) -> Array:
        return state.obs

    def task_params(self, task: SelfPlayTask, cur: CurriculumState) -> Any:
        """The game's params at the curriculum's current task."""
        lo, hi, n = curriculum_task(self.curriculum_cfg, cur)
        if self.curriculum_cfg.kind == "none":
            return task.env
        return self.game.curriculum_params(task.env, lo, hi, n)

    def init_state(self, key: Array, variant: SelfPlayTask, hparams: HParams) -> SelfPlayState:
        k_p, k_e, k_ext, k_env, k_eval, k_lanes, key = jax.random.split(key, 7)
        rows = [self.policy.init(k, self.env.observation_shape()) for k in (k_p, k_e)]
        opt = make_optimizer(hparams, self.ppo)
        ext_keys = jax.random.split(k_ext, max(len(self.extensions), 1))
        stack = lambda trees: jax.tree.map(lambda *x: jnp.stack(x), *trees)  # noqa: E731
        ext = {e.name: stack([e.init(k, r, self.env.observation_shape()) for r in rows])
               for e, k in zip(self.extensions, ext_keys)}
        params = stack(rows)
        ravel_p, _, ravel_s, _ = self.codec()
        snap0 = ravel_s({"params": rows[0], "opt_state": opt.init(rows[0])})
        cur = curriculum_init(self.curriculum_cfg)
        arena = self.task_params(variant, cur)
        b = self.steps_per_update
        first_len = updates_for(phase_timesteps(self.protocol_cfg, jnp.asarray(1), jnp.asarray(PURSUER), self.game.obstacles(arena)), b)
        ps = protocol_init(self.protocol_cfg, b, first_len)
        task = variant.replace(cold=self.game.cold_params(variant.cold, arena))  # S0 runs at the first task
        pool = stack([pool_init(ravel_p(rows[0]), self.selfplay_cfg.pool_size)] * ROWS)
        lanes, use_pool = self._draw_lanes(k_lanes, pool, ps)
        env_params = self._stage_params(ps, cur, arena, task)
        obs, env_state = self._venv(ps.role, ps.stage == COLD).reset(k_env, env_params)
        nan = jnp.asarray(jnp.nan, jnp.float32)
        i32 = lambda v: jnp.asarray(v, jnp.int32)  # noqa: E731
        return SelfPlayState(
            params=params, opt_state=stack([opt.init(r) for r in rows]), ext=ext,
            rew_norm=stack([RewardNormalizer.create(self.ppo.num_envs)] * ROWS),
            learner_updates=jnp.zeros((ROWS,), jnp.int32), learner_steps=jnp.zeros((ROWS,), jnp.int32),
            env_state=env_state, obs=obs, obs_stats=RunningMeanStd.create(()), key=key, eval_key=k_eval,
            hparams=hparams, task=task,
            env_params=env_params, protocol=ps, curriculum=cur, window=window_init(self.health_cfg.window),
            ring=stack([ring_init(snap0, self.health_cfg.ring_size)] * ROWS), pool=pool,
            milestone=jax.vmap(ravel_p)(params),
            lanes=lanes, use_pool=use_pool, last_rollback=i32(-(2**30)), rollbacks=i32(0), phase_rollbacks=i32(0),
            evaluation=Evaluation(nan, nan, nan, nan, i32(-1), i32(0)),
            elo=jnp.full((ROWS,), ELO_START, jnp.float32),
            baseline_rates=jnp.full((max(len(self.rated_baselines), 1),), jnp.nan, jnp.float32), update=i32(0),
            carry=self.policy.initial_carry((self.ppo.num_envs,)))

    # -- pieces of a stage --------------------------------------------------------------------
    def _env(self, role: Array, cold: Any = False, lanes: tuple[Any, Any] = (None, None)) -> ProtocolEnv:
        """The protocol environment bound for one update: ``cold`` (this member is in S0)
        selects navigation; the member-reduced flag keeps that choice a real branch."""
        if not self.has_cold_start:
            cold = False
        any_cold = cold if isinstance(cold, bool) else any_member(cold, self.member_axis)
        return self.protocol_env.bind(role, lanes[0], lanes[1], cold, any_cold)

    def _venv(self, role: Array, cold: Any = False) -> VecEnv:
        return VecEnv(self._env(role, cold), self.ppo.num_envs, protocol_sampler(self.num_lanes),
                      member_axis=self.member_axis, reset_branch=self.reset_branch)

    def _stage_params(self, ps: ProtocolState, cur: CurriculumState, arena: Any, task: SelfPlayTask) -> StageParams:
        """Base view params of a stage: the task's game params, and mixed-level replay in phases
        at the previous task's start distances: ``max(1, floor(ratio n_envs))`` of the ``n_envs``
        instances (``selfplay.mixed_level=fixed``, the reference), or that share of episodes in
        expectation (``episode``)."""
        n = self.ppo.num_envs
        ratio = self.selfplay_cfg.mixed_level_ratio
        count = max(1, int(n * ratio)) if ratio > 0 else 0
        fixed = self.selfplay_cfg.mixed_level == "fixed"
        share = 0.0 if fixed else count / n
        mixed = (ps.stage == PHASE) & mixed_level_active(self.curriculum_cfg, cur)
        prev = arena
        if self.curriculum_cfg.kind != "none":
            lo, hi = previous_distances(self.curriculum_cfg, cur)
            n = curriculum_task(self.curriculum_cfg, cur)[2]
            prev = self.game.curriculum_params(arena, jnp.asarray(lo, jnp.float32), jnp.asarray(hi, jnp.float32), n)
        view = selfplay_view_params(arena, jnp.where(mixed, share, 0.0).astype(jnp.float32), prev,
                                    jnp.where(mixed & fixed, count, 0).astype(jnp.int32))
        return StageParams(view=view, cold=task.cold)

    def _draw_lanes(self, key: Array, pool: Pool, ps: ProtocolState) -> tuple[Array, Array]:
        """This stage's opponent lanes: uniform over the opponent's pool plus the random
        policy once that pool holds a milestone (reference: ``use_pool = len(pool) > 0``)."""
        opp = 1 - ps.role
        opp_pool = jax.tree.map(lambda x: x[opp], pool)
        lanes = pool_sample(key, opp_pool.replace(items=()), self.num_lanes)
        use = self.selfplay_cfg.opponent_pool & (opp_pool.count > 0) & (ps.stage == PHASE)
        return jnp.where(use, lanes, RANDOM).astype(jnp.int32), jnp.asarray(use)

    def _lane_params(self, s: SelfPlayState) -> tuple[Any, Array]:
        """``(lane_params[G], lane_random[G])`` of the current stage: pool members (or the
        random policy) in a pooled phase, else the opponent's current parameters; all random
        in a warm start."""
        g, opp = self.num_lanes, 1 - s.protocol.role
        cap = self.selfplay_cfg.pool_size
        pooled = jax.vmap(self.codec()[1])(s.pool.items[opp, jnp.clip(s.lanes, 0, cap - 1)])
        current = jax.tree.map(lambda x: jnp.broadcast_to(x[opp], (g,) + x.shape[1:]), s.params)
        lane_params = jax.tree.map(lambda a, b: jnp.where(s.use_pool, a, b), pooled, current)
        lane_random = (s.use_pool & (s.lanes == RANDOM)) | (s.protocol.stage == WARM)
        return lane_params, lane_random

    # -- the update ----------------------------------------------------------------------------
    def update(self, s: SelfPlayState) -> tuple[SelfPlayState, dict[str, Array]]:
        ps = s.protocol
        live = ps.stage != DONE
        role = ps.role
        b = self.steps_per_update
        key, k_ppo, k_next, k_fisher = jax.random.split(s.key, 4)
        row = lambda tree: jax.tree.map(lambda x: x[role], tree)  # noqa: E731
        inputs = {
            "params": row(s.params), "opt_state": row(s.opt_state), "ext": self._gate(row(s.ext), ps),
            "rew_norm": row(s.rew_norm), "env_state": s.env_state, "obs": s.obs, "key": k_ppo,
            "update_step": s.learner_updates[role], "carry": s.carry,
        }
        env = self._env(role, ps.stage == COLD, self._lane_params(s))
        ppo = dataclasses.replace(self.ppo_trainer, env=env)

        def train(x):
            ts = TrainState(params=x["params"], opt_state=x["opt_state"], env_state=x["env_state"], obs=x["obs"],
                            obs_stats=s.obs_stats, rew_norm=x["rew_norm"], key=x["key"], update_step=x["update_step"],
                            hparams=s.hparams, env_params=s.env_params, ext=x["ext"], carry=x["carry"])
            ts, m = ppo.update(ts)
            rec = m.pop("episode_records")
            out = dict(x, params=ts.params, opt_state=ts.opt_state, ext=ts.ext, rew_norm=ts.rew_norm,
                       env_state=ts.env_state, obs=ts.obs, carry=ts.carry)
            return out, {k: jnp.asarray(v, jnp.float32) for k, v in m.items()}, rec["episode_done"], rec["episode_captured"]

        shapes = jax.eval_shape(train, inputs)

        def idle(x):  # every member is done: nothing to train
            return (x, jax.tree.map(lambda a: jnp.full(a.shape, jnp.nan, a.dtype), shapes[1]),
                    jnp.zeros(shapes[2].shape, bool), jnp.zeros(shapes[3].shape, shapes[3].dtype))

        out, metrics, done, captured = jax.lax.cond(any_member(live, self.member_axis), train, idle, inputs)
        out = jax.tree.map(lambda a, c: jnp.where(live, a, c), out, inputs)
        done = done & live

        # -- scatter the learner's row back ----------------------------------------------------
        put = lambda tree, new: jax.tree.map(lambda x, y: x.at[role].set(y), tree, new)  # noqa: E731
        learner = out["params"]
        if self.selfplay_cfg.log_std_floor is not None:
            clamped = clamp_log_std(learner, self.selfplay_cfg.log_std_floor)
            learner = jax.tree.map(lambda a, c: jnp.where(live & (ps.stage == PHASE), a, c), clamped, learner)
        params = put(s.params, learner)
        opt_state = put(s.opt_state, out["opt_state"])
        ext = put(s.ext, self._ungate(out["ext"], row(s.ext)))
        rew_norm = put(s.rew_norm, out["rew_norm"])
        steps_before = s.learner_steps[role]
        learner_steps = s.learner_steps.at[role].add(jnp.where(live, b, 0))
        learner_updates = s.learner_updates.at[role].add(live.astype(jnp.int32))
        steps_after = learner_steps[role]

        # -- health monitor (training phases only) ---------------------------------------------
        hc = self.health_cfg
        in_phase = live & (ps.stage == PHASE)
        roles = jnp.arange(ROWS)
        ravel_p, unravel_p, ravel_s, unravel_s = self.codec()
        snapshots = lambda p, o: jax.vmap(lambda a, c: ravel_s({"params": a, "opt_state": c}))(p, o)  # noqa: E731
        due = in_phase & hc.enabled & snapshot_due(hc, steps_before, steps_after)
        ring = jax.vmap(ring_push)(s.ring, snapshots(params, opt_state), due & (roles == role))
        window = window_push(s.window, done, captured, in_phase)
        entropy = self._entropy(out["params"], out["obs"], s.task)
        trigger, by_capture, by_entropy = should_rollback(hc, window, entropy, steps_after, s.last_rollback)
        trigger = trigger & in_phase
        which = trigger & ((roles == role) | (hc.bilateral & (roles != role)))
        ring, restored, ok = jax.vmap(lambda r, d: ring_rollback(r, hc.rollback_back, d, hc.partial_rollback))(ring, which)
        restored = jax.vmap(unravel_s)(restored)
        restore = which & ok
        pick = lambda new, old: jax.tree.map(  # noqa: E731
            lambda a, c: jnp.where(restore.reshape((ROWS,) + (1,) * (a.ndim - 1)), a, c), new, old)
        params = pick(restored["params"], params)
        opt_state = pick(restored["opt_state"], opt_state)
        window = window_clear(window, restore[role])
        last_rollback = jnp.where(trigger, steps_after, s.last_rollback)
        rollbacks = s.rollbacks + trigger.astype(jnp.int32)
        phase_rollbacks = s.phase_rollbacks + trigger.astype(jnp.int32)

        # -- end of a stage: evaluation, milestones, curriculum ---------------------------------
        seg_end = live & (ps.step + 1 >= ps.length)
        evaluate_now = seg_end & ((ps.stage == PHASE) | (ps.stage == COLD))
        phase_end = seg_end & (ps.stage == PHASE)
        cold_end = seg_end & (ps.stage == COLD)
        arena = self.task_params(s.task, s.curriculum)
        ev_key = jax.random.fold_in(s.eval_key, s.evaluation.count)
        res = jax.lax.cond(any_member(evaluate_now, self.member_axis), self._evaluate_rates, self._no_rates,
                           params, arena, ev_key)
        gap = ne_gap(res["capture_rate"], res["escape_rate"])
        evaluation = jax.tree.map(
            lambda new, old: jnp.where(evaluate_now, new, old),
            Evaluation(res["capture_rate"], res["escape_rate"], gap, res["length"], ps.phase, s.evaluation.count + 1),
            s.evaluation)
        rates = self.baseline_rates(params, arena, jax.random.fold_in(ev_key, 1), any_member(evaluate_now, self.member_axis))
        baseline_rates = jnp.where(evaluate_now, rates, s.baseline_rates)
        vs = jnp.asarray([b.role for b in self.rated_baselines] or [-1], jnp.int32)
        nan = jnp.full_like(rates, jnp.nan)
        elo = jnp.stack([elo_matches(s.elo[r], jnp.where(vs == 1 - r, rates, nan), do=evaluate_now) for r in range(ROWS)])
        cur_new, advanced, regressed = curriculum_step(self.curriculum_cfg, s.curriculum, res["capture_rate"], res["escape_rate"])
        cur = jax.tree.map(lambda a, c: jnp.where(phase_end, a, c), cur_new, s.curriculum)
        advanced, regressed = advanced & phase_end, regressed & phase_end
        converged = phase_end & (gap < self.protocol_cfg.eta) & at_max_level(self.curriculum_cfg, cur)

        # milestones: the trained role after a phase (into its pool), the evader after S0
        mrole = jnp.where(cold_end, EVADER, role)
        made = phase_end | cold_end
        flat = jax.vmap(ravel_p)(params)
        milestone = write_slot(s.milestone, mrole, flat[mrole], made)
        pool = jax.vmap(lambda p, it, d: pool_insert(p, it, ps.phase, d))(s.pool, flat, phase_end & (roles == role))
        ring = jax.vmap(ring_push)(ring, snapshots(params, opt_state),
                                   cold_end & hc.enabled & hc.cold_start_snapshot & (roles == EVADER))

        # EWC: Fisher snapshot of the evader at the level it leaves
        if self.ewc is not None:
            fisher = jax.lax.cond(any_member(advanced, self.member_axis), self._fisher, self._no_fisher,
                                  row_of(params, EVADER), arena, k_fisher)
            name = self.ewc.name
            snap = self.ewc.snapshot(row_of(ext[name]["inner"], EVADER), row_of(params, EVADER), fisher)
            ext = dict(ext, **{name: dict(ext[name], inner=write_slot(ext[name]["inner"], EVADER, snap, advanced))})

        # warm start: the evader restarts from its latest milestone (parameters only)
        ps_next, _ = segment_end(self.protocol_cfg, ps, advanced, converged)
        warm = seg_end & (ps_next.stage == WARM)
        params = write_slot(params, EVADER, unravel_p(milestone[EVADER]), warm)

        # -- the next stage -------------------------------------------------------------------------
        new_arena = self.task_params(s.task, cur)
        phase_len = updates_for(phase_timesteps(self.protocol_cfg, ps_next.phase, ps_next.role, self.game.obstacles(new_arena)), b)
        warm_len = updates_for(self.protocol_cfg.warm_start_timesteps, b)
        ps_next = ps_next.replace(length=jnp.where(ps_next.stage == WARM, warm_len, phase_len).astype(jnp.int32))
        ps_cont = ps.replace(step=ps.step + live.astype(jnp.int32))
        new_ps = jax.tree.map(lambda a, c: jnp.where(seg_end, a, c), ps_next, ps_cont)
        starts = seg_end & (new_ps.stage != DONE)
        k_lanes, k_reset = jax.random.split(k_next)
        lanes, use_pool = self._draw_lanes(k_lanes, pool, new_ps)
        lanes = jnp.where(starts, lanes, s.lanes)
        use_pool = jnp.where(starts, use_pool, s.use_pool)
        env_params = jax.tree.map(lambda a, c: jnp.where(starts, a, c),
                                  self._stage_params(new_ps, cur, new_arena, s.task), s.env_params)
        obs, env_state = jax.lax.cond(
            any_member(starts, self.member_axis),
            lambda: self._venv(new_ps.role).reset(k_reset, env_params),
            lambda: (out["obs"], out["env_state"]))
        sel_start = lambda a, c: jax.tree.map(lambda u, v: jnp.where(starts, u, v), a, c)  # noqa: E731
        obs, env_state = sel_start((obs, env_state), (out["obs"], out["env_state"]))
        # a new stage resets every environment instance: the learner's memory starts over with them
        carry = self.policy.reset(out["carry"], jnp.broadcast_to(starts, (self.ppo.num_envs,)))
        window = window_clear(window, starts)
        last_rollback = jnp.where(starts, -(2**30), last_rollback)
        phase_rollbacks = jnp.where(starts, 0, phase_rollbacks)

        new = s.replace(
            params=params, opt_state=opt_state, ext=ext, rew_norm=rew_norm, learner_updates=learner_updates,
            learner_steps=learner_steps, env_state=env_state, obs=obs, key=key, env_params=env_params, protocol=new_ps, curriculum=cur, window=window,
            ring=ring, pool=pool, milestone=milestone, lanes=lanes, use_pool=use_pool, last_rollback=last_rollback,
            rollbacks=rollbacks, phase_rollbacks=phase_rollbacks, evaluation=evaluation, elo=elo,
            baseline_rates=baseline_rates, update=s.update + 1, carry=carry)
        f = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
        metrics = dict(metrics)
        metrics.update({
            "active": f(live), "stage": f(ps.stage), "phase": f(ps.phase), "role": f(role), "phase_end": f(phase_end),
            "level": f(display_level(self.curriculum_cfg, cur)),
            **{k: f(v) for k, v in self.game.task_metrics(new_arena).items()},
            "eval_capture_rate": evaluation.capture_rate, "eval_escape_rate": evaluation.escape_rate,
            "eval_ne_gap": evaluation.ne_gap, "eval_length": evaluation.length, "eval_phase": f(evaluation.phase),
            "advanced": f(advanced), "regressed": f(regressed), "converged": f(new_ps.converged), "done": f(new_ps.stage == DONE),
            "rolling_capture_rate": window_rate(window), "policy_entropy": entropy, "rollback": f(trigger),
            "rollback_capture": f(by_capture & in_phase), "rollback_entropy": f(by_entropy & in_phase),
            "rollbacks": f(rollbacks), "restored_learner": f(restore[role]), "restored_opponent": f(restore[1 - role]), "pool_pursuer": f(pool.count[PURSUER]), "pool_evader": f(pool.count[EVADER]),
            "ring_pursuer": f(ring.count[PURSUER]), "ring_evader": f(ring.count[EVADER]),
            "steps_pursuer": f(learner_steps[PURSUER]), "steps_evader": f(learner_steps[EVADER]),
            **{f"baseline/{b.name}": baseline_rates[i] for i, b in enumerate(self.rated_baselines)},
            **({"elo/pursuer": elo[PURSUER], "elo/evader": elo[EVADER]} if self.rated_baselines else {}),
        })
        return new, metrics

    def _entropy(self, params: Any, obs: Array, task: SelfPlayTask) -> Array:
        """Total entropy of the policy at one observation (state-independent for a Gaussian
        with a learned ``log_std``: ``sum(1.4189 + log_std)``)."""
        dist = make_distribution(self.space(task), self.policy_apply(params, obs[:1]))
        return jnp.sum(dist.entropy()[0])

    # -- evaluation -----------------------------------------------------------------------------
    def head_to_head(self, params: Any, arena: Any, keys: Array, max_steps: int) -> dict[str, Array]:
        """Episodes of pursuer ``params[0]`` vs evader ``params[1]`` (deterministic unless
        ``selfplay.eval_stochastic``)."""
        det = not self.selfplay_cfg.eval_stochastic
        return head_to_head(self.game, arena, keys, max_steps, self.agent_act(row_of(params, PURSUER), arena, det),
                            self.agent_act(row_of(params, EVADER), arena, det), chunk=self.selfplay_cfg.eval_chunk)

    def _evaluate_rates(self, params: Any, arena: Any, key: Array) -> dict[str, Array]:
        keys = jax.random.split(key, self.selfplay_cfg.eval_episodes)
        r = self.head_to_head(params, arena, keys, self.env.max_steps(arena))
        return {"capture_rate": r["captured"].mean(), "escape_rate": r["escaped"].mean(),
                "length": r["length"].astype(jnp.float32).mean()}

    @property
    def rated_baselines(self) -> tuple[Baseline, ...]:
        """The strategies both agents are rated against (``selfplay.baselines``): per role, the
        game's random policy, then its :meth:`~rljax.selfplay.game.TwoPlayerGame.baselines`
        (the evader's first: they rate the pursuer). A baseline of role r rates the agent of
        role 1 - r."""
        if not self.selfplay_cfg.baselines:
            return ()
        game = self.game

        def random_of(role: int) -> Baseline:
            return Baseline(f"random_{('pursuer', 'evader')[role]}", role, lambda k, st, p: game.random_action(k, p, role))

        scripted = tuple(game.baselines())
        return tuple(b for role in (EVADER, PURSUER) for b in (random_of(role),) + tuple(x for x in scripted if x.role == role))

    def baseline_rates(self, params: Any, arena: Any, key: Array, run: Array | bool = True) -> Array:
        """``[K]`` win rates of the agents against :attr:`rated_baselines` (the pursuer's
        capture rate against an evader baseline, the evader's non-capture rate against a pursuer
        baseline), ``selfplay.baseline_episodes`` episodes each; NaN where ``run`` is False
        (under ``lax.cond``: the episodes run only when ``run``)."""
        bases = self.rated_baselines
        if not bases:  # one NaN slot: the state's array keeps a non-zero size (Orbax saves no empty arrays)
            return jnp.full((1,), jnp.nan, jnp.float32)
        cfg = self.selfplay_cfg
        det = not cfg.eval_stochastic
        agents = [self.agent_act(row_of(params, r), arena, det) for r in range(ROWS)]
        max_steps = self.env.max_steps(arena)

        def play(_):
            out = []
            for i, b in enumerate(bases):
                keys = jax.random.split(jax.random.fold_in(key, i), cfg.baseline_episodes)
                scripted = baseline_act(b.act)
                p_act, e_act = (agents[PURSUER], scripted) if b.role == EVADER else (scripted, agents[EVADER])
                r = head_to_head(self.game, arena, keys, max_steps, p_act, e_act, chunk=cfg.eval_chunk)
                won = r["captured"] if b.role == EVADER else 1.0 - r["captured"]
                out.append(won.mean())
            return jnp.stack(out).astype(jnp.float32)

        return jax.lax.cond(jnp.asarray(run), play, lambda _: jnp.full((len(bases),), jnp.nan, jnp.float32), None)

    def _no_rates(self, params: Any, arena: Any, key: Array) -> dict[str, Array]:
        nan = jnp.full((), jnp.nan, jnp.float32)
        return {"capture_rate": nan, "escape_rate": nan, "length": nan}

    def evaluation(self, state: SelfPlayState, keys: Array, max_steps: int) -> dict[str, Array]:
        """Head-to-head at the current task; ``return`` is the pursuer's episode return."""
        r = self.head_to_head(state.params, self.task_params(state.task, state.curriculum), keys, max_steps)
        return {"return": r["return"], "captured": r["captured"], "escaped": r["escaped"],
                "length": r["length"].astype(jnp.float32)}

    # -- EWC's Fisher ---------------------------------------------------------------------------
    def _fisher(self, params: Any, arena: Any, key: Array) -> Any:
        """EWC's diagonal Fisher from ``ewc_samples`` observations of the stochastic evader
        against the random pursuer at ``arena`` (reference ``_ewc_snapshot_evader``)."""
        cfg = self.selfplay_cfg
        n = min(cfg.ewc_samples, self.ppo.num_envs)
        steps = -(-cfg.ewc_samples // n)
        venv = VecEnv(self.view.bind(EVADER), n, make_lane_sampler(1))
        base = selfplay_view_params(arena)
        space = self.env.action_space(arena, EVADER)
        k_reset, k_run, k_fisher = jax.random.split(key, 3)
        obs, vs = venv.reset(k_reset, base)

        def step(carry, k):
            obs, vs = carry
            k_a, k_s = jax.random.split(k)
            action = make_distribution(space, self.policy_apply(params, obs)).sample(k_a)
            obs2, vs, *_ = venv.step(k_s, vs, action, base)
            return (obs2, vs), obs

        _, seen = jax.lax.scan(step, (obs, vs), jax.random.split(k_run, steps))
        seen = seen.reshape((-1,) + seen.shape[2:])[: cfg.ewc_samples]
        return self.fisher(self.policy_apply, space, params, seen, k_fisher)

    def _no_fisher(self, params: Any, arena: Any, key: Array) -> Any:
        return jax.tree.map(jnp.zeros_like, jax.eval_shape(self._fisher, params, arena, key))

    # -- divergence ------------------------------------------------------------------------------
    def _gate(self, ext_row: dict[str, Any], ps: ProtocolState) -> dict[str, Any]:
        """Switches :class:`EvaderOnly` extensions on for this update iff the evader trains a
        self-play phase (the reference adds RND and EWC in evader phases only, not in the cold
        start or the warm start)."""
        on = (ps.role == EVADER) & (ps.stage == PHASE)
        return {k: dict(v, on=on) if isinstance(v, dict) and set(v) == {"on", "inner"} else v for k, v in ext_row.items()}

    def _ungate(self, ext_row: dict[str, Any], old_row: dict[str, Any]) -> dict[str, Any]:
        return {k: dict(v, on=old_row[k]["on"]) if isinstance(v, dict) and set(v) == {"on", "inner"} else v
                for k, v in ext_row.items()}

    def nonfinite(self, state: SelfPlayState, metrics: dict[str, Array]) -> dict[str, Array]:
        active = metrics["active"] > 0
        return {"loss": active & ~jnp.isfinite(metrics["loss"]), "parameters": ~tree_all_finite(state.params)}


def row_of(tree: Any, i: Any) -> Any:
    """Row ``i`` of every leaf (a role's slice of a ``[2, ...]`` tree)."""
    return jax.tree.map(lambda x: x[i], tree)


class EvaderOnly(Extension):
    """Wraps an extension so it acts only in the evader's row of a self-play state: its
    reward, loss and update are computed for both rows (one code path) and masked by the
    row's ``on`` flag, so the pursuer never sees RND's intrinsic reward."""

    def __init__(self, inner: Extension):
        self.inner = inner
        self.name = inner.name

    def init(self, key: Array, params: Any, obs_shape: tuple[int, ...]) -> Any:
        return {"on": jnp.asarray(False), "inner": self.inner.init(key, params, obs_shape)}

    def reward(self, state: Any, obs: Array, action: Array, next_obs: Array) -> Array | None:
        r = self.inner.reward(state["inner"], obs, action, next_obs)
        return None if r is None else jnp.where(state["on"], r, 0.0)

    def loss(self, state: Any, params: Any, apply_fn: Callable, obs: Array, action: Array):
        value, metrics = self.inner.loss(state["inner"], params, apply_fn, obs, action)
        # The metrics describe the loss term, so they read 0 when it is off (e.g. EWC's penalty
        # in the warm start, where the evader's anchor is set but the term is gated off).
        off = lambda x: jnp.where(state["on"], x, jnp.zeros_like(x))  # noqa: E731
        return off(value), jax.tree.map(off, metrics)

    def update(self, state: Any, params: Any, obs: Array, next_obs: Array, key: Array):
        new, metrics = self.inner.update(state["inner"], params, obs, next_obs, key)
        kept = jax.tree.map(lambda a, b: jnp.where(state["on"], a, b), new, state["inner"])
        return {"on": state["on"], "inner": kept}, metrics
