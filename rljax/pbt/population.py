"""Population-based training inside the compiled program.

:class:`PBT` wraps any algorithm (PPO, EMPO, self-play, ...) whose state carries its traced
hyperparameters as ``state.hparams`` (the values ``--vary`` sets per member). The runner trains
the members as usual; after every update it calls :meth:`PBT.population_step` on the
member-batched state (the runner's only hook, :meth:`rljax.runner.Runner._batched_chunk`), and
every ``every`` updates that step

* **exploits** by truncation selection: within each population, the members ranked in the
  bottom ``fraction`` by their score copy the whole inner state (parameters, optimiser state,
  normalisation statistics, environment states, hyperparameters) of a member drawn uniformly
  from the top ``fraction``, keeping only their own PRNG key (``state.key``, when the inner
  state has one) so they do not replay the parent's future;
* **explores**: each copied member multiplies every explored hyperparameter by a factor drawn
  from ``factors`` (x0.8 or x1.25 by default), clipped to the key's bounds.

The score is an exponential moving average of an in-program metric of each update (by default
``episode_return``; ``NaN`` until the first finite value; members without a score rank last).
A copied member takes its parent's score.

Members and populations: the runner's members are ``members x seeds`` (grid-major); each
seed's ``members`` form one population, and populations never mix, so ``--seeds P`` trains P
independent populations in one program. Member ``j`` of the population of seed ``s`` starts
from ``fold_in(PRNGKey(s), j)``, and its initial explored values are spread over their bounds
in log space: one stratum of ``[log low, log high]`` per member (a per-key permutation of the
strata drawn from ``PRNGKey(s)``, a uniform position inside the stratum from the member's key).

Everything PBT needs is in :class:`PBTState` (score, key, and the lineage: each round's parent,
score and explored values), so the runner's checkpoints resume a PBT run exactly.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from rljax.algorithm import Algorithm
from rljax.errors import ConfigError

Array = jax.Array


@dataclass(frozen=True)
class Explored:
    """One explored hyperparameter: a ``vary_keys`` entry and its bounds (``0 < low < high``)."""

    key: str
    low: float
    high: float


@dataclass(frozen=True)
class PBTConfig:
    """``members``: members per population; ``every``: updates between rounds (0: never, i.e.
    independent members with the same initial spread, the baseline PBT is compared with);
    ``fraction``: truncation fraction (bottom copies top); ``factors``: explore multipliers;
    ``metric``: the update metric scored; ``smoothing``: weight of the newest value in the
    score's moving average."""

    members: int
    explore: tuple[Explored, ...]
    every: int = 10
    fraction: float = 0.25
    factors: tuple[float, ...] = (0.8, 1.25)
    metric: str = "episode_return"
    smoothing: float = 0.1

    def validate(self, vary_keys: tuple[str, ...], section: str, num_updates: int) -> None:
        """Raises ``ConfigError`` naming the first bad setting."""
        if self.members < 2:
            raise ConfigError(f"pbt: --members must be >= 2, got {self.members}")
        if self.every < 0:
            raise ConfigError(f"pbt: --every must be >= 0, got {self.every}")
        if self.every and self.every >= num_updates:
            raise ConfigError(f"pbt: --every {self.every} leaves no round in a run of {num_updates} updates")
        if not 0 < self.fraction <= 0.5:
            raise ConfigError(f"pbt: --fraction must be in (0, 0.5], got {self.fraction}")
        if not self.factors or any(not f > 0 for f in self.factors):
            raise ConfigError(f"pbt: explore factors must be > 0, got {self.factors}")
        if not 0 < self.smoothing <= 1:
            raise ConfigError(f"pbt: smoothing must be in (0, 1], got {self.smoothing}")
        if not self.explore:
            raise ConfigError("pbt: nothing to explore; give --explore SECTION.KEY=LOW:HIGH")
        for e in self.explore:
            if e.key not in vary_keys:
                raise ConfigError(f"pbt: {section}.{e.key} is not a vmappable hyperparameter; use one of "
                                  + ", ".join(f"{section}.{k}" for k in vary_keys))
            if not 0 < e.low < e.high:
                raise ConfigError(f"pbt: {section}.{e.key} bounds must satisfy 0 < low < high, got {e.low}:{e.high}")
        if len({e.key for e in self.explore}) != len(self.explore):
            raise ConfigError("pbt: an explored key is given twice")

    @property
    def truncation(self) -> int:
        """Members copied (and copied from) per population and round."""
        return max(1, int(math.floor(self.members * self.fraction)))


@struct.dataclass
class PBTHParams:
    inner: Any
    member: Array  # int32: index within the population


@struct.dataclass
class PBTState:
    inner: Any
    member: Array  # int32 index within the population
    key: Array  # PBT's own key (parents and explore factors)
    score: Array  # float32 moving average of the metric; NaN before the first value
    parents: Array  # int32[R]: the member copied at round r (own index: kept its state)
    scores: Array  # float32[R]: this member's score when round r was decided
    values: Array  # float32[R, E]: explored values after round r


def rounds(num_updates: int, every: int) -> int:
    """Rounds in a run: after updates ``every, 2 every, ...`` strictly before the last."""
    return (num_updates - 1) // every if every else 0


@dataclass(frozen=True, eq=False)
class PBT(Algorithm):
    """Population-based training around ``inner`` (see the module docstring)."""

    inner: Algorithm
    cfg: PBTConfig

    # -- static facts, from the inner algorithm --------------------------------------------
    @property
    def config_section(self) -> str:  # type: ignore[override]
        return self.inner.config_section

    @property
    def num_updates(self) -> int:
        return self.inner.num_updates

    @property
    def steps_per_update(self) -> int:
        return self.inner.steps_per_update

    @property
    def vary_keys(self) -> tuple[str, ...]:
        return tuple(self.inner.vary_keys) + ("member",)

    @property
    def num_rounds(self) -> int:
        return rounds(self.num_updates, self.cfg.every)

    def with_options(self, **options: Any) -> "PBT":
        return dataclasses.replace(self, inner=self.inner.with_options(**options))

    # -- per member --------------------------------------------------------------------------
    def hparams(self, variant: Any, member: float = 0, **overrides: Any) -> PBTHParams:
        return PBTHParams(self.inner.hparams(variant, **overrides), jnp.int32(member))

    def explored_values(self, h: Any) -> Array:
        """``float32[E]``: the member's explored values (a per-head vector counts by its mean)."""
        return jnp.stack([jnp.mean(jnp.asarray(getattr(h, e.key), jnp.float32)) for e in self.cfg.explore])

    def _with_values(self, h: Any, values: Array) -> Any:
        new = {e.key: jnp.full_like(getattr(h, e.key), values[i]) for i, e in enumerate(self.cfg.explore)}
        return h.replace(**new)

    def init_state(self, key: Array, variant: Any, hparams: PBTHParams) -> PBTState:
        n, j = self.cfg.members, hparams.member
        member_key = jax.random.fold_in(key, j)
        inner_key, spread_key, own_key = jax.random.split(member_key, 3)
        values = []
        for i, e in enumerate(self.cfg.explore):
            stratum = jax.random.permutation(jax.random.fold_in(key, i), n)[j]  # same permutation for a population
            u = (stratum + jax.random.uniform(jax.random.fold_in(spread_key, i))) / n
            values.append(jnp.exp(math.log(e.low) + u * (math.log(e.high) - math.log(e.low))))
        h = self._with_values(hparams.inner, jnp.stack(values).astype(jnp.float32))
        r = max(self.num_rounds, 1)
        return PBTState(inner=self.inner.init_state(inner_key, variant, h), member=j, key=own_key,
                        score=jnp.float32(jnp.nan), parents=jnp.full((r,), j, jnp.int32),
                        scores=jnp.full((r,), jnp.nan, jnp.float32),
                        values=jnp.zeros((r, len(self.cfg.explore)), jnp.float32))

    def update(self, st: PBTState) -> tuple[PBTState, dict[str, Array]]:
        inner, metrics = self.inner.update(st.inner)
        if self.cfg.metric not in metrics:
            raise ConfigError(f"pbt: the update has no metric {self.cfg.metric!r}; available: "
                              + ", ".join(sorted(k for k in metrics if k != "episode_records")))
        x = jnp.asarray(metrics[self.cfg.metric], jnp.float32)
        a = self.cfg.smoothing
        avg = jnp.where(jnp.isnan(st.score), x, (1.0 - a) * st.score + a * x)
        score = jnp.where(jnp.isfinite(x), avg, st.score)
        values = self.explored_values(inner.hparams)
        metrics = dict(metrics, **{"pbt/score": score},
                       **{f"pbt/{e.key}": values[i] for i, e in enumerate(self.cfg.explore)})
        return st.replace(inner=inner, score=score), metrics

    def update_count(self, st: PBTState) -> Array:
        return self.inner.update_count(st.inner)

    def env_steps(self, st: PBTState) -> Array | None:
        return self.inner.env_steps(st.inner)

    def evaluation(self, st: PBTState, keys: Array, max_steps: int) -> dict[str, Array]:
        return self.inner.evaluation(st.inner, keys, max_steps)

    def eval_steps(self, variant: Any) -> int:
        return self.inner.eval_steps(variant)

    def nonfinite(self, st: PBTState, metrics: dict[str, Array]) -> dict[str, Array]:
        return self.inner.nonfinite(st.inner, metrics)

    def observation(self, st: PBTState) -> Array | None:
        return self.inner.observation(st.inner)

    # -- across members ----------------------------------------------------------------------
    def population_step(self, st: PBTState) -> PBTState:
        """One exploit/explore round on the member-batched state when one is due (after update
        ``every``, ``2 every``, ... before the last); otherwise ``st`` unchanged."""
        if not self.cfg.every:
            return st
        done = jnp.max(self.inner.update_count(st.inner))
        due = (done % self.cfg.every == 0) & (done > 0) & (done < self.num_updates)
        return jax.lax.cond(due, lambda s: self._round(s, done // self.cfg.every - 1), lambda s: s, st)

    def _round(self, st: PBTState, r: Array) -> PBTState:
        n = self.cfg.members
        m = st.score.shape[0]
        if m % n:
            raise ConfigError(f"pbt: {m} members do not form populations of {n}")
        p = m // n
        grouped = lambda x: x.reshape((n, p) + x.shape[1:])  # noqa: E731 -- members are grid-major
        flat = lambda x: x.reshape((m,) + x.shape[2:])  # noqa: E731
        score = grouped(st.score)
        order = jnp.argsort(-jnp.where(jnp.isnan(score), -jnp.inf, score), axis=0, stable=True)  # [rank, pop]
        rank = jnp.argsort(order, axis=0, stable=True)
        q = self.cfg.truncation
        keys = jax.vmap(lambda k: jax.random.split(k, 3))(st.key)  # [M, 3, ...]
        own, k_parent, k_factor = keys[:, 0], grouped(keys[:, 1]), keys[:, 2]
        pick = jax.vmap(jax.vmap(lambda k: jax.random.randint(k, (), 0, q)))(k_parent)  # [n, p]
        chosen = jnp.take_along_axis(order, pick, axis=0)
        copied = rank >= n - q
        parent = jnp.where(copied, chosen, jnp.arange(n)[:, None])  # [n, p], index within the population
        pops = jnp.arange(p)[None, :]
        take = lambda x: flat(grouped(x)[parent, pops])  # noqa: E731
        inner = jax.tree.map(take, st.inner)
        if hasattr(st.inner, "key"):
            inner = inner.replace(key=st.inner.key)  # the child keeps its own randomness
        factors = jnp.asarray(self.cfg.factors, jnp.float32)
        lows = jnp.asarray([e.low for e in self.cfg.explore], jnp.float32)
        highs = jnp.asarray([e.high for e in self.cfg.explore], jnp.float32)
        explored = jax.vmap(self.explored_values)(inner.hparams)  # [M, E]: the parents' values
        f = jax.vmap(lambda k: jax.random.choice(k, factors, (lows.shape[0],)))(k_factor)
        copied_flat = flat(copied)
        new_values = jnp.where(copied_flat[:, None], jnp.clip(explored * f, lows, highs), explored)
        inner = inner.replace(hparams=jax.vmap(self._with_values)(inner.hparams, new_values))
        rows = jnp.arange(m)
        return st.replace(
            inner=inner, key=own,
            score=jnp.where(copied_flat, take(st.score), st.score),
            parents=st.parents.at[rows, r].set(flat(parent).astype(jnp.int32)),
            scores=st.scores.at[rows, r].set(st.score),
            values=st.values.at[rows, r].set(new_values),
        )
