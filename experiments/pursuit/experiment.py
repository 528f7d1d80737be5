"""Pursuit-evasion self-play (AMS-DRL): both agents and the whole protocol in one program.

S0: the evader pre-trains in the navigation environment (cold start); S1, S2, ...: the
pursuer and the evader train in turn, each against the other frozen (or against opponents
from the other's pool plus the random policy), with phase warm-up, the smooth curriculum
with NE-gap advancement and regression, evader-first and warm-start on advance, mixed-level
replay, the health monitor with bilateral rollback, and a 100-episode head-to-head
evaluation after every phase (capture rate, escape rate, NE gap). ``--seeds N`` runs N
independent protocols vmapped in one program; each seed follows its own schedule.

    python -m experiments.pursuit --preset amsdrl --seeds 8      # the spec's protocol and learner
    python -m experiments.pursuit --preset Z1                    # S52's runs: V, W, X, Y, Z1, Z2 (seed 47)
    python -m experiments.pursuit --preset fast --seeds 8        # the earlier fast learner (docs' studies)
    python -m experiments.pursuit --preset nav                   # the cold start alone
    python -m experiments.pursuit --preset smoke                 # about a minute
    python -m experiments.pursuit --preset amsdrl --set selfplay.ewc=true --set selfplay.rnd=true
    python -m experiments.pursuit --preset V --set network.recurrent=true --set env.history=1 \
        --set ppo.num_minibatches=4                             # a GRU on the newest frame alone
    python -m experiments.pursuit report RUN_DIR                 # per-seed curves and table
    python -m experiments.pursuit episode RUN_DIR --member 0     # GIF of the trained agents
    python -m experiments.pursuit milestones RUN_DIR             # each phase's parameters (Orbax)

**Cold start decision.** S0 runs as the first stage of the same program (every member is in
S0 at the same updates, so its branch stays a real conditional under the member vmap): one
run, one checkpoint, resumable anywhere. The ``nav`` preset is the same program with no
self-play phases (``protocol.max_phases=0``).
"""
from __future__ import annotations

import argparse
import functools
import json
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from rljax.environments.pursuit_evasion import PARAMS as ARENA_PARAMS
from rljax.envs.params import config_error
from rljax.errors import ConfigError
from rljax.experiment import EvalRequest, Experiment, RunnerConfig, Setup
from rljax.ppo import PPOConfig
from rljax.selfplay.curriculum import CurriculumConfig
from rljax.selfplay.health import HealthConfig
from rljax.selfplay.policy import ENCODERS
from rljax.selfplay.protocol import ProtocolConfig
from rljax.selfplay.trainer import SelfPlayConfig

# The reference's SB3 PPO (lr 3e-4, gamma 0.99, lambda 0.95, clip 0.2, ent 0.01, vf 0.5,
# grad-norm 0.5, minibatches of 256, constant lr, no value clipping, advantages normalised
# per minibatch) with its 2048 steps per update as 32 environments x 64 steps (it ran 4 x 512),
# and 4 epochs instead of its 10 (2.5x less training compute per step: the throughput target;
# ``--set ppo.num_epochs=10`` restores it).
PURSUIT_PPO = PPOConfig(
    num_envs=32,
    num_steps=64,
    num_epochs=4,
    num_minibatches=8,
    total_timesteps=2048,  # set by the protocol
    lr=3e-4,
    anneal_lr=False,
    gamma=0.99,
    gae_lambda=0.95,
    clip_eps=0.2,
    ent_coef=0.01,
    vf_coef=0.5,
    max_grad_norm=0.5,
    clip_value=False,
    advantage_norm="minibatch",
)

@dataclass(frozen=True)
class EnvConfig(ARENA_PARAMS.settings_class("ArenaFields")):
    """The arena: every field of :class:`~rljax.environments.pursuit_evasion.PursuitParams` with
    its default (the reference's, with the rljax decisions: 1200-step episodes, centred lidar
    walls), plus the static options below (partial observation, 2-D actions).
    ``min_init_d``/``max_init_d``/``n_obstacles`` apply only with ``curriculum.kind=none``.
    ``history``: frames in the partial observation (newest last; 1 = the newest frame alone,
    e.g. for ``network.recurrent``)."""

    observation: str = "partial"
    history: int = 10
    fixed_speed: bool = False
    # actions in [-1, 1] rescaled to [0, v_max] x [-omega_max, omega_max]: the Gaussian's initial
    # mean (and the deterministic evaluation) then drives at half speed instead of standing still
    unit_actions: bool = False
    max_obstacles: int = 3

    def arena_overrides(self) -> dict[str, Any]:
        return ARENA_PARAMS.from_settings(self)


@dataclass(frozen=True)
class NetworkConfig:
    """``encoder``: ``mlp`` (the spec's decision: the MLP straight on the stacked history) or
    ``history`` (partial observation only: the original's features extractor before it,
    :class:`rljax.selfplay.policy.HistoryFeatures`). ``recurrent``: the MLP with a GRU of
    ``cell_size`` units after its first ``len(hidden) - 1`` layers
    (:func:`rljax.selfplay.policy.recurrent_scaled_actor_critic`); PPO then learns from whole
    environment sequences, so ``ppo.num_minibatches`` must divide ``ppo.num_envs``."""

    hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    encoder: str = "mlp"
    recurrent: bool = False
    cell_size: int = 128


def _default_runner() -> RunnerConfig:
    return RunnerConfig(eval_episodes=20, checkpoint_minutes=5.0)


@dataclass(frozen=True)
class PursuitConfig:
    ppo: PPOConfig = field(default_factory=lambda: PURSUIT_PPO)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    selfplay: SelfPlayConfig = field(default_factory=SelfPlayConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    runner: RunnerConfig = field(default_factory=_default_runner)

    def validate(self) -> None:
        from rljax.environments.navigation import navigation_params
        from rljax.environments.pursuit_evasion import OBSERVATIONS, PursuitEvasion, pursuit_params
        from rljax.networks.mlp import ACTIVATIONS

        if self.env.observation not in OBSERVATIONS:
            raise ConfigError(f"env.observation must be one of {', '.join(OBSERVATIONS)}, got {self.env.observation!r}")
        if self.env.max_obstacles < 0:
            raise ConfigError(f"env.max_obstacles must be >= 0, got {self.env.max_obstacles}")
        if isinstance(self.env.history, bool) or not isinstance(self.env.history, int) or self.env.history < 1:
            raise ConfigError(f"env.history must be an integer >= 1, got {self.env.history!r}")
        try:
            pursuit_params(max_obstacles=self.env.max_obstacles, **self.env.arena_overrides())
            navigation_params(max_steps=self.selfplay.nav_max_steps, flee_prob=self.selfplay.nav_flee_prob)
        except ValueError as e:  # the environment's messages name the field
            raise config_error(e, "env.") from None
        if self.curriculum.kind != "none" and self.curriculum.n_obstacles > self.env.max_obstacles:
            raise ConfigError(f"curriculum.n_obstacles={self.curriculum.n_obstacles} exceeds env.max_obstacles="
                              f"{self.env.max_obstacles}")
        if self.network.activation not in ACTIVATIONS:
            raise ConfigError(f"network.activation must be one of {sorted(ACTIVATIONS)}, got {self.network.activation!r}")
        if not self.network.hidden or min(self.network.hidden) <= 0:
            raise ConfigError(f"network.hidden must be positive widths, got {list(self.network.hidden)}")
        if self.ppo.normalize_obs:
            raise ConfigError("ppo.normalize_obs must be false: the self-play policy scales its inputs")
        if self.network.encoder not in ENCODERS:
            raise ConfigError(f"network.encoder must be one of {', '.join(ENCODERS)}, got {self.network.encoder!r}")
        if self.network.encoder == "history" and self.env.observation != "partial":
            raise ConfigError("network.encoder=history reads the partial observation's frame history; "
                              f"got env.observation={self.env.observation}")
        self._validate_recurrent()
        if self.protocol.cold_start_timesteps > 0 and self.env.observation != "partial":
            raise ConfigError("protocol.cold_start_timesteps must be 0 with env.observation=full "
                              "(the navigation cold start trains the partial-observation policy)")
        del PursuitEvasion

    def _validate_recurrent(self) -> None:
        net = self.network
        if not isinstance(net.recurrent, bool):
            raise ConfigError(f"network.recurrent must be true or false, got {net.recurrent!r}")
        if isinstance(net.cell_size, bool) or not isinstance(net.cell_size, int) or net.cell_size < 1:
            raise ConfigError(f"network.cell_size must be an integer >= 1, got {net.cell_size!r}")
        if not net.recurrent:
            return
        if net.encoder != "mlp":
            raise ConfigError(f"network.recurrent=true takes network.encoder=mlp (the GRU sits inside the MLP), "
                              f"got network.encoder={net.encoder}")
        if self.selfplay.ewc or self.selfplay.rnd:
            raise ConfigError("selfplay.ewc and selfplay.rnd need network.recurrent=false (PPO's extensions take "
                              "feedforward policies only)")
        if self.ppo.num_envs % self.ppo.num_minibatches:
            raise ConfigError(f"ppo.num_minibatches={self.ppo.num_minibatches} must divide ppo.num_envs="
                              f"{self.ppo.num_envs} with network.recurrent=true (minibatches are whole environment "
                              f"sequences)")


def build(cfg: PursuitConfig) -> Setup:
    from rljax.environments.navigation import navigation_params
    from rljax.environments.pursuit_evasion import PursuitEvasion, observation_scale, pursuit_params
    from rljax.experiments.pursuit.game import PursuitGame
    from rljax.selfplay.policy import ScaledActorCritic, recurrent_scaled_actor_critic
    from rljax.selfplay.trainer import SelfPlayTask, SelfPlayTrainer

    env = PursuitEvasion(observation=cfg.env.observation, max_obstacles=cfg.env.max_obstacles,
                         fixed_speed=cfg.env.fixed_speed, unit_actions=cfg.env.unit_actions, history=cfg.env.history)
    arena = pursuit_params(max_obstacles=cfg.env.max_obstacles, **cfg.env.arena_overrides())
    nav = navigation_params(arena, max_steps=cfg.selfplay.nav_max_steps, flee_prob=cfg.selfplay.nav_flee_prob)
    scale = tuple(float(x) for x in observation_scale(env, arena))
    if cfg.network.recurrent:
        net = recurrent_scaled_actor_critic(env.action_space(arena), scale, tuple(cfg.network.hidden),
                                            cfg.network.activation, cfg.network.cell_size)
    else:
        net = ScaledActorCritic(env.action_space(arena), scale, hidden=tuple(cfg.network.hidden),
                                activation=cfg.network.activation, encoder=cfg.network.encoder, history=env.history)
    extensions, ewc, fisher = regularizers(cfg.selfplay)
    trainer = SelfPlayTrainer(PursuitGame(env), net, cfg.ppo, cfg.protocol, cfg.curriculum, cfg.health, cfg.selfplay,
                              evader_extensions=extensions, ewc=ewc, fisher=fisher)
    return Setup(trainer, (("amsdrl", SelfPlayTask(env=arena, cold=nav)),),
                 stalls_vectorizer=cfg.network.encoder == "history" or cfg.network.recurrent)


def regularizers(sp: SelfPlayConfig) -> tuple[tuple, Any, Any]:
    """The evader's Tier-3 regularisers from the config: ``(extensions, ewc, fisher)``."""
    extensions: list = []
    ewc = fisher = None
    if sp.rnd or sp.ewc:
        try:
            from rljax.regularizers import ewc as ewc_module, rnd as rnd_module
        except ImportError:
            raise ConfigError("selfplay.ewc/selfplay.rnd need rljax.regularizers (EWC and RND)") from None
        from rljax.selfplay.trainer import EvaderOnly

        if sp.rnd:
            extensions.append(EvaderOnly(rnd_module.RND(name="rnd", coef=sp.rnd_coef, lr=sp.rnd_lr, hidden=tuple(sp.rnd_hidden),
                                                        features=sp.rnd_features, minibatch=sp.rnd_minibatch)))
        if sp.ewc:
            ewc = ewc_module.EWC(name="ewc", lam=sp.ewc_lambda)
            fisher = functools.partial(ewc_module.fisher_diagonal, minibatch=sp.ewc_minibatch)
    return tuple(extensions), ewc, fisher


# -- sub-commands ---------------------------------------------------------------------------------
def _load(run_dir: str):
    from rljax.runner import load_run

    return load_run(run_dir)


def report_main(argv: Sequence[str]) -> int:
    """``python -m experiments.pursuit report RUN_DIR [--out DIR]``: per-seed curves of the
    capture rate, NE gap and curriculum level, and a per-phase table (see
    :mod:`rljax.experiments.pursuit.report`)."""
    from rljax.experiments.pursuit.report import write_report

    p = argparse.ArgumentParser(prog="python -m experiments.pursuit report")
    p.add_argument("run_dir")
    p.add_argument("--out", default=None, help="output folder (default RUN_DIR/report)")
    args = p.parse_args(list(argv))
    if not os.path.isfile(os.path.join(args.run_dir, "metrics.csv")):
        raise ConfigError(f"{args.run_dir} has no metrics.csv")
    out = write_report(args.run_dir, args.out or os.path.join(args.run_dir, "report"))
    print(out["markdown"])
    return 0


def episode_main(argv: Sequence[str]) -> int:
    """``python -m experiments.pursuit episode RUN_DIR [--member I] [--out F.gif]``: one
    deterministic episode of the member's trained pursuer and evader at its current task;
    ``rljax render`` (:func:`rljax.render.render_run`) with this command's defaults."""
    from rljax.render import render_run

    p = argparse.ArgumentParser(prog="python -m experiments.pursuit episode")
    p.add_argument("run_dir")
    p.add_argument("--member", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    p.add_argument("--every", type=int, default=4, help="draw every k-th step")
    args = p.parse_args(list(argv))
    from rljax.runner import find_run_dir

    out = args.out or os.path.join(find_run_dir(args.run_dir), f"episode_member{args.member}.gif")
    r = render_run(args.run_dir, out, member=args.member, seed=args.seed, every=args.every)
    print(f"{r['episodes'][0]['steps']} steps; written {out}")
    return 0


def evaluate(req: EvalRequest) -> int:
    """``rljax eval RUN_DIR``: head to head and against the random baseline
    (:mod:`rljax.experiments.pursuit.evaluation`); ``--episodes`` defaults to ``selfplay.eval_episodes``,
    files into ``--out`` (default RUN_DIR/eval)."""
    from rljax.experiments.pursuit.evaluation import evaluate_run

    report = evaluate_run(req.run_dir, episodes=req.episodes, checkpoint=req.checkpoint, member=req.member,
                          out_dir=req.out)
    print(report["table"])
    print(f"\nwritten: {os.path.join(report['out_dir'], 'eval.json')}")
    return 0


def trained_episode(trainer, member_state, key):
    """``(states, alive, arena)`` of one deterministic episode between a member's trained
    pursuer and evader at its current curriculum task (:func:`rljax.environments.pursuit_render.
    rollout_episode`)."""
    from rljax.environments.pursuit_evasion import EVADER, PURSUER
    from rljax.environments.pursuit_render import rollout_episode
    from rljax.distributions import make_distribution
    from rljax.selfplay.trainer import row_of

    if trainer.policy.recurrent:  # rollout_episode's act functions carry no memory
        raise ConfigError("trained_episode takes a feedforward network; render a recurrent run with "
                          "`python -m experiments.pursuit episode RUN_DIR`")
    arena = trainer.task_params(member_state.task, member_state.curriculum)
    space = trainer.env.action_space(arena, PURSUER)

    def act(params, k, obs):
        return make_distribution(space, trainer.policy_apply(params, obs[None])).mode()[0]

    states, _, alive = rollout_episode(trainer.env, arena, key, act, row_of(member_state.params, PURSUER), act,
                                       row_of(member_state.params, EVADER))
    return states, alive, arena


def milestones_main(argv: Sequence[str]) -> int:
    """``python -m experiments.pursuit milestones RUN_DIR [--out DIR]``: every milestone
    held in the run's protocol state (the opponent pools' entries with their phases, and
    the latest milestone per role) as Orbax checkpoints ``DIR/<member>/<role>_phase<k>``."""
    import jax
    import orbax.checkpoint as ocp

    p = argparse.ArgumentParser(prog="python -m experiments.pursuit milestones")
    p.add_argument("run_dir")
    p.add_argument("--out", default=None)
    args = p.parse_args(list(argv))
    runner, state = _load(args.run_dir)
    out = os.path.abspath(args.out or os.path.join(args.run_dir, "milestones"))
    written = []
    with ocp.StandardCheckpointer() as ckptr:
        for i, m in enumerate(runner.members):
            tags = np.asarray(state.pool.tags[i])
            for role, name in enumerate(("pursuer", "evader")):
                for slot in np.flatnonzero(tags[role] >= 0):
                    item = jax.tree.map(lambda x: np.asarray(x[i, role, slot]), state.pool.items)
                    path = os.path.join(out, m.name, f"{name}_phase{int(tags[role, slot])}")
                    ckptr.save(path, item, force=True)
                    written.append(path)
                latest = jax.tree.map(lambda x: np.asarray(x[i, role]), state.milestone)
                path = os.path.join(out, m.name, f"{name}_latest")
                ckptr.save(path, latest, force=True)
                written.append(path)
    print(f"{len(written)} milestones under {out}")
    with open(os.path.join(out, "milestones.json"), "w") as f:
        json.dump([os.path.relpath(p_, out) for p_ in written], f, indent=1)
    return 0


# The spec's learner (the reference's SB3 PPO, section 2.5): 4 envs x 512 steps per update,
# minibatches of 256 (8 per update), 10 epochs, lr 3e-4, a [256, 256] tanh MLP.
SPEC_LEARNER = {
    "ppo": {"num_envs": 4, "num_steps": 512, "num_minibatches": 8, "num_epochs": 10, "lr": 3e-4},
    "network": {"hidden": [256, 256], "activation": "tanh"},
}


def _merge(*dicts: dict) -> dict:
    """Section-wise union of preset dicts (later keys win)."""
    out: dict = {}
    for d in dicts:
        for section, values in d.items():
            out[section] = {**out.get(section, {}), **values}
    return out


def s52_presets() -> dict[str, dict]:
    """Runs V, W, X, Y, Z1, Z2 of the seed (worklog S52, spec section 2.9) at the spec's learner.

    All: seed 47, the spec's budgets (cold start 200K, 12 phases of 500K, 100-episode
    deterministic evaluations, 1200-step episodes, partial observation, 2-D actions), Tier 1+2
    (bilateral rollback, evader-first on advance, warm-start evader 50K, mixed-level replay 0.2
    as a fixed share of sub-environments, smooth curriculum 0.5), the original's defaults where
    S52 says nothing (opponent pool off, log_std clamped at -2 by its EntropyMonitorCallback)
    and its health monitor (rate judged on a full 200-episode window, no partial rollback).
    V/W/X/Y ran before S52's fixes: no phase warm-up, the capture-threshold advance (capture >
    0.7, escape >= 0.15), no cold-start evader snapshot. Z1/Z2 add the three fixes (warm-up
    100K-300K, NE-gap advancement 0.15 x 2, the cold-start snapshot). W and Y give the pursuer
    0.95 m/s; X, Y and Z2 add Tier 3 (EWC lambda 1000, RND coef 0.1).
    """
    tier12 = {
        "protocol": {"max_phases": 12, "timesteps_per_phase": 500_000, "cold_start_timesteps": 200_000,
                     "evader_first_on_advance": True, "warm_start_evader": True, "warm_start_timesteps": 50_000},
        "curriculum": {"kind": "smooth", "increment": 0.5, "initial_min": 2.0, "initial_max": 5.0, "final_max": 15.0},
        "health": {"bilateral": True, "min_episodes": 0, "partial_rollback": False, "window": 200,
                   "snapshot_every": 10_000, "cooldown": 50_000},
        "selfplay": {"opponent_pool": False, "mixed_level_ratio": 0.2, "mixed_level": "fixed", "eval_episodes": 100,
                     "eval_stochastic": False, "log_std_floor": -2.0},
        "env": {"observation": "partial", "max_steps": 1200, "fixed_speed": False, "unit_actions": False,
                "pursuer_v_max": 1.0, "evader_v_max": 1.0},
        "runner": {"seeds": [47]},
    }
    before_fixes = {
        "protocol": {"phase_warmup": False},
        "curriculum": {"ne_gap_advancement": False, "advancement_threshold": 0.7, "min_escape_rate": 0.15},
        "health": {"cold_start_snapshot": False},
    }
    fixes = {
        "protocol": {"phase_warmup": True, "warmup_timesteps": [100_000, 100_000, 200_000, 200_000, 300_000, 300_000]},
        "curriculum": {"ne_gap_advancement": True, "ne_gap_threshold": 0.15, "ne_gap_consecutive": 2},
        "health": {"cold_start_snapshot": True},
    }
    tier3 = {"selfplay": {"ewc": True, "ewc_lambda": 1000.0, "rnd": True, "rnd_coef": 0.1}}
    slow_pursuer = {"env": {"pursuer_v_max": 0.95}}
    base = _merge(SPEC_LEARNER, tier12)
    return {
        "V": _merge(base, before_fixes),
        "W": _merge(base, before_fixes, slow_pursuer),
        "X": _merge(base, before_fixes, tier3),
        "Y": _merge(base, before_fixes, slow_pursuer, tier3),
        "Z1": _merge(base, fixes),
        "Z2": _merge(base, fixes, tier3),
    }


def _presets() -> dict[str, dict]:
    smoke_protocol = {"max_phases": 3, "timesteps_per_phase": 8192, "cold_start_timesteps": 8192,
                      "warmup_timesteps": [4096, 4096], "warm_start_timesteps": 2048}
    return {
        "default": {},
        # The spec's protocol (200K cold start, 12 phases of 500K with warm-up, smooth curriculum
        # (0.5), NE-gap advancement (0.15 x 2), evader-first, warm-start 50K, mixed level 0.2,
        # bilateral rollback) at the spec's learner, the opponent pool off (the original's
        # default) and this library's health monitor (see docs/pursuit.md, Departures).
        "amsdrl": _merge(SPEC_LEARNER, {"selfplay": {"opponent_pool": False}}),
        # The earlier `amsdrl` (docs/pursuit.md's full-budget study): the fast learner (32 x 64,
        # 4 epochs, (64, 64)), the opponent pool with the random policy, per-episode mixed level,
        # the reference's health window and rollback.
        "fast": {"selfplay": {"mixed_level": "episode"}, "health": {"min_episodes": 0, "partial_rollback": False}},
        **s52_presets(),
        "tier3": {"selfplay": {"ewc": True, "rnd": True}},
        # S0 alone: the evader's navigation pre-training.
        "nav": {"protocol": {"max_phases": 0}},
        # The seed-variance study of docs/pursuit.md on 2 CPU cores: the spec's protocol and
        # curriculum with every budget cut ~15x (cold start 32K, phases 16K-32K, warm start 8K)
        # and 600-step episodes (the reference's later launch scripts).
        "study": {
            "protocol": {"timesteps_per_phase": 32768, "cold_start_timesteps": 32768,
                         "warmup_timesteps": [16384, 16384, 24576, 24576, 32768, 32768], "warm_start_timesteps": 8192},
            "env": {"max_steps": 600},
            "health": {"snapshot_every": 4096, "cooldown": 16384, "min_episodes": 0, "partial_rollback": False},
            "selfplay": {"mixed_level": "episode"},
            "runner": {"eval_episodes": 20, "chunk_updates": 8},
        },
        # About a minute on 2 cores: tiny phases and short evaluations.
        "smoke": {
            "protocol": smoke_protocol,
            "ppo": {"num_envs": 16, "num_steps": 64, "num_epochs": 4, "num_minibatches": 4},
            "env": {"max_steps": 300},
            "selfplay": {"eval_episodes": 20, "nav_max_steps": 150},
            "health": {"snapshot_every": 2048, "cooldown": 4096, "window": 50},
            "runner": {"eval_episodes": 4, "chunk_updates": 4},
        },
    }


EXPERIMENT = Experiment(
    name="pursuit",
    config_cls=PursuitConfig,
    build=build,
    presets=_presets(),
    description="Pursuit-evasion AMS-DRL self-play (cold start, phases, curriculum, rollback) in one program.",
    commands={"report": report_main, "episode": episode_main, "milestones": milestones_main},
    evaluate=evaluate,
)

if __name__ == "__main__":
    from rljax.cli import experiment_main

    raise SystemExit(experiment_main("pursuit"))
