"""The compiled PPO training primitive: ``init``, ``update``, ``chunk`` and ``train``.

:class:`Trainer` is PPO behind the runner's :class:`~rljax.algorithm.Algorithm` protocol.
Everything here is for ONE member (one seed / hyperparameter setting / task variant); the
runner maps it over a leading member axis. ``update(state) -> (state, metrics)`` runs a
rollout of ``num_steps`` in every environment, GAE, and epochs of minibatch updates; metrics
are reduced inside it, so nothing grows with the number of updates.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from rljax.algorithm import Algorithm, tree_all_finite
from rljax.distributions import make_distribution
from rljax.envs.environment import Environment
from rljax.envs.spaces import Discrete
from rljax.envs.vec_env import VecEnv, VecEnvState, any_member
from rljax.extensions import Extension
from rljax.gae import gae
from rljax.normalize import RewardNormalizer, RunningMeanStd
from rljax.ppo.config import NUMERIC_FIELDS, HParams, PPOConfig
from rljax.ppo.loss import Batch, make_optimizer, ppo_loss

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


@dataclass(frozen=True)
class Trainer(Algorithm):
    """Pure functions of one member's PPO run.

    ``network``: a flax module ``obs[..., *obs_shape] -> (policy_out, value[...])``.
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
        dummy = jnp.zeros((1,) + self.env.observation_shape(env_params), jnp.float32)
        space = self.env.action_space(env_params)

        def entropy():
            pi_out, _ = self.network.apply(self.network.init(jax.random.key(0), dummy), dummy)
            return make_distribution(space, pi_out).entropy()

        return int(jax.eval_shape(entropy).shape[-1])

    def hparams(self, env_params: Any, **overrides: Any) -> HParams:
        return HParams.from_config(self.cfg, self.entropy_terms(env_params), **overrides)

    def apply(self, params: Any, obs: Array):
        return self.network.apply(params, obs)

    def init_params(self, key: Array, env_params: Any) -> Any:
        """Network parameters. Orthogonal initialisers use QR: do not vmap this on CPU (batched
        QR inside a large jit was seen to hang XLA's CPU thread pool, DESIGN.md); the runner
        maps it over members with ``lax.map`` there (:func:`rljax.backend.init_loop`)."""
        dummy = jnp.zeros((1,) + self.env.observation_shape(env_params), jnp.float32)
        return self.network.init(key, dummy)

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
        )

    def _norm_obs(self, stats: RunningMeanStd, obs: Array) -> Array:
        return stats.normalize(obs.astype(jnp.float32)) if self.cfg.normalize_obs else obs

    # -- the update ------------------------------------------------------------------------
    def update(self, ts: TrainState) -> tuple[TrainState, dict[str, Array]]:
        cfg, venv, h = self.cfg, self.venv, ts.hparams
        space = self.env.action_space(ts.env_params)
        key, rollout_key, epoch_key, ext_key = jax.random.split(ts.key, 4)
        info_keys = self._logged_info_keys()

        # Episode statistics are summed in the scan carry rather than stacked per step: on CPU
        # every stacked output and carried-but-unused value costs kernels in the step loop.
        acc_keys = [k for k in info_keys if k not in ("episode_done", "tag")]

        def env_step(carry, step_keys):
            env_state, obs, obs_stats, rew_norm, acc = carry
            act_key, env_key = step_keys[0], step_keys[1:]
            obs_in = self._norm_obs(obs_stats, obs)
            pi_out, value = self.apply(ts.params, obs_in)
            dist = make_distribution(space, pi_out)
            action = dist.sample(act_key)
            log_prob = dist.log_prob(action)
            next_obs, env_state, reward, term, trunc, info = venv.step(env_key, env_state, action, ts.env_params)
            if cfg.bootstrap_truncation:
                final_in = self._norm_obs(obs_stats, info["final_obs"])
                if self.bootstrap_branch == "select":
                    boot = jnp.where(trunc, self.apply(ts.params, final_in)[1], 0.0)
                else:
                    boot = jax.lax.cond(any_member(trunc, self.member_axis), lambda: self.apply(ts.params, final_in)[1],
                                        lambda: jnp.zeros_like(value))
            else:
                boot = jnp.zeros_like(value)
            done = term | trunc
            if cfg.normalize_reward:
                rew_norm, train_reward = rew_norm.step(reward, done, h.gamma, h.reward_clip)
            else:
                train_reward = reward
            if cfg.normalize_obs:
                obs_stats = obs_stats.update(next_obs.astype(jnp.float32))
            ended = info["episode_done"].astype(jnp.float32)
            new_acc = {"episodes": acc["episodes"] + ended.sum(),
                       **{k: acc[k] + (info[k] * ended).sum() for k in acc_keys}}
            if self.num_tags:  # per-tag sums of every episode statistic, in one matmul
                by_tag = jax.nn.one_hot(info["tag"], self.num_tags) * ended[:, None]
                values = jnp.stack([info[k].astype(jnp.float32) for k in acc_keys], axis=1)  # [N, S]
                sums = by_tag.T @ values  # [tags, S]
                new_acc["tag_episodes"] = acc["tag_episodes"] + by_tag.sum(0)
                new_acc.update({f"tag_{k}": acc[f"tag_{k}"] + sums[:, j] for j, k in enumerate(acc_keys)})
            acc = new_acc
            out = {
                "obs": obs_in, "action": action, "log_prob": log_prob, "value": value,
                "reward": train_reward, "terminated": term, "truncated": trunc, "boot": boot,
            }
            if self.log_episodes:
                out["info"] = {k: info[k] for k in info_keys}
            if self.extensions:
                out.update(raw_obs=obs, final_obs=info["final_obs"])
            return (env_state, next_obs, obs_stats, rew_norm, acc), out

        acc0 = {"episodes": jnp.zeros(()), **{k: jnp.zeros(()) for k in acc_keys}}
        if self.num_tags:
            acc0.update({f"tag_{k}": jnp.zeros(self.num_tags) for k in ["episodes", *acc_keys]})
        # Normalisation statistics ride in the carry only when they are used.
        (env_state, last_obs, obs_stats, rew_norm, acc), traj = jax.lax.scan(
            env_step,
            (ts.env_state, ts.obs, ts.obs_stats if cfg.normalize_obs else None,
             ts.rew_norm if cfg.normalize_reward else None, acc0),
            # every key of the rollout in one op: [T, 1 + venv keys] + key shape (raw or typed keys)
            jax.random.split(rollout_key, cfg.num_steps * (1 + venv.num_keys)).reshape(
                (cfg.num_steps, 1 + venv.num_keys) + rollout_key.shape),
        )
        obs_stats = obs_stats if cfg.normalize_obs else ts.obs_stats
        rew_norm = rew_norm if cfg.normalize_reward else ts.rew_norm
        _, last_value = self.apply(ts.params, self._norm_obs(obs_stats, last_obs))

        rewards = traj["reward"]
        ext_metrics: dict[str, Array] = {}
        for e in self.extensions:
            extra = e.reward(ts.ext[e.name], traj["raw_obs"], traj["action"], traj["final_obs"])
            if extra is not None:
                rewards = rewards + extra
                ext_metrics[f"{e.name}/reward"] = extra.mean()

        done = traj["terminated"] | traj["truncated"]
        next_values = jnp.concatenate([traj["value"][1:], last_value[None]], axis=0)
        next_values = jnp.where(done, traj["boot"], next_values)
        adv, targets = gae(
            rewards, traj["value"], next_values, traj["terminated"].astype(jnp.float32),
            traj["truncated"].astype(jnp.float32), h.gamma, h.gae_lambda,
        )
        if cfg.advantage_norm == "batch":
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)

        flat = lambda x: x.reshape((cfg.batch_size,) + x.shape[2:])
        batch = Batch(
            obs=flat(traj["obs"]), action=flat(traj["action"]), log_prob=flat(traj["log_prob"]),
            value=flat(traj["value"]), advantage=flat(adv), target=flat(targets),
        )
        optimizer = make_optimizer(h, cfg)

        def loss_fn(params, mb):
            loss, metrics = ppo_loss(params, self.apply, space, cfg, h, mb)
            for e in self.extensions:
                extra, em = e.loss(ts.ext[e.name], params, self.apply, mb.obs, mb.action)
                loss = loss + extra
                metrics.update({f"{e.name}/{k}": v for k, v in em.items()})
            return loss, metrics

        def minibatch_step(carry, mb):
            params, opt_state = carry
            (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, mb)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            metrics["loss"] = loss
            metrics["grad_norm"] = optax.tree.norm(grads)
            return (params, opt_state), metrics

        def epoch(carry, k):
            perm = jax.random.permutation(k, cfg.batch_size)
            mbs = jax.tree.map(
                lambda x: x[perm].reshape((cfg.num_minibatches, cfg.minibatch_size) + x.shape[1:]), batch
            )
            return jax.lax.scan(minibatch_step, carry, mbs)

        (params, opt_state), loss_metrics = jax.lax.scan(
            epoch, (ts.params, ts.opt_state), jax.random.split(epoch_key, cfg.num_epochs)
        )
        metrics = jax.tree.map(jnp.mean, loss_metrics)

        ext_state = dict(ts.ext)
        ext_keys = jax.random.split(ext_key, max(len(self.extensions), 1))
        for e, k in zip(self.extensions, ext_keys):
            ext_state[e.name], em = e.update(ts.ext[e.name], params, flat(traj["raw_obs"]), flat(traj["final_obs"]), k)
            ext_metrics.update({f"{e.name}/{n}": v for n, v in em.items()})
        metrics.update(ext_metrics)
        metrics.update(self._episode_metrics(acc))
        metrics["reward_mean"] = rewards.mean()  # training reward per step, extensions included
        metrics["lr"] = make_lr(h, cfg, ts.update_step)
        if isinstance(space, Discrete) and space.n <= 32:
            freq = jax.nn.one_hot(traj["action"], space.n).mean(axis=(0, 1))
            metrics.update({f"action_frac{i}": freq[i] for i in range(space.n)})
        if self.log_episodes:
            metrics["episode_records"] = traj["info"]

        new_ts = ts.replace(
            params=params, opt_state=opt_state, env_state=env_state, obs=last_obs, obs_stats=obs_stats,
            rew_norm=rew_norm, key=key, update_step=ts.update_step + 1, ext=ext_state,
        )
        if self.post_update is not None:
            takes_metrics = len(inspect.signature(self.post_update).parameters) >= 2
            new_ts = self.post_update(new_ts, metrics) if takes_metrics else self.post_update(new_ts)
        return new_ts, metrics

    def _logged_info_keys(self) -> tuple[str, ...]:
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
        env = self.env
        space = env.action_space(env_params)
        ep_keys = tuple(k for k in env.info_keys() if k.startswith("ep_"))

        def episode(key):
            pkey, rkey, skey = jax.random.split(key, 3)
            p = self.param_sampler(pkey, env_params) if self.param_sampler is not None else env_params
            obs, state = env.reset(rkey, p)

            def step(carry, k):
                obs, state, alive, ret, length, sums = carry
                pi_out, _ = self.apply(params, self._norm_obs(obs_stats, obs))
                action = make_distribution(space, pi_out).mode()
                obs, state, reward, term, trunc, info = env.step(k, state, action, p)
                ret = ret + alive * reward
                length = length + alive.astype(jnp.int32)
                sums = {n: sums[n] + alive * info[n] for n in ep_keys}
                alive = alive * (1.0 - jnp.logical_or(term, trunc))
                return (obs, state, alive, ret, length, sums), None

            init = (obs, state, jnp.ones(()), jnp.zeros(()), jnp.zeros((), jnp.int32), {n: jnp.zeros(()) for n in ep_keys})
            (_, _, _, ret, length, sums), _ = jax.lax.scan(step, init, jax.random.split(skey, max_steps))
            return {"return": ret, "length": length, **sums}

        return jax.vmap(episode)(keys)


def make_lr(h: HParams, cfg: PPOConfig, update_step: Array) -> Array:
    """The learning rate in force at the start of ``update_step``."""
    if not cfg.anneal_lr:
        return h.lr
    return h.lr * (1.0 - update_step / cfg.num_updates)
