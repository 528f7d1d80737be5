"""PPO's rollout: ``num_steps`` steps of every environment under the current policy.

It returns the trajectory ``[T, N]`` the update learns from (observations as the network saw
them, actions, log-probabilities, values, training rewards, ``terminated``/``truncated`` and the
critic's value of the final observation where an episode was truncated) and where the rollout
ended (environment states, next observation, normalisation statistics, the policy's carry),
plus the episode statistics summed over the rollout. A recurrent policy's carry is reset where
an episode ends (:meth:`rljax.ppo.policy.Policy.reset`); the carry the rollout started from is
stored with the trajectory so the loss can re-run the sequences.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from rljax.distributions import make_distribution
from rljax.envs.vec_env import VecEnvState, any_member
from rljax.normalize import RewardNormalizer, RunningMeanStd

if TYPE_CHECKING:
    from rljax.ppo.ppo import PPO, TrainState

Array = jax.Array


@struct.dataclass
class RolloutEnd:
    """Where a rollout stopped: the next rollout starts here."""

    env_state: VecEnvState
    obs: Array
    obs_stats: RunningMeanStd
    rew_norm: RewardNormalizer
    carry: Any


def where_any(pred: Array, compute: Callable[[], Array], like: Array, mode: str, member_axis: str | None) -> Array:
    """``compute()`` for a rare event ``pred[N]``: ``"select"`` computes it every step and
    zeroes it where ``pred`` is false; ``"cond"`` computes it only on steps where ``pred`` holds
    for some environment (of any member), else zeros (:mod:`rljax.backend` picks the mode)."""
    if mode == "select":
        return jnp.where(pred, compute(), 0.0)
    return jax.lax.cond(any_member(pred, member_axis), compute, lambda: jnp.zeros_like(like))


def rollout(ppo: "PPO", ts: "TrainState", key: Array) -> tuple[dict[str, Any], RolloutEnd, dict[str, Array]]:
    """``(trajectory, end, episode_sums)`` of one rollout from ``ts``; see the module docstring.

    Trajectory entries are ``[T, N, ...]``: ``obs``, ``action``, ``log_prob``, ``value``,
    ``reward`` (normalised when ``ppo.normalize_reward``), ``terminated``, ``truncated``, ``boot``
    (the truncation bootstrap value); ``info`` with ``ppo.log_episodes``, ``raw_obs`` and
    ``final_obs`` when extensions need them, and ``carry`` (``[N, ...]``, the starting carry)
    for a recurrent policy.
    """
    cfg, venv, policy, h = ppo.cfg, ppo.venv, ppo.policy, ts.hparams
    space = ppo.env.action_space(ts.env_params)
    info_keys = ppo.logged_info_keys()
    # Episode statistics are summed in the scan carry rather than stacked per step: on CPU
    # every stacked output and carried-but-unused value costs kernels in the step loop.
    acc_keys = [k for k in info_keys if k not in ("episode_done", "tag")]

    def env_step(carry, step_keys):
        env_state, obs, obs_stats, rew_norm, acc, memory = carry
        act_key, env_key = step_keys[0], step_keys[1:]
        obs_in = ppo.norm_obs(obs_stats, obs)
        memory, pi_out, value = policy.apply(ts.params, memory, obs_in)
        dist = make_distribution(space, pi_out)
        action = dist.sample(act_key)
        log_prob = dist.log_prob(action)
        next_obs, env_state, reward, term, trunc, info = venv.step(env_key, env_state, action, ts.env_params)
        if cfg.bootstrap_truncation:
            final_in = ppo.norm_obs(obs_stats, info["final_obs"])
            boot = where_any(trunc, lambda: policy.apply(ts.params, memory, final_in)[2], value,
                             ppo.bootstrap_branch, ppo.member_axis)
        else:
            boot = jnp.zeros_like(value)
        done = term | trunc
        memory = policy.reset(memory, done)
        if cfg.normalize_reward:
            rew_norm, train_reward = rew_norm.step(reward, done, h.gamma, h.reward_clip)
        else:
            train_reward = reward
        if cfg.normalize_obs:
            obs_stats = obs_stats.update(next_obs.astype(jnp.float32))
        acc = accumulate_episodes(acc, info, acc_keys, ppo.num_tags)
        out = {
            "obs": obs_in, "action": action, "log_prob": log_prob, "value": value,
            "reward": train_reward, "terminated": term, "truncated": trunc, "boot": boot,
        }
        if ppo.log_episodes:
            out["info"] = {k: info[k] for k in info_keys}
        if ppo.extensions:
            out.update(raw_obs=obs, final_obs=info["final_obs"])
        return (env_state, next_obs, obs_stats, rew_norm, acc, memory), out

    acc0 = {"episodes": jnp.zeros(()), **{k: jnp.zeros(()) for k in acc_keys}}
    if ppo.num_tags:
        acc0.update({f"tag_{k}": jnp.zeros(ppo.num_tags) for k in ["episodes", *acc_keys]})
    # Normalisation statistics ride in the carry only when they are used.
    (env_state, last_obs, obs_stats, rew_norm, acc, memory), traj = jax.lax.scan(
        env_step,
        (ts.env_state, ts.obs, ts.obs_stats if cfg.normalize_obs else None,
         ts.rew_norm if cfg.normalize_reward else None, acc0, ts.carry),
        # every key of the rollout in one op: [T, 1 + venv keys] + key shape (raw or typed keys)
        jax.random.split(key, cfg.num_steps * (1 + venv.num_keys)).reshape(
            (cfg.num_steps, 1 + venv.num_keys) + key.shape),
    )
    if policy.recurrent:
        traj["carry"] = ts.carry
    end = RolloutEnd(
        env_state=env_state, obs=last_obs,
        obs_stats=obs_stats if cfg.normalize_obs else ts.obs_stats,
        rew_norm=rew_norm if cfg.normalize_reward else ts.rew_norm,
        carry=memory,
    )
    return traj, end, acc


def accumulate_episodes(acc: dict[str, Array], info: dict[str, Array], acc_keys: list[str], num_tags: int) -> dict[str, Array]:
    """Adds the statistics of the episodes that ended in this step (``info["episode_done"]``)."""
    ended = info["episode_done"].astype(jnp.float32)
    new_acc = {"episodes": acc["episodes"] + ended.sum(),
               **{k: acc[k] + (info[k] * ended).sum() for k in acc_keys}}
    if num_tags:  # per-tag sums of every episode statistic, in one matmul
        by_tag = jax.nn.one_hot(info["tag"], num_tags) * ended[:, None]
        values = jnp.stack([info[k].astype(jnp.float32) for k in acc_keys], axis=1)  # [N, S]
        sums = by_tag.T @ values  # [tags, S]
        new_acc["tag_episodes"] = acc["tag_episodes"] + by_tag.sum(0)
        new_acc.update({f"tag_{k}": acc[f"tag_{k}"] + sums[:, j] for j, k in enumerate(acc_keys)})
    return new_acc
