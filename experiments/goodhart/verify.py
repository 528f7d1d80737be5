"""Verification suite for Goodhart foraging agents (library functions; the CLI wires them).

* :func:`directional_probes` / :func:`directional_accuracy`: 8 synthetic views with one food
  item 2 cells from the centre; the chosen action must move toward it. Expected action sets
  are derived from the environment's action table (the original's were transposed).
* :func:`survival_test` / :func:`simulate_survival`: ``runs`` grids, each shared by ``agents``
  agents, live ``steps`` steps; deaths by poison and by starvation, final energy, deaths per
  1000 agent-steps, steps per death.
* :func:`starvation_step` / :func:`starvation_verdict`: the zero-food check (no food, no
  poison): every agent must starve exactly on the step the energy rules give, again and again.
* :func:`saliency` and :func:`save_saliency_png`: gradient maps of the chosen logit.
* :func:`run_verification`: all of it for every member of a trained ``goodhart`` run next to
  the scripted OmniscientSeeker and ProxySeeker (``python -m experiments.goodhart verify``).

``policy_fn(key, obs[V, V, 6]) -> action`` (one observation, int scalar) is the common
interface, so scripted seekers and trained networks plug in alike, e.g.
``lambda k, o: jnp.argmax(net.apply(params, o)[0])``.
"""
from __future__ import annotations

import json
import os
from functools import partial
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rljax.environments.foraging import (
    ACTIONS, EMPTY, FOOD, FORAGING_MODES, POISON, Foraging, observation_from_cells, params_for_mode, render_observation,
    stack_params,
)

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
    poison_deaths_per_1000_steps: float
    mean_survival_steps: float  # agent-steps per death (inf when nobody died)
    food_eaten: int
    poison_eaten: int
    food_per_1000_steps: float
    poison_per_1000_steps: float

    @classmethod
    def from_counts(cls, counts: np.ndarray, final_energy: float, agent_steps: int) -> "SurvivalResult":
        """``counts = [poison deaths, starvation deaths, food eaten, poison eaten]``."""
        counts = np.asarray(counts).astype(int)
        deaths = int(counts[0] + counts[1])
        return cls(
            poison_deaths=int(counts[0]),
            starvation_deaths=int(counts[1]),
            mean_final_energy=float(final_energy),
            deaths_per_1000_steps=1000.0 * deaths / agent_steps,
            poison_deaths_per_1000_steps=1000.0 * int(counts[0]) / agent_steps,
            mean_survival_steps=agent_steps / deaths if deaths else float("inf"),
            food_eaten=int(counts[2]),
            poison_eaten=int(counts[3]),
            food_per_1000_steps=1000.0 * int(counts[2]) / agent_steps,
            poison_per_1000_steps=1000.0 * int(counts[3]) / agent_steps,
        )


class SurvivalTrace(NamedTuple):
    counts: Array  # [4] = [poison deaths, starvation deaths, food eaten, poison eaten]
    final_energy: Array  # mean energy of every agent after the last step
    deaths: Array  # [steps, runs * agents] bool: agent (run-major) died on that step


def simulate_survival(
    policy_fn: Callable[[Any, Array, Array], Array],
    policy_params: Any,
    env_params: Any,
    key: Array,
    runs: int,
    agents: int,
    steps: int,
    env: Foraging,
) -> SurvivalTrace:
    """Pure core of the survival test: ``runs`` grids, ``agents`` agents sharing each grid
    (:meth:`Foraging.step_shared`: they act in index order and see each other as PREY), live
    ``steps`` steps.

    ``policy_fn(policy_params, keys[n, 2], obs[n, V, V, 6]) -> actions[n]`` acts for all
    ``n = runs * agents`` agents at once; ``env_params`` must have ``episode_length > steps``
    (no time-outs). A dead agent respawns at once on its grid (full energy; the grid and its
    item counts carry on). Jittable and vmappable over ``policy_params``/``env_params`` (e.g.
    every trained member in one program).
    """
    n = runs * agents
    k0, key = jax.random.split(key)
    obs, state = jax.vmap(env.reset_shared, in_axes=(0, None, None))(jax.random.split(k0, runs), env_params, agents)
    world_step = jax.vmap(env.step_shared, in_axes=(0, 0, 0, None))

    def step(carry, k):
        obs, state = carry
        ka, ks = jax.random.split(k)
        action = policy_fn(policy_params, jax.random.split(ka, n), obs.reshape((n,) + obs.shape[2:]))
        obs, state, _, term, _, info = world_step(jax.random.split(ks, runs), state, action.reshape(runs, agents), env_params)
        term = term.reshape(n)
        poisoned = term & (info["ep_poison"].reshape(n) > 0)
        counts = jnp.stack([poisoned.sum(), (term & ~poisoned).sum(), info["ep_food"].sum(), info["ep_poison"].sum()])
        return (obs, state), (counts, term)

    (_, final), (counts, deaths) = jax.lax.scan(step, (obs, state), jax.random.split(key, steps))
    return SurvivalTrace(counts.sum(0), final.energy.mean(), deaths)


def per_agent(policy_fn: PolicyFn) -> Callable[[Any, Array, Array], Array]:
    """Lifts a one-observation ``policy_fn(key, obs)`` to the batched survival interface."""
    return lambda _, keys, obs: jax.vmap(policy_fn)(keys, obs)


def survival_params(mode: str, steps: int, agents: int, env: Foraging, **param_overrides: Any):
    """Params of a survival world (no time-out within ``steps``), checked to hold ``agents``
    agents on distinct cells next to the items (``ValueError`` naming the field if not)."""
    params = params_for_mode(mode, **{**param_overrides, "episode_length": steps + 1})
    env.check_params(params)
    most = int(np.max(np.asarray(params.max_food) + np.asarray(params.max_poison)))
    if most + agents + 1 > env.grid_size**2:
        raise ValueError(f"foraging params: max_food+max_poison={most} is invalid: "
                         f"{agents} agents need <= {env.grid_size**2 - agents - 1}")
    return params


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
    """``runs`` independent grids, each shared by ``agents`` agents, live ``steps`` steps in
    observation/reward ``mode`` (the original's 3 runs x 1000 steps x 10 agents). There is no
    time limit; a dead agent respawns at once on its grid (full energy) and keeps counting.
    ``param_overrides`` go to :func:`params_for_mode` (e.g. ``max_food=0, min_food=0``).
    """
    env = Foraging() if env is None else env
    params = survival_params(mode, steps, agents, env, **param_overrides)
    sim = jax.jit(partial(simulate_survival, per_agent(policy_fn), runs=runs, agents=agents, steps=steps, env=env))
    trace = sim(None, params, key)
    return SurvivalResult.from_counts(trace.counts, trace.final_energy, runs * agents * steps)


# The original's starvation validity test: no food (and no poison), low energy, a high move cost.
STARVATION_WORLD = dict(min_food=0, max_food=0, min_poison=0, max_poison=0, initial_energy=5.0, move_cost=0.5)


def starvation_step(initial_energy: float, move_cost: float) -> int:
    """The step on which an agent that finds nothing to eat starves: the first ``t`` with
    ``E0 - t * move_cost <= 0``, in the environment's float32 arithmetic (one subtraction a
    step), e.g. 10 for E0 5 and cost 0.5; 501 for E0 50 and cost 0.1 (float32 rounding)."""
    e, c = np.float32(initial_energy), np.float32(move_cost)
    if c <= 0:
        raise ValueError(f"move_cost={move_cost!r} is invalid: an agent starves only if it is > 0")
    t = 0
    while e > 0:
        e, t = np.float32(e - c), t + 1
    return t


def starvation_verdict(deaths: np.ndarray, counts: np.ndarray, period: int) -> dict:
    """Checks a zero-food trace: every agent starves exactly on steps ``period, 2*period, ...``
    (respawning after each), and no death is a poison death."""
    deaths = np.asarray(deaths, bool)
    steps = deaths.shape[0]
    expected = (np.arange(1, steps + 1) % period == 0)[:, None]
    wrong = int((deaths != expected).sum())
    return {"expected_step": period, "starvation_deaths": int(counts[1]), "poison_deaths": int(counts[0]),
            "expected_deaths": int(expected.sum()) * deaths.shape[1], "wrong_agent_steps": wrong,
            "passed": bool(wrong == 0 and counts[0] == 0)}


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


def saliency_share(obs: Array, sal: Array, cells: Array) -> dict[str, float]:
    """Share of the total saliency that falls on food, poison and empty cells of one view
    (``cells[V, V]`` = the true cell types, whatever the observation mode shows)."""
    per_cell = np.asarray(sal).sum(-1)
    total = max(float(per_cell.sum()), 1e-30)
    cells = np.asarray(cells)
    return {name: float(per_cell[cells == v].sum()) / total for name, v in (("food", FOOD), ("poison", POISON), ("empty", EMPTY))}


def save_saliency_png(obs: Array, sal: Array, path: str, title: str | None = None,
                      captions: Sequence[str] | None = None) -> None:
    """One row per observation (``obs[B, V, V, C]`` or one ``[V, V, C]``): the view as the
    agent sees it (:func:`render_observation`) next to its channel-summed saliency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    obs, sal = np.asarray(obs), np.asarray(sal)
    if obs.ndim == 3:
        obs, sal = obs[None], sal[None]
    b = obs.shape[0]
    fig, axes = plt.subplots(2, b, figsize=(2.6 * b, 5.4), squeeze=False)
    for i in range(b):
        axes[0, i].imshow(render_observation(obs[i]), interpolation="nearest")
        axes[0, i].set_title(captions[i] if captions else "view", fontsize=9)
        axes[1, i].imshow(sal[i].sum(-1), cmap="hot", interpolation="nearest")
        axes[1, i].set_title("|d logit / d obs|", fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def saliency_views(view_size: int = 11) -> tuple[np.ndarray, list[str]]:
    """Cell-type views ``[4, V, V]`` for the saliency figures: food vs poison on opposite
    sides, poison between the agent and food, food alone, and poison alone."""
    r = view_size // 2
    views = np.full((4, view_size, view_size), EMPTY, np.int32)
    views[0, r, r - 2], views[0, r, r + 2] = FOOD, POISON
    views[1, r - 1, r], views[1, r - 3, r] = POISON, FOOD
    views[2, r + 2, r - 2] = FOOD
    views[3, r + 2, r + 2] = POISON
    return views, ["food left, poison right", "poison between, food up", "food down-left", "poison down-right"]


# -- the verify command ----------------------------------------------------------------------
def _member_policies(trainer):
    """``(greedy(params, stats, obs[n]), sample(params, stats, keys[n], obs[n]))``."""

    def logits(p, stats, obs):
        return trainer.apply(p, trainer.norm_obs(stats, obs))[0]

    def sample(pp, keys, obs):
        p, stats = pp
        return jax.vmap(lambda k, l: jax.random.categorical(k, l))(keys, logits(p, stats, obs)).astype(jnp.int32)

    return logits, sample


def run_verification(run_dir: str, out_dir: str | None = None, runs: int = 3, agents: int = 10,
                     steps: int = 1000, seed: int = 0, best: bool = False,
                     world: dict[str, Any] | None = None, checkpoint: str | int | None = None,
                     member: str | int | None = None) -> dict:
    """Directional accuracy (greedy), survival (sampling the policy, as in training) and
    saliency of every member of a trained goodhart run, next to the scripted seekers.

    Writes ``verify.json``, ``verify.png`` (bar chart) and ``saliency_<mode>.png`` into
    ``out_dir`` (default ``<run>/verify``); returns the report with a printable ``table``.
    ``world``: foraging param overrides for the survival worlds only (e.g. a harsher
    ``move_cost``); the observations, hence the policies, do not depend on them.
    ``checkpoint``: ``"latest"``, ``"best"`` or a step (default: ``best`` chooses);
    ``member``: verify that member alone (default every member).
    """
    from rljax.envs.params import config_error
    from rljax.errors import ConfigError
    from rljax.trained import restore_members
    from rljax.environments.foraging_seekers import omniscient_seeker, proxy_seeker

    which = checkpoint if checkpoint is not None else ("best" if best else "latest")
    runner, ts = restore_members(run_dir, which, member)  # ts: PPO's member-batched TrainState
    if runner.experiment.name != "goodhart":
        raise ConfigError(f"{run_dir} is a {runner.experiment.name!r} run, not a goodhart run")
    out_dir = out_dir or os.path.join(runner.out_dir, "verify")
    os.makedirs(out_dir, exist_ok=True)
    trainer, cfg = runner.algorithm, runner.cfg
    env: Foraging = trainer.env
    env_overrides = cfg.env.overrides(cfg.ppo.gamma)
    world = dict(world or {})
    try:
        params_for_mode("ground_truth", **{**env_overrides, **world})
    except ValueError as e:
        raise config_error(e, "--world ") from None
    n = runs * agents
    key = jax.random.key(seed)  # every agent faces the same worlds: common random numbers
    logits, sample = _member_policies(trainer)
    members = runner.members

    def member_params(overrides):
        try:
            return stack_params([survival_params(m.variant, steps, agents, env, **overrides) for m in members])
        except ValueError as e:
            raise config_error(e, "--world ") from None

    # Survival of every member in one program (members vmapped, like training); then the
    # zero-food starvation check in the same way.
    sim = jax.jit(jax.vmap(partial(simulate_survival, sample, runs=runs, agents=agents, steps=steps, env=env),
                           in_axes=(0, 0, None)))
    pp = (ts.params, ts.obs_stats)
    trace = jax.tree.map(np.asarray, sim(pp, member_params({**env_overrides, **world}), key))
    starve = jax.tree.map(np.asarray, sim(pp, member_params({**env_overrides, **STARVATION_WORLD}), key))
    period = starvation_step(STARVATION_WORLD["initial_energy"], STARVATION_WORLD["move_cost"])

    rows: list[dict] = []
    for i, m in enumerate(members):
        p_i = jax.tree.map(lambda x: x[i], (ts.params, ts.obs_stats))
        greedy = lambda k, o, p_i=p_i: jnp.argmax(logits(p_i[0], p_i[1], o[None])[0])
        acc = directional_accuracy(greedy, m.variant)
        res = SurvivalResult.from_counts(trace.counts[i], trace.final_energy[i], n * steps)
        check = starvation_verdict(starve.deaths[i], starve.counts[i], period)
        rows.append({"agent": m.variant, "member": m.name, "seed": m.seed, "directional_accuracy": acc,
                     **res._asdict(), "starvation_check": check})

    for name, fn, mode in (("OmniscientSeeker", omniscient_seeker, "ground_truth"), ("ProxySeeker", proxy_seeker, "proxy")):
        # the survival world and the zero-food world in one program
        both = stack_params([survival_params(mode, steps, agents, env, **{**env_overrides, **w})
                             for w in (world, STARVATION_WORLD)])
        seeker_sim = partial(simulate_survival, per_agent(fn), runs=runs, agents=agents, steps=steps, env=env)
        tr = jax.tree.map(np.asarray, jax.jit(jax.vmap(seeker_sim, in_axes=(None, 0, None)))(None, both, key))
        res = SurvivalResult.from_counts(tr.counts[0], tr.final_energy[0], n * steps)
        rows.append({"agent": name, "member": name, "seed": None, "directional_accuracy": directional_accuracy(fn, mode),
                     **res._asdict(), "starvation_check": starvation_verdict(tr.deaths[1], tr.counts[1], period)})

    # Saliency of the first seed of every mode on the same four cell layouts.
    views, captions = saliency_views(env.view_size)
    sal_share: dict[str, list[dict]] = {}
    seen: set[str] = set()
    for i, m in enumerate(members):
        if m.variant in seen:
            continue
        seen.add(m.variant)
        mp = params_for_mode(m.variant, **env_overrides)
        obs = jnp.stack([observation_from_cells(jnp.asarray(v), mp) for v in views])
        p_i = jax.tree.map(lambda x: x[i], ts.params)
        stats_i = jax.tree.map(lambda x: x[i], ts.obs_stats)
        sal = saliency(lambda p, o: trainer.apply(p, trainer.norm_obs(stats_i, o)), p_i, obs)
        save_saliency_png(obs, sal, os.path.join(out_dir, f"saliency_{m.variant}.png"),
                          title=f"{m.variant} ({m.name})", captions=captions)
        sal_share[m.variant] = [saliency_share(o, s, v) for o, s, v in zip(obs, sal, views)]

    agents_order = [m for m in FORAGING_MODES if any(r["agent"] == m for r in rows)] + ["OmniscientSeeker", "ProxySeeker"]
    summary = summarize(rows, agents_order)
    report = {
        "run_dir": runner.out_dir, "checkpoint": which,
        "update": int(np.asarray(ts.update_step)[0]), "env_steps_per_member": int(np.asarray(ts.update_step)[0]) * cfg.ppo.batch_size,
        "survival": {"runs": runs, "agents": agents, "steps": steps, "seed": seed, "world": world,
                     "policy": "sampled (trained agents)", "grid": f"shared by the {agents} agents of a run"},
        "starvation_check": {"world": STARVATION_WORLD, "expected_step": period,
                             "passed": all(r["starvation_check"]["passed"] for r in rows)},
        "members": rows, "summary": summary, "saliency_share": sal_share, "out_dir": out_dir,
    }
    report["table"] = format_table(summary) + "\n\n" + format_starvation(rows, period)
    with open(os.path.join(out_dir, "verify.json"), "w") as f:
        json.dump(report, f, indent=1, default=float)
    plot_verification(summary, os.path.join(out_dir, "verify.png"),
                      title=f"{report['env_steps_per_member']:,} env-steps per agent; survival {runs}x{agents} agents x {steps} steps")
    return report


METRICS = ("directional_accuracy", "poison_deaths_per_1000_steps", "deaths_per_1000_steps", "mean_survival_steps",
           "mean_final_energy", "food_eaten", "poison_eaten", "food_per_1000_steps", "poison_per_1000_steps")


def summarize(rows: Sequence[dict], order: Sequence[str]) -> list[dict]:
    """Mean, std (over seeds; 0 for a single row) and count of every metric per agent."""
    out = []
    for agent in order:
        rs = [r for r in rows if r["agent"] == agent]
        if not rs:
            continue
        entry: dict[str, Any] = {"agent": agent, "n": len(rs)}
        for k in METRICS:
            v = np.array([r[k] for r in rs], np.float64)
            finite = v[np.isfinite(v)]
            entry[k] = float(v.mean()) if len(finite) == len(v) else float("inf")
            entry[k + "_std"] = float(v.std(ddof=1)) if len(v) > 1 and len(finite) == len(v) else 0.0
        out.append(entry)
    return out


def format_table(summary: Sequence[dict]) -> str:
    """Mean ± std over seeds per agent; survival in agent-steps per death (inf: nobody died)."""
    cols = (("dir.acc", "directional_accuracy", ".2f"), ("poison deaths/1k", "poison_deaths_per_1000_steps", ".3f"),
            ("deaths/1k", "deaths_per_1000_steps", ".3f"), ("steps/death", "mean_survival_steps", ".0f"),
            ("food/1k", "food_per_1000_steps", ".1f"), ("poison/1k", "poison_per_1000_steps", ".1f"))
    widths = [max(len(h), 15) for h, _, _ in cols]
    head = f"{'agent':<22}{'n':>3}  " + "  ".join(f"{h:>{w}}" for (h, _, _), w in zip(cols, widths))
    lines = [head, "-" * len(head)]
    for e in summary:
        cells = []
        for (_, k, f), w in zip(cols, widths):
            cell = f"{e[k]:{f}}" + (f" ± {e[k + '_std']:{f}}" if e["n"] > 1 and np.isfinite(e[k]) else "")
            cells.append(f"{cell:>{w}}")
        lines.append(f"{e['agent']:<22}{e['n']:>3}  " + "  ".join(cells))
    return "\n".join(lines)


def format_starvation(rows: Sequence[dict], period: int) -> str:
    """One line: did every agent starve on schedule in the zero-food world (which failed)."""
    w = STARVATION_WORLD
    failed = [r["member"] for r in rows if not r["starvation_check"]["passed"]]
    head = (f"zero-food check (no food, no poison, energy {w['initial_energy']:g}, move cost {w['move_cost']:g}): "
            f"every agent must starve every {period} steps")
    return head + (": PASSED for all " + str(len(rows)) + " agents" if not failed else ": FAILED for " + ", ".join(failed))


def plot_verification(summary: Sequence[dict], path: str, title: str = "") -> None:
    """Bar chart: poison deaths and all deaths per 1000 steps, and directional accuracy, per
    agent (error bars: std over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [e["agent"] for e in summary]
    colors = ["#2a9d8f" if "ground" in n or n == "OmniscientSeeker" else "#e76f51" for n in names]
    panels = (("poison_deaths_per_1000_steps", "poison deaths / 1000 steps"), ("deaths_per_1000_steps", "all deaths / 1000 steps"),
              ("poison_per_1000_steps", "poison eaten / 1000 steps"), ("directional_accuracy", "directional accuracy (of 8 probes)"))
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    x = np.arange(len(names))
    for ax, (k, label) in zip(axes, panels):
        ax.bar(x, [e[k] for e in summary], yerr=[e[k + "_std"] for e in summary], color=colors, capsize=3)
        ax.set_xticks(x)
        ax.set_xticklabels([n.replace("_", "\n").replace("Seeker", "\nSeeker") for n in names], fontsize=8)
        ax.set_title(label)
        ax.grid(axis="y", alpha=0.3)
    axes[3].set_ylim(0, 1.05)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
