"""EMPO (soft maximisation of aggregate human power), phase 2 building blocks.

* :mod:`rljax.empo.prior`: the phase-1 human prior (tabular goal-conditioned Boltzmann by
  backward induction, and the heuristic potential policy).
* :mod:`rljax.empo.oracle`: exact tabular phase 2 (eqs 4-9) by backward induction.
* :mod:`rljax.empo.config`: ``Phase2Config`` and its presets.
* :mod:`rljax.empo.schedules`: warm-up stages, active networks, the beta_r ramp, learning-rate
  and epsilon schedules, replay clearing (pure jnp functions of the training step).
* :mod:`rljax.empo.replay`: an in-JAX replay ring buffer.

The environment model lives in :mod:`environments.multigrid`.
"""
