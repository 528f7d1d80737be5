"""Phase 1 of EMPO: the human policy prior ``pi_h(a | s, g)`` over a finite world.

:func:`boltzmann_prior`: goal-conditioned Boltzmann policies by backward induction over the time
layers of a :class:`~rljax.empo.world_model.FiniteWorld`. For a goal achieved in ``s``:
``V_h = 1`` and a uniform policy; otherwise
``Q_h(a) = gamma_h * E_{a_r ~ mu_r} E_{a_-h ~ mu_-h} E_{s'}[V_h(s', g)]``,
``pi_h = softmax(beta_h * (Q_h - max Q_h))``, ``V_h = sum_a pi_h Q_h``; at the terminal layer
``V_h = 1[achieved]``. ``mu_r`` (the believed robot joint-action distribution) and ``mu_-h`` (the
other humans') are uniform unless given.

Environments may supply their own prior instead (e.g. multigrid's heuristic potential policy in
``rljax.environments.multigrid_prior``): the trainer and the oracle take any policy table.

Array conventions: a policy table is ``[S, n_h, G, A]`` (time-invariant) or
``[T, S, n_h, G, A]`` (layer ``t`` = step count ``t``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from rljax.empo.world_model import FiniteWorld

Array = jax.Array


def goal_marginal(policy: Array, goal_probs: Array) -> Array:
    """``mu_h(a | s) = sum_g p_h(g) pi_h(a | s, g)``: ``[..., n_h, G, A] -> [..., n_h, A]``."""
    return jnp.einsum("...hga,hg->...ha", policy, goal_probs)


@jax.jit
def boltzmann_prior(
    world: FiniteWorld,
    beta_h: float = 10.0,
    gamma_h: float = 0.99,
    robot_policy: Array | None = None,
    humans_policy: Array | None = None,
) -> tuple[Array, Array]:
    """Backward induction of the goal-conditioned Boltzmann prior (see the module docstring).

    Args:
        world: the finite world (horizon ``T``).
        beta_h: inverse temperature (``jnp.inf`` gives the uniform policy over argmax actions).
        gamma_h: discount.
        robot_policy: ``float[S, A_r]`` believed robot joint-action distribution; ``None`` is uniform.
        humans_policy: ``float[S, n_h, A]`` believed action distribution of every human (the row
            of the human being solved is ignored); ``None`` is uniform.

    Returns:
        ``(policy[T, S, n_h, G, A], values[T + 1, S, n_h, G])``.
    """
    s_count, a_r = world.num_states, world.num_robot_actions
    n_h, a = world.n_humans, world.actions_per_human
    ach = world.achieved.astype(jnp.float32)
    mu_r = jnp.full((s_count, a_r), 1.0 / a_r) if robot_policy is None else robot_policy
    mu = jnp.full((s_count, n_h, a), 1.0 / a) if humans_policy is None else humans_policy
    beta_h = jnp.asarray(beta_h, jnp.float32)

    def layer(v_next, _):
        ev = jnp.einsum("srak,srakhg->sahg", world.next_prob * mu_r[:, :, None, None], v_next[world.next_state])
        ev = ev.reshape(s_count, *([a] * n_h), n_h, ev.shape[-1])  # [S, A (human 0), ..., A (human n_h-1), n_h, G]
        pols, vals = [], []
        for h in range(n_h):
            x = ev[..., h, :]
            for j in reversed(range(n_h)):
                if j == h:
                    continue
                shape = [s_count] + [1] * n_h + [1]
                shape[1 + j] = a
                x = (x * mu[:, j].reshape(shape)).sum(axis=1 + j, keepdims=True)
            q = gamma_h * jnp.moveaxis(x.reshape(s_count, a, -1), 1, -1)  # [S, G, A]
            z = q - q.max(-1, keepdims=True)
            greedy = (z >= 0).astype(jnp.float32)
            greedy = greedy / greedy.sum(-1, keepdims=True)
            p = jnp.where(jnp.isinf(beta_h), greedy, jax.nn.softmax(jnp.where(jnp.isinf(beta_h), 0.0, beta_h) * z, -1))
            v = (p * q).sum(-1)
            done = ach[:, h, :, None] > 0
            pols.append(jnp.where(done, 1.0 / a, p))
            vals.append(jnp.where(done[..., 0], 1.0, v))
        v = jnp.stack(vals, 1)
        return v, (jnp.stack(pols, 1), v)

    _, (policy, values) = jax.lax.scan(layer, ach, None, length=world.horizon, reverse=True)
    return policy, jnp.concatenate([values, ach[None]], axis=0)
