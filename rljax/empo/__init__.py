"""EMPO (soft maximisation of aggregate human power), phase 2, over any finite world model.

* :mod:`rljax.empo.world_model`: the protocol, :class:`~rljax.empo.world_model.FiniteWorld`
  (enumerated states, per-joint-action transition probabilities, humans, robots, goals,
  features); environments implement it (e.g. ``rljax.environments.multigrid.finite_world``).
* :mod:`rljax.empo.world`: the operations the trainer acts through; ``TableWorld`` of a finite
  world, ``WorldBase`` for an environment's own world of full states.
* :mod:`rljax.empo.prior`: the tabular goal-conditioned Boltzmann human prior of phase 1.
* :mod:`rljax.empo.oracle`: exact tabular phase 2 (eqs 4-9) by backward induction.
* :mod:`rljax.empo.config`: ``Phase2Config`` and its presets.
* :mod:`rljax.empo.schedules`: warm-up stages, active networks, the beta_r ramp, learning-rate
  and epsilon schedules, replay clearing (pure jnp functions of the training step).
* :mod:`rljax.empo.replay`: an in-JAX replay ring buffer.
* :mod:`rljax.empo.trainer`: the phase-2 trainer behind the runner's Algorithm protocol.

This package imports no environment: multigrid's adapter, heuristic prior and named worlds live
in ``environments/multigrid*.py``.
"""
