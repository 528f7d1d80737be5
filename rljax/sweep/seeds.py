"""Two training-seed streams that never meet: one for selection, one for validation.

A sweep picks its winner on the seeds its trials trained on; if a validation reused one of them,
the winning trial's selection run would sit inside its own validation sample, and the winner's
luck on that seed (the reason it won) would inflate its validated score -- the winner's curse
that validation exists to remove (Eimer, Lindauer & Raileanu 2023: keep tuning and test seeds
apart). So the two kinds of run draw their training seeds from disjoint ranges:

* **selection stream**: seeds ``SELECTION_BASE + i`` (``i = 0, 1, ...``); every sweep trial
  trains on the first ``n`` of them (``selection_seeds(n)``; common random numbers across
  trials). A sweep refuses a training seed below ``SELECTION_BASE``.
* **validation stream**: seeds ``0 .. SELECTION_BASE - 1``, e.g. the seed document's
  ``PHASE1_SEEDS``/``PHASE2_SEEDS`` or ``0..N-1``. A validation refuses a seed outside it, and
  one that its sweep directory records as a selection seed (sweeps written before the streams
  existed trained on small seeds; those are caught by the record).

The sweep's sampling seed (``--seed``: which hyperparameters each trial gets) is not a training
seed and belongs to neither stream.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from rljax.errors import ConfigError

SELECTION_BASE = 1_000_000


def selection_seeds(n: int) -> list[int]:
    """The first ``n`` seeds of the selection stream."""
    if n <= 0:
        raise ConfigError(f"the number of selection seeds must be > 0, got {n}")
    return [SELECTION_BASE + i for i in range(n)]


def check_selection(seeds: Sequence[int]) -> list[int]:
    """``seeds`` as ints; a seed outside the selection stream raises ``ConfigError``."""
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"sweep training seeds must be distinct and non-empty, got {seeds}")
    low = [s for s in seeds if s < SELECTION_BASE]
    if low:
        raise ConfigError(f"sweep training seed {low[0]} is in the validation stream (< {SELECTION_BASE}); "
                          f"selection seeds are {SELECTION_BASE} + i (rljax.sweep.seeds)")
    return seeds


def check_validation(seeds: Sequence[int], selection: Iterable[int]) -> list[int]:
    """``seeds`` as ints; raises ``ConfigError`` for a seed outside the validation stream or one
    that trained a selection run (``selection``: the sweep's recorded training seeds)."""
    seeds = [int(s) for s in seeds]
    used = set(int(s) for s in selection)
    leaked = [s for s in seeds if s in used]
    if leaked:
        raise ConfigError(f"validation seed {leaked[0]} was a selection seed of this sweep (it trained the "
                          f"trials being validated); choose seeds outside {sorted(used)}")
    high = [s for s in seeds if not 0 <= s < SELECTION_BASE]
    if high:
        raise ConfigError(f"validation seed {high[0]} is outside the validation stream [0, {SELECTION_BASE}) "
                          f"(rljax.sweep.seeds)")
    return seeds


def recorded_selection_seeds(sweep: dict) -> list[int]:
    """The training seeds a ``sweep.json`` records (old sweeps: ``train_seeds`` or ``seed``)."""
    for key in ("selection_seeds", "train_seeds"):
        if key in sweep:
            return [int(s) for s in sweep[key]]
    return [int(sweep.get("seed", 0))]
