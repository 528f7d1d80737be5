"""The finite world model EMPO plans and learns in: the protocol between :mod:`rljax.empo` and
any environment.

A :class:`FiniteWorld` is an enumerated, finite-horizon, multi-agent world, as arrays:

* **states** ``s = 0 .. S-1``; state 0 is the initial state. Time is not part of a state:
  every quantity is indexed by ``(t, s)`` with ``t = 0 .. T`` the step count, and ``t = T``
  (``horizon``) is terminal. A world whose episodes end earlier makes its end states absorbing
  (a self-loop under every action).
* **agents**: ``n_h`` humans, each with the same ``A`` actions (``actions_per_human``; the human
  joint action is ``a_h = sum_i a_i A^(n_h-1-i)``, first human most significant), and robots,
  which act through one robot joint action ``a_r`` of ``A_r`` (``num_robot_actions``: however
  the environment numbers its robots' action profiles).
* **transitions**: under joint action ``(a_r, a_h)`` state ``s`` has ``K`` listed outcomes;
  outcome ``k`` leads to ``next_state[s, a_r, a_h, k]`` with probability
  ``next_prob[s, a_r, a_h, k]`` (each row sums to 1; repeated successors are allowed, so every
  row may list the same ``K``). The dynamics do not depend on ``t``.
* **goals**: human ``h`` has ``G`` possible goals; goal ``g`` is achieved in ``s`` when
  ``achieved[s, h, g]``, is drawn with probability ``goal_probs[h, g]`` (padding goals have
  probability 0) and carries the weight ``goal_weights[h, g]`` of ``X_h = E_g[w V_h^e^zeta]``.
* **features** for the networks: ``state_features[s]`` (any ``D`` numbers, e.g. a one-hot
  grid; booleans are fine) and ``goal_features[h, g]`` (``F`` numbers per goal, the goal
  encoder's input).

The human prior of phase 1 is NOT part of the world: it is a policy table
``[S, n_h, G, A]`` (or ``[T, S, n_h, G, A]``) that the environment supplies (e.g. multigrid's
heuristic potential policy) or :func:`rljax.empo.prior.boltzmann_prior` computes from the world.

:func:`check_world` validates the shapes and probabilities with one-line errors; environments
build the object (e.g. ``rljax.environments.multigrid.finite_world``) and :mod:`rljax.empo` reads
nothing else about them.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

Array = jax.Array


@struct.dataclass
class FiniteWorld:
    """An enumerated world (see the module docstring for the meaning of every field).

    Shapes: ``S`` states, ``A_r`` robot joint actions, ``A_h = A ** n_h`` human joint actions,
    ``K`` outcomes per joint action, ``n_h`` humans, ``G`` goals per human, ``D`` state and ``F``
    goal features.
    """

    next_state: Array  # int32[S, A_r, A_h, K]
    next_prob: Array  # float32[S, A_r, A_h, K]
    achieved: Array  # bool[S, n_h, G]
    goal_probs: Array  # float32[n_h, G]
    goal_weights: Array  # float32[n_h, G]
    state_features: Array  # [S, D] (bool or float)
    goal_features: Array  # float32[n_h, G, F]
    horizon: int = struct.field(pytree_node=False)  # T: t = T is terminal
    actions_per_human: int = struct.field(pytree_node=False)  # A

    @property
    def num_states(self) -> int:
        return int(self.next_state.shape[0])

    @property
    def num_robot_actions(self) -> int:
        return int(self.next_state.shape[1])

    @property
    def num_human_actions(self) -> int:
        """``A_h = A ** n_h``: human joint actions."""
        return int(self.next_state.shape[2])

    @property
    def num_outcomes(self) -> int:
        return int(self.next_state.shape[3])

    @property
    def n_humans(self) -> int:
        return int(self.achieved.shape[1])

    @property
    def n_goals(self) -> int:
        return int(self.achieved.shape[2])


def human_joint(per_human: Array, num_actions: int) -> Array:
    """The human joint action of per-human actions ``[..., n_h]`` (first human most significant)."""
    n_h = per_human.shape[-1]
    w = jnp.asarray(num_actions ** np.arange(n_h - 1, -1, -1), jnp.int32)
    return (per_human.astype(jnp.int32) * w).sum(-1)


def uniform_outcomes(world: FiniteWorld) -> bool:
    """Whether every listed outcome has probability exactly ``1/K`` (host-side check): then
    sampling picks an outcome index uniformly and expectations are plain means over ``K``."""
    p = np.asarray(world.next_prob)
    return bool(np.all(p == np.float32(1.0 / world.num_outcomes)))


def reachable_steps(world: FiniteWorld) -> np.ndarray:
    """``bool[T, S]``: state ``s`` can occur at step ``t`` from state 0 (forward propagation over
    the outcomes of positive probability under every joint action; host-side numpy)."""
    nxt, p = np.asarray(world.next_state), np.asarray(world.next_prob)
    out = np.zeros((world.horizon, world.num_states), bool)
    here = np.zeros(world.num_states, bool)
    here[0] = True
    for t in range(world.horizon):
        out[t] = here
        here = np.zeros_like(here)
        here[nxt[out[t]][p[out[t]] > 0]] = True
    return out


def check_world(world: FiniteWorld) -> FiniteWorld:
    """``world`` if its arrays are consistent, else ``ValueError`` naming the field."""
    s, a_r, a_h, k = world.next_state.shape
    n_h, g = world.goal_probs.shape

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise ValueError(f"FiniteWorld: {what}")

    need(world.horizon >= 1, f"horizon={world.horizon} is invalid: must be >= 1")
    need(world.actions_per_human >= 1 and world.actions_per_human**n_h == a_h,
         f"next_state has {a_h} human joint actions, expected actions_per_human**n_h = "
         f"{world.actions_per_human}**{n_h}")
    need(world.next_prob.shape == (s, a_r, a_h, k), f"next_prob shape {world.next_prob.shape} != next_state shape {(s, a_r, a_h, k)}")
    nxt, p = np.asarray(world.next_state), np.asarray(world.next_prob, np.float64)
    need(bool(np.all((nxt >= 0) & (nxt < s))), f"next_state holds an index outside [0, {s})")
    need(bool(np.all(p >= 0) and np.allclose(p.sum(-1), 1.0, atol=1e-5)), "next_prob rows must be >= 0 and sum to 1")
    need(world.achieved.shape == (s, n_h, g), f"achieved shape {world.achieved.shape} != (S, n_h, G) = {(s, n_h, g)}")
    need(world.goal_weights.shape == (n_h, g), f"goal_weights shape {world.goal_weights.shape} != {(n_h, g)}")
    need(bool(np.allclose(np.asarray(world.goal_probs, np.float64).sum(-1), 1.0, atol=1e-5)), "goal_probs rows must sum to 1")
    need(world.state_features.ndim == 2 and world.state_features.shape[0] == s,
         f"state_features shape {world.state_features.shape} is invalid: need [S={s}, D]")
    need(world.goal_features.ndim == 3 and world.goal_features.shape[:2] == (n_h, g),
         f"goal_features shape {world.goal_features.shape} is invalid: need [n_h={n_h}, G={g}, F]")
    return world


def weighted_sum_goals(world: FiniteWorld) -> FiniteWorld:
    """The same world with ``X_h = sum_g w_h(g) V_h^e(s, g)^zeta`` (the weighted SUM over the goal
    set, as the original's ``phase2_backward_induction`` example aggregates) instead of the
    expectation ``sum_g p_h(g) w_h(g) V^zeta``: the weights become ``w / p`` (0 for padding goals
    of probability 0), so every consumer of the expectation computes the sum."""
    p = np.asarray(world.goal_probs, np.float64)
    w = np.where(p > 0, np.asarray(world.goal_weights, np.float64) / np.where(p > 0, p, 1.0), 0.0)
    return world.replace(goal_weights=jnp.asarray(w, jnp.float32))
