"""Verification suite for Goodhart foraging agents (library functions; the CLI wires them).

* :func:`directional_probes` / :func:`directional_accuracy`: 8 synthetic views with one food
  item 2 cells from the centre; the chosen action must move toward it. Expected action sets
  are derived from the environment's action table (the original's were transposed).
* :func:`survival_test`: agents live ``steps`` steps; deaths by poison and by starvation,
  final energy, deaths per 1000 agent-steps.
* :func:`saliency` and :func:`save_saliency_png`: gradient maps of the chosen logit.

``policy_fn(key, obs[V, V, 6]) -> action`` (one observation, int scalar) is the common
interface, so scripted seekers and trained networks plug in alike, e.g.
``lambda k, o: jnp.argmax(net.apply(params, o)[0])``.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from environments.foraging import ACTIONS, EMPTY, FOOD, FORAGING_MODES, Foraging, observation_from_cells, params_for_mode

Array = jax.Array
PolicyFn = Callable[[Array, Array], Array]

# Food offsets (dx, dy) of the 8 probes: the 4 sides, then the 4 diagonals, 2 cells away.
PROBE_OFFSETS = np.array([(-2, 0), (2, 0), (0, -2), (0, 2), (-2, -2), (2, -2), (-2, 2), (2, 2)], np.int32)


class DirectionalProbes(NamedTuple):
    obs: Array  # [8, V, V, 6] float32
    expected: np.ndarray  # [8, 8] bool: expected[i, a] = action a is correct for probe i
    offsets: np.ndarray  # [8, 2] (dx, dy) of the food from the agent


def expected_actions(offset: tuple[int, int] | np.ndarray) -> np.ndarray:
    """``[8]`` bools: the moves (from :data:`ACTIONS`) with a positive component toward ``offset``.

    For food straight left ``(-2, 0)`` that is every move with ``dx = -1``: {0, 1, 2}; for the
    up-left diagonal ``(-2, -2)`` it is {0 (up-left), 1 (left), 3 (up)}.
    """
    return (ACTIONS @ np.asarray(offset, np.int32)) > 0


def directional_probes(mode: str = "ground_truth", view_size: int = 11) -> DirectionalProbes:
    """The 8 probes rendered in observation ``mode`` (one of ``FORAGING_MODES``)."""
    params = params_for_mode(mode)
    r = view_size // 2
    obs = []
    for dx, dy in PROBE_OFFSETS:
        cells = np.full((view_size, view_size), EMPTY, np.int32)
        cells[r + dy, r + dx] = FOOD
        obs.append(observation_from_cells(jnp.asarray(cells), params))
    expected = np.stack([expected_actions(o) for o in PROBE_OFFSETS])
    return DirectionalProbes(jnp.stack(obs), expected, PROBE_OFFSETS.copy())


def directional_accuracy(policy_fn: PolicyFn, mode: str = "ground_truth", key: Array | None = None) -> float:
    """Fraction (k/8) of the probes on which ``policy_fn`` picks an expected action."""
    probes = directional_probes(mode)
    key = jax.random.key(0) if key is None else key
    actions = np.asarray(jax.vmap(policy_fn)(jax.random.split(key, len(PROBE_OFFSETS)), probes.obs))
    correct = probes.expected[np.arange(len(actions)), actions]
    return float(correct.sum()) / len(actions)


class SurvivalResult(NamedTuple):
    poison_deaths: int  # deaths on a step where the agent ate poison
    starvation_deaths: int  # all other deaths (energy ran out by moving)
    mean_final_energy: float  # energy of every agent after the last step, averaged
    deaths_per_1000_steps: float  # all deaths per 1000 agent-steps
    food_eaten: int
    poison_eaten: int


def survival_test(
    policy_fn: PolicyFn,
    mode: str,
    key: Array,
    runs: int = 3,
    steps: int = 1000,
    agents: int = 10,
    env: Foraging | None = None,
    **param_overrides: Any,
) -> SurvivalResult:
    """``runs x agents`` agents each live ``steps`` steps in observation/reward ``mode``.

    Every agent has its own grid (one environment per agent, vmapped) instead of the
    original's shared grid: the same item densities, no interaction between agents, and no
    multi-agent environment needed. There is no time limit; a dead agent is reset at once
    (new grid, full energy) and keeps counting. ``param_overrides`` go to
    :func:`params_for_mode` (e.g. ``max_food=0, min_food=0`` for the starvation check).
    """
    env = Foraging() if env is None else env
    params = params_for_mode(mode, **{"episode_length": steps + 1, **param_overrides})
    env.check_params(params)
    n = runs * agents

    @jax.jit
    def simulate(key):
        k0, key = jax.random.split(key)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k0, n), params)

        def step(carry, k):
            obs, state = carry
            ka, ks, kr = jax.random.split(k, 3)
            action = jax.vmap(policy_fn)(jax.random.split(ka, n), obs)
            obs2, state2, _, term, _, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(ks, n), state, action, params
            )
            r_obs, r_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(kr, n), params)
            obs3 = jnp.where(term[:, None, None, None], r_obs, obs2)
            state3 = jax.tree.map(lambda a, b: jnp.where(term.reshape((-1,) + (1,) * (a.ndim - 1)), a, b), r_state, state2)
            poisoned = term & (info["ep_poison"] > 0)
            counts = jnp.stack([poisoned.sum(), (term & ~poisoned).sum(), info["ep_food"].sum(), info["ep_poison"].sum()])
            return (obs3, state3), counts

        (_, final), counts = jax.lax.scan(step, (obs, state), jax.random.split(key, steps))
        return counts.sum(0), final.energy.mean()

    counts, energy = simulate(key)
    counts = np.asarray(counts).astype(int)
    deaths = int(counts[0] + counts[1])
    return SurvivalResult(
        poison_deaths=int(counts[0]),
        starvation_deaths=int(counts[1]),
        mean_final_energy=float(energy),
        deaths_per_1000_steps=1000.0 * deaths / (n * steps),
        food_eaten=int(counts[2]),
        poison_eaten=int(counts[3]),
    )


def saliency(apply_fn: Callable[[Any, Array], tuple[Array, Array]], params: Any, obs: Array) -> Array:
    """``|d logit[argmax] / d obs|`` with the same shape as ``obs`` (``[V, V, C]`` or ``[B, V, V, C]``).

    ``apply_fn(params, obs) -> (logits, value)`` is the actor-critic convention.
    """
    single = obs.ndim == 3
    batch = obs[None] if single else obs

    def chosen_logit(o):
        logits, _ = apply_fn(params, o[None])
        logits = logits[0]
        return logits[jax.lax.stop_gradient(jnp.argmax(logits))]

    grads = jax.vmap(jax.grad(chosen_logit))(batch.astype(jnp.float32))
    grads = jnp.abs(grads)
    return grads[0] if single else grads


def save_saliency_png(obs: Array, sal: Array, path: str, title: str | None = None) -> None:
    """Writes the view (cell type = argmax channel, blank where all zero) next to the
    channel-summed saliency of one observation ``obs[V, V, C]`` to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    obs, sal = np.asarray(obs), np.asarray(sal)
    view = np.where(obs.max(-1) > 0, obs.argmax(-1) + obs.max(-1), np.nan)
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.4))
    axes[0].imshow(view, cmap="viridis", vmin=0, vmax=6)
    axes[0].set_title("view (channel + value)")
    im = axes[1].imshow(sal.sum(-1), cmap="hot")
    axes[1].set_title("|d logit / d obs|")
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


__all__ = [
    "FORAGING_MODES",
    "DirectionalProbes",
    "SurvivalResult",
    "directional_accuracy",
    "directional_probes",
    "expected_actions",
    "save_saliency_png",
    "saliency",
    "survival_test",
]
