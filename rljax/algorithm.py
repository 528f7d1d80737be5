"""The protocol between the runner and a training algorithm.

The runner (:mod:`rljax.runner`) owns everything that is the same for every algorithm:
members (variants x hyperparameter settings x seeds) as a leading batch axis, one batched
initialisation program, compiled chunks of updates, progress, logs, evaluation, divergence
checks, Orbax checkpoints and resume. An algorithm only supplies pure functions of ONE
member's state; the runner maps them over the member axis (``vmap`` or ``lax.map``, see
:mod:`rljax.backend`) and scans ``update`` into chunks.

PPO (:mod:`rljax.ppo`) is one algorithm behind this protocol, EMPO (:mod:`rljax.empo`) another,
two-agent self-play (:mod:`rljax.selfplay`) a third. A new one subclasses :class:`Algorithm`
(a frozen dataclass in practice) and implements the methods below.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

Array = jax.Array


class Algorithm:
    """What the runner drives. All array methods are pure and traced into compiled programs.

    Static facts (plain Python values):

    - ``config_section``: the config section whose numeric keys may differ per member
      (``--vary ppo.lr=...``); ``vary_keys`` lists those keys.
    - ``num_updates``: updates in a whole run; ``steps_per_update``: environment steps one
      update consumes (the x-axis of logs and the progress bar).
    - ``member_axis``: the name of the vmap axis over members when the runner uses one; an
      algorithm may reduce rare-branch predicates over it (:func:`rljax.envs.vec_env.any_member`).
    - ``reset_branch`` / ``bootstrap_branch``: ``"cond"`` or ``"select"`` for rare branches
      (:mod:`rljax.backend` resolves them); algorithms without such branches ignore them.
    """

    config_section: str = ""
    member_axis: str | None = None
    reset_branch: str = "cond"
    bootstrap_branch: str = "cond"

    # -- static facts ----------------------------------------------------------------------
    @property
    def num_updates(self) -> int:
        raise NotImplementedError

    @property
    def steps_per_update(self) -> int:
        raise NotImplementedError

    @property
    def vary_keys(self) -> tuple[str, ...]:
        return ()

    def with_options(self, **options: Any) -> "Algorithm":
        """A copy with runner-chosen options (``member_axis``, ``reset_branch``, ...) set."""
        known = {f.name for f in dataclasses.fields(self)} if dataclasses.is_dataclass(self) else set()
        return dataclasses.replace(self, **{k: v for k, v in options.items() if k in known})

    # -- per member ------------------------------------------------------------------------
    def hparams(self, variant: Any, **overrides: Any) -> Any:
        """Traced hyperparameters of one member (a pytree of arrays); ``overrides`` are values
        for ``vary_keys``. Called on the host, once per distinct (variant, setting)."""
        return ()

    def init_state(self, key: Array, variant: Any, hparams: Any) -> Any:
        """The initial state of one member; ``key`` is ``PRNGKey(seed)``, ``variant`` the
        member's task parameters. Runs inside the runner's batched initialisation program."""
        raise NotImplementedError

    def update(self, state: Any) -> tuple[Any, dict[str, Array]]:
        """One update; metrics are scalars (reduced inside), plus optionally
        ``episode_records`` (per-step arrays for episode logs)."""
        raise NotImplementedError

    def update_count(self, state: Any) -> Array:
        """Updates done so far (int32 scalar); resume continues from it."""
        raise NotImplementedError

    def env_steps(self, state: Any) -> Array | None:
        """Environment steps trained so far, where that is not ``update_count x
        steps_per_update`` (an algorithm whose later updates may idle, e.g. a self-play protocol
        that ended before its maximum length). ``None``: the static count is exact. Like
        :meth:`update_count` it must also work on the runner's member-batched state (``[M]``)."""
        return None

    def evaluation(self, state: Any, keys: Array, max_steps: int) -> dict[str, Array]:
        """Evaluation episodes ``[E]`` (one per key): ``return`` plus any other per-episode
        numbers. The runner logs the mean of ``return`` and keeps best checkpoints by it."""
        raise NotImplementedError

    def eval_steps(self, variant: Any) -> int:
        """Default step limit of one evaluation episode."""
        raise NotImplementedError

    def nonfinite(self, state: Any, metrics: dict[str, Array]) -> dict[str, Array]:
        """Divergence checks after an update: name -> bool scalar, True when that quantity is
        NaN or infinite. The runner stops the run (or freezes the member) on any."""
        return {}

    def observation(self, state: Any) -> Array | None:
        """The current observation batch ``[N, ...]`` (for dashboards), if there is one."""
        return None

    # -- across members (optional) -----------------------------------------------------------
    # ``population_step(batched_state) -> batched_state``: when an algorithm defines it (not
    # None), the runner applies it to the member-batched state ``[M, ...]`` after every update,
    # inside the compiled chunk (population-based training, :mod:`rljax.pbt`).
    population_step = None


def tree_all_finite(tree: Any) -> Array:
    """True when every float leaf of ``tree`` is finite.

    Checked on the sum of all entries: any NaN or infinity makes it non-finite, and it costs one
    fused reduction instead of one per leaf (a per-leaf check cost 4% of a CartPole update on
    CPU). A finite tree whose sum overflows (entries near 1e38) also counts as diverged."""
    leaves = [jnp.sum(x, dtype=jnp.float32) for x in jax.tree.leaves(tree) if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
    return jnp.isfinite(sum(leaves[1:], leaves[0])) if leaves else jnp.asarray(True)
