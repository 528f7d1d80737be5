"""``Phase2Config``: the settings of EMPO phase 2 (theory, warm-up, schedules, training).

Defaults are the original code's (commit 8c9ddaf), except that the warm-up stage lengths and
the beta_r ramp are fractions of ``num_training_steps`` (as in the original's demo); with the
default ``num_training_steps = 1e5`` the fractions give the code's step counts exactly
(1e4 / 1e4 / 5e3 / 1e4 / 5e3 and a 2e4 ramp). Stages of networks that are not in use last 0
steps (``x_h_use_network``, ``u_r_use_network``, ``v_r_use_network``).

Presets (:data:`PRESETS`, :meth:`Phase2Config.preset`): ``"seed_doc"`` holds the numbers of the
seed document (WARMUP_DESIGN.md: 1000-step stages and a 2000-step ramp at the default 1e5
training steps, no constant-LR fraction, 1/sqrt(t) decay); ``"demo"`` the phase-2 demo's
overrides common to its environments.

Validation (:meth:`Phase2Config.validate`) raises :class:`~rljax.errors.ConfigError` naming the
dotted key (``empo.<field>``, the section's name in every experiment); it runs on construction.
"""
from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import Any

from rljax.config import from_dict
from rljax.errors import ConfigError

NETWORKS = ("v_h_e", "x_h", "u_r", "q_r", "v_r")
REPRESENTATIONS = ("network", "table")
HUMAN_PROFILES = ("sampled", "expected")
# Numeric fields that may differ per member (``--vary empo.<key>=...``): traced hyperparameters.
VARY_KEYS = ("beta_r", "gamma_r", "gamma_h", "zeta", "xi", "eta", "lr_q_r", "lr_v_r", "lr_v_h_e", "lr_x_h",
             "lr_u_r", "goal_resample_prob", "weight_decay", "grad_clip")


@dataclasses.dataclass(frozen=True)
class Phase2Config:
    # Theory.
    gamma_r: float = 0.99
    gamma_h: float = 0.99
    zeta: float = 2.0  # risk aversion over goals (>= 1)
    xi: float = 1.0  # inter-human inequality aversion (>= 1)
    eta: float = 1.1  # intertemporal inequality aversion (>= 1)
    beta_r: float = 10.0  # nominal robot policy exponent
    terminal_v_r: float = -1e-10  # V_r of terminal states (must be < 0)
    u_r_sum_over_humans: bool = False  # False: y is the mean over humans (the code); True: the paper's sum
    # Exploration: linear decay from start to end over decay_steps training steps.
    epsilon_r_start: float = 1.0
    epsilon_r_end: float = 0.01
    epsilon_r_decay_steps: int = 10_000
    # The robot's exploration policy (taken with probability epsilon_r): pi_r of the Q_r target
    # network at this beta_r; 0 is the spec's uniform policy, > 0 a softer version of the
    # robot's own current policy (the spec's "custom exploration policy").
    exploration_beta_r: float = 0.0
    epsilon_h_start: float = 1.0
    epsilon_h_end: float = 0.01
    epsilon_h_decay_steps: int = 10_000
    # Base learning rates.
    lr_q_r: float = 1e-4
    lr_v_r: float = 1e-4
    lr_v_h_e: float = 1e-3
    lr_x_h: float = 1e-4
    lr_u_r: float = 1e-4
    # Warm-up stage durations and the beta_r ramp, as fractions of num_training_steps.
    warmup_v_h_e_fraction: float = 0.1
    warmup_x_h_fraction: float = 0.1
    warmup_u_r_fraction: float = 0.05
    warmup_q_r_fraction: float = 0.1
    warmup_v_r_fraction: float = 0.05
    beta_r_rampup_fraction: float = 0.2
    # Learning-rate schedule: constant until decay_start, then base*decay_start/t (1/t) or
    # base*sqrt(decay_start/t); use_sqrt_lr_decay=False keeps it constant throughout.
    use_sqrt_lr_decay: bool = True
    lr_constant_fraction: float = 0.7
    constant_lr_then_1_over_t: bool = True
    # Which quantities are networks (else computed directly).
    x_h_use_network: bool = True
    u_r_use_network: bool = False
    v_r_use_network: bool = False
    # Targets: always model-based (the spec's default, use_model_based_targets=True; the
    # sampled-successor variant is not offered: every world here supplies its model).
    # "sampled": one sampled human action profile, all successor states (the code's variant);
    # "expected": the full expectation over the human policy.
    model_based_human_profile: str = "sampled"
    # Train V_h^e for every goal of the goal set at each sampled state instead of the stored goal
    # only (needs model_based_human_profile="expected": the sampled profile belongs to one goal).
    v_h_e_all_goals: bool = False
    # The original's quirk: a terminal transition's V_h^e target is 0 even if s' achieves the goal.
    terminal_vhe_target_zero: bool = False
    # Goal samples per (state, human) when x_h_use_network=False (the code's 5); 0 takes the exact
    # expectation over the goal set instead (cheap for small goal sets, and unbiased for U_r).
    x_h_direct_goal_samples: int = 5
    # The X_h network's target: w V_h^e(s, g)^zeta for the STORED goal (False, the original: an
    # estimate of the expectation under the replay's goal distribution, which is not the goal
    # sampler's, since achieved goals are resampled at once and hard goals stay longer) or the
    # exact expectation over the goal set sum_g p(g) w(g) V_h^e(s, g)^zeta (True).
    x_h_all_goals: bool = False
    # On an enumerated world (a TableWorld), network mode evaluates each target network once at
    # every (t, s) when it is copied and reads the targets from those tables: the same values as
    # evaluating it at each sampled state and successor, with ~100x fewer flops per training step
    # (a copy every 100 steps costs one pass over the T*S situations). False: evaluate per sample
    # (always so on worlds that cannot be enumerated, e.g. the random ensemble).
    tabulate_targets: bool = True
    # Target networks (hard copy every N training steps).
    q_r_target_update_interval: int = 100
    v_r_target_update_interval: int = 100
    v_h_e_target_update_interval: int = 100
    x_h_target_update_interval: int = 100
    u_r_target_update_interval: int = 100
    # Training schedule.
    buffer_size: int = 100_000
    batch_size: int = 64
    x_h_batch_size: int = 0  # 0: same as batch_size
    num_training_steps: int = 100_000
    steps_per_episode: int = 50
    training_steps_per_env_step: float = 1.0
    goal_resample_prob: float = 0.01
    # Regularisation.
    weight_decay: float = 1e-4
    grad_clip: float = 10.0  # 0 disables
    auto_grad_clip: bool = True  # scale the clip by lr / auto_grad_clip_reference_lr
    auto_grad_clip_reference_lr: float = 1e-4
    dropout: float = 0.5
    # Networks.
    hidden_dim: int = 256
    state_feature_dim: int = 256
    goal_feature_dim: int = 64
    agent_embedding_dim: int = 16
    include_step_count: bool = True
    use_z_space_transform: bool = False
    # How the five quantities are represented: "network" (neural networks over the grid
    # encoding) or "table" (lookup tables over the enumerated (t, s) of an enumerable map; they
    # minimise the same losses by per-entry averaged steps, lr <= 1).
    representation: str = "network"
    # Environment steps per update of the runner (the log/progress x-axis); the update also does
    # env_steps_per_update * training_steps_per_env_step training steps, which must be whole.
    # 0: the fewest environment steps that give a whole number of training steps.
    env_steps_per_update: int = 0

    def __post_init__(self):
        self.validate()

    def validate(self, prefix: str = "empo.") -> None:
        """Raises :class:`ConfigError` naming ``<prefix><field>`` for the first invalid field."""

        def bad(field: str, why: str) -> None:
            raise ConfigError(f"{prefix}{field}={getattr(self, field)!r} is invalid: {why}")

        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.type in ("float", float):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    bad(f.name, "must be a finite number")
            elif f.type in ("int", int):
                if isinstance(v, bool) or not isinstance(v, int):
                    bad(f.name, "must be an integer")
            elif f.type in ("bool", bool) and not isinstance(v, bool):
                bad(f.name, "must be true or false")
        for f in ("gamma_r", "gamma_h"):
            if not 0.0 < getattr(self, f) <= 1.0:
                bad(f, "must be in (0, 1]")
        for f in ("zeta", "xi", "eta"):
            if getattr(self, f) < 1.0:
                bad(f, "must be >= 1")
        for f in ("beta_r", "exploration_beta_r"):
            if getattr(self, f) < 0:
                bad(f, "must be >= 0")
        if self.terminal_v_r >= 0:
            bad("terminal_v_r", "must be < 0 (log(-V_r) needs V_r < 0)")
        for who in ("r", "h"):
            for end in ("start", "end"):
                f = f"epsilon_{who}_{end}"
                if not 0.0 <= getattr(self, f) <= 1.0:
                    bad(f, "must be in [0, 1]")
            if getattr(self, f"epsilon_{who}_decay_steps") < 0:
                bad(f"epsilon_{who}_decay_steps", "must be >= 0")
        for n in NETWORKS:
            if getattr(self, f"lr_{n}") <= 0:
                bad(f"lr_{n}", "must be > 0")
            if getattr(self, f"{n}_target_update_interval") < 1:
                bad(f"{n}_target_update_interval", "must be >= 1")
        fracs = ("warmup_v_h_e_fraction", "warmup_x_h_fraction", "warmup_u_r_fraction",
                 "warmup_q_r_fraction", "warmup_v_r_fraction", "beta_r_rampup_fraction")
        for f in fracs:
            if not 0.0 <= getattr(self, f) <= 1.0:
                bad(f, "must be in [0, 1]")
        if not 0.0 <= self.lr_constant_fraction <= 1.0:
            bad("lr_constant_fraction", "must be in [0, 1]")
        if self.model_based_human_profile not in HUMAN_PROFILES:
            bad("model_based_human_profile", "must be 'sampled' or 'expected'")
        if self.v_h_e_all_goals and self.model_based_human_profile != "expected":
            bad("v_h_e_all_goals", "needs model_based_human_profile='expected' (a sampled profile belongs to one goal)")
        if self.representation not in REPRESENTATIONS:
            bad("representation", "must be 'network' or 'table'")
        for f in ("buffer_size", "batch_size", "num_training_steps", "steps_per_episode"):
            if getattr(self, f) < 1:
                bad(f, "must be >= 1")
        if self.x_h_direct_goal_samples < 0:
            bad("x_h_direct_goal_samples", "must be >= 0 (0: exact expectation over the goals)")
        if self.env_steps_per_update < 0:
            bad("env_steps_per_update", "must be >= 0 (0: automatic)")
        if self.batch_size > self.buffer_size:
            bad("batch_size", f"must be <= buffer_size={self.buffer_size}")
        if self.x_h_batch_size < 0:
            bad("x_h_batch_size", "must be >= 0 (0: batch_size)")
        if self.training_steps_per_env_step <= 0:
            bad("training_steps_per_env_step", "must be > 0")
        if not 0.0 <= self.goal_resample_prob <= 1.0:
            bad("goal_resample_prob", "must be in [0, 1]")
        for f in ("weight_decay", "grad_clip"):
            if getattr(self, f) < 0:
                bad(f, "must be >= 0")
        if self.auto_grad_clip_reference_lr <= 0:
            bad("auto_grad_clip_reference_lr", "must be > 0")
        if not 0.0 <= self.dropout < 1.0:
            bad("dropout", "must be in [0, 1)")
        for f in ("hidden_dim", "state_feature_dim", "goal_feature_dim", "agent_embedding_dim"):
            if getattr(self, f) < 1:
                bad(f, "must be >= 1")
        if self.representation == "table":
            for n in NETWORKS:
                if getattr(self, f"lr_{n}") > 1.0:
                    bad(f"lr_{n}", "must be <= 1 with representation=table (a step towards the mean target)")
        x_batch = max(self.batch_size, self.x_h_batch_size)
        if x_batch > self.buffer_size:
            bad("x_h_batch_size", f"must be <= buffer_size={self.buffer_size}")
        self.update_shape(prefix)  # the training steps per update must be whole

    # -- derived (static python ints) --------------------------------------------------------
    def _steps(self, fraction: float, used: bool = True) -> int:
        return int(round(fraction * self.num_training_steps)) if used else 0

    @property
    def warmup_steps(self) -> dict[str, int]:
        """Duration of each warm-up stage in training steps (0 for networks not in use)."""
        return {
            "v_h_e": self._steps(self.warmup_v_h_e_fraction),
            "x_h": self._steps(self.warmup_x_h_fraction, self.x_h_use_network),
            "u_r": self._steps(self.warmup_u_r_fraction, self.u_r_use_network),
            "q_r": self._steps(self.warmup_q_r_fraction),
            "v_r": self._steps(self.warmup_v_r_fraction, self.v_r_use_network),
        }

    @property
    def beta_r_rampup_steps(self) -> int:
        return self._steps(self.beta_r_rampup_fraction)

    def update_shape(self, prefix: str = "empo.") -> tuple[int, int]:
        """``(environment steps, training steps)`` of one runner update (see
        ``env_steps_per_update``)."""
        ratio = Fraction(self.training_steps_per_env_step).limit_denominator(1000)
        if abs(float(ratio) - self.training_steps_per_env_step) > 1e-9 * self.training_steps_per_env_step:
            raise ConfigError(f"{prefix}training_steps_per_env_step={self.training_steps_per_env_step!r} is invalid: "
                              "must be a ratio of whole numbers up to 1000")
        env_steps = self.env_steps_per_update or ratio.denominator
        train = env_steps * ratio
        if train.denominator != 1:
            raise ConfigError(f"{prefix}env_steps_per_update={env_steps} is invalid: times training_steps_per_env_step="
                              f"{self.training_steps_per_env_step} it must give a whole number of training steps "
                              f"(use a multiple of {ratio.denominator})")
        return env_steps, int(train)

    @property
    def num_updates(self) -> int:
        """Runner updates in a run: ``ceil(num_training_steps / training steps per update)``."""
        return -(-self.num_training_steps // self.update_shape()[1])

    @property
    def network_in_use(self) -> dict[str, bool]:
        return {"v_h_e": True, "x_h": self.x_h_use_network, "u_r": self.u_r_use_network,
                "q_r": True, "v_r": self.v_r_use_network}

    def base_lr(self, network: str) -> float:
        if network not in NETWORKS:
            raise ConfigError(f"Phase2Config: network={network!r} is invalid: must be one of {NETWORKS}")
        return getattr(self, f"lr_{network}")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "Phase2Config":
        """A named preset (:data:`PRESETS`) with ``overrides`` by field name (validated)."""
        if name not in PRESETS:
            raise ConfigError(f"Phase2Config: preset={name!r} is invalid: must be one of {sorted(PRESETS)}")
        return from_dict(cls, {**PRESETS[name], **overrides}, prefix="Phase2Config.")


# The seed document's numbers (WARMUP_DESIGN.md), as fractions of the default 1e5 steps.
SEED_DOC: dict[str, Any] = {
    "warmup_v_h_e_fraction": 0.01,
    "warmup_x_h_fraction": 0.01,
    "warmup_u_r_fraction": 0.01,
    "warmup_q_r_fraction": 0.01,
    "warmup_v_r_fraction": 0.01,
    "beta_r_rampup_fraction": 0.02,
    "beta_r": 10.0,
    "lr_constant_fraction": 0.0,
    "constant_lr_then_1_over_t": False,
    "use_sqrt_lr_decay": True,
}

# The phase-2 demo's overrides shared by its environments (examples/phase2_robot_policy_demo.py);
# per environment it also sets num_training_steps, batch sizes, hidden_dim and x_h_use_network.
# Its epsilon decay (2/3 of training) depends on num_training_steps: set it with the steps.
DEMO: dict[str, Any] = {
    "beta_r": 1000.0,
    "epsilon_r_end": 0.0,
    "epsilon_h_end": 0.0,
    "lr_v_h_e": 1e-2,
    "lr_constant_fraction": 0.7,
    "constant_lr_then_1_over_t": True,
    "training_steps_per_env_step": 0.1,
    "goal_resample_prob": 0.1,
    "include_step_count": False,
    "use_z_space_transform": True,
    "weight_decay": 0.0,
}

PRESETS: dict[str, dict[str, Any]] = {"code": {}, "seed_doc": SEED_DOC, "demo": DEMO}
