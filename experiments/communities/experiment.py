"""Normative harvest communities: a FiLM two-head PPO ego among 15 sanctioning residents, the
treatment arm (sees the permitted colour) and the control arm (a null token) trained side by side
in ONE program, with the community drawn per environment instance at every reset.

Members are arms x seeds: each arm is a *variant* (task parameter ``treatment`` 1 or 0), so both
arms share every compiled step and, seed for seed, the same initial network and the same
environment keys (paired comparisons). Every episode is tagged with its community (``RED``,
``GREEN``, ``BLUE``); training metrics are logged overall and per community (``*_red``,
``*_green``, ``*_blue`` in ``metrics.csv``, per-member CSVs and TensorBoard), episodes with their
community in ``episodes.csv`` (column ``tag``: ``RED``, ``GREEN`` or ``BLUE``; inside the program
communities are the integers 0, 1, 2). The in-training evaluation (``eval.csv`` and TensorBoard)
is logged overall and per community too; its ``eval_return`` is R_eval (alpha stripped), by which
the best checkpoints are ranked. Sanction metrics (correct-sanction rate, immunity rate,
selectivity, collective cost per sanction: :func:`experiments.communities_episodes.sanction_rates`)
appear in both.

Community sampling (``sampling.mode``), from each instance's own key at every reset:

* ``uniform`` (default): each allowed community with equal probability;
* ``single``: always ``sampling.community`` (the reference's phase 4);
* ``curriculum``: from ``sampling.community`` alone to uniform, linearly over
  ``sampling.curriculum_updates`` updates (0: half the run);
* ``adaptive``: ``(1 - w) * uniform + w * onehot(worst)``, ``w = sampling.adaptive_weight``, where
  *worst* is the community with the worst running (EMA, ``sampling.adaptive_rate``) per-community
  training metric ``sampling.adaptive_metric``: ``r_eval`` (lowest R_eval), ``compliance``
  (highest violation rate) or ``sanctions`` (most -10s received); uniform until every allowed
  community has finished an episode.

``sampling.held_out`` (a community name) is never drawn in training in any mode (train on two,
evaluate on the third); evaluation covers all three and marks it.

    python -m experiments.communities --preset pipeline              # about a minute: the pipeline
    python -m experiments.communities --seeds 4 --out runs/comm       # both arms, uniform, CPU budget
    python -m experiments.communities --preset phase5 --seeds 3       # the reference's phase-5 run, both arms
    python -m experiments.communities --preset treatment_multi        # one arm of it
    python -m experiments.communities --preset cpu_study              # both arms x 3 seeds in ~2 h on 2 CPU cores
    python -m experiments.communities --set sampling.mode=adaptive
    python -m experiments.communities eval runs/comm                  # distributional evaluation
    python -m experiments.communities curves runs/comm                # training curves (PNG)

PPO follows the reference's phase-5 table (SB3: 32 envs x 256 steps, minibatch 4096, lr 3e-4
constant, gamma 0.995, lambda 0.95, clip 0.2, no value clipping, vf 0.5, grad norm 0.5, rewards
normalised by the running return std with clip 10, head-wise entropy 0.01/0.02 applied once). The
default config scales it to a CPU budget (4 epochs, ~1M steps: ``PHASE5_PPO``); the presets
``phase5`` (both arms), ``treatment_multi``/``control_multi`` (one arm each), ``phase4`` and
``smoke`` are the reference's runs, ``cpu_study`` the reference's phase 5 at the step budget this
project's CPU trains for 2 arms x 3 seeds in about two hours (``docs/communities.md``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rljax.environments.harvest import (
    COMMUNITY_NAMES, NUM_COMMUNITIES, NUM_VIEW_CHANNELS, VIEW_COLS, VIEW_ROWS, HarvestParams,
    harvest_params, sample_community,
)
from rljax.environments.harvest import PARAMS as HARVEST_PARAMS
from rljax.environments.harvest_view import HarvestEnv
from rljax import backend
from rljax.distributions import make_distribution
from rljax.envs.params import config_error
from rljax.errors import ConfigError
from rljax.experiment import EvalRequest, Experiment, RunnerConfig, Setup
from rljax.networks.film import TRUNKS, FiLMPolicy, RecurrentFiLMPolicy
from rljax.ppo import PPO, PPOConfig, TrainState

# The training-free episode code lives apart so the evaluation tool can use it without importing
# this module (which imports the tool for its sub-commands); re-exported here.
from rljax.experiments.communities.episodes import (  # noqa: F401
    EP_KEYS, RATES, EgoPolicy, baseline_metrics, community_params, episode_metrics, play_episode, pooled_rates, sanction_rates)

Array = jax.Array
ARMS = ("treatment", "control")
SAMPLING_MODES = ("uniform", "single", "curriculum", "adaptive")
ADAPTIVE_METRICS = ("r_eval", "compliance", "sanctions")
TAG_NAMES = tuple(n.lower() for n in COMMUNITY_NAMES)  # metric suffixes: _red, _green, _blue

# The reference's phase-5 PPO (SB3) scaled to this project's 2-core CPU: the batch and minibatch
# are the reference's (32 x 256 = 8192 steps, minibatches of 4096); 10 epochs -> 4, and 10M steps
# -> a budget that runs in minutes (docs/communities.md). SB3 keeps the learning rate constant and
# does not clip the value loss (clip_range_vf=None); advantages are normalised per minibatch.
PHASE5_PPO = PPOConfig(
    num_envs=32,
    num_steps=256,
    num_epochs=4,
    num_minibatches=2,
    total_timesteps=1_015_808,  # 124 updates
    lr=3e-4,
    anneal_lr=False,
    gamma=0.995,
    gae_lambda=0.95,
    clip_eps=0.2,
    ent_coef=(0.01, 0.02),
    vf_coef=0.5,
    max_grad_norm=0.5,
    clip_value=False,
    advantage_norm="minibatch",
    normalize_obs=False,
    normalize_reward=True,
    reward_clip=10.0,
)


# Set per arm (treatment), per reset (permitted, community_probs: see SamplingConfig) or by
# the evaluation (ego_is_resident): not options of the run.
_PER_TASK = ("permitted", "treatment", "ego_is_resident", "community_probs")


@dataclass(frozen=True)
class EnvConfig(HARVEST_PARAMS.settings_class("HarvestFields", exclude=_PER_TASK)):
    """The world: the harvest substrate's parameters with their defaults (the documented values;
    the original runs used alpha=5, beta=5, c=0.5, preset ``as_run``; alpha is stripped from
    R_eval) and the arms to train."""

    arms: tuple[str, ...] = ARMS

    def harvest_overrides(self) -> dict[str, Any]:
        return HARVEST_PARAMS.from_settings(self, exclude=_PER_TASK)


@dataclass(frozen=True)
class SamplingConfig:
    """How each instance draws its community at every reset (see the module docstring)."""

    mode: str = "uniform"
    community: str = "RED"  # single: the community; curriculum: where it starts
    held_out: str = ""  # a community never drawn in training ("" = none)
    curriculum_updates: int = 0  # updates from `community` alone to uniform; 0 = half the run
    adaptive_metric: str = "r_eval"
    adaptive_weight: float = 0.5  # extra probability on the worst community
    adaptive_rate: float = 0.2  # EMA rate of the per-community metric (per update with episodes)


@dataclass(frozen=True)
class NetworkConfig:
    trunk: str = "compact"  # "compact", "strided" or "full" (rljax.networks.film)
    conv_impl: str = "auto"  # "lax", "patches" or "auto" (patches on CPU, lax elsewhere)
    # A GRU between the trunk and the FiLM (rljax.networks.film.RecurrentFiLMPolicy); PPO then
    # learns from whole environment sequences (ppo.num_minibatches must divide ppo.num_envs).
    recurrent: bool = False
    cell_size: int = 256


def _default_runner() -> RunnerConfig:
    # 6 evaluation episodes = 2 per community (round-robin), each with its baseline.
    return RunnerConfig(eval_episodes=6, log_episodes=True, checkpoint_minutes=5.0)


@dataclass(frozen=True)
class CommunitiesConfig:
    ppo: PPOConfig = field(default_factory=lambda: PHASE5_PPO)
    runner: RunnerConfig = field(default_factory=_default_runner)
    env: EnvConfig = field(default_factory=EnvConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)

    def validate(self) -> None:
        env, s, net = self.env, self.sampling, self.network
        if not env.arms:
            raise ConfigError(f"env.arms is empty; choose from {', '.join(ARMS)}")
        for a in env.arms:
            if a not in ARMS:
                raise ConfigError(f"env.arms: unknown arm {a!r}; choose from {', '.join(ARMS)}")
        if len(set(env.arms)) != len(env.arms):
            raise ConfigError(f"env.arms has duplicates: {list(env.arms)}")
        try:
            harvest_params(**env.harvest_overrides())
        except ValueError as e:  # the environment names the field; point at the config key
            raise config_error(e, "env.") from None
        if s.mode not in SAMPLING_MODES:
            raise ConfigError(f"sampling.mode must be one of {', '.join(SAMPLING_MODES)}, got {s.mode!r}")
        if s.community not in COMMUNITY_NAMES:
            raise ConfigError(f"sampling.community must be one of {', '.join(COMMUNITY_NAMES)}, got {s.community!r}")
        if s.held_out not in ("",) + COMMUNITY_NAMES:
            raise ConfigError(f"sampling.held_out must be '' or one of {', '.join(COMMUNITY_NAMES)}, got {s.held_out!r}")
        if s.held_out and s.mode in ("single", "curriculum") and s.held_out == s.community:
            raise ConfigError(f"sampling.held_out={s.held_out} is the community sampling.mode={s.mode} starts from "
                              f"(sampling.community={s.community})")
        if s.curriculum_updates < 0:
            raise ConfigError(f"sampling.curriculum_updates must be >= 0, got {s.curriculum_updates}")
        if s.adaptive_metric not in ADAPTIVE_METRICS:
            raise ConfigError(f"sampling.adaptive_metric must be one of {', '.join(ADAPTIVE_METRICS)}, "
                              f"got {s.adaptive_metric!r}")
        if not 0.0 <= s.adaptive_weight <= 1.0:
            raise ConfigError(f"sampling.adaptive_weight must be in [0, 1], got {s.adaptive_weight}")
        if not 0.0 < s.adaptive_rate <= 1.0:
            raise ConfigError(f"sampling.adaptive_rate must be in (0, 1], got {s.adaptive_rate}")
        if net.trunk not in TRUNKS:
            raise ConfigError(f"network.trunk must be one of {', '.join(TRUNKS)}, got {net.trunk!r}")
        if net.conv_impl not in backend.CONV_IMPLS:
            raise ConfigError(f"network.conv_impl must be one of {', '.join(backend.CONV_IMPLS)}, got {net.conv_impl!r}")
        if net.cell_size <= 0:
            raise ConfigError(f"network.cell_size must be > 0, got {net.cell_size}")
        if net.recurrent and self.ppo.num_envs % self.ppo.num_minibatches:
            raise ConfigError(f"network.recurrent=true needs ppo.num_minibatches={self.ppo.num_minibatches} to divide "
                              f"ppo.num_envs={self.ppo.num_envs}: a recurrent policy's minibatches are whole sequences")
        if not self.ppo.normalize_obs is False:
            raise ConfigError("ppo.normalize_obs must be false (the reference normalises rewards only; the "
                              "observation is one-hot)")


# ----------------------------------------------------------------------------------------
# Task parameters and community sampling
# ----------------------------------------------------------------------------------------
@struct.dataclass
class CommunityTask:
    """A member's task: the harvest parameters (``harvest.community_probs`` is the sampling
    distribution in force) and the adaptive sampler's running per-community *badness* ``score[3]``
    (higher = worse; NaN until that community finished an episode). It is the member's
    ``ts.env_params``; each environment instance draws its own :class:`HarvestParams` from it."""

    harvest: HarvestParams
    score: Array


def draw_task(key: Array, task: CommunityTask) -> HarvestParams:
    """The ``param_sampler``: the instance's params for its next episode, its community drawn
    from ``task.harvest.community_probs`` with the instance's own key."""
    return sample_community(key, task.harvest)


@dataclass(frozen=True)
class CommunitySampler:
    """The sampling distribution over communities and how it changes between updates
    (``post_update`` runs inside the compiled update). Static configuration only."""

    mode: str = "uniform"
    start: int = 0  # single / curriculum: the community index
    allowed: tuple[bool, bool, bool] = (True, True, True)  # False = held out
    curriculum_updates: int = 1
    metric: str = "r_eval"
    weight: float = 0.5
    rate: float = 0.2

    @classmethod
    def from_config(cls, s: SamplingConfig, num_updates: int) -> "CommunitySampler":
        allowed = tuple(name != s.held_out for name in COMMUNITY_NAMES)
        return cls(mode=s.mode, start=COMMUNITY_NAMES.index(s.community), allowed=allowed,
                   curriculum_updates=s.curriculum_updates or max(num_updates // 2, 1),
                   metric=s.adaptive_metric, weight=s.adaptive_weight, rate=s.adaptive_rate)

    def uniform(self) -> np.ndarray:
        a = np.asarray(self.allowed, np.float32)
        return a / a.sum()

    def initial_probs(self) -> np.ndarray:
        if self.mode in ("single", "curriculum"):
            return np.eye(NUM_COMMUNITIES, dtype=np.float32)[self.start]
        return self.uniform()

    def curriculum_probs(self, update: Array) -> Array:
        """Probabilities after ``update`` updates: linear from the start community to uniform."""
        w = jnp.clip(update / self.curriculum_updates, 0.0, 1.0)
        return (1.0 - w) * jnp.eye(NUM_COMMUNITIES)[self.start] + w * jnp.asarray(self.uniform())

    def adaptive_probs(self, score: Array) -> Array:
        """``(1 - weight) * uniform + weight * onehot(worst allowed)``; uniform while an allowed
        community has no score yet."""
        allowed = jnp.asarray(self.allowed)
        worst = jnp.argmax(jnp.where(allowed, score, -jnp.inf))
        uniform = jnp.asarray(self.uniform())
        tilted = (1.0 - self.weight) * uniform + self.weight * jax.nn.one_hot(worst, NUM_COMMUNITIES)
        return jnp.where(jnp.any(allowed & jnp.isnan(score)), uniform, tilted)

    def badness(self, metrics: dict[str, Array]) -> Array:
        """``[3]`` this update's per-community badness (NaN where no episode of it ended)."""
        def tag(name, i):
            return metrics[f"episode_{name}_tag{i}"]

        out = []
        for i in range(NUM_COMMUNITIES):
            if self.metric == "r_eval":
                out.append(-tag("r_eval", i))
            elif self.metric == "compliance":
                out.append(tag("violating_steps", i) / tag("length", i))
            else:
                out.append(tag("minus10_received", i))
        return jnp.stack(out)

    def post_update(self, ts: TrainState, metrics: dict[str, Array]) -> TrainState:
        task = ts.env_params
        if self.mode == "curriculum":
            probs, score = self.curriculum_probs(ts.update_step), task.score
        elif self.mode == "adaptive":
            x = self.badness(metrics)
            seen = jnp.isfinite(x)
            ema = jnp.where(jnp.isnan(task.score), x, (1.0 - self.rate) * task.score + self.rate * x)
            score = jnp.where(seen, ema, task.score)
            probs = self.adaptive_probs(score)
        else:
            return ts
        harvest = task.harvest.replace(community_probs=probs.astype(jnp.float32))
        return ts.replace(env_params=task.replace(harvest=harvest, score=score))

    @property
    def changes(self) -> bool:
        return self.mode in ("curriculum", "adaptive")


# ----------------------------------------------------------------------------------------
# PPO with community metrics
# ----------------------------------------------------------------------------------------
def rename_community_metrics(metrics: dict[str, Array], sanction_penalty: Array | float = 10.0) -> dict[str, Array]:
    """``*_tag0/1/2`` -> ``*_red/green/blue`` and the derived per-episode rates (compliance %,
    violations and zap presses per 1000 steps) and sanction rates (correct-sanction rate,
    immunity rate, selectivity, collective cost per sanction: :func:`sanction_rates` of the
    update's episode means) overall and per community."""
    out = {}
    for k, v in metrics.items():
        for i, name in enumerate(TAG_NAMES):
            if k.endswith(f"_tag{i}"):
                k = k[: -len(f"_tag{i}")] + f"_{name}"
                break
        out[k] = v
    for suffix in ("",) + tuple(f"_{n}" for n in TAG_NAMES):
        length = out.get(f"episode_length{suffix}")
        if length is None:
            continue
        out[f"compliance_pct{suffix}"] = 100.0 * (1.0 - out[f"episode_violating_steps{suffix}"] / length)
        out[f"violations_per_1k{suffix}"] = 1000.0 * out[f"episode_violating_steps{suffix}"] / length
        out[f"zaps_per_1k{suffix}"] = 1000.0 * out[f"episode_zap_presses{suffix}"] / length
        means = {k.removesuffix(suffix): v for k, v in out.items() if k.startswith("episode_") and k.endswith(suffix)}
        for k, v in sanction_rates(means, sanction_penalty, prefix="episode_").items():
            out[f"{k}{suffix}"] = v
    return out


@dataclass(frozen=True)
class CommunityPPO(PPO):
    """PPO on harvest with community sampling, per-community metrics and an evaluation that
    pairs every ego episode with its resident baseline (value gap). ``greedy_eval``: evaluate
    with the policy's mode instead of samples."""

    greedy_eval: bool = False
    tag_names: tuple[str, ...] = COMMUNITY_NAMES  # episodes.csv writes the community tag as its name

    def eval_steps(self, task: CommunityTask) -> int:
        return int(np.max(np.asarray(task.harvest.episode_length)))

    def ego_policy(self, ts_params: Any, obs_stats: Any) -> EgoPolicy:
        """The trained ego for :func:`play_episode`: one observation ``[OBS_DIM]`` at a time, its
        memory (a recurrent policy's) carried by the caller."""
        space, policy = self.env.action_space(None), self.policy

        def step(carry, obs):
            carry, pi_out, _ = policy.apply(ts_params, carry, self.norm_obs(obs_stats, obs))
            return carry, make_distribution(space, pi_out)

        return EgoPolicy(step, policy.initial_carry(()))

    def update(self, ts: TrainState) -> tuple[TrainState, dict[str, Array]]:
        probs = ts.env_params.harvest.community_probs
        penalty = ts.env_params.harvest.sanction_penalty
        ts, metrics = super().update(ts)
        metrics = rename_community_metrics(metrics, penalty)
        metrics.update({f"community_prob_{n}": probs[i] for i, n in enumerate(TAG_NAMES)})
        return ts, metrics

    def evaluation(self, ts: TrainState, keys: Array, max_steps: int) -> dict[str, Array]:
        """Episode ``e`` is in community ``e % 3`` (held-out communities included), ego and
        baseline on the same key. Returns ``return`` = **R_eval** (alpha stripped: the runner
        ranks the best checkpoints by it, as the reference does), ``r_train``, the per-episode
        metrics, and per community (``*_red``, ``*_green``, ``*_blue``) the community's mean of
        every metric (the sanction rates pooled over its episodes), repeated over the episode
        axis so that the logged mean is that value."""
        communities = jnp.arange(keys.shape[0]) % NUM_COMMUNITIES
        harvest = ts.env_params.harvest
        ego_p = community_params(harvest, communities, max_steps)
        base_p = community_params(harvest, communities, max_steps, baseline=True)
        policy = self.ego_policy(ts.params, ts.obs_stats)
        ego = jax.vmap(lambda k, p: play_episode(self.env, policy, k, p, max_steps, self.greedy_eval))(keys, ego_p)
        base = jax.vmap(lambda k, p: play_episode(self.env, None, k, p, max_steps))(keys, base_p)
        m = episode_metrics(ego, base, float(max_steps), harvest.sanction_penalty)
        out = {"return": m["r_eval"], **m}
        e = keys.shape[0]
        for c, name in enumerate(TAG_NAMES):
            mask = communities == c
            n = jnp.sum(mask)
            for k, v in m.items():
                if k not in RATES:
                    out[f"{k}_{name}"] = jnp.full((e,), jnp.where(n > 0, jnp.sum(jnp.where(mask, v, 0.0)) / jnp.maximum(n, 1), jnp.nan))
            for k, v in pooled_rates(m, mask, harvest.sanction_penalty).items():
                out[f"{k}_{name}"] = jnp.full((e,), v)
        for k, v in pooled_rates(m, None, harvest.sanction_penalty).items():
            out[k] = jnp.full((e,), v)  # pooled over all episodes (the per-episode rates are NaN-prone)
        return out


def variant_task(cfg: CommunitiesConfig, arm: str, sampler: CommunitySampler) -> CommunityTask:
    p = harvest_params(**cfg.env.harvest_overrides(), treatment=int(arm == "treatment"),
                       community_probs=tuple(float(x) for x in sampler.initial_probs()),
                       permitted=sampler.start)
    return CommunityTask(harvest=p, score=jnp.full((NUM_COMMUNITIES,), jnp.nan, jnp.float32))


def make_network(cfg: CommunitiesConfig) -> FiLMPolicy:
    # "auto": the backend's fastest (rljax.backend.conv_impl: patches on CPU, XLA's conv elsewhere).
    impl = backend.conv_impl(cfg.network.conv_impl)
    shape = dict(view_shape=(VIEW_ROWS, VIEW_COLS, NUM_VIEW_CHANNELS), context_dim=NUM_COMMUNITIES,
                 trunk=cfg.network.trunk, conv_impl=impl)
    if cfg.network.recurrent:
        return RecurrentFiLMPolicy(**shape, cell_size=cfg.network.cell_size)
    return FiLMPolicy(**shape)


def build(cfg: CommunitiesConfig) -> Setup:
    sampler = CommunitySampler.from_config(cfg.sampling, cfg.ppo.num_updates)
    trainer = CommunityPPO(
        HarvestEnv(), make_network(cfg), cfg.ppo, param_sampler=draw_task,
        post_update=sampler.post_update if sampler.changes else None,
        log_episodes=cfg.runner.log_episodes, num_tags=NUM_COMMUNITIES,
    )
    variants = tuple((arm, variant_task(cfg, arm, sampler)) for arm in cfg.env.arms)
    return Setup(trainer, variants, conv_heavy=True)


def eval_main(argv: Sequence[str]) -> int:
    """``python -m experiments.communities eval RUN_DIR``: see :mod:`rljax.experiments.communities.evaluation`."""
    from rljax.experiments.communities.evaluation import main

    return main(argv)


def evaluate(req: EvalRequest) -> int:
    """``rljax eval RUN_DIR``: the distributional evaluation (:mod:`rljax.experiments.communities.evaluation`)
    with its defaults (stochastic policy, the run's episode length, seed 42); ``--episodes`` per
    community (default 20); files into ``--out`` (default RUN_DIR/communities_eval)."""
    import os

    from rljax.experiments.communities.evaluation import evaluate_runs

    report = evaluate_runs([req.run_dir], episodes=req.episodes or 20, out_dir=req.out, checkpoint=req.checkpoint,
                           member=req.member)
    print(report["table"])
    print(f"\nwritten: {os.path.join(report['out_dir'], 'eval.json')}, eval.png")
    return 0


def curves_main(argv: Sequence[str]) -> int:
    """``python -m experiments.communities curves RUN_DIR [--out PNG]``: training curves."""
    from rljax.experiments.communities.evaluation import curves_main as run

    return run(argv)


# The reference's (SB3) phase-5 run: 10M steps (SB3 stops at the first rollout that reaches
# them: 1221 rollouts of 32 x 256), 10 epochs of 2 minibatches of 4096, 2000-step episodes; the rest
# is PHASE5_PPO. Phase 4: one community, 16 envs, minibatch 2048, 5M steps. The smoke test: 200k.
SEED_PHASE5 = {"env": {"episode_length": 2000},
               "ppo": {"num_envs": 32, "num_steps": 256, "num_epochs": 10, "num_minibatches": 2,
                       "total_timesteps": 1221 * 32 * 256}}
SEED_PHASE4 = {"env": {"episode_length": 2000}, "sampling": {"mode": "single", "community": "RED"},
               "ppo": {"num_envs": 16, "num_steps": 256, "num_epochs": 10, "num_minibatches": 2,
                       "total_timesteps": 1221 * 16 * 256}}
# cpu_study: the seed's phase-5 run with fewer steps, sized by measurement to train both arms x
# 3 seeds (6 members, one program) in about two hours on this project's 2-core CPU
# (docs/communities.md: the throughput measured and the load). The only departure: total steps.
CPU_STUDY_UPDATES = 360  # 2,949,120 steps per member (docs/communities.md: sizing)
CPU_STUDY_SEEDS = 3


def _with(base: dict, **extra: dict) -> dict:
    """``base`` with ``extra`` merged one level deep (section by section)."""
    out = {k: dict(v) for k, v in base.items()}
    for section, values in extra.items():
        out.setdefault(section, {}).update(values)
    return out


# Presets. The default trains both arms on uniform sampling at a CPU budget (4 epochs, ~1M steps);
# phase5 / treatment_multi / control_multi / phase4 / smoke are the reference's runs; every departure
# from the reference in a preset is listed in docs/communities.md.
PRESETS: dict[str, dict] = {
    "default": {},
    "phase5": SEED_PHASE5,  # both arms
    "treatment_multi": _with(SEED_PHASE5, env={"arms": ["treatment"]}),
    "control_multi": _with(SEED_PHASE5, env={"arms": ["control"]}),
    "phase4": SEED_PHASE4,
    # The reference's smoke test: 200k steps (25 rollouts of 32 x 256 = 204,800), phase-5 PPO.
    "smoke": _with(SEED_PHASE5, ppo={"total_timesteps": 25 * 32 * 256}),
    "cpu_study": _with(SEED_PHASE5, ppo={"total_timesteps": CPU_STUDY_UPDATES * 32 * 256},
                       runner={"num_seeds": CPU_STUDY_SEEDS}),
    # The original runs' economics (alpha=5, beta=5, c=0.5).
    "as_run": {"env": {"alpha": 5.0, "beta": 5.0, "c": 0.5}},
    # About a minute: both arms, short episodes, a few small updates; shows the pipeline
    # (CSVs with per-community columns, checkpoints, eval), not the effect.
    "pipeline": {"env": {"episode_length": 200},
                 "ppo": {"num_envs": 16, "num_steps": 64, "num_minibatches": 2, "num_epochs": 2, "total_timesteps": 10_240},
                 "runner": {"eval_episodes": 3, "eval_max_steps": 200, "chunk_updates": 5}},
}

EXPERIMENT = Experiment(
    name="communities",
    config_cls=CommunitiesConfig,
    build=build,
    presets=PRESETS,
    description="Normative harvest: FiLM two-head PPO, treatment vs control arms, per-reset communities (+ eval).",
    commands={"eval": eval_main, "curves": curves_main},
    evaluate=evaluate,
)

if __name__ == "__main__":
    from rljax.cli import experiment_main

    raise SystemExit(experiment_main("communities"))
