"""Drives a compiled training program from Python: members, chunks, logs, evaluation,
checkpoints, resume, divergence checks.

Members (variants x hyperparameter settings x seeds) form the leading axis of one state; one
program initialises all of them and ``jit(members(scan of K updates))`` advances all of them by
``chunk_updates`` updates per call. What is trained is an :class:`~rljax.algorithm.Algorithm`
(PPO, EMPO, self-play, ...). Python only runs between chunks, and its work there does not grow
with the number of members: metrics come back as one ``[M, K]`` array per name and go to
columnar files (:mod:`rljax.logger`), the progress bar shows quantiles across members, the
checkpoint holds the whole member-batched state once.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

import rljax
from rljax import backend
from rljax.algorithm import Algorithm
from rljax.checkpoint import Checkpointer, abstract_like, read_record, read_run_json, write_run_json
from rljax.config import from_dict, to_dict
from rljax.envs.environment import tree_select
from rljax.errors import ConfigError, DivergenceError
from rljax.experiment import Experiment, Setup, load_experiment, validate_config
from rljax.logger import RunLogger
from rljax.sharding import (EmptyLeavesPlaced, is_primary, layout, layout_changes, member_groups, member_mesh,
                             member_sharding, place_members, recorded_layout, to_host)

MEMBER_AXIS = "members"  # the vmap axis over members; algorithms reduce rare-branch predicates over it


@dataclass(frozen=True)
class Member:
    name: str
    seed: int
    variant: str
    hparams: dict


def build_members(seeds: Sequence[int], variants: Sequence[str], grid: Sequence[dict] | None,
                  vary_keys: Sequence[str] | None = None, section: str = "ppo") -> list[Member]:
    """Every combination of variant x hyperparameter setting x seed, in that nesting order."""
    grid = list(grid) if grid else [{}]
    if vary_keys is None:
        from rljax.ppo import NUMERIC_FIELDS as vary_keys
    for overrides in grid:
        for k in overrides:
            if k not in vary_keys:
                raise ConfigError(f"{section}.{k} cannot vary across members; vmappable keys: {', '.join(vary_keys)}")
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
    state: Any  # the algorithm's member-batched state
    metrics: dict[str, np.ndarray]  # [M, K] per scalar metric of the last chunk


class Runner:
    """One run of ``experiment`` with config ``cfg`` into ``out_dir``.

    ``grid``: optional list of hyperparameter overrides (keys from the algorithm's
    ``vary_keys``), one per setting; members are variants x grid x seeds. ``on_chunk_end``:
    callbacks run between chunks (dashboards, tests).
    """

    def __init__(self, experiment: Experiment, cfg: Any, out_dir: str, grid: Sequence[dict] | None = None,
                 on_chunk_end: Sequence[Callable[[ChunkContext], None]] = (), resume: bool = False):
        t0 = time.perf_counter()
        validate_config(cfg)
        self.experiment, self.cfg, self.out_dir = experiment, cfg, out_dir
        self.resume = resume
        self.restored_from: dict | None = None  # what a resume restored (set by run / load_run)
        self.config_changes: dict[str, list] = {}  # accepted config changes of a resume (resume_runner)
        self.on_chunk_end = list(on_chunk_end)
        self.setup: Setup = experiment.build(cfg)
        variant_names = [v for v, _ in self.setup.variants]
        self.grid = list(grid) if grid else []
        self.members = build_members(cfg.runner.seed_list(), variant_names, grid, self.setup.algorithm.vary_keys,
                                     self.setup.algorithm.config_section)
        self.num_members = len(self.members)
        self.choices = backend.resolve(cfg.runner, self.setup.conv_heavy, members=self.num_members,
                                       cheap_reset=self.setup.cheap_reset, stalls_vectorizer=self.setup.stalls_vectorizer)
        backend.apply_threefry(self.choices.threefry)  # before anything of this run compiles
        self.algorithm: Algorithm = self.setup.algorithm.with_options(
            member_axis=MEMBER_AXIS, reset_branch=self.choices.reset_branch, bootstrap_branch=self.choices.bootstrap_branch)
        alg = self.algorithm
        settings = self.grid or [{}]
        # Per-member task parameters and hyperparameters are gathered from the few distinct
        # (variant, setting) values with one indexing op per leaf, not built per member.
        per_variant = len(settings) * len(cfg.runner.seed_list())
        variant_idx = np.arange(self.num_members) // per_variant
        combo_idx = np.arange(self.num_members) // len(cfg.runner.seed_list())
        variants = stack([p for _, p in self.setup.variants])
        self.env_params = jax.tree.map(lambda x: x[variant_idx], variants)
        combos = stack([alg.hparams(p, **hp) for _, p in self.setup.variants for hp in settings])
        self.hparams = jax.tree.map(lambda x: x[combo_idx], combos)
        self.seeds = np.asarray([m.seed for m in self.members])
        self.num_updates = alg.num_updates
        self.steps_per_update = alg.steps_per_update
        self.chunk_updates = cfg.runner.chunk_updates or default_chunk(self.num_updates)
        self.eval_max_steps = cfg.runner.eval_max_steps or alg.eval_steps(self.setup.variants[0][1])
        self.eval_keys = jax.random.split(jax.random.PRNGKey(cfg.runner.eval_seed), cfg.runner.eval_episodes)
        self._chunk_fns: dict[int, Callable] = {}
        self._eval_fn: Callable | None = None
        self._check_names: list[str] = []
        self.training_started_at: float | None = None  # time.time() when the first chunk was launched
        self.timings = {"construct": time.perf_counter() - t0, "init": 0.0, "compile": 0.0, "train": 0.0,
                        "train_cpu": 0.0, "eval": 0.0, "logging": 0.0, "checkpoint": 0.0, "callbacks": 0.0}

    @property
    def compile_seconds(self) -> float:
        return self.timings["compile"]

    # -- mapping over members --------------------------------------------------------------
    def _members(self, fn: Callable, loop: str | None = None) -> Callable:
        """``fn`` (of one member's arguments) over the leading member axis of every argument.

        ``"vmap"`` batches members (best for small networks, where per-op overhead dominates);
        ``"map"`` runs the members of each device one after another inside the same program
        (see :mod:`rljax.backend`)."""
        loop = loop or self.choices.member_loop
        if self.num_members == 1 and loop == "vmap":
            # One member: no batching at all. A size-1 vmap still turns every matmul into a
            # batched one and costs ~5% of a CartPole update on CPU.
            def single(*args):
                out = fn(*jax.tree.map(lambda x: x[0], args))
                return jax.tree.map(lambda x: x[None], out)

            return single
        if loop == "vmap":
            return jax.vmap(fn, axis_name=MEMBER_AXIS)
        groups = member_groups(self.num_members)

        def grouped(*args):
            split = jax.tree.map(lambda x: x.reshape((groups, -1) + x.shape[1:]), args)
            out = jax.vmap(lambda *a: jax.lax.map(lambda t: fn(*t), a), axis_name=MEMBER_AXIS)(*split)
            return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), out)

        return grouped

    # -- compiled pieces -------------------------------------------------------------------
    def init_state(self) -> Any:
        """The initial states of all members, built by ONE program (placed on the member
        sharding). Member i starts from ``PRNGKey(seed_i)`` alone, so seed i of a batch starts
        exactly like a single run of seed i. On CPU the members are mapped one at a time
        (``init_loop="map"``): batched QR of orthogonal initialisers inside a big program was
        seen to hang XLA's CPU thread pool."""
        t0 = time.perf_counter()
        keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(self.seeds, jnp.uint32))
        args = place_members((keys, self.env_params, self.hparams))
        init = self.algorithm.init_state
        if self.choices.init_loop == "vmap":
            local = jax.vmap(init)
        else:
            local = lambda *a: jax.lax.map(lambda t: init(*t), a)
        if member_groups(self.num_members) > 1:
            # Each device initialises its own members, with no batching across devices.
            # (backend.init_loop refuses vmap where a CPU device would batch 2+ members.)
            # check_vma=False: shard_map types every value as varying or not over the member
            # axis, and a while_loop whose initial carry is a constant but whose body reads the
            # member's key (foraging's item placement) is then a type error inside the
            # algorithm's code, which knows nothing of the mesh. Every member's init is
            # independent, so there is nothing for that check to protect here.
            from jax.sharding import PartitionSpec as P

            fn = jax.shard_map(local, mesh=member_mesh(member_groups(self.num_members)),
                               in_specs=P(MEMBER_AXIS), out_specs=P(MEMBER_AXIS), check_vma=False)
        else:
            fn = local
        state = place_members(jax.jit(fn).lower(*args).compile(backend.compiler_options(self.choices.codegen))(*args))
        jax.block_until_ready(state)
        self.timings["init"] += time.perf_counter() - t0
        return state

    def init_params(self) -> tuple[jax.Array, Any]:
        """PPO-style view of the initial state: per-member state keys ``[M, 2]`` and network
        parameters (for algorithms whose state has ``params``)."""
        keys = jax.vmap(lambda s: jax.random.split(jax.random.PRNGKey(s))[1])(jnp.asarray(self.seeds, jnp.uint32))
        return keys, self.init_state().params

    def _member_chunk(self, num_updates: int) -> Callable:
        """``(state, frozen) -> ((state, frozen), metrics[K])`` of ONE member: ``num_updates``
        updates, each followed by the algorithm's divergence checks, folded into the metric
        ``nonfinite`` (bit i = check i). With ``runner.on_divergence=freeze`` a member whose
        update turned something non-finite keeps its state from before that update."""
        alg, freeze = self.algorithm, self.cfg.runner.on_divergence == "freeze"

        def body(carry, _):
            state, frozen = carry
            new, metrics = alg.update(state)
            checks = alg.nonfinite(new, metrics)
            self._check_names = list(checks)
            code = jnp.zeros((), jnp.int32)
            for i, bad in enumerate(checks.values()):
                code = code | (jnp.asarray(bad).astype(jnp.int32) << i)
            metrics = dict(metrics, nonfinite=code)
            if freeze:
                frozen = frozen | (code > 0)
                new = tree_select(frozen, state, new)
            return (new, frozen), metrics

        return lambda state, frozen: jax.lax.scan(body, (state, frozen), None, length=num_updates)

    def _batched_chunk(self, num_updates: int) -> Callable:
        """The member-batched chunk ``(state[M], frozen[M]) -> ((state, frozen), metrics[M, K])``.

        Usually ``members(scan of K updates)``. An algorithm with a ``population_step``
        (``batched_state -> batched_state``, e.g. population-based training) gets ``scan of K
        (members(one update); population_step)`` instead: its cross-member step sees all members
        after every update, inside the same compiled program."""
        population_step = getattr(self.algorithm, "population_step", None)
        if population_step is None:
            return self._members(self._member_chunk(num_updates))
        one = self._members(self._member_chunk(1))

        def body(carry, _):
            (state, frozen), metrics = one(*carry)
            return (population_step(state), frozen), jax.tree.map(lambda x: x[:, 0], metrics)

        def chunk(state, frozen):
            carry, metrics = jax.lax.scan(body, (state, frozen), None, length=num_updates)
            return carry, jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), metrics)  # [K, M, ...] -> [M, K, ...]

        return chunk

    def chunk_fn(self, k: int, state: Any, frozen: Any) -> Callable:
        """The compiled chunk of ``k`` updates of all members, ``(state, frozen) -> ((state,
        frozen), metrics)``, for arguments shaped like ``state`` and ``frozen[M]``; compiled
        ahead of time so compile time is reported apart from training. Its arguments are
        donated (their buffers are reused for the result)."""
        if k not in self._chunk_fns:
            t0 = time.perf_counter()
            fn = jax.jit(self._batched_chunk(k), donate_argnums=(0, 1))
            shapes = jax.tree.map(lambda x: x if isinstance(x, jax.ShapeDtypeStruct) else abstract_like(x), (state, frozen))
            options = backend.compiler_options(self.choices.codegen)
            self._chunk_fns[k] = EmptyLeavesPlaced(fn.lower(*shapes).compile(options), shapes)
            self.timings["compile"] += time.perf_counter() - t0
        return self._chunk_fns[k]

    def abstract_carry(self) -> tuple[Any, Any]:
        """Shapes, dtypes and shardings of ``(state, frozen)`` without building them, so the
        first chunk can compile while the initialisation program runs, and a resume restores
        its checkpoint onto exactly the placement the chunk is compiled for."""
        first = lambda tree: jax.tree.map(lambda x: x[0], tree)
        one = jax.eval_shape(self.algorithm.init_state, jax.random.PRNGKey(0), first(self.env_params), first(self.hparams))
        sharding = member_sharding(self.num_members)
        batched = lambda x: jax.ShapeDtypeStruct((self.num_members,) + x.shape, x.dtype, sharding=sharding)
        return jax.tree.map(batched, one), batched(jax.ShapeDtypeStruct((), jnp.bool_))

    def initial_frozen(self) -> Any:
        """No member frozen: ``bool[M]`` on the member sharding."""
        return place_members(jnp.zeros((self.num_members,), bool))

    def train_compiled(self) -> tuple[Any, dict[str, jax.Array]]:
        """All updates of all members as ONE program, with no Python between updates; gives
        the same bits as :meth:`run`'s chunked loop. Initialisation stays a separate program:
        fused with the first update, XLA simplifies around the known-zero optimiser state and
        the first update's floats change in the last bit."""
        state, frozen = self.init_state(), self.initial_frozen()
        (state, _), metrics = jax.jit(self._batched_chunk(self.num_updates))(state, frozen)
        return state, metrics

    def evaluate(self, state: Any) -> dict[str, np.ndarray]:
        """Evaluation of every member on the same fixed keys; ``[M, E]`` per entry."""
        if self._eval_fn is None:
            t0 = time.perf_counter()
            fn = partial(self.algorithm.evaluation, keys=self.eval_keys, max_steps=self.eval_max_steps)
            like = abstract_like(state)
            lowered = jax.jit(self._members(lambda s: fn(s))).lower(like)
            self._eval_fn = EmptyLeavesPlaced(lowered.compile(backend.compiler_options(self.choices.codegen)), (like,))
            self.timings["compile"] += time.perf_counter() - t0
        return to_host(self._eval_fn(state))

    def update_count(self, state: Any) -> int:
        """Updates done: the furthest member (a frozen member's own count stops)."""
        return int(np.max(to_host(self.algorithm.update_count(state))))

    def trained_env_steps(self, state: Any) -> np.ndarray | None:
        """``int64[M]`` environment steps each member has trained, where the algorithm reports
        them (:meth:`Algorithm.env_steps`); ``None`` where the static count is exact."""
        steps = self.algorithm.env_steps(state)
        return None if steps is None else np.asarray(to_host(steps), np.int64).reshape(self.num_members)

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> dict:
        rc = self.cfg.runner
        os.makedirs(self.out_dir, exist_ok=True)
        meta = self._metadata()
        ckpt = Checkpointer(self.out_dir, rc.keep_latest, rc.keep_best, metadata=meta)
        # The first chunk compiles on a second thread while the initialisation program runs
        # (XLA releases the GIL; both are mostly single-threaded): start-up ~ max, not sum.
        compiling = None
        if jax.process_count() == 1 and self.num_updates > 0:
            import threading

            shapes = self.abstract_carry()
            k0 = min(self.chunk_updates, self.num_updates)
            compiling = threading.Thread(target=self.chunk_fn, args=(k0, *shapes), daemon=True)
            compiling.start()
        start = 0
        if self.resume:
            # Onto the shapes and shardings the chunk is compiled for (this process's placement of
            # the members), so no initialisation program runs for a template; damaged steps are
            # skipped with one line (Checkpointer.restore_verified).
            state, frozen = self.abstract_carry()
            try:
                carry, self.restored_from = ckpt.restore_verified({"state": state, "frozen": frozen}, ("latest",))
            except ConfigError:
                ckpt.close()
                raise
            ckpt.quarantine(self.restored_from["skipped"])  # so their step numbers can be saved again
            start = self.update_count(carry["state"])
        else:
            carry = {"state": self.init_state(), "frozen": self.initial_frozen()}
        if compiling is not None:
            compiling.join()
        if is_primary():
            self._record_segment(meta, start)
            if self.resume:
                self._record_resume(start)
        # In a multi-process run only process 0 writes logs; the others log into their own folder.
        log_dir = self.out_dir if is_primary() else os.path.join(self.out_dir, f"process{jax.process_index()}")
        os.makedirs(log_dir, exist_ok=True)
        spu = self.steps_per_update
        log_every = rc.logged_every(self.num_updates)
        logger = RunLogger(log_dir, [m.name for m in self.members], spu, self.num_members <= rc.per_member_files,
                           rc.tensorboard, rc.wandb, rc.wandb_project, rc.wandb_offline, meta["config"],
                           resume_from=start if self.resume else None, log_episodes=rc.log_episodes,
                           tag_names=getattr(self.algorithm, "tag_names", None))
        bar = _progress(rc.progress and is_primary(), self.num_updates * spu, start * spu, self.experiment.name)
        trained_before = self.trained_env_steps(carry["state"])
        latest_return = np.full(self.num_members, np.nan)
        frozen_at = np.full(self.num_members, -1)
        frozen_at[np.asarray(to_host(carry["frozen"]), bool)] = start
        last_eval, last_saved = None, ckpt.latest_step()
        last_save_time = time.monotonic()
        update = start
        state, frozen = carry["state"], carry["frozen"]
        timings = self.timings
        try:
            while update < self.num_updates:
                k = min(self.chunk_updates, self.num_updates - update)
                fn = self.chunk_fn(k, state, frozen)
                # The training window (THE one throughput is computed from, see throughput()):
                # from a compiled chunk's dispatch to its metrics on the host; compilation,
                # logging, evaluation and checkpoints fall outside it.
                t0, c0 = time.perf_counter(), time.process_time()
                if self.training_started_at is None:
                    self.training_started_at = time.time()
                (state, frozen), metrics = fn(state, frozen)
                metrics = to_host(metrics)
                timings["train"] += time.perf_counter() - t0
                timings["train_cpu"] += time.process_time() - c0
                t0 = time.perf_counter()
                codes = metrics.pop("nonfinite")
                episodes = metrics.pop("episode_records", None)
                logger.log_updates(update, metrics, log_every, self.num_updates)
                if episodes is not None:
                    logger.log_episode_records(update, episodes["episode_done"].shape[-1], episodes)
                latest_return = _latest_finite(metrics.get("episode_return"), latest_return)
                timings["logging"] += time.perf_counter() - t0
                prev, update = update, update + k
                if codes.any():
                    newly = self._diverged(codes, prev, frozen_at, last_saved)
                    if rc.on_divergence == "stop":
                        raise DivergenceError(newly[0] + (f" ({len(newly) - 1} more member(s) diverged)" if len(newly) > 1 else ""))
                    for line in newly:
                        bar.write("rljax: " + line)
                    if (frozen_at >= 0).all():
                        raise DivergenceError("every member diverged and is frozen; " + newly[0])
                eval_now = update == self.num_updates or (rc.eval_every and update // rc.eval_every > prev // rc.eval_every)
                eval_return = None
                if eval_now:
                    t0 = time.perf_counter()
                    last_eval = self.evaluate(state)
                    eval_return = last_eval["return"].mean(axis=1)
                    logger.log_eval(update, last_eval)
                    timings["eval"] += time.perf_counter() - t0
                if rc.checkpoint_every:
                    ckpt_now = update // rc.checkpoint_every > prev // rc.checkpoint_every
                else:  # saving costs a few % of a short run; bound the work lost to a crash instead
                    ckpt_now = time.monotonic() - last_save_time >= 60 * rc.checkpoint_minutes
                if ckpt_now or update == self.num_updates:
                    t0 = time.perf_counter()
                    last_save_time = time.monotonic()
                    best = None if eval_return is None else float(np.mean(eval_return[frozen_at < 0]))
                    ckpt.save(update, {"state": state, "frozen": frozen}, best)
                    last_saved = update
                    if update == self.num_updates:
                        ckpt.wait()
                    timings["checkpoint"] += time.perf_counter() - t0
                else:
                    ckpt.poll()  # seals a finished save (integrity record), never waits
                t0 = time.perf_counter()
                bar.update(k * spu)
                bar.set_postfix_str(_postfix((update - start) * spu * self.num_members, timings["train"],
                                             latest_return, eval_return))
                timings["logging"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                for cb in self.on_chunk_end:
                    cb(ChunkContext(self, update, state, metrics))
                timings["callbacks"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            ckpt.wait()
            timings["checkpoint"] += time.perf_counter() - t0
        finally:
            bar.close()
            logger.close()
            ckpt.close()
        self.state = state
        if last_eval is None:  # resumed a finished run: nothing was trained here
            last_eval = self.evaluate(state)
        trained = self.trained_env_steps(state)
        if trained is not None:
            trained = (trained, trained - trained_before)
        summary = self._summary(last_eval, start, latest_return, frozen_at, trained)
        if self.restored_from is not None:
            summary["restored_from"] = self.restored_from
        if is_primary():
            write_summary(os.path.join(self.out_dir, "summary.json"), summary)
        return summary

    def _diverged(self, codes: np.ndarray, first_update: int, frozen_at: np.ndarray, last_saved: int | None) -> list[str]:
        """Marks members whose checks failed in this chunk; one line per newly diverged member,
        earliest update first."""
        lines = []
        bad = (codes != 0) & (frozen_at < 0)[:, None]
        first = np.where(bad.any(axis=1), np.argmax(bad, axis=1), codes.shape[1])
        where = f"checkpoints/latest step {last_saved}" if last_saved is not None else "no checkpoint was saved yet"
        for i in np.argsort(first, kind="stable"):
            if first[i] >= codes.shape[1]:
                break
            frozen_at[i] = first_update + first[i] + 1
            what = ", ".join(n for b, n in enumerate(self._check_names) if codes[i, first[i]] >> b & 1)
            action = "run stopped" if self.cfg.runner.on_divergence == "stop" else "member frozen at its last finite state"
            lines.append(f"member {self.members[i].name} diverged at update {frozen_at[i]}: non-finite {what}; "
                         f"{action}; last good checkpoint: {where}")
        return lines

    # -- records ---------------------------------------------------------------------------
    def _record_resume(self, update: int) -> None:
        """Appends this resume to ``run.json`` (``resumes``: from which checkpoint, what was
        skipped and why, config changes); accepted changes also replace its config and are
        listed in ``config_changes`` with the update from which they apply."""
        meta = read_run_json(self.out_dir)
        entry = {"update": update, "restored_from": self.restored_from, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        if self.config_changes:
            entry["config_changes"] = self.config_changes
            meta.setdefault("config_changes", []).append({"update": update, "changes": self.config_changes})
            meta["config"] = to_dict(self.cfg)
        meta.setdefault("resumes", []).append(entry)
        write_run_json(self.out_dir, meta)

    def _record_segment(self, meta: dict, start: int) -> None:
        """Writes ``run.json`` with the layout (:func:`rljax.sharding.layout`) that trains from
        update ``start``: a fresh run has one segment; a resume appends one, and says in one
        line when it cannot continue bit for bit (another layout, or a non-CPU backend)."""
        now = layout(self.num_members)
        if not self.resume:
            write_run_json(self.out_dir, dict(meta, segments=[{"start_update": 0, "layout": now}]))
            return
        if start >= self.num_updates:
            return  # a finished run: nothing is trained here
        recorded = read_run_json(self.out_dir)
        segments = list(recorded.get("segments") or [{"start_update": 0, "layout": recorded_layout(recorded)}])
        changes = layout_changes(recorded_layout(recorded), now)
        if changes:
            print(f"rljax: resuming at update {start} on another layout than the run was trained on "
                  f"({'; '.join(changes)}): from here it is not bit-identical to an uninterrupted run",
                  file=sys.stderr, flush=True)
        elif now["platform"] != "cpu":
            print(f"rljax: resuming at update {start} on {now['platform']}: the same program continues from the "
                  f"same state, but {now['platform']} kernels are not guaranteed bitwise deterministic; expect "
                  "an uninterrupted run's result to float tolerance, not bit for bit", file=sys.stderr, flush=True)
        segments.append({"start_update": start, "layout": now, "bitwise": not changes and now["platform"] == "cpu"})
        write_run_json(self.out_dir, dict(recorded, segments=segments))

    def _metadata(self) -> dict:
        return {
            "experiment": self.experiment.name,
            "config": to_dict(self.cfg),
            "grid": self.grid,
            "members": [m.__dict__ for m in self.members],
            "seeds": self.cfg.runner.seed_list(),
            "backend": dataclasses.asdict(self.choices),
            "rljax_version": rljax.__version__,
            "jax_version": jax.__version__,
            "jaxlib_version": jax.lib.__version__ if hasattr(jax.lib, "__version__") else jax.__version__,
            "devices": [str(d) for d in jax.devices()[:16]] + ([f"... {jax.device_count()} in all"] if jax.device_count() > 16 else []),
        }

    def _summary(self, evaluation: dict[str, np.ndarray], start: int, latest_return: np.ndarray,
                 frozen_at: np.ndarray, trained: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
        """``trained``: per member, the env steps trained in all and in this run, where the
        algorithm reports them; otherwise every member counts ``updates x steps_per_update``."""
        eval_returns = evaluation["return"]
        per_member = eval_returns.mean(axis=1)
        steps = self.num_updates * self.steps_per_update
        train = self.timings["train"]
        if trained is None:
            member_steps = np.full(self.num_members, steps)
            run_steps = np.full(self.num_members, (self.num_updates - start) * self.steps_per_update)
        else:
            member_steps, run_steps = trained
        member_sps = np.asarray([throughput(n, train) for n in run_steps])
        others = {k.removeprefix("ep_"): v.mean(axis=1) for k, v in evaluation.items() if k != "return"}
        small = self.num_members <= max(self.cfg.runner.per_member_files, 16)
        members = []
        for i, m in enumerate(self.members):
            row = {"name": m.name, "seed": m.seed, "variant": m.variant, "hparams": m.hparams,
                   "eval_return": float(per_member[i]), "eval_return_std": float(eval_returns[i].std()),
                   # per-episode means of everything else evaluation counts (length, ep_* sums)
                   "eval_episode": {k: float(v[i]) for k, v in others.items()},
                   "train_episode_return": float(latest_return[i]),
                   "env_steps": int(member_steps[i]), "steps_per_second": float(member_sps[i])}
            if small:
                row["eval_returns"] = [float(x) for x in eval_returns[i]]
            if frozen_at[i] >= 0:
                row["diverged_at_update"] = int(frozen_at[i])
            members.append(row)
        finite = per_member[np.isfinite(per_member)]
        variants = {}
        for v, _ in self.setup.variants:
            sel = np.asarray([m.variant == v for m in self.members])
            variants[v] = _aggregate(per_member[sel])
        return {
            "experiment": self.experiment.name,
            "num_members": self.num_members,
            "eval_return_mean": float(eval_returns.mean()),
            "eval_return_across_members": _aggregate(finite),
            "eval_return_by_variant": variants,
            "diverged_members": int((frozen_at >= 0).sum()),
            "env_steps_per_member": steps,  # the static count: updates x steps per update
            "env_steps_trained": _aggregate(member_steps.astype(np.float64)),
            "total_steps_per_second": throughput(int(np.sum(run_steps)), train),
            "train_seconds": train,
            "train_cpu_seconds": self.timings["train_cpu"],  # CPU time of this process in the same window
            "train_started_unix": self.training_started_at,  # time.time() when the first chunk was launched

            "compile_seconds": self.timings["compile"],
            "init_seconds": self.timings["init"],
            "eval_seconds": self.timings["eval"],
            "logging_seconds": self.timings["logging"],
            "checkpoint_seconds": self.timings["checkpoint"],
            "callback_seconds": self.timings["callbacks"],
            "resumed_from_update": start,
            "backend": dataclasses.asdict(self.choices),
            "members": members,
        }


def throughput(env_steps: int, train_seconds: float) -> float:
    """THE env-steps/s of a run (``summary.json``'s ``total_steps_per_second``, per member
    ``steps_per_second``, and what ``rljax.experiments.bench.scale`` prints): environment steps trained
    in this run over the training window, the sum over chunks of the wall time from a compiled
    chunk's dispatch to its metrics on the host. Compilation, start-up, logging, evaluation and
    checkpoints are outside it (``summary.json`` reports each apart); it is the engine's speed.
    NaN for an empty window."""
    return env_steps / train_seconds if train_seconds > 0 else float("nan")


def _aggregate(x: np.ndarray) -> dict:
    if x.size == 0:
        return {"members": 0}
    q = np.quantile(x, [0.0, 0.25, 0.5, 0.75, 1.0])
    return {"members": int(x.size), "mean": float(x.mean()), "std": float(x.std()),
            **{k: float(v) for k, v in zip(("min", "p25", "median", "p75", "max"), q)}}


def write_summary(path: str, summary: dict) -> None:
    """JSON with the aggregates first and one line per member, so it stays readable with
    thousands of members."""
    head = {k: v for k, v in summary.items() if k != "members"}
    text = json.dumps(head, indent=1)[:-2]
    rows = ",\n  ".join(json.dumps(m) for m in summary.get("members", []))
    with open(path, "w") as f:
        f.write(f'{text},\n "members": [\n  {rows}\n ]\n}}\n')


def default_chunk(num_updates: int) -> int:
    """About 20 chunks per run; prefers a size that divides the run so the last chunk does not
    need a second compilation."""
    target = max(1, math.ceil(num_updates / 20))
    divisors = [d for d in range(1, num_updates + 1) if num_updates % d == 0 and 10 <= num_updates // d <= 40]
    return min(divisors, key=lambda d: abs(d - target)) if divisors else target


def _latest_finite(values: np.ndarray | None, previous: np.ndarray) -> np.ndarray:
    """Per member, the last finite value of ``values[M, K]`` (else ``previous``); vectorised."""
    if values is None:
        return previous
    finite = np.isfinite(values)
    last = values.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1)
    return np.where(finite.any(axis=1), values[np.arange(values.shape[0]), last], previous)


def _postfix(steps: int, seconds: float, returns: np.ndarray, eval_return: np.ndarray | None) -> str:
    sps = steps / seconds if seconds > 0 else 0.0
    if returns.size <= 4:
        label, shown = "ret", returns
    else:  # quantiles across members: the bar costs the same at 4 or 4096 members
        with np.errstate(all="ignore"):
            shown = np.nanquantile(returns, [0.1, 0.5, 0.9]) if np.isfinite(returns).any() else np.full(3, np.nan)
        label = "ret p10/50/90"
    text = f"{sps:,.0f} steps/s {label} " + " ".join(f"{r:.1f}" for r in shown)
    if eval_return is not None:
        text += f" eval {np.mean(eval_return):.1f}"
    return text


def _progress(enabled: bool, total: int, initial: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="step", unit_scale=True, desc=desc, disable=not enabled,
                dynamic_ncols=True)


def resume_runner(run_dir: str, on_chunk_end: Sequence[Callable] = (), cfg: Any = None,
                  grid: Sequence[dict] | None = None, allow_changed_config: bool = False) -> Runner:
    """A runner that continues the run in ``run_dir`` from its newest intact checkpoint.

    ``cfg``/``grid``: what the resuming command asks for (default: the run's own); it must keep
    the run's members and seeds, and may change the computation (keys outside ``runner.*``)
    only with ``allow_changed_config`` (see :mod:`rljax.resume`)."""
    from rljax.resume import check_changes, check_layout

    meta = read_run_json(run_dir)
    exp = load_experiment(meta["experiment"])
    saved = from_dict(exp.config_cls, meta["config"])
    cfg = saved if cfg is None else cfg
    changes = check_changes(saved, cfg, run_dir, allow_changed_config)
    grid = (meta.get("grid") or None) if grid is None else (list(grid) or None)
    runner = Runner(exp, cfg, run_dir, grid=grid, on_chunk_end=on_chunk_end, resume=True)
    check_layout(meta, [m.__dict__ for m in runner.members], run_dir)
    runner.config_changes = changes
    return runner


def find_run_dir(path: str) -> str:
    """``path`` or the run directory above it (accepts ``<run>/checkpoints[/latest]``).

    Without a ``run.json`` there or up to two levels above, ``path`` itself (normalised), so
    the caller's error names the directory the user gave, not one of its parents."""
    path = os.path.normpath(path)
    run_dir = path
    for _ in range(3):
        if os.path.isfile(os.path.join(run_dir, "run.json")):
            return run_dir
        if not os.path.isdir(run_dir):
            break
        run_dir = os.path.dirname(run_dir)
    return path


def load_run(path: str, best: bool = False, step: int | None = None, **runner_overrides: Any) -> tuple[Runner, Any]:
    """The runner of the run at ``path`` and its newest intact checkpointed state: ``latest``
    steps newest first, then ``best`` (with ``best``: the other way round). Damaged steps are
    skipped with one line on stderr; ``runner.restored_from`` says which step was used.
    ``step``: exactly that step (of ``latest``, else of ``best``), verified; a missing or
    damaged step is a one-line :class:`ConfigError`.

    ``runner_overrides`` replace ``runner.*`` config fields (e.g. ``eval_episodes``)."""
    run_dir = find_run_dir(path)
    meta = read_run_json(run_dir)
    exp = load_experiment(meta["experiment"])
    cfg = from_dict(exp.config_cls, meta["config"])
    if runner_overrides:
        cfg = dataclasses.replace(cfg, runner=dataclasses.replace(cfg.runner, **runner_overrides))
    runner = Runner(exp, cfg, run_dir, grid=meta.get("grid") or None)
    ckpt = Checkpointer(run_dir, cfg.runner.keep_latest, cfg.runner.keep_best)
    if best and ckpt.best is None:
        ckpt.close()
        raise ConfigError("this run keeps no best checkpoints")
    state, frozen = runner.abstract_carry()  # the placement the chunk is compiled for
    try:
        if step is not None:
            restored, runner.restored_from = _restore_step(ckpt, {"state": state, "frozen": frozen}, int(step), run_dir)
        else:
            order = ("best", "latest") if best else ("latest", "best")
            restored, runner.restored_from = ckpt.restore_verified({"state": state, "frozen": frozen}, order)
    finally:
        ckpt.close()
    return runner, restored["state"]


def _restore_step(ckpt: Checkpointer, abstract: Any, step: int, run_dir: str) -> tuple[Any, dict]:
    """Checkpoint ``step`` of ``latest`` (else ``best``), verified like every restore."""
    for which in ("latest", "best"):
        if (which == "latest" or ckpt.best is not None) and step in ckpt.steps(which):
            sealed = read_record(ckpt.root, which, step) is not None
            return ckpt.restore(abstract, step, which), {"which": which, "step": step, "checksum": sealed, "skipped": []}
    kept = sorted(set(ckpt.steps("latest")) | (set(ckpt.steps("best")) if ckpt.best is not None else set()))
    raise ConfigError(f"no checkpoint at step {step} in {run_dir}; saved steps: {', '.join(map(str, kept)) or 'none'}")
