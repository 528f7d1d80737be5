"""A trained EMPO robot as a policy: what :func:`rljax.load` returns for an EMPO run.

The robot's policy is ``pi_r = softmax(-beta_r * log(-Q_r))`` (:func:`rljax.empo.oracle.
robot_policy`) of the member's learned ``Q_r`` at its nominal ``beta_r``, as the run's
evaluation scores it. Its "observation" is a situation of the run's world (``(t, s)`` of an
enumerated map, or a full multigrid state on the ensemble; :mod:`rljax.empo.world`), and its
action the robots' joint action index. The humans are not learned: :meth:`EmpoRobotPolicy.
episode` plays them from the world's phase-1 prior, each with a goal drawn afresh every step
from the goal distribution (the goal-marginal humans of the run's evaluation).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp

from rljax.empo.oracle import robot_policy
from rljax.empo.targets import exact_last_step

Array = jax.Array


@dataclass(frozen=True, eq=False)  # hashed by identity, so jax.jit(policy) caches per policy
class EmpoRobotPolicy:
    """One EMPO member's robot: ``policy(ws, key, deterministic=False) -> a_r`` for situations
    ``ws`` with any leading batch shape ``L`` (leaves ``[*L, ...]``) -> ``int32[*L]``; pure,
    jittable. ``deterministic``: the most probable action instead of a draw. Not recurrent
    (``initial_carry`` is ``()``), so it drops into the same loops as PPO policies."""

    trainer: Any  # rljax.empo.trainer.EmpoTrainer (its world, model and config)
    params: dict
    hparams: Any  # the member's EmpoHParams (beta_r, eta, xi, ...)
    info: dict = field(default_factory=dict)
    recurrent = False

    @property
    def world(self) -> Any:
        return self.trainer.world

    def initial_carry(self, batch_shape: tuple[int, ...] | int = ()) -> tuple:
        return ()

    def probabilities(self, ws: Any) -> Array:
        """``pi_r[*L, A_r]``: the learned robot policy at situations ``ws``."""
        model, h, w = self.trainer.model, self.hparams, self.world
        q = model.q_r(self.params, model.points(w, ws), h.eta * h.xi)
        q = exact_last_step(q, w.t(ws), w.horizon, h.gamma_r, self.trainer.cfg.terminal_v_r)
        return robot_policy(q, h.beta_r)

    def __call__(self, ws: Any, key: Array, carry: Any = None, deterministic: Any = False) -> Array:
        pi = self.probabilities(ws)
        greedy = jnp.argmax(pi, axis=-1).astype(jnp.int32)
        if isinstance(deterministic, bool) and deterministic:
            return greedy
        drawn = jax.random.categorical(key, jnp.log(pi), axis=-1).astype(jnp.int32)
        return drawn if isinstance(deterministic, bool) else jnp.where(deterministic, greedy, drawn)

    def episode(self, key: Array, max_steps: int, deterministic: bool = True) -> tuple[Any, Array, Array]:
        """One episode from the world's initial situation, the robot on this policy and the
        humans on the prior: ``(situations, alive[T + 1], rewards[T])`` like
        :func:`rljax.render.play_episode` (``T = min(max_steps, horizon)``; ``rewards`` are 0:
        EMPO's reward is the humans' power, which the evaluation computes, not the world)."""
        w, trainer = self.world, self.trainer
        nh = w.n_humans
        steps = min(int(max_steps), int(w.horizon))

        def body(ws, x):
            k_r, u = x
            a_r = self(ws, k_r, deterministic=deterministic)
            goals = w.sample_goals(u[2:2 + nh])
            a_h = w.human_joint(trainer._human_actions(u[2 + nh:2 + 4 * nh].reshape(3, nh), w.prior(ws), goals,
                                                       jnp.zeros(())))
            nxt = w.step(u[1], ws, a_r, a_h)
            return nxt, nxt

        @jax.jit
        def run(key):
            k_reset, k_r, k_u = jax.random.split(key, 3)
            ws = w.reset(jax.random.uniform(k_reset))
            xs = (jax.random.split(k_r, steps), jax.random.uniform(k_u, (steps, 2 + 4 * nh)))
            _, seq = jax.lax.scan(body, ws, xs)
            return jax.tree.map(lambda first, rest: jnp.concatenate([first[None], rest]), ws, seq)

        return run(key), jnp.ones((steps + 1,), bool), jnp.zeros((steps,), jnp.float32)
