"""Drives a compiled training program from Python: members, chunks, logs, evaluation,
checkpoints, resume.

Members (variants x hyperparameter settings x seeds) form the leading axis of one train state;
``jit(vmap(chunk))`` advances all of them by ``chunk_updates`` updates per call. Python only
runs between chunks: it writes metrics, shows progress, evaluates and checkpoints.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

import rljax
from rljax.checkpoint import Checkpointer, abstract_like, read_run_json
from rljax.config import from_dict, to_dict
from rljax.errors import ConfigError
from rljax.experiment import Experiment, Setup, load_experiment, validate_config
from rljax.logger import RunLogger
from rljax.ppo import NUMERIC_FIELDS
from rljax.sharding import is_primary, member_groups, place_members, to_host
from rljax.trainer import TrainState, Trainer

MEMBER_AXIS = "members"  # the vmap axis over members; the trainer reduces rare-branch predicates over it


@dataclass(frozen=True)
class Member:
    name: str
    seed: int
    variant: str
    hparams: dict


def build_members(seeds: Sequence[int], variants: Sequence[str], grid: Sequence[dict] | None) -> list[Member]:
    """Every combination of variant x hyperparameter setting x seed, in that nesting order."""
    grid = list(grid) if grid else [{}]
    for overrides in grid:
        for k in overrides:
            if k not in NUMERIC_FIELDS:
                raise ConfigError(f"ppo.{k} cannot vary across members; vmappable keys: {', '.join(NUMERIC_FIELDS)}")
    members = []
    for v in variants:
        for j, hp in enumerate(grid):
            for s in seeds:
                parts = ([v] if len(variants) > 1 else []) + ([f"trial{j}"] if len(grid) > 1 else []) + [f"seed{s}"]
                members.append(Member("_".join(parts), int(s), v, dict(hp)))
    return members


def stack(trees: Sequence[Any]) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *trees)


@dataclass
class ChunkContext:
    """Handed to ``on_chunk_end`` callbacks after every chunk."""

    runner: "Runner"
    update: int
    state: TrainState
    metrics: dict[str, np.ndarray]  # [M, K] per scalar metric of the last chunk


class Runner:
    """One run of ``experiment`` with config ``cfg`` into ``out_dir``.

    ``grid``: optional list of hyperparameter overrides (keys from ``ppo.NUMERIC_FIELDS``), one
    per setting; members are variants x grid x seeds. ``on_chunk_end``: callbacks run between
    chunks (dashboards, tests).
    """

    def __init__(self, experiment: Experiment, cfg: Any, out_dir: str, grid: Sequence[dict] | None = None,
                 on_chunk_end: Sequence[Callable[[ChunkContext], None]] = (), resume: bool = False):
        validate_config(cfg)
        self.experiment, self.cfg, self.out_dir = experiment, cfg, out_dir
        self.resume = resume
        self.on_chunk_end = list(on_chunk_end)
        self.setup: Setup = experiment.build(cfg)
        self.trainer: Trainer = dataclasses.replace(self.setup.trainer, member_axis=MEMBER_AXIS)
        variant_params = dict(self.setup.variants)
        self.members = build_members(cfg.runner.seed_list(), [v for v, _ in self.setup.variants], grid)
        self.grid = list(grid) if grid else []
        self.env_params = stack([variant_params[m.variant] for m in self.members])
        self.hparams = stack([self.trainer.hparams(variant_params[m.variant], **m.hparams) for m in self.members])
        ppo = cfg.ppo
        self.num_updates = ppo.num_updates
        self.chunk_updates = cfg.runner.chunk_updates or default_chunk(self.num_updates)
        self.compile_seconds = 0.0
        first = self.setup.variants[0][1]
        self.eval_max_steps = cfg.runner.eval_max_steps or self.trainer.env.max_steps(first)
        self.eval_keys = jax.random.split(jax.random.PRNGKey(cfg.runner.eval_seed), cfg.runner.eval_episodes)
        self._chunk_fns: dict[int, Callable] = {}
        self._eval_fn = jax.jit(
            jax.vmap(partial(self.trainer.evaluate, max_steps=self.eval_max_steps), in_axes=(0, 0, 0, None))
        )

    # -- compiled pieces -------------------------------------------------------------------
    def init_params(self) -> tuple[jax.Array, Any]:
        """Per-member state keys ``[M, 2]`` and parameters, made one member at a time (see
        Trainer.init_params). A member's key depends only on its seed, so seed i of a batch
        starts exactly like a single run of seed i."""
        init_params = jax.jit(self.trainer.init_params)
        keys = [jax.random.split(jax.random.PRNGKey(m.seed)) for m in self.members]
        params = stack([init_params(k[0], jax.tree.map(lambda x: x[i], self.env_params)) for i, k in enumerate(keys)])
        return jnp.stack([k[1] for k in keys]), params

    def init_state(self) -> TrainState:
        state_keys, params = self.init_params()
        ts = jax.jit(jax.vmap(self.trainer.init))(state_keys, params, self.hparams, self.env_params)
        return place_members(ts)

    def train_compiled(self) -> tuple[TrainState, dict[str, jax.Array]]:
        """All updates of all members as ONE program, with no Python between updates; gives
        the same bits as :meth:`run`'s chunked loop. Initialisation stays a separate program:
        fused with the first update, XLA simplifies around the known-zero optimiser state and
        the first update's floats change in the last bit."""
        ts = self.init_state()
        return jax.jit(self._members(partial(self.trainer.chunk, num_updates=self.num_updates)))(ts)

    def chunk_fn(self, k: int, ts: TrainState) -> Callable:
        """The compiled chunk of ``k`` updates (compiled ahead of time so that compile time is
        reported apart from training throughput)."""
        if k not in self._chunk_fns:
            t0 = time.perf_counter()
            fn = jax.jit(self._members(partial(self.trainer.chunk, num_updates=k)), donate_argnums=0)
            self._chunk_fns[k] = fn.lower(ts).compile()
            self.compile_seconds += time.perf_counter() - t0
        return self._chunk_fns[k]

    def _members(self, fn: Callable) -> Callable:
        """``fn`` over the member axis. ``runner.member_loop="vmap"`` batches members (best for
        small networks, where per-op overhead dominates); ``"map"`` runs the members of each
        device one after another inside the same program (best for large convolutions on CPU,
        where batching per-member weights makes the matmuls slower: 1.5x for Goodhart's CNN)."""
        members = jax.vmap(fn, axis_name=MEMBER_AXIS)
        if self.cfg.runner.member_loop == "vmap":
            return members
        groups = member_groups(len(self.members))

        def grouped(tree):
            split = jax.tree.map(lambda x: x.reshape((groups, -1) + x.shape[1:]), tree)
            out = jax.vmap(lambda t: jax.lax.map(fn, t), axis_name=MEMBER_AXIS)(split)
            return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), out)

        return grouped

    def evaluate(self, ts: TrainState) -> dict[str, np.ndarray]:
        """Greedy evaluation of every member on the same fixed keys; ``[M, E]`` per entry."""
        return to_host(self._eval_fn(ts.params, ts.obs_stats, ts.env_params, self.eval_keys))

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> dict:
        cfg, rc = self.cfg, self.cfg.runner
        os.makedirs(self.out_dir, exist_ok=True)
        batch = cfg.ppo.batch_size
        meta = self._metadata()
        ckpt = Checkpointer(self.out_dir, rc.keep_latest, rc.keep_best, metadata=meta)
        ts = self.init_state()
        start = 0
        if self.resume:
            step = ckpt.latest_step()
            if step is None:
                raise ConfigError(f"no complete checkpoint to resume from in {self.out_dir}")
            ts = place_members(ckpt.restore(abstract_like(ts), step))
            start = int(np.asarray(ts.update_step)[0])
        elif is_primary():
            with open(os.path.join(self.out_dir, "run.json"), "w") as f:
                json.dump(meta, f, indent=1)
        # In a multi-process run only process 0 writes logs; the others log into their own folder.
        log_dir = self.out_dir if is_primary() else os.path.join(self.out_dir, f"process{jax.process_index()}")
        os.makedirs(log_dir, exist_ok=True)
        logger = RunLogger(log_dir, [m.name for m in self.members], rc.tensorboard, rc.wandb, rc.wandb_project,
                           rc.wandb_offline, meta["config"], resume_from=start if self.resume else None,
                           log_episodes=rc.log_episodes)
        bar = _progress(rc.progress and is_primary(), self.num_updates * batch, start * batch, self.experiment.name)
        latest_return = np.full(len(self.members), np.nan)
        eval_return = None
        last_eval = None
        # Training throughput counts the loop's wall time (chunks, transfers, logging) minus
        # compilation, evaluation, checkpoint writes and callbacks, which are reported apart:
        # they are fixed costs that do not scale with steps (a save is ~0.1 s).
        loop_start, excluded = time.perf_counter(), -self.compile_seconds
        self.eval_seconds = self.checkpoint_seconds = 0.0
        train_seconds = lambda: time.perf_counter() - loop_start - excluded - self.compile_seconds
        last_save = time.monotonic()
        update = start
        try:
            while update < self.num_updates:
                k = min(self.chunk_updates, self.num_updates - update)
                fn = self.chunk_fn(k, ts)
                ts, metrics = fn(ts)
                metrics = to_host(metrics)
                episodes = metrics.pop("episode_records", None)
                logger.log_updates(update, batch, metrics)
                if episodes is not None:
                    logger.log_episode_records(update, batch, cfg.ppo.num_envs, episodes)
                prev, update = update, update + k
                latest_return = _latest_finite(metrics.get("episode_return"), latest_return)
                eval_now = update == self.num_updates or (rc.eval_every and update // rc.eval_every > prev // rc.eval_every)
                eval_return = None
                if eval_now:
                    t0 = time.perf_counter()
                    last_eval = self.evaluate(ts)
                    eval_return = last_eval["return"].mean(axis=1)
                    logger.log_eval(update, batch, eval_return)
                    self.eval_seconds += time.perf_counter() - t0
                    excluded += time.perf_counter() - t0
                if rc.checkpoint_every:
                    ckpt_now = update // rc.checkpoint_every > prev // rc.checkpoint_every
                else:  # saving costs a few % of a short run; bound the work lost to a crash instead
                    ckpt_now = time.monotonic() - last_save >= 60 * rc.checkpoint_minutes
                if ckpt_now or update == self.num_updates:
                    t0 = last_save = time.monotonic()
                    ckpt.save(update, ts, None if eval_return is None else float(np.mean(eval_return)))
                    if update == self.num_updates:
                        ckpt.wait()
                    self.checkpoint_seconds += time.monotonic() - t0
                    excluded += time.monotonic() - t0
                bar.update(k * batch)
                bar.set_postfix_str(_postfix((update - start) * batch * len(self.members), train_seconds(),
                                             latest_return, eval_return))
                t0 = time.perf_counter()
                for cb in self.on_chunk_end:
                    cb(ChunkContext(self, update, ts, metrics))
                excluded += time.perf_counter() - t0
            ckpt.wait()
            train_seconds = train_seconds()
        finally:
            bar.close()
            logger.close()
            ckpt.close()
        self.state = ts
        if last_eval is None:  # resumed a finished run: nothing was trained here
            last_eval = self.evaluate(ts)
        summary = self._summary(last_eval, train_seconds, start, latest_return)
        if is_primary():
            with open(os.path.join(self.out_dir, "summary.json"), "w") as f:
                json.dump(summary, f, indent=1)
        return summary

    # -- records ---------------------------------------------------------------------------
    def _metadata(self) -> dict:
        return {
            "experiment": self.experiment.name,
            "config": to_dict(self.cfg),
            "grid": self.grid,
            "members": [m.__dict__ for m in self.members],
            "seeds": self.cfg.runner.seed_list(),
            "rljax_version": rljax.__version__,
            "jax_version": jax.__version__,
            "jaxlib_version": jax.lib.__version__ if hasattr(jax.lib, "__version__") else jax.__version__,
            "devices": [str(d) for d in jax.devices()],
        }

    def _summary(self, evaluation: dict[str, np.ndarray], train_seconds: float, start: int, latest_return: np.ndarray) -> dict:
        eval_returns = evaluation["return"]
        steps = self.num_updates * self.cfg.ppo.batch_size
        run_steps = (self.num_updates - start) * self.cfg.ppo.batch_size
        sps = run_steps / train_seconds if train_seconds > 0 else float("nan")
        members = []
        for i, m in enumerate(self.members):
            members.append({
                "name": m.name, "seed": m.seed, "variant": m.variant, "hparams": m.hparams,
                "eval_return": float(eval_returns[i].mean()), "eval_return_std": float(eval_returns[i].std()),
                "eval_returns": [float(x) for x in eval_returns[i]],
                # per-episode means of everything else evaluation counts (length, ep_* sums)
                "eval_episode": {k.removeprefix("ep_"): float(np.mean(v[i])) for k, v in evaluation.items() if k != "return"},
                "train_episode_return": float(latest_return[i]),
                "env_steps": steps, "steps_per_second": sps,
            })
        return {
            "experiment": self.experiment.name,
            "members": members,
            "eval_return_mean": float(eval_returns.mean()),
            "env_steps_per_member": steps,
            "total_steps_per_second": sps * len(self.members),
            "train_seconds": train_seconds,
            "compile_seconds": self.compile_seconds,
            "eval_seconds": self.eval_seconds,
            "checkpoint_seconds": self.checkpoint_seconds,
            "resumed_from_update": start,
        }


def default_chunk(num_updates: int) -> int:
    """About 20 chunks per run; prefers a size that divides the run so the last chunk does not
    need a second compilation."""
    target = max(1, math.ceil(num_updates / 20))
    divisors = [d for d in range(1, num_updates + 1) if num_updates % d == 0 and 10 <= num_updates // d <= 40]
    return min(divisors, key=lambda d: abs(d - target)) if divisors else target


def _latest_finite(values: np.ndarray | None, previous: np.ndarray) -> np.ndarray:
    if values is None:
        return previous
    out = previous.copy()
    for i, row in enumerate(values):
        finite = row[np.isfinite(row)]
        if finite.size:
            out[i] = finite[-1]
    return out


def _postfix(steps: int, seconds: float, returns: np.ndarray, eval_return: np.ndarray | None) -> str:
    sps = steps / seconds if seconds > 0 else 0.0
    shown = returns if returns.size <= 4 else np.array([np.nanmin(returns), np.nanmean(returns), np.nanmax(returns)])
    label = "ret" if returns.size <= 4 else "ret min/mean/max"
    text = f"{sps:,.0f} steps/s {label} " + " ".join(f"{r:.1f}" for r in shown)
    if eval_return is not None:
        text += f" eval {np.mean(eval_return):.1f}"
    return text


def _progress(enabled: bool, total: int, initial: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="step", unit_scale=True, desc=desc, disable=not enabled,
                dynamic_ncols=True)


def resume_runner(run_dir: str, on_chunk_end: Sequence[Callable] = ()) -> Runner:
    """A runner that continues the run in ``run_dir`` from its latest complete checkpoint."""
    meta = read_run_json(run_dir)
    exp = load_experiment(meta["experiment"])
    cfg = from_dict(exp.config_cls, meta["config"])
    return Runner(exp, cfg, run_dir, grid=meta.get("grid") or None, on_chunk_end=on_chunk_end, resume=True)


def find_run_dir(path: str) -> str:
    """``path`` or the run directory above it (accepts ``<run>/checkpoints[/latest]``)."""
    run_dir = os.path.normpath(path)
    for _ in range(3):
        if os.path.isfile(os.path.join(run_dir, "run.json")) or not os.path.isdir(run_dir):
            break
        run_dir = os.path.dirname(run_dir)
    return run_dir


def load_run(path: str, best: bool = False, **runner_overrides: Any) -> tuple[Runner, TrainState]:
    """The runner of the run at ``path`` and its latest (or best) checkpointed train state.

    ``runner_overrides`` replace ``runner.*`` config fields (e.g. ``eval_episodes``)."""
    run_dir = find_run_dir(path)
    meta = read_run_json(run_dir)
    exp = load_experiment(meta["experiment"])
    cfg = from_dict(exp.config_cls, meta["config"])
    if runner_overrides:
        cfg = dataclasses.replace(cfg, runner=dataclasses.replace(cfg.runner, **runner_overrides))
    runner = Runner(exp, cfg, run_dir, grid=meta.get("grid") or None)
    ckpt = Checkpointer(run_dir, cfg.runner.keep_latest, cfg.runner.keep_best)
    try:
        ts = ckpt.restore(abstract_like(runner.init_state()), which="best" if best else "latest")
    finally:
        ckpt.close()
    return runner, ts
