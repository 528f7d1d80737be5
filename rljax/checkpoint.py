"""Orbax checkpoints of the whole (member-batched) train state, verified before they are used.

Two managers under ``<run>/checkpoints``: ``latest`` keeps the newest N (used by ``--resume``)
and ``best`` keeps the N best by mean evaluation return. Orbax writes to a temporary directory
and renames it when complete, so a run killed mid-save resumes from the last complete step.

Integrity. Once Orbax has finished a step, the step is *sealed*: ``checkpoints/integrity/
<which>/<step>.json`` records the size and SHA-256 of every file in the step directory. We hash
the files rather than the arrays because the check must run *before* Orbax reads anything:
Orbax's data files carry no checksums (100 random bytes in a data chunk restore silently as
wrong numbers), and a read error inside its asynchronous reader ends in dozens of tracebacks.
Sealing needs the step complete on disk, so it happens when Orbax says so (polled between
chunks, and always before the next save, on ``wait`` and on ``close``); a step completed just
before a crash may be unsealed and then gets the metadata check alone. The record lives outside
the step directory, so a deleted step directory is noticed, not skipped silently.

Restoring (:meth:`Checkpointer.restore_verified`) takes the newest step whose files match their
record and whose Orbax metadata (every array's name, shape and dtype) matches the abstract
target; damaged steps are skipped with one line each saying what was wrong, and what was used
and skipped is returned for the run's records. Orbax errors are caught into that line.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import threading
from typing import Any, Callable, Sequence

import jax
import numpy as np
import orbax.checkpoint as ocp

from rljax.errors import ConfigError

INTEGRITY_DIR = "integrity"
PBT_FILE = "pbt.json"  # a population-based training run's settings (rljax.pbt.run)
RECORD_FORMAT = 1


class CheckpointError(ConfigError):
    """No intact checkpoint to restore; the message names every step tried and what was wrong."""


class Checkpointer:
    def __init__(self, run_dir: str, keep_latest: int = 2, keep_best: int = 1, metadata: dict | None = None):
        self.root = os.path.abspath(os.path.join(run_dir, "checkpoints"))
        self.latest = ocp.CheckpointManager(
            os.path.join(self.root, "latest"),
            options=ocp.CheckpointManagerOptions(max_to_keep=keep_latest, create=True),
            metadata=metadata or {},
        )
        self.best = None
        # Two managers saving the same step collide on orbax's per-step barrier names when
        # several processes save; multi-process runs keep latest-N only.
        if keep_best > 0 and jax.process_count() == 1:
            self.best = ocp.CheckpointManager(
                os.path.join(self.root, "best"),
                options=ocp.CheckpointManagerOptions(
                    max_to_keep=keep_best, best_fn=lambda m: m["eval_return"], best_mode="max", create=True
                ),
                metadata=metadata or {},
            )
        self._unsealed: dict[str, list[int]] = {"latest": [], "best": []}

    def _managers(self) -> dict[str, Any]:
        return {"latest": self.latest, **({"best": self.best} if self.best is not None else {})}

    # -- saving ----------------------------------------------------------------------------
    def save(self, step: int, state: Any, eval_return: float | None = None) -> None:
        self.seal(block=True)  # orbax waits for the previous save here anyway
        state = without_empty(state)
        self.latest.save(step, args=ocp.args.StandardSave(state))
        self._unsealed["latest"].append(step)
        if self.best is not None and eval_return is not None:
            self.best.save(step, args=ocp.args.StandardSave(state), metrics={"eval_return": float(eval_return)})
            self._unsealed["best"].append(step)

    def seal(self, block: bool = False) -> None:
        """Writes the integrity record of every step this checkpointer saved that Orbax has
        finished (``block``: waits for it), and drops the records of steps Orbax removed."""
        for which, mngr in self._managers().items():
            if not self._unsealed[which]:
                continue  # a reader never prunes: a missing step must stay noticed
            if block:
                mngr.wait_until_finished()
            elif mngr.is_saving_in_progress():
                continue
            if jax.process_index() == 0:
                kept = set(mngr.all_steps())
                for step in self._unsealed[which]:
                    if step in kept:
                        write_record(self.root, which, step)
                prune_records(self.root, which, kept)
            self._unsealed[which] = []

    def poll(self) -> None:
        """Seals finished steps without waiting (cheap when nothing finished)."""
        self.seal(block=False)

    def wait(self) -> None:
        for mngr in self._managers().values():
            mngr.wait_until_finished()
        self.seal(block=True)

    def close(self) -> None:
        try:
            self.seal(block=True)
        finally:
            self.latest.close()
            if self.best is not None:
                self.best.close()

    # -- reading ---------------------------------------------------------------------------
    def latest_step(self) -> int | None:
        return self.latest.latest_step()

    def steps(self, which: str) -> list[int]:
        """Candidate steps of ``which``, in the order a restore tries them: ``latest`` newest
        first, ``best`` best first; steps with a record but no directory are included."""
        mngr = self.latest if which == "latest" else self.best
        on_disk = list(mngr.all_steps()) if mngr is not None else []
        recorded = record_steps(self.root, which)
        steps = sorted(set(on_disk) | set(recorded), reverse=True)
        if which == "best" and mngr is not None and mngr.best_step() is not None:
            steps.remove(mngr.best_step())
            steps.insert(0, mngr.best_step())
        return steps

    def verify(self, which: str, step: int, abstract_state: Any) -> tuple[str | None, bool]:
        """``(what is wrong or None, whether the files were checked against a record)``."""
        step_dir = os.path.join(self.root, which, str(step))
        record = read_record(self.root, which, step)
        if not os.path.isdir(step_dir):
            return "step directory missing", record is not None
        if record is not None:
            problem = check_files(step_dir, record)
            if problem:
                return problem, True
        try:
            with contained_orbax():
                with ocp.StandardCheckpointer() as reader:
                    saved = reader.metadata(os.path.join(step_dir, "default")).item_metadata
        except Exception as e:  # orbax raises many kinds on damaged metadata
            return f"orbax metadata unreadable ({_first_line(e)})", record is not None
        return compare_metadata(saved, without_empty(abstract_state)), record is not None

    def restore(self, abstract_state: Any, step: int | None = None, which: str = "latest") -> Any:
        """The verified state of ``step`` (default: the newest intact step of ``which``)."""
        if which == "best" and self.best is None:
            raise ConfigError("this run keeps no best checkpoints")
        if step is None:
            return self.restore_verified(abstract_state, (which,))[0]
        problem, _ = self.verify(which, step, abstract_state)
        if problem:
            raise CheckpointError(f"checkpoint {which}/{step} in {self.root} is damaged: {problem}")
        return self._orbax_restore(which, step, abstract_state)

    def restore_verified(self, abstract_state: Any, order: Sequence[str] = ("latest",),
                         warn: Callable[[str], None] | None = None) -> tuple[Any, dict]:
        """The newest intact state, trying the steps of each manager in ``order`` in turn.

        Returns ``(state, restored_from)`` with ``restored_from = {"which", "step",
        "checksum": bool, "skipped": [{"which", "step", "reason"}]}``. Damaged steps are
        reported by ``warn`` (default: one line on stderr), all in one line; raises
        :class:`CheckpointError` (one line) when no step is intact."""
        warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))
        skipped: list[dict] = []
        for i, which in enumerate(order):
            if which == "best" and self.best is None:
                continue
            steps = self.steps(which)
            if not steps and i == 0 and len(order) > 1:  # falling back past an empty kind is said too
                skipped.append({"which": which, "step": None, "reason": "none saved"})
            for step in steps:
                problem, sealed = self.verify(which, step, abstract_state)
                restored = None
                if problem is None:
                    try:
                        restored = self._orbax_restore(which, step, abstract_state)
                    except Exception as e:
                        problem = f"orbax could not read it ({_first_line(e)})"
                if problem is not None:
                    skipped.append({"which": which, "step": int(step), "reason": problem})
                    continue
                info = {"which": which, "step": int(step), "checksum": sealed, "skipped": skipped}
                if skipped:
                    warn(f"rljax: warning: {_describe(skipped)}; restored {which}/{step} instead")
                return restored, info
        where = " or ".join(order)
        if not any(s["step"] is not None for s in skipped):
            raise CheckpointError(f"no complete {where} checkpoint in {self.root}")
        raise CheckpointError(f"no intact {where} checkpoint in {self.root}: {_describe(skipped)}")

    def _orbax_restore(self, which: str, step: int, abstract_state: Any) -> Any:
        mngr = self.latest if which == "latest" else self.best
        with contained_orbax():
            restored = mngr.restore(step, args=ocp.args.StandardRestore(without_empty(abstract_state)))
        return with_empty(restored, abstract_state)

    def quarantine(self, skipped: Sequence[dict]) -> None:
        """Moves skipped ``latest`` steps to ``checkpoints/damaged/`` (kept for inspection)
        so a resumed run can save those step numbers again; drops their records."""
        if jax.process_index() == 0:
            for s in skipped:
                if s["which"] != "latest":
                    continue
                src = os.path.join(self.root, "latest", str(s["step"]))
                if os.path.isdir(src):
                    dst = os.path.join(self.root, "damaged", f"latest-{s['step']}")
                    n = 1
                    while os.path.exists(dst):
                        n += 1
                        dst = os.path.join(self.root, "damaged", f"latest-{s['step']}-{n}")
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    shutil.move(src, dst)
                drop_record(self.root, "latest", s["step"])
        self.latest.reload()


def _describe(skipped: Sequence[dict]) -> str:
    return "; ".join(f"no {s['which']} checkpoint" if s["step"] is None else
                     f"checkpoint {s['which']}/{s['step']} is damaged: {s['reason']}" for s in skipped)


def _first_line(e: BaseException) -> str:
    while e.__cause__ is not None:  # the innermost error names the file and what failed
        e = e.__cause__
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300] if text else ''}"


# -- integrity records -----------------------------------------------------------------------
def _record_path(root: str, which: str, step: int) -> str:
    return os.path.join(root, INTEGRITY_DIR, which, f"{int(step)}.json")


def file_digests(step_dir: str) -> dict[str, dict]:
    """``{relative path: {"size", "sha256"}}`` of every file under ``step_dir``."""
    out = {}
    for dirpath, _, names in os.walk(step_dir):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            out[os.path.relpath(path, step_dir)] = {"size": os.path.getsize(path), "sha256": digest}
    return dict(sorted(out.items()))


def write_record(root: str, which: str, step: int) -> None:
    path = _record_path(root, which, step)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    record = {"format": RECORD_FORMAT, "which": which, "step": int(step),
              "files": file_digests(os.path.join(root, which, str(step)))}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f)
    os.replace(tmp, path)  # a record is whole or absent


def read_record(root: str, which: str, step: int) -> dict | None:
    path = _record_path(root, which, step)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            record = json.load(f)
        return record if isinstance(record.get("files"), dict) else {"files": None}
    except (OSError, ValueError):
        return {"files": None}


def record_steps(root: str, which: str) -> list[int]:
    folder = os.path.join(root, INTEGRITY_DIR, which)
    if not os.path.isdir(folder):
        return []
    return [int(n[:-5]) for n in os.listdir(folder) if n.endswith(".json") and n[:-5].isdigit()]


def drop_record(root: str, which: str, step: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(_record_path(root, which, step))


def prune_records(root: str, which: str, kept: set[int]) -> None:
    for step in record_steps(root, which):
        if step not in kept:
            drop_record(root, which, step)


def check_files(step_dir: str, record: dict) -> str | None:
    """What differs between the files of ``step_dir`` and their ``record``, else ``None``."""
    files = record.get("files")
    if files is None:
        return "its integrity record is unreadable"
    for rel, want in files.items():
        path = os.path.join(step_dir, rel)
        if not os.path.isfile(path):
            return f"{rel} is missing"
        size = os.path.getsize(path)
        if size != want["size"]:
            what = "truncated" if size < want["size"] else "grown"
            return f"{rel} is {what} ({size} of {want['size']} bytes)"
        with open(path, "rb") as f:
            if hashlib.file_digest(f, "sha256").hexdigest() != want["sha256"]:
                return f"{rel} fails its checksum"
    return None


# -- metadata against the restore target ------------------------------------------------------
def _empty(x: Any) -> bool:
    return hasattr(x, "shape") and 0 in tuple(x.shape)


def without_empty(tree: Any) -> Any:
    """``tree`` with its zero-size arrays replaced by ``None``. Why: Orbax refuses to save a
    zero-size array ("Cannot save arrays with zero size"), and a state may hold one (pursuit's
    full observation keeps an empty ``[..., 0, 43]`` history); it carries no data anyway."""
    return jax.tree.map(lambda x: None if _empty(x) else x, tree)


def with_empty(restored: Any, abstract_state: Any) -> Any:
    """The inverse of :func:`without_empty`: ``restored`` with the zero-size arrays of
    ``abstract_state`` (shapes, dtypes, shardings) put back in place of its ``None`` leaves."""
    want, treedef = jax.tree.flatten(abstract_state)
    if not any(_empty(x) for x in want):
        return restored
    got = jax.tree.flatten(restored, is_leaf=lambda x: x is None)[0]
    out = [jax.device_put(np.zeros(a.shape, a.dtype), getattr(a, "sharding", None)) if _empty(a) else r
           for a, r in zip(want, got)]
    return jax.tree.unflatten(treedef, out)


def _key_name(k: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def _flat(tree: Any) -> dict[str, Any]:
    leaves = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: x is None)[0]
    return {".".join(_key_name(k) for k in path): leaf for path, leaf in leaves if leaf is not None}


def compare_metadata(saved: Any, abstract_state: Any) -> str | None:
    """First difference between Orbax's saved metadata and the abstract target: a missing or
    unexpected array, or one whose shape or dtype differ; ``None`` when they agree."""
    have, want = _flat(saved), _flat(abstract_state)
    if not have:
        return "orbax metadata lists no arrays"
    for name, leaf in want.items():
        if name not in have:
            return f"array {name} is not in the checkpoint"
        got = have[name]
        shape, dtype = getattr(got, "shape", None), getattr(got, "dtype", None)
        if shape is not None and tuple(shape) != tuple(leaf.shape):
            return f"array {name} has shape {tuple(shape)}, expected {tuple(leaf.shape)}"
        if dtype is not None and np.dtype(dtype) != np.dtype(leaf.dtype):
            return f"array {name} has dtype {np.dtype(dtype)}, expected {np.dtype(leaf.dtype)}"
    extra = sorted(set(have) - set(want))
    if extra:
        return f"array {extra[0]} is in the checkpoint but not in this run's state"
    return None


# -- keeping orbax's failures to one line ------------------------------------------------------
_QUIET_LOGGERS = ("absl", "orbax", "asyncio", "tensorstore")


def _orbax_leftover(exc: BaseException | None, obj: Any = None) -> bool:
    """Whether a late report comes from an Orbax read abandoned after it failed: the
    coroutine or the traceback lives in orbax/tensorstore, or its event loop is gone."""
    if isinstance(exc, RuntimeError) and "Event loop is closed" in str(exc):
        return True
    code = getattr(obj, "cr_code", None)
    files = [code.co_filename] if code is not None else []
    tb = getattr(exc, "__traceback__", None)
    while tb is not None:
        files.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    return any(f"{os.sep}{pkg}{os.sep}" in f for f in files for pkg in ("orbax", "tensorstore"))


def _silence_abandoned_reads() -> None:
    """After an Orbax read failed, its other reads are abandoned mid-flight and report later,
    when collected (``Exception ignored in: <coroutine _read_array_index...>``, ``Event loop is
    closed``, dozens of them): drop those reports, and only those, for the rest of the process."""
    if getattr(sys.unraisablehook, "rljax_quiet", False):
        return
    unraisable, excepthook = sys.unraisablehook, threading.excepthook

    def quiet_unraisable(u: Any) -> None:
        if not _orbax_leftover(u.exc_value, u.object):
            unraisable(u)

    def quiet_thread(a: Any) -> None:
        if not _orbax_leftover(a.exc_value):
            excepthook(a)

    quiet_unraisable.rljax_quiet = True
    sys.unraisablehook, threading.excepthook = quiet_unraisable, quiet_thread
    logging.getLogger("asyncio").addFilter(lambda r: "orbax" not in r.getMessage())


@contextlib.contextmanager
def contained_orbax():
    """Runs an Orbax read with its logging and background-thread reports silenced, so a
    failure surfaces only as the exception the caller turns into one line."""
    loggers = [logging.getLogger(n) for n in _QUIET_LOGGERS]
    levels = [lg.level for lg in loggers]
    hook = threading.excepthook
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    threading.excepthook = lambda args: None
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        threading.excepthook = hook
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        if failed:
            _silence_abandoned_reads()


def abstract_like(state: Any) -> Any:
    """Shape/dtype/sharding skeleton of ``state`` for :meth:`Checkpointer.restore`."""
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, state)


def read_run_json(run_dir: str) -> dict:
    path = os.path.join(run_dir, "run.json")
    if not os.path.isdir(run_dir):
        raise ConfigError(f"run directory not found: {run_dir}")
    if not os.path.isfile(path):
        raise ConfigError(f"{run_dir} is not an rljax run directory (no run.json)")
    with open(path) as f:
        return json.load(f)


def write_run_json(run_dir: str, meta: dict) -> None:
    """Replaces ``run.json`` whole (written to a temporary file, then renamed)."""
    path = os.path.join(run_dir, "run.json")
    with open(path + ".tmp", "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(path + ".tmp", path)
