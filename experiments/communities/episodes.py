"""Training-free harvest episodes: the ego with a policy, or the resident baseline, on given
keys, and the spec's per-episode metrics. Shared by the experiment's in-training evaluation
(:mod:`rljax.experiments.communities.experiment`) and the distributional evaluation
(:mod:`rljax.experiments.communities.evaluation`)."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from rljax.environments.harvest import NUM_COMMUNITIES, HarvestParams
from rljax.environments.harvest_view import HarvestEnv

Array = jax.Array


# ----------------------------------------------------------------------------------------
# Episodes (training-free): the ego with a policy, or the resident baseline, on given keys
# ----------------------------------------------------------------------------------------
EP_KEYS = tuple(k for k in HarvestEnv().info_keys() if k.startswith("ep_"))


# ``act(obs[OBS_DIM], key) -> int32 action``: any ego policy (a trained network, a hand-written rule).
ActFn = Callable[[Array, Array], Array]


class EgoPolicy(NamedTuple):
    """A trained ego: ``step(carry, obs[OBS_DIM]) -> (carry, distribution)`` from ``carry0``, the
    memory at the episode's start (``()`` for a feedforward policy, a GRU state for
    :class:`rljax.networks.film.RecurrentFiLMPolicy`). Harvest episodes have a fixed length, so
    the memory starts at ``carry0`` and is never reset inside one."""

    step: Callable[[Any, Array], tuple[Any, Any]]
    carry0: Any = ()

    @property
    def recurrent(self) -> bool:
        return bool(jax.tree.leaves(self.carry0))


def swap_token(obs: Array, community: Array | int) -> Array:
    """``obs[..., OBS_DIM]`` with the permitted-colour token (the last 3 entries) replaced by
    ``community``'s one-hot (the intervention: the world's rule is unchanged, only what the policy is
    told about it). Everything else is untouched."""
    token = jax.nn.one_hot(jnp.asarray(community, jnp.int32), NUM_COMMUNITIES, dtype=obs.dtype)
    return jnp.concatenate([obs[..., :-NUM_COMMUNITIES], jnp.broadcast_to(token, obs.shape[:-1] + (NUM_COMMUNITIES,))], -1)


def distribution_act(policy: Any, greedy: bool = False) -> ActFn:
    """``policy(obs) -> distribution``, or a feedforward :class:`EgoPolicy`, as an
    :data:`ActFn` (its mode with ``greedy``, else a sample). A recurrent policy has no
    memoryless form: play it with :func:`play_episode`."""
    if isinstance(policy, EgoPolicy):
        if policy.recurrent:
            raise ValueError("distribution_act: this policy is recurrent (it needs its memory carried through "
                             "the episode); play it with play_episode(env, policy, ...)")
        ego = policy
        policy = lambda obs: ego.step((), obs)[1]

    def act(obs, key):
        dist = policy(obs)
        return dist.mode() if greedy else dist.sample(key)

    return act


def play_episode_act(env: HarvestEnv, act: ActFn | None, key: Array, params: HarvestParams, steps: int,
                     token: Array | int | None = None) -> dict[str, Array]:
    """One episode of ``steps`` steps from ``key`` with the ego acting by ``act(obs, key)``, or
    ``None`` for the resident baseline (``params.ego_is_resident`` must then be 1). ``token``: a
    community whose one-hot a treatment-arm policy sees instead of the observation's own token
    (:func:`swap_token`; the environment and its rule are unchanged; the control arm's null token
    is left as it is).

    The environment's keys (reset and every step) come from ``key`` alone and the action keys
    from a separate stream, so an ego episode and its baseline with the same ``key`` are an
    exact counterfactual. Returns the episode sums: ``return`` and every ``ep_*`` entry."""
    stateful = None if act is None else (lambda carry, obs, k: (carry, act(obs, k)))
    return _play(env, stateful, (), key, params, steps, token)


def _play(env: HarvestEnv, act: Any, carry0: Any, key: Array, params: HarvestParams, steps: int,
          token: Array | int | None) -> dict[str, Array]:
    """:func:`play_episode_act` with a memory: ``act(carry, obs, key) -> (carry, action)``."""
    reset_key, steps_key, act_key = jax.random.split(key, 3)
    obs, state = env.reset(reset_key, params)

    def step(carry, ks):
        obs, state, memory, sums = carry
        k_env, k_act = ks
        if act is None:
            action = jnp.zeros((), jnp.int32)
        else:
            seen = obs if token is None else jnp.where(params.treatment > 0, swap_token(obs, token), obs)
            memory, action = act(memory, seen, k_act)
        obs, state, reward, _, _, info = env.step(k_env, state, action, params)
        sums = {k: sums[k] + (reward if k == "return" else info[k]) for k in sums}
        return (obs, state, memory, sums), None

    sums0 = {k: jnp.zeros((), jnp.float32) for k in ("return",) + EP_KEYS}
    keys = (jax.random.split(steps_key, steps), jax.random.split(act_key, steps))
    (_, _, _, sums), _ = jax.lax.scan(step, (obs, state, carry0, sums0), keys)
    return sums


def play_episode(env: HarvestEnv, ego: EgoPolicy | None, key: Array, params: HarvestParams, steps: int,
                 greedy: bool = False, token: Array | int | None = None) -> dict[str, Array]:
    """:func:`play_episode_act` for a trained :class:`EgoPolicy` (its memory carried through the
    episode; actions sampled, or the mode with ``greedy``), or ``None`` for the resident baseline."""
    if ego is None:
        return _play(env, None, (), key, params, steps, token)

    def act(carry, obs, k):
        carry, dist = ego.step(carry, obs)
        return carry, dist.mode() if greedy else dist.sample(k)

    return _play(env, act, ego.carry0, key, params, steps, token)


def _ratio(num: Array, den: Array) -> Array:
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), jnp.nan)


def sanction_rates(sums: dict[str, Array], sanction_penalty: Array | float = 10.0, prefix: str = "ep_") -> dict[str, Array]:
    """The ego's sanction metrics from episode sums (or means: the ratios are the same), NaN
    where undefined. ``sums`` holds the ``ep_*`` entries (keys ``prefix + name``):

    * ``correct_sanction_rate = correct / landed`` (``landed = correct + mis``, the ego's -10s);
    * ``immunity_rate = immune_fizzles / (landed + immune_fizzles + tiebreak_fizzles)``: the share
      of the ego's beam hits on avatars that met an immune target;
    * ``selectivity = P(zap | ready, eligible avatar in the beam) - P(zap | ready, none)``
      (``p_zap_violator``, ``p_zap_clear``): +1 zaps exactly when it can land a correct sanction,
      0 zaps regardless of what is in the beam;
    * ``collective_cost_per_sanction = (sanction_penalty * landed + sum c + sum beta) / landed``:
      what a landed sanction costs everybody (the target's -10, the zapper's press costs and
      mis-sanction costs).
    """
    g = lambda k: sums[prefix + k]
    correct, mis = g("minus10_issued_correct"), g("minus10_issued_mis")
    landed = correct + mis
    hits = landed + g("immune_fizzles") + g("tiebreak_fizzles")
    p_v = _ratio(g("ready_violator_zaps"), g("ready_violator_steps"))
    p_c = _ratio(g("ready_clear_zaps"), g("ready_clear_steps"))
    return {
        "correct_sanction_rate": _ratio(correct, landed),
        "immunity_rate": _ratio(g("immune_fizzles"), hits),
        "p_zap_violator": p_v,
        "p_zap_clear": p_c,
        "selectivity": p_v - p_c,
        "collective_cost_per_sanction": _ratio(sanction_penalty * landed + g("c") + g("beta"), landed),
    }


# The episode sums a pooled (per-community) rate needs, as episode_metrics names them.
RATE_SUMS = ("minus10_issued_correct", "minus10_issued_mis", "immune_fizzles", "tiebreak_fizzles",
             "ready_violator_steps", "ready_violator_zaps", "ready_clear_steps", "ready_clear_zaps", "c", "beta")
RATES = ("correct_sanction_rate", "immunity_rate", "p_zap_violator", "p_zap_clear", "selectivity",
         "collective_cost_per_sanction")


def episode_metrics(ego: dict[str, Array], base: dict[str, Array], length: Array | float,
                    sanction_penalty: Array | float = 10.0) -> dict[str, Array]:
    """The spec's per-episode metrics from episode sums of the ego and of its baseline (same
    keys), the sanction rates of :func:`sanction_rates` per episode (NaN where undefined; pool
    them over episodes with :func:`pooled_rates`) and the sums they are made of. Works
    elementwise on any batch shape."""
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
        "berries": ego["ep_berries"],
        "plants": ego["ep_plants"],
        "plants_permitted": ego["ep_plants_permitted"],
        **{f"plants_{c}": ego[f"ep_plants_{c}"] for c in ("red", "green", "blue")},
        "permitted_share": ego["ep_permitted_share"],
        "monoculture": ego["ep_monoculture"],
        **{k: ego["ep_" + k] for k in RATE_SUMS},
        **sanction_rates(ego, sanction_penalty),
    }


def pooled_rates(metrics: dict[str, Any], mask: Any = None, sanction_penalty: Array | float = 10.0) -> dict[str, Array]:
    """The sanction rates of the episodes selected by ``mask[..., E]`` (all by default), from their
    summed counts (``metrics`` from :func:`episode_metrics`, per-episode arrays ``[..., E]``)."""
    w = 1.0 if mask is None else jnp.asarray(mask, jnp.float32)
    sums = {"ep_" + k: jnp.sum(jnp.asarray(metrics[k], jnp.float32) * w, -1) for k in RATE_SUMS}
    return sanction_rates(sums, sanction_penalty)


def baseline_metrics(base: dict[str, Array], length: Array | float, sanction_penalty: Array | float = 10.0) -> dict[str, Array]:
    """The same metrics for agent 0 of the baseline itself (value gap and regret 0 by definition)."""
    return episode_metrics(base, base, length, sanction_penalty)


def community_params(task_harvest: HarvestParams, communities: Array, steps: int, treatment: Array | None = None,
                     baseline: bool = False) -> HarvestParams:
    """``[E]`` harvest params: ``task_harvest`` with ``permitted = communities[e]``, episodes of
    ``steps`` steps, the baseline flag, and optionally another arm."""
    def one(c):
        p = task_harvest.replace(permitted=c.astype(jnp.int32), episode_length=jnp.asarray(steps, jnp.int32),
                                 ego_is_resident=jnp.asarray(int(baseline), jnp.int32))
        return p if treatment is None else p.replace(treatment=jnp.asarray(treatment, jnp.int32))

    return jax.vmap(one)(communities)
