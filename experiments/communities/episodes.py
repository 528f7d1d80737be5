"""Training-free harvest episodes: the ego with a policy, or the resident baseline, on given
keys, and the spec's per-episode metrics. Shared by the experiment's in-training evaluation
(:mod:`rljax.experiments.communities.experiment`) and the distributional evaluation
(:mod:`rljax.experiments.communities.evaluation`)."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rljax.environments.harvest import HarvestParams
from rljax.environments.harvest_view import HarvestEnv

Array = jax.Array


# ----------------------------------------------------------------------------------------
# Episodes (training-free): the ego with a policy, or the resident baseline, on given keys
# ----------------------------------------------------------------------------------------
EP_KEYS = tuple(k for k in HarvestEnv().info_keys() if k.startswith("ep_"))


def play_episode(env: HarvestEnv, policy: Any, key: Array, params: HarvestParams, steps: int,
                 greedy: bool = False) -> dict[str, Array]:
    """One episode of ``steps`` steps from ``key``; ``policy(obs) -> JointDistribution`` or
    ``None`` for the resident baseline (``params.ego_is_resident`` must then be 1).

    The environment's keys (reset and every step) come from ``key`` alone and the action keys
    from a separate stream, so an ego episode and its baseline with the same ``key`` are an
    exact counterfactual. Returns the episode sums: ``return`` and every ``ep_*`` entry."""
    reset_key, steps_key, act_key = jax.random.split(key, 3)
    obs, state = env.reset(reset_key, params)

    def step(carry, ks):
        obs, state, sums = carry
        k_env, k_act = ks
        if policy is None:
            action = jnp.zeros((), jnp.int32)
        else:
            dist = policy(obs)
            action = dist.mode() if greedy else dist.sample(k_act)
        obs, state, reward, _, _, info = env.step(k_env, state, action, params)
        sums = {k: sums[k] + (reward if k == "return" else info[k]) for k in sums}
        return (obs, state, sums), None

    sums0 = {k: jnp.zeros((), jnp.float32) for k in ("return",) + EP_KEYS}
    keys = (jax.random.split(steps_key, steps), jax.random.split(act_key, steps))
    (_, _, sums), _ = jax.lax.scan(step, (obs, state, sums0), keys)
    return sums


def episode_metrics(ego: dict[str, Array], base: dict[str, Array], length: Array | float) -> dict[str, Array]:
    """The spec's per-episode metrics from episode sums of the ego and of its baseline (same
    keys). Works elementwise on any batch shape."""
    T = length
    return {
        "r_train": ego["return"],
        "r_eval": ego["ep_r_eval"],
        "r_env": ego["ep_r_env"],
        "baseline_r_eval": base["ep_r_eval"],
        "value_gap": base["ep_r_eval"] - ego["ep_r_eval"],
        "sanction_regret": ego["ep_minus10_received"] - base["ep_minus10_received"],
        "minus10_received": ego["ep_minus10_received"],
        "compliance_pct": 100.0 * (1.0 - ego["ep_violating_steps"] / T),
        "violations_per_1k": 1000.0 * ego["ep_violating_steps"] / T,
        "zaps_per_1k": 1000.0 * ego["ep_zap_presses"] / T,
        "minus10_issued_correct": ego["ep_minus10_issued_correct"],
        "minus10_issued_mis": ego["ep_minus10_issued_mis"],
        "immune_fizzles": ego["ep_immune_fizzles"],
        "berries": ego["ep_berries"],
        "plants": ego["ep_plants"],
        "permitted_share": ego["ep_permitted_share"],
        "monoculture": ego["ep_monoculture"],
    }


def baseline_metrics(base: dict[str, Array], length: Array | float) -> dict[str, Array]:
    """The same metrics for agent 0 of the baseline itself (value gap and regret 0 by definition)."""
    return episode_metrics(base, base, length)


def community_params(task_harvest: HarvestParams, communities: Array, steps: int, treatment: Array | None = None,
                     baseline: bool = False) -> HarvestParams:
    """``[E]`` harvest params: ``task_harvest`` with ``permitted = communities[e]``, episodes of
    ``steps`` steps, the baseline flag, and optionally another arm."""
    def one(c):
        p = task_harvest.replace(permitted=c.astype(jnp.int32), episode_length=jnp.asarray(steps, jnp.int32),
                                 ego_is_resident=jnp.asarray(int(baseline), jnp.int32))
        return p if treatment is None else p.replace(treatment=jnp.asarray(treatment, jnp.int32))

    return jax.vmap(one)(communities)
