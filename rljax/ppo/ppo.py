"""PPO behind the runner's :class:`~rljax.algorithm.Algorithm` protocol: ``init``, ``update``,
``chunk``, ``train`` and evaluation.

Everything here is for ONE member (one seed / hyperparameter setting / task variant); the
runner maps it over a leading member axis. ``update(state) -> (state, metrics)`` reads top to
bottom: a rollout of ``num_steps`` in every environment (:mod:`rljax.ppo.rollout`), advantages
(:mod:`rljax.ppo.advantages`), epochs of minibatch updates (:mod:`rljax.ppo.learn`). Metrics
are reduced inside it, so nothing grows with the number of updates. The policy may be
feedforward or recurrent (:mod:`rljax.ppo.policy`); a recurrent policy's carry lives in
:attr:`TrainState.carry`, so chunked runs and resumed runs continue it exactly.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from rljax.algorithm import Algorithm, tree_all_finite
from rljax.distributions import make_distribution
from rljax.envs.environment import Environment
from rljax.envs.spaces import Discrete
from rljax.envs.vec_env import VecEnv, VecEnvState
from rljax.errors import ConfigError
from rljax.extensions import Extension
from rljax.normalize import RewardNormalizer, RunningMeanStd
from rljax.ppo.advantages import advantages
from rljax.ppo.config import NUMERIC_FIELDS, HParams, PPOConfig
from rljax.ppo.learn import learn, make_batch
from rljax.ppo.loss import make_optimizer
from rljax.ppo.policy import Policy
from rljax.ppo.rollout import rollout

Array = jax.Array


@struct.dataclass
class TrainState:
    """Everything an exact resume needs, for one member."""

    params: Any
    opt_state: Any
    env_state: VecEnvState
    obs: Array
    obs_stats: RunningMeanStd
    rew_norm: RewardNormalizer
    key: Array
    update_step: Array
    hparams: HParams
    env_params: Any
    ext: dict[str, Any]
    carry: Any = ()  # a recurrent policy's memory per environment ``[N, ...]``; () if feedforward


@dataclass(frozen=True)
class PPO(Algorithm):
    """Pure functions of one member's PPO run.

    ``network``: a flax module ``obs[..., *obs_shape] -> (policy_out, value[...])``, or a
    recurrent one ``(carry, obs) -> (carry, (policy_out, value))`` (:mod:`rljax.ppo.policy`,
    :mod:`rljax.networks.recurrent`); a recurrent policy learns from whole environment
    sequences, so ``ppo.num_minibatches`` must divide ``ppo.num_envs``.
    ``param_sampler``: optional ``(key, base_env_params) -> env_params`` redrawn at every reset.
    ``post_update``: optional ``(TrainState) -> TrainState`` or ``(TrainState, metrics) ->
    TrainState`` run at the end of every update (inside the compiled program), e.g. curricula
    or adaptive task sampling that read this update's (per-tag) episode metrics.
    ``log_episodes``: also return the per-step episode records ``[T, N]`` of each update, for
    per-episode CSVs (bounded by one chunk).
    """

    env: Environment
    network: nn.Module
    cfg: PPOConfig
    extensions: Sequence[Extension] = ()
    param_sampler: Callable | None = None
    post_update: Callable[..., TrainState] | None = None
    log_episodes: bool = False
    num_tags: int = 0
    # Name of the vmap axis over members, when this trainer runs under one (the Runner sets it):
    # rare branches (resets, truncation bootstraps) then stay branches instead of selects.
    member_axis: str | None = None
    # "cond" or "select" for the auto-reset and the truncation bootstrap (rljax.backend decides).
    reset_branch: str = "cond"
    bootstrap_branch: str = "cond"

    config_section = "ppo"

    def __post_init__(self):
        if self.policy.recurrent:
            if self.cfg.num_envs % self.cfg.num_minibatches:
                raise ConfigError(f"ppo.num_minibatches={self.cfg.num_minibatches} does not divide ppo.num_envs="
                                  f"{self.cfg.num_envs}: a recurrent policy's minibatches are whole environment sequences")
            if self.extensions:
                raise ConfigError(f"extensions ({', '.join(e.name for e in self.extensions)}) take feedforward "
                                  f"policies only; this policy is recurrent")

    @property
    def policy(self) -> Policy:
        return Policy(self.network)

    # -- construction ----------------------------------------------------------------------
    @property
    def num_updates(self) -> int:
        return self.cfg.num_updates

    @property
    def steps_per_update(self) -> int:
        return self.cfg.batch_size

    @property
    def vary_keys(self) -> tuple[str, ...]:
        return NUMERIC_FIELDS

    @property
    def venv(self) -> VecEnv:
        return VecEnv(self.env, self.cfg.num_envs, self.param_sampler, member_axis=self.member_axis,
                      reset_branch=self.reset_branch)

    def action_space(self, env_params: Any):
        return self.env.action_space(env_params)

    def entropy_terms(self, env_params: Any) -> int:
        """How many entropy terms the policy's joint distribution has (one per head, or more
        for heads that report several, e.g. a gated two-level head); ``ppo.ent_coef`` takes one
        coefficient per term."""
        obs_shape = self.env.observation_shape(env_params)
        dummy = jnp.zeros((1,) + obs_shape, jnp.float32)
        space = self.env.action_space(env_params)
        policy = self.policy

        def entropy():
            _, pi_out, _ = policy.apply(policy.init(jax.random.key(0), obs_shape), policy.initial_carry((1,)), dummy)
            return make_distribution(space, pi_out).entropy()

        return int(jax.eval_shape(entropy).shape[-1])

    def hparams(self, env_params: Any, **overrides: Any) -> HParams:
        return HParams.from_config(self.cfg, self.entropy_terms(env_params), **overrides)

    def apply(self, params: Any, obs: Array):
        """A feedforward policy's ``(policy_out, value)`` (extensions and scripted uses)."""
        return self.network.apply(params, obs)

    def init_params(self, key: Array, env_params: Any) -> Any:
        """Network parameters. Orthogonal initialisers use QR: do not vmap this on CPU (batched
        QR inside a large jit was seen to hang XLA's CPU thread pool, DESIGN.md); the runner
        maps it over members with ``lax.map`` there (:func:`rljax.backend.init_loop`)."""
        return self.policy.init(key, self.env.observation_shape(env_params))

    def init_state(self, key: Array, env_params: Any, hparams: HParams) -> TrainState:
        """The protocol's initial state: parameters from the first half of ``key``, everything
        else from the second (``key`` is the member's ``PRNGKey(seed)``)."""
        param_key, state_key = jax.random.split(key)
        return self.init(state_key, self.init_params(param_key, env_params), hparams, env_params)

    def update_count(self, ts: TrainState) -> Array:
        return ts.update_step

    def observation(self, ts: TrainState) -> Array:
        return ts.obs

    def eval_steps(self, env_params: Any) -> int:
        return self.env.max_steps(env_params)

    def nonfinite(self, ts: TrainState, metrics: dict[str, Array]) -> dict[str, Array]:
        return {
            "loss": ~jnp.isfinite(metrics["loss"]),
            "parameters": ~tree_all_finite(ts.params),
            "returns": ~jnp.isfinite(metrics["reward_mean"]),
        }

    def init(self, key: Array, params: Any, hparams: HParams, env_params: Any) -> TrainState:
        """Initial state from parameters made by :meth:`init_params`; vmappable."""
        env_key, ext_key, key = jax.random.split(key, 3)
        obs, env_state = self.venv.reset(env_key, env_params)
        opt_state = make_optimizer(hparams, self.cfg).init(params)
        ext_keys = jax.random.split(ext_key, max(len(self.extensions), 1))
        obs_shape = self.env.observation_shape(env_params)
        return TrainState(
            params=params,
            opt_state=opt_state,
            env_state=env_state,
            obs=obs,
            obs_stats=RunningMeanStd.create(obs_shape).update(obs.astype(jnp.float32)) if self.cfg.normalize_obs else RunningMeanStd.create(()),
            rew_norm=RewardNormalizer.create(self.cfg.num_envs),
            key=key,
            update_step=jnp.zeros((), jnp.int32),
            hparams=hparams,
            env_params=env_params,
            ext={e.name: e.init(k, params, obs_shape) for e, k in zip(self.extensions, ext_keys)},
            carry=self.policy.initial_carry((self.cfg.num_envs,)),
        )

    def norm_obs(self, stats: RunningMeanStd, obs: Array) -> Array:
        return stats.normalize(obs.astype(jnp.float32)) if self.cfg.normalize_obs else obs

    # -- the update ------------------------------------------------------------------------
    def update(self, ts: TrainState) -> tuple[TrainState, dict[str, Array]]:
        """Rollout -> advantages -> learning, then the extensions' own updates and the
        ``post_update`` hook."""
        cfg, h = self.cfg, ts.hparams
        space = self.env.action_space(ts.env_params)
        key, rollout_key, epoch_key, ext_key = jax.random.split(ts.key, 4)

        traj, end, episodes = rollout(self, ts, rollout_key)
        _, _, last_value = self.policy.apply(ts.params, end.carry, self.norm_obs(end.obs_stats, end.obs))
        rewards, ext_metrics = self._extension_rewards(ts, traj)
        adv, targets = advantages(traj, rewards, last_value, h, cfg)
        params, opt_state, metrics = learn(self, ts, make_batch(self, traj, adv, targets), epoch_key)

        ext_state = dict(ts.ext)
        ext_keys = jax.random.split(ext_key, max(len(self.extensions), 1))
        flat = lambda x: x.reshape((cfg.batch_size,) + x.shape[2:])
        for e, k in zip(self.extensions, ext_keys):
            ext_state[e.name], em = e.update(ts.ext[e.name], params, flat(traj["raw_obs"]), flat(traj["final_obs"]), k)
            ext_metrics.update({f"{e.name}/{n}": v for n, v in em.items()})
        metrics.update(ext_metrics)
        metrics.update(self._episode_metrics(episodes))
        metrics["reward_mean"] = rewards.mean()  # training reward per step, extensions included
        metrics["lr"] = make_lr(h, cfg, ts.update_step)
        if isinstance(space, Discrete) and space.n <= 32:
            freq = jax.nn.one_hot(traj["action"], space.n).mean(axis=(0, 1))
            metrics.update({f"action_frac{i}": freq[i] for i in range(space.n)})
        if self.log_episodes:
            metrics["episode_records"] = traj["info"]

        new_ts = ts.replace(
            params=params, opt_state=opt_state, env_state=end.env_state, obs=end.obs, obs_stats=end.obs_stats,
            rew_norm=end.rew_norm, key=key, update_step=ts.update_step + 1, ext=ext_state, carry=end.carry,
        )
        if self.post_update is not None:
            takes_metrics = len(inspect.signature(self.post_update).parameters) >= 2
            new_ts = self.post_update(new_ts, metrics) if takes_metrics else self.post_update(new_ts)
        return new_ts, metrics

    def _extension_rewards(self, ts: TrainState, traj: dict[str, Any]) -> tuple[Array, dict[str, Array]]:
        """The rollout's rewards plus every extension's intrinsic reward ``[T, N]``."""
        rewards = traj["reward"]
        metrics: dict[str, Array] = {}
        for e in self.extensions:
            extra = e.reward(ts.ext[e.name], traj["raw_obs"], traj["action"], traj["final_obs"])
            if extra is not None:
                rewards = rewards + extra
                metrics[f"{e.name}/reward"] = extra.mean()
        return rewards, metrics

    def logged_info_keys(self) -> tuple[str, ...]:
        keys = ["episode_done", "episode_return", "episode_length"]
        keys += ["episode_" + k[3:] for k in self.env.info_keys() if k.startswith("ep_")]
        if (self.num_tags or self.log_episodes) and "tag" in self.env.info_keys():
            keys.append("tag")
        return tuple(keys)

    def _episode_metrics(self, acc: dict[str, Array]) -> dict[str, Array]:
        """Means over the episodes that ended in this rollout (NaN when none did: the runner
        keeps the latest finite value)."""
        count = acc["episodes"]
        safe = jnp.maximum(count, 1.0)
        out = {"episodes": count}
        for k, v in acc.items():
            if k.startswith("episode_"):
                out[k] = jnp.where(count > 0, v / safe, jnp.nan)
        if self.num_tags:
            for i in range(self.num_tags):
                n = acc["tag_episodes"][i]
                out[f"episodes_tag{i}"] = n
                for k in acc:
                    if k.startswith("tag_episode_"):
                        out[f"{k[4:]}_tag{i}"] = jnp.where(n > 0, acc[k][i] / jnp.maximum(n, 1.0), jnp.nan)
        return out

    # -- compositions ----------------------------------------------------------------------
    def chunk(self, ts: TrainState, num_updates: int) -> tuple[TrainState, dict[str, Array]]:
        """``num_updates`` updates as one scan; metrics stacked ``[num_updates]``."""
        return jax.lax.scan(lambda s, _: self.update(s), ts, None, length=num_updates)

    def train(self, key: Array, hparams: HParams, env_params: Any) -> tuple[TrainState, dict[str, Array]]:
        """The whole run in one program (init + all updates) for ONE member; jit it."""
        return self.chunk(self.init_state(key, env_params, hparams), self.cfg.num_updates)

    # -- evaluation ------------------------------------------------------------------------
    def evaluation(self, ts: TrainState, keys: Array, max_steps: int) -> dict[str, Array]:
        return self.evaluate(ts.params, ts.obs_stats, ts.env_params, keys, max_steps)

    def evaluate(self, params: Any, obs_stats: RunningMeanStd, env_params: Any, keys: Array, max_steps: int) -> dict[str, Array]:
        """Deterministic (greedy) evaluation: one episode per key in ``keys[E]``, at most
        ``max_steps`` steps each. Returns per-episode ``return``, ``length`` and ``ep_`` sums."""
        env, policy = self.env, self.policy
        space = env.action_space(env_params)
        ep_keys = tuple(k for k in env.info_keys() if k.startswith("ep_"))

        def episode(key):
            pkey, rkey, skey = jax.random.split(key, 3)
            p = self.param_sampler(pkey, env_params) if self.param_sampler is not None else env_params
            obs, state = env.reset(rkey, p)

            def step(carry, k):
                obs, state, alive, ret, length, sums, memory = carry
                memory, pi_out, _ = policy.apply(params, memory, self.norm_obs(obs_stats, obs))
                action = make_distribution(space, pi_out).mode()
                obs, state, reward, term, trunc, info = env.step(k, state, action, p)
                ret = ret + alive * reward
                length = length + alive.astype(jnp.int32)
                sums = {n: sums[n] + alive * info[n] for n in ep_keys}
                alive = alive * (1.0 - jnp.logical_or(term, trunc))
                return (obs, state, alive, ret, length, sums, memory), None

            init = (obs, state, jnp.ones(()), jnp.zeros(()), jnp.zeros((), jnp.int32), {n: jnp.zeros(()) for n in ep_keys},
                    policy.initial_carry(()))
            (_, _, _, ret, length, sums, _), _ = jax.lax.scan(step, init, jax.random.split(skey, max_steps))
            return {"return": ret, "length": length, **sums}

        return jax.vmap(episode)(keys)


def make_lr(h: HParams, cfg: PPOConfig, update_step: Array) -> Array:
    """The learning rate in force at the start of ``update_step``."""
    if not cfg.anneal_lr:
        return h.lr
    return h.lr * (1.0 - update_step / cfg.num_updates)
