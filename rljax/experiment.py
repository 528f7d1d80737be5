"""Experiments: a config class, presets and a ``build`` that returns the algorithm and its
task variants. The registry is the ``rljax.experiments`` entry-point group."""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from rljax.algorithm import Algorithm
from rljax.backend import BRANCH_MODES, CODEGEN_MODES, LOOP_MODES, THREEFRY_MODES
from rljax.config import from_dict, load_yaml, merge, parse_overrides
from rljax.errors import ConfigError
from rljax.optional import require

DIVERGENCE_ACTIONS = ("stop", "freeze")


MAX_LOGGED_UPDATES = 10_000  # metrics rows per member that runner.log_every=0 keeps at most


@dataclass(frozen=True)
class RunnerConfig:
    """How a run is driven from Python (none of it changes the maths)."""

    seed: int = 0
    num_seeds: int = 1
    seeds: tuple[int, ...] = ()  # explicit list; overrides seed/num_seeds when given
    chunk_updates: int = 0  # updates per compiled chunk; 0 = about 20 chunks per run
    eval_every: int = 0  # evaluate every this many updates (rounded to chunks); 0 = only at the end
    eval_episodes: int = 10
    eval_seed: int = 12345
    eval_max_steps: int = 0  # 0 = the environment's own limit
    checkpoint_every: int = 0  # updates between checkpoints (rounded to chunks); 0 = by wall time
    checkpoint_minutes: float = 2.0  # with checkpoint_every=0: at most this long between saves
    keep_latest: int = 2
    keep_best: int = 1
    progress: bool = True
    tensorboard: bool = False
    wandb: bool = False
    wandb_project: str = "rljax"
    wandb_offline: bool = True
    log_episodes: bool = False
    # Backend-dependent ways to run the same maths; "auto" = measured fastest (rljax.backend).
    member_loop: str = "auto"  # "vmap": members batched; "map": one after another per device
    init_loop: str = "auto"  # how the one initialisation program maps over members
    reset_branch: str = "auto"  # "cond" or "select" for the auto-reset of finished environments
    bootstrap_branch: str = "auto"  # "cond" or "select" for the critic value on truncation
    threefry: str = "auto"  # "rolled" or "unrolled" lowering of JAX's random hash on CPU (same bits)
    codegen: str = "auto"  # "default" or "o1": XLA's backend optimisation level for the run's programs
    # Runs with at most this many members also get one metrics/episodes CSV per member; every
    # run writes the columnar metrics.csv (member as a column).
    per_member_files: int = 16
    # Write every this many updates' metrics to the CSVs/TensorBoard (each row an update's own
    # values; the last update always). 0 = automatic: every update up to MAX_LOGGED_UPDATES
    # updates, else the interval that keeps about that many rows per member (an EMPO run of 1e6
    # training steps is 1e6 updates: 16 members wrote 4.3 GB of CSV, 9% of the run's time).
    log_every: int = 0
    on_divergence: str = "stop"  # NaN/inf in a member: "stop" the run, or "freeze" that member

    def logged_every(self, num_updates: int) -> int:
        """The update interval of the metrics logs (``log_every`` resolved)."""
        return self.log_every or max(1, -(-num_updates // MAX_LOGGED_UPDATES))

    def validate(self) -> None:
        for name in ("member_loop", "init_loop"):
            if getattr(self, name) not in LOOP_MODES:
                raise ConfigError(f"runner.{name} must be one of {', '.join(LOOP_MODES)}, got {getattr(self, name)!r}")
        for name in ("reset_branch", "bootstrap_branch"):
            if getattr(self, name) not in BRANCH_MODES:
                raise ConfigError(f"runner.{name} must be one of {', '.join(BRANCH_MODES)}, got {getattr(self, name)!r}")
        if self.threefry not in THREEFRY_MODES:
            raise ConfigError(f"runner.threefry must be one of {', '.join(THREEFRY_MODES)}, got {self.threefry!r}")
        if self.codegen not in CODEGEN_MODES:
            raise ConfigError(f"runner.codegen must be one of {', '.join(CODEGEN_MODES)}, got {self.codegen!r}")
        if self.on_divergence not in DIVERGENCE_ACTIONS:
            raise ConfigError(f"runner.on_divergence must be one of {', '.join(DIVERGENCE_ACTIONS)}, "
                              f"got {self.on_divergence!r}")
        if self.log_every < 0:
            raise ConfigError(f"runner.log_every must be >= 0 (0 = automatic), got {self.log_every}")
        if self.per_member_files < 0:
            raise ConfigError(f"runner.per_member_files must be >= 0, got {self.per_member_files}")
        for name in ("num_seeds", "eval_episodes", "keep_latest"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"runner.{name} must be > 0, got {getattr(self, name)}")
        for name in ("chunk_updates", "eval_every", "checkpoint_every", "keep_best", "eval_max_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"runner.{name} must be >= 0, got {getattr(self, name)}")
        if not self.checkpoint_minutes > 0:
            raise ConfigError(f"runner.checkpoint_minutes must be > 0, got {self.checkpoint_minutes}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"runner.seeds has duplicates: {list(self.seeds)}")
        if self.tensorboard:
            require("tensorboardX", "runner.tensorboard=true")
        if self.wandb:
            require("wandb", "runner.wandb=true")

    def seed_list(self) -> list[int]:
        return list(self.seeds) if self.seeds else list(range(self.seed, self.seed + self.num_seeds))


@dataclass(frozen=True)
class Setup:
    """What an experiment's ``build(cfg)`` returns.

    ``algorithm``: what the runner drives (:class:`rljax.algorithm.Algorithm`, e.g. PPO's
    :class:`rljax.ppo.PPO`).
    ``variants``: named task parameters trained side by side as members of one program (e.g.
    observation modes); each is combined with every seed and hyperparameter setting.
    ``conv_heavy``: the network is dominated by convolutions (picks ``member_loop``, see
    :mod:`rljax.backend`).
    ``cheap_reset``: the environment's reset costs about as little as a step (CartPole), so on
    a CPU a single member computes it every step and selects (see :mod:`rljax.backend`).
    ``stalls_vectorizer``: the program is known to stall XLA CPU's LLVM loop vectorizer (picks
    ``codegen``, see :mod:`rljax.backend`).
    """

    algorithm: Algorithm
    variants: tuple[tuple[str, Any], ...]
    conv_heavy: bool = False
    cheap_reset: bool = False
    stalls_vectorizer: bool = False


@dataclass(frozen=True)
class EvalRequest:
    """What ``rljax eval RUN_DIR`` asks of an experiment's evaluation (the common flags).

    ``episodes``: episodes per evaluated unit (None: the evaluation's own default);
    ``checkpoint``: ``"latest"``, ``"best"`` or a step number; ``member``: a member name or
    index (None: every member); ``out``: the folder for the evaluation's files (None: its
    default, inside the run directory). An evaluation that cannot honour a flag raises
    :class:`~rljax.errors.ConfigError` naming it."""

    run_dir: str
    episodes: int | None = None
    checkpoint: str | int = "latest"
    member: str | None = None
    out: str | None = None


@dataclass(frozen=True)
class Experiment:
    name: str
    config_cls: type  # frozen dataclass with a ``runner: RunnerConfig`` field and the algorithm's section(s)
    build: Callable[[Any], Setup]
    presets: dict[str, dict] = field(default_factory=dict)
    description: str = ""
    commands: dict[str, Callable[[list[str]], int]] = field(default_factory=dict)  # extra sub-commands
    obs_to_image: Callable[[Any], Any] | None = None  # one observation -> image, for ``--dashboard``
    # ``rljax eval RUN_DIR``: the experiment's own evaluation of a trained run; prints its
    # report and returns the exit status (None: the experiment has no evaluation).
    evaluate: Callable[[EvalRequest], int] | None = None

    def make_config(self, preset: str | None = None, config_file: str | None = None,
                    overrides: list[str] | dict | None = None, base: dict | None = None) -> Any:
        """Defaults <- ``base`` (e.g. a resumed run's saved config) <- preset <- YAML file <-
        ``key=value`` overrides; validated."""
        data: dict[str, Any] = dict(base or {})
        if preset is not None:
            if preset not in self.presets:
                raise ConfigError(f"unknown preset {preset!r} for {self.name}; choose from {sorted(self.presets)}")
            data = merge(data, self.presets[preset])
        if config_file is not None:
            data = merge(data, load_yaml(config_file))
        if overrides:
            data = merge(data, overrides if isinstance(overrides, dict) else parse_overrides(list(overrides)))
        cfg = from_dict(self.config_cls, data)
        validate_config(cfg)
        return cfg


def validate_config(cfg: Any) -> None:
    """Validates every section that can (``ppo``, ``runner``, ...), then the whole config."""
    for f in dataclasses.fields(cfg):
        section = getattr(cfg, f.name)
        if dataclasses.is_dataclass(section) and hasattr(section, "validate"):
            if "prefix" in inspect.signature(section.validate).parameters:
                section.validate(prefix=f"{f.name}.")
            else:
                section.validate()
    if hasattr(cfg, "validate"):
        cfg.validate()


# Experiments register under this entry-point group (pyproject.toml:
# ``[project.entry-points."rljax.experiments"] NAME = "module:EXPERIMENT"``), so the library
# finds them without importing the packages that hold them (layers run experiments -> rljax),
# and a user's own package can add experiments the same way.
ENTRY_POINT_GROUP = "rljax.experiments"


def _entry_points() -> dict:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def experiment_names() -> list[str]:
    """The registered experiments' names (nothing is imported)."""
    return sorted(_entry_points())


def load_experiment(name: str) -> Experiment:
    eps = _entry_points()
    if name not in eps:
        raise ConfigError(f"unknown experiment {name!r}; available: {', '.join(sorted(eps)) or 'none registered '}"
                          + ("" if eps else "(install the package: pip install -e .)"))
    exp = eps[name].load()
    if not isinstance(exp, Experiment):
        raise ConfigError(f"entry point {name!r} ({eps[name].value}) is not an rljax Experiment")
    return exp


def list_experiments() -> list[Experiment]:
    return [load_experiment(n) for n in experiment_names()]
