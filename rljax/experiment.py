"""Experiments: a config class, presets and a ``build`` that returns the trainer and its
task variants. The registry finds every module in the ``experiments`` package that defines
``EXPERIMENT``."""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable

from rljax.config import from_dict, load_yaml, merge, parse_overrides
from rljax.errors import ConfigError
from rljax.trainer import Trainer


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
    member_loop: str = "vmap"  # "vmap": members batched; "map": one after another per device (big CNNs on CPU)

    def validate(self) -> None:
        if self.member_loop not in ("vmap", "map"):
            raise ConfigError(f"runner.member_loop must be 'vmap' or 'map', got {self.member_loop!r}")
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

    def seed_list(self) -> list[int]:
        return list(self.seeds) if self.seeds else list(range(self.seed, self.seed + self.num_seeds))


@dataclass(frozen=True)
class Setup:
    """What an experiment's ``build(cfg)`` returns.

    ``variants``: named task parameters trained side by side as members of one program (e.g.
    observation modes); each is combined with every seed and hyperparameter setting.
    """

    trainer: Trainer
    variants: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Experiment:
    name: str
    config_cls: type  # frozen dataclass with fields ``ppo: PPOConfig`` and ``runner: RunnerConfig``
    build: Callable[[Any], Setup]
    presets: dict[str, dict] = field(default_factory=dict)
    description: str = ""
    commands: dict[str, Callable[[list[str]], int]] = field(default_factory=dict)  # extra sub-commands
    obs_to_image: Callable[[Any], Any] | None = None  # one observation -> image, for ``--dashboard``

    def make_config(self, preset: str | None = None, config_file: str | None = None,
                    overrides: list[str] | dict | None = None) -> Any:
        """Defaults <- preset <- YAML file <- ``key=value`` overrides; validated."""
        data: dict[str, Any] = {}
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
    cfg.ppo.validate()
    cfg.runner.validate()
    if hasattr(cfg, "validate"):
        cfg.validate()


def experiment_names() -> list[str]:
    import experiments

    return sorted(m.name for m in pkgutil.iter_modules(experiments.__path__) if not m.name.startswith(("_", "bench")))


def load_experiment(name: str) -> Experiment:
    names = experiment_names()
    if name not in names:
        raise ConfigError(f"unknown experiment {name!r}; available: {', '.join(names)}")
    module = importlib.import_module(f"experiments.{name}")
    exp = getattr(module, "EXPERIMENT", None)
    if exp is None:
        raise ConfigError(f"module experiments.{name} defines no EXPERIMENT")
    return exp


def list_experiments() -> list[Experiment]:
    out = []
    for n in experiment_names():
        module = importlib.import_module(f"experiments.{n}")
        if hasattr(module, "EXPERIMENT"):
            out.append(module.EXPERIMENT)
    return out
