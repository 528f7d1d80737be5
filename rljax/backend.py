"""Choices whose fastest answer depends on the backend, made in ONE place.

Every choice here is a config value that may be ``"auto"``; :func:`resolve` turns ``"auto"``
into the answer measured fastest on the backend JAX runs on, and passes explicit values
through unchanged. Results do not depend on the choice beyond float tolerance
(``tests/test_scale.py`` checks that on CPU); only speed does.

The figures that chose each default (CPU: this project's 2-core AMD EPYC VM, jax 0.10.2; GPU:
one NVIDIA H100, jax 0.11.2, measured by the project before this module existed, see
``docs/backend_choices.md`` for the commands):

``reset_branch`` / ``bootstrap_branch`` -- how the rare branches of a rollout step run: the
auto-reset of finished environments and the critic value of the final observation on
truncation. ``"cond"`` runs the branch only on steps where some environment needs it;
``"select"`` computes it on every step and selects.

- CPU: ``cond`` for both. A conditional is a cheap host-side branch on the CPU, while a
  select pays the branch's full cost every step. Goodhart's reset (an item placement on a
  100x100 grid) under a select cost 2 s of a 6.5 s update; CartPole with 64 members: 396 ms
  per update with ``cond``, 484 ms with ``select``. With one member (the reference loop of
  ``rljax.experiments.bench.handfused``, 1 seed, env-steps per CPU second, load 18, median of 3):

  ========================  =====  ==================
  reset / bootstrap          boot   no bootstrap
  ========================  =====  ==================
  cond / cond                199k   200k
  select / cond              148k   206k (select)
  select / select            137k
  ========================  =====  ==================

  so under two conds the truncation bootstrap costs nothing measurable, while a select reset
  next to a cond bootstrap loses 26%.
- CPU with the *rolled* threefry (``runner.threefry=rolled``), one member and a cheap reset
  (``Setup.cheap_reset``): ``select``. There CartPole with one member ran 3.60 ms per update
  against 4.74 ms with ``cond`` (1.32x): each of the reset's random calls was a 5-trip loop,
  which the select ran outside any conditional; the bootstrap followed the reset (the split
  "reset select, bootstrap cond" measured 3.61 ms, no different).
- GPU/TPU: ``select``. A conditional costs a device-to-host round trip of the predicate per
  step. Replacing every cond by a select made CartPole PPO 30% faster with 1 seed
  (49.9k -> 64.8k env-steps/s) and 16% faster with 1024 seeds on the H100.

``conv_impl`` -- small same-padded convolutions (Goodhart's BaseCNN).

- CPU: ``patches`` (patch extraction + one matmul, :mod:`rljax.networks.cnn`): 329-375 ms
  per batch-1024 update against 723-748 ms for XLA's convolution.
- GPU/TPU: ``lax`` (XLA's convolution, cuDNN on NVIDIA): 1.28 ms per update against 6.13 ms
  for the patch path on the H100; end to end 141k vs 34k env-steps/s.

``member_loop`` -- how the members (seeds x settings x variants) of one device run.

- ``vmap`` batches them: best when per-op overhead dominates (MLPs, many seeds). Default
  everywhere except below.
- ``map`` runs them one after another inside the same program. CPU with a convolutional
  network (``conv_heavy``): the CNN update is 1.5x faster (46 s vs 68 s per 4-member Goodhart
  update), because batched per-member weights turn the convolution matmuls into slower
  batched ones. On a GPU we have no measurement of this; ``vmap`` keeps the device busy.

``init_loop`` -- how the members' initial states (orthogonal initialisers use QR) are built in
the one initialisation program.

- CPU: ``map``. Batched QR inside a large vmapped program was seen to hang XLA's CPU
  intra-op pool on 2 cores (DESIGN.md); one QR at a time inside ``lax.map`` avoids batched
  LAPACK calls and still runs as one program (1024 CartPole members: see
  ``docs/backend_choices.md``). Reproduced since (2026-12-07, jax 0.10.2): two vmapped
  ``orthogonal`` initialisers per device under ``shard_map`` on 2 CPU devices hang every time
  (no collective in the program); one device, or one member per device, does not. An explicit
  ``vmap`` is therefore refused there with the key named.
- GPU/TPU: ``vmap`` (batched QR is a single cuSOLVER call there).

``threefry`` -- how JAX's threefry random hash (every ``jax.random`` split, uniform,
categorical) is lowered. It is the same integer hash either way, so the bits of every random
number, hence of every run, are identical; only the program differs.

- CPU: ``unrolled``. JAX lowers threefry on CPU as a rolled ``while`` loop of 5 trips (to keep
  compile times down); on XLA's CPU backend each trip runs ~16 kernels, so every random call
  inside a step costs ~80 kernel launches. Unrolled, the hash is one fusion. CartPole PPO, one
  member: a rollout step goes from 87 kernels + 1 nested loop + 3 calls to 54 kernels and no
  loop, a minibatch epoch from 46 kernels + 2 loops to 28 + 1 (docs/performance.md has the
  tables and the throughput).
- GPU/TPU: ``unrolled`` as well, which is JAX's own lowering there (nothing to change).

``codegen`` -- XLA's backend optimisation level for the run's programs (initialisation, training
chunks, evaluation).

- CPU with ``Setup.stalls_vectorizer`` (the pursuit self-play protocol with a recurrent cell in
  its policy: the original's history encoder, a bidirectional LSTM over the 10-frame window, or
  the engine's GRU policy): ``o1``. At XLA's default level the compile of Run V's protocol with
  the history encoder did not finish in 16 minutes, twice (2026-12-07, jax 0.10.2); gdb showed
  LLVM's loop vectorizer recursing in ``llvm::vputils::isSingleScalar`` (unchanged with
  ``--xla_llvm_disable_expensive_passes``), while the encoder's gradient alone compiles in 4 s.
  The GRU policy's protocol sat in the same function 3 and 5 minutes in, the second time with
  level 1 on the chunk and evaluation but not on the initialisation program. At level 1 on all
  three, both compile (GRU: about 2 minutes; history encoder: about 8, under load) and gdb no
  longer shows the vectorizer. Figures in docs/pursuit.md.
- Everything else: ``default`` (XLA's own level), so no other program changes. GPU/TPU:
  ``default``; the stall is in XLA CPU's LLVM pipeline and was not looked for elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax

from rljax.errors import ConfigError

BRANCH_MODES = ("auto", "cond", "select")
CONV_IMPLS = ("auto", "patches", "lax")
LOOP_MODES = ("auto", "vmap", "map")
THREEFRY_MODES = ("auto", "rolled", "unrolled")
CODEGEN_MODES = ("auto", "default", "o1")


def platform() -> str:
    """``"cpu"``, ``"gpu"`` or ``"tpu"`` for the default backend (initialises JAX's backends)."""
    p = jax.default_backend()
    return "gpu" if p in ("cuda", "rocm", "gpu") else p


def _check(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def branch_mode(value: str, name: str = "branch", members: int = 1, cheap_reset: bool = False,
                threefry_mode: str = "unrolled") -> str:
    """``"cond"`` or ``"select"`` for a rare branch (the auto-reset or the truncation
    bootstrap) of a run with ``members`` members under the ``threefry_mode`` lowering (see the
    module docstring)."""
    _check(name, value, BRANCH_MODES)
    if value != "auto":
        return value
    if platform() != "cpu":
        return "select"
    return "select" if threefry_mode == "rolled" and members == 1 and cheap_reset else "cond"


def conv_impl(value: str, name: str = "network.conv_impl") -> str:
    """``"patches"`` or ``"lax"`` for small same-padded convolutions."""
    _check(name, value, CONV_IMPLS)
    if value != "auto":
        return value
    return "patches" if platform() == "cpu" else "lax"


def member_loop(value: str, conv_heavy: bool = False, name: str = "runner.member_loop") -> str:
    """``"vmap"`` or ``"map"`` for the members of one device."""
    _check(name, value, LOOP_MODES)
    if value != "auto":
        return value
    return "map" if conv_heavy and platform() == "cpu" else "vmap"


def init_loop(value: str, name: str = "runner.init_loop", members: int = 1) -> str:
    """``"vmap"`` or ``"map"`` for building the members' initial states. ``"vmap"`` is refused
    on several CPU devices when one of them would initialise 2+ members: two batched LAPACK QRs
    per device under ``shard_map`` on 2 CPU devices hang XLA's runtime (jax 0.10.2, no
    collective in the program; one device, or one member per device, does not hang)."""
    _check(name, value, LOOP_MODES)
    if value == "auto":
        return "map" if platform() == "cpu" else "vmap"
    if value == "vmap" and platform() == "cpu":
        from rljax.sharding import member_groups

        groups = member_groups(members)
        if groups > 1 and members // groups > 1:
            raise ConfigError(
                f"{name}=vmap with {members} members on {groups} CPU devices: batched QR "
                f"initialisers hang XLA's CPU runtime when a device initialises 2+ members; use "
                f"{name}=map (the CPU default) or run on one CPU device")
    return value


def threefry(value: str, name: str = "runner.threefry") -> str:
    """``"rolled"`` or ``"unrolled"`` for the threefry hash (see the module docstring)."""
    _check(name, value, THREEFRY_MODES)
    return "unrolled" if value == "auto" else value


def codegen(value: str, stalls_vectorizer: bool = False, name: str = "runner.codegen") -> str:
    """``"default"`` or ``"o1"`` for the run's compiled programs (see the module docstring)."""
    _check(name, value, CODEGEN_MODES)
    if value != "auto":
        return value
    return "o1" if stalls_vectorizer and platform() == "cpu" else "default"


def compiler_options(mode: str) -> dict[str, str] | None:
    """XLA compiler options for ``Lowered.compile`` under the ``codegen`` mode ``mode`` (one
    program's options, not the process's ``XLA_FLAGS``)."""
    return {"xla_backend_optimization_level": "1"} if mode == "o1" else None


def apply_threefry(mode: str) -> None:
    """Makes JAX lower threefry on CPU ``mode`` (``"rolled"``: JAX's default there;
    ``"unrolled"``: the lowering JAX uses on GPUs). Process-wide, for programs compiled from now
    on; results are bit-identical either way (the same integer hash), so a process mixing both
    computes the same numbers. Does nothing where JAX's internals differ from jax 0.10's."""
    try:
        from jax._src.interpreters import mlir
        from jax._src.random import threefry2x32 as tf
    except ImportError:  # pragma: no cover - another JAX layout: keep JAX's default
        return
    rule = tf._threefry2x32_lowering_rule if mode == "unrolled" else tf._threefry2x32_cpu_lowering_rule
    mlir.register_lowering(tf.threefry2x32_p, rule, platform="cpu")


@dataclass(frozen=True)
class Choices:
    """The resolved choices of one run (no ``"auto"`` left); recorded in ``run.json``."""

    reset_branch: str
    bootstrap_branch: str
    member_loop: str
    init_loop: str
    platform: str
    threefry: str = "unrolled"
    codegen: str = "default"


def resolve(runner_cfg, conv_heavy: bool = False, members: int = 1, cheap_reset: bool = False,
            stalls_vectorizer: bool = False) -> Choices:
    """Resolves a :class:`~rljax.experiment.RunnerConfig`'s ``"auto"`` fields for a run of
    ``members`` members."""
    tf = threefry(getattr(runner_cfg, "threefry", "auto"))
    return Choices(
        reset_branch=branch_mode(runner_cfg.reset_branch, "runner.reset_branch", members, cheap_reset, tf),
        bootstrap_branch=branch_mode(runner_cfg.bootstrap_branch, "runner.bootstrap_branch", members, cheap_reset, tf),
        member_loop=member_loop(runner_cfg.member_loop, conv_heavy),
        init_loop=init_loop(runner_cfg.init_loop, members=members),
        platform=platform(),
        threefry=tf,
        codegen=codegen(getattr(runner_cfg, "codegen", "auto"), stalls_vectorizer),
    )
