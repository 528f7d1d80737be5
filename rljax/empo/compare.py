"""A trained phase-2 run against the exact oracle: error tables, plots and learning curves.

:func:`compare_run` restores a run (:func:`rljax.runner.load_run`), evaluates every member's
learned quantities at every ``(t, s)`` of the enumerated map (:meth:`EmpoTrainer.learned`),
solves the oracle with that member's theory parameters, and reports per quantity and member:

* ``mean``/``max``/``rmse``: over all reachable non-terminal ``(t, s)`` (``t >= first_step[s]``);
* ``visited``: the mean weighted by the probability of ``(t, s)`` when the robot follows the
  ORACLE's policy and the humans their prior (the states that matter for the objective);
* ``initial``: at the initial state ``(0, s_0)``.

:func:`value_error_sources` splits each member's ``V_r`` error into where it comes from (the
learned ``U_r``, ``Q_r``'s distance from the backup of the learned values, the policy), printed
under the tables: the measurement that found ``V_r``'s bias on the trivial map (docs/empo.md).

Errors are absolute differences (per action for ``Q_r``, per human for ``X_h``, per human and
goal for ``V_h^e``), and the total variation ``0.5 sum_a |pi_r - pi_r*|`` for ``pi_r``.
:func:`plot_curves` draws the learning curves from ``metrics.csv``/``eval.csv`` with the warm-up
stages marked.
"""
from __future__ import annotations

import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rljax.empo.oracle import OracleResult
from rljax.errors import ConfigError

Array = jax.Array

QUANTITIES = ("v_r", "pi_r", "x_h", "v_h_e", "q_r", "u_r")
LABELS = {"v_r": "V_r", "pi_r": "pi_r", "x_h": "X_h", "v_h_e": "V_h^e", "q_r": "Q_r", "u_r": "U_r"}
STAGE_NAMES = ("V_h^e", "+X_h", "+U_r", "+Q_r", "+V_r", "beta_r ramp", "full")


def per_state_errors(learned: OracleResult, star: OracleResult) -> dict[str, Any]:
    """``{quantity: err[T, S, ...]}`` (non-terminal layers; trailing axes per action/human/goal)."""
    T = learned.q_r.shape[0]
    return {
        "v_r": jnp.abs(learned.v_r[:T] - star.v_r[:T]),
        "pi_r": 0.5 * jnp.abs(learned.pi_r - star.pi_r).sum(-1),
        "x_h": jnp.abs(learned.x_h - star.x_h),
        "v_h_e": jnp.abs(learned.v_h_e[:T] - star.v_h_e[:T]),
        "q_r": jnp.abs(learned.q_r - star.q_r),
        "u_r": jnp.abs(learned.u_r - star.u_r),
    }


def error_table(learned: OracleResult, star: OracleResult, reachable: np.ndarray, occupancy: np.ndarray) -> dict:
    """Summary numbers of one member (see the module docstring)."""
    errs = per_state_errors(learned, star)
    out = {}
    reach = np.asarray(reachable, bool)
    occ = np.asarray(occupancy, np.float64)
    for q, e in errs.items():
        e = np.asarray(e, np.float64)
        flat = e.reshape(e.shape[:2] + (-1,))
        vals = flat[reach]  # [N, k]
        out[q] = {"mean": float(vals.mean()), "max": float(vals.max()), "rmse": float(np.sqrt((vals**2).mean())),
                  "visited": float((flat.mean(-1) * occ).sum() / occ.sum()), "initial": float(flat[0, 0].mean())}
    # pi_r at a state where the exact Q_r's two best actions tie splits between them, and a
    # learned Q_r off by any amount there turns a large beta_r's policy to one of them (TV up
    # to 1/2 for a two-way tie): the visited TV split at those states, which is conditioning,
    # not learning (73% of the trivial map's visited occupancy at beta_r = 1000, docs/empo.md).
    tie = np.asarray(exact_ties(star.q_r))
    tv = np.asarray(errs["pi_r"], np.float64)
    at = (occ * tie).sum()
    out["pi_r"].update(tie_occupancy=float(at / occ.sum()),
                       visited_at_ties=float((tv * occ * tie).sum() / at) if at > 0 else float("nan"),
                       visited_elsewhere=float((tv * occ * ~tie).sum() / (occ.sum() - at)) if occ.sum() > at else float("nan"))
    return out


def exact_ties(q_r: Array, rel: float = 1e-5) -> Array:
    """``bool[T, S]``: the two largest ``Q_r`` of the state differ by less than ``rel`` of
    their size (an exact tie up to float32 rounding)."""
    top = jnp.sort(q_r, axis=-1)
    return (top[..., -1] - top[..., -2]) < rel * jnp.abs(top[..., -1])


SOURCES = ("u_r", "q_fit", "policy")


def value_error_sources(world: Any, learned: OracleResult, star: OracleResult, mu_h: Array,
                        gamma_r: Array | float) -> dict[str, Array]:
    """Where the learned ``V_r``'s error comes from: ``{"u_r", "q_fit", "policy"}``, each
    ``float32[T, S]``, summing to ``learned.v_r - star.v_r`` at every non-terminal ``(t, s)``.

    With ``B(t, s, a) = gamma_r E_{a_H ~ mu_h, s'}[V_r(t+1, s')]`` the backup of the LEARNED
    ``V_r`` (what the ``Q_r`` regression is trained towards, up to target lag),

        ``V - V* = (U - U*) + pi.(Q - B) + (pi - pi*).Q* + gamma_r E_{pi, mu_h}[V - V*](t+1)``,

    so unrolled along the learned policy each part is the expected discounted sum of its local
    term over the rest of the episode: ``u_r`` the learned ``U_r``'s error, ``q_fit`` how far
    ``Q_r`` sits from ``B`` (the regression's residual: a bias here is a fitting or
    representation problem, not a target problem), ``policy`` what the learned policy loses
    against the exact ``Q_r`` (near 0 for a near-greedy policy where actions tie).
    ``world``: the :class:`~rljax.empo.world.TableWorld`; ``mu_h``: its goal-marginal human
    profiles ``[S, A_h]`` or ``[T, S, A_h]``."""
    model = world.model
    idx, prob = model.next_state, model.next_prob  # [S, A_r, A_h, K]
    T = learned.q_r.shape[0]
    mu_t = mu_h if mu_h.ndim == 3 else jnp.broadcast_to(mu_h, (T,) + mu_h.shape)

    def backup(v_next: Array, mu: Array) -> Array:  # [S] at t + 1 -> [S, A_r] at t
        return gamma_r * jnp.einsum("sh,srh->sr", mu, (prob * v_next[idx]).sum(-1))

    b = jax.vmap(backup)(learned.v_r[1:], mu_t)
    local = {"u_r": learned.u_r - star.u_r, "q_fit": (learned.pi_r * (learned.q_r - b)).sum(-1),
             "policy": ((learned.pi_r - star.pi_r) * star.q_r).sum(-1)}

    def unroll(term: Array) -> Array:
        def layer(nxt, xs):
            here, pi, mu = xs
            out = here + (pi * backup(nxt, mu)).sum(-1)
            return out, out

        return jax.lax.scan(layer, jnp.zeros(term.shape[1:], term.dtype), (term, learned.pi_r, mu_t), reverse=True)[1]

    return {k: unroll(v) for k, v in local.items()}


def source_table(sources: dict[str, Array], occupancy: np.ndarray) -> dict:
    """``{source: {"initial", "visited"}}``: signed, at ``(0, s_0)`` and occupancy-weighted."""
    occ = np.asarray(occupancy, np.float64)
    return {k: {"initial": float(np.asarray(v)[0, 0]), "visited": float((np.asarray(v) * occ).sum() / occ.sum())}
            for k, v in sources.items()}


def _initial(res: OracleResult) -> dict:
    return {"v_r": float(res.v_r[0, 0]), "u_r": float(res.u_r[0, 0]), "x_h": np.asarray(res.x_h[0, 0]).tolist(),
            "pi_r": np.asarray(res.pi_r[0, 0]).tolist(), "q_r": np.asarray(res.q_r[0, 0]).tolist(),
            "v_h_e": np.asarray(res.v_h_e[0, 0]).tolist()}


def compare_state(runner: Any, state: Any) -> tuple[dict, tuple]:
    """The report of a runner's member-batched ``state`` (see :func:`compare_run`) and the
    arrays behind it: ``(learned, oracle, occupancy)`` with a leading member axis."""
    from rljax.empo.trainer import EmpoTrainer, occupancy

    trainer = runner.algorithm
    if not isinstance(trainer, EmpoTrainer):
        raise ConfigError(f"{runner.out_dir} is not an EMPO run (experiment {runner.experiment.name!r})")
    if trainer.exact is None:
        raise ConfigError(f"compare needs an enumerable map (trivial or small); {runner.out_dir} trained on the ensemble")
    w = trainer.exact
    mu_h = trainer.mu_h_table()

    def one(st):
        learned = trainer.learned(st.params, st.hparams)
        star = trainer.oracle(st.hparams)
        sources = value_error_sources(w, learned, star, mu_h, st.hparams.gamma_r)
        return (learned, star, occupancy(w, star.pi_r, mu_h)), sources

    arrays, sources = jax.tree.map(np.asarray, jax.jit(jax.vmap(one))(state))
    learned, star, occ = arrays
    reach = np.asarray(w.reachable())
    updates = np.asarray(trainer.update_count(state))
    members = []
    for i, m in enumerate(runner.members):
        li, si = jax.tree.map(lambda x: x[i], learned), jax.tree.map(lambda x: x[i], star)
        members.append({"name": m.name, "seed": m.seed, "hparams": m.hparams, "update": int(updates[i]),
                        "train_step": int(np.asarray(state.train_step)[i]),
                        "errors": error_table(li, si, reach, occ[i]),
                        "v_r_error_sources": source_table({k: v[i] for k, v in sources.items()}, occ[i]),
                        "learned_initial": _initial(li), "oracle_initial": _initial(si)})
    report = {"run_dir": runner.out_dir, "checkpoint": "given state", "map": runner.cfg.env.map,
              "representation": trainer.cfg.representation, "reachable_pairs": int(reach.sum()),
              "members": members, "across_members": _across(members)}
    return report, arrays


def compare_run(run_dir: str, best: bool = False, out_dir: str | None = None, plot: bool = True,
                checkpoint: str | int | None = None, member: str | int | None = None) -> dict:
    """Compares every member (or ``member`` alone) of the run at ``run_dir`` with the oracle;
    writes ``compare.json`` (and with ``plot`` ``compare.png`` and ``curves.png``) into
    ``out_dir`` (default ``RUN_DIR/compare``) and returns the report (``report["table"]`` is
    the printed text, ``report["arrays"]`` the learned/oracle/occupancy tables per member).
    ``checkpoint``: ``"latest"``, ``"best"`` or a step (default: ``best`` chooses)."""
    from rljax.runner import find_run_dir
    from rljax.trained import restore_members

    run_dir = find_run_dir(run_dir)
    which = checkpoint if checkpoint is not None else ("best" if best else "latest")
    runner, state = restore_members(run_dir, which, member)
    report, arrays = compare_state(runner, state)
    report.update(run_dir=run_dir, checkpoint=which)
    report["table"] = format_report(report)
    out_dir = out_dir or os.path.join(run_dir, "compare")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "compare.json"), "w") as f:
        json.dump({k: v for k, v in report.items() if k != "table"}, f, indent=1)
    if plot:
        learned, star, _ = arrays
        reach = np.asarray(runner.algorithm.exact.reachable())
        plot_learned_vs_exact(learned, star, reach, [m.name for m in runner.members], os.path.join(out_dir, "compare.png"))
        plot_curves(run_dir, os.path.join(out_dir, "curves.png"))
    report["out_dir"] = out_dir
    report["arrays"] = arrays
    return report


def _across(members: list[dict]) -> dict:
    out = {}
    for q in QUANTITIES:
        for k in ("mean", "max", "visited", "initial"):
            vals = np.asarray([m["errors"][q][k] for m in members])
            out.setdefault(q, {})[k] = {"mean": float(vals.mean()), "std": float(vals.std())}
    return out


def format_report(report: dict) -> str:
    """The per-quantity error tables as text (one table per quantity, a row per member)."""
    lines = [f"{report['run_dir']} ({report['checkpoint']} checkpoint): {report['representation']} on the "
             f"{report['map']} map, errors against the oracle over {report['reachable_pairs']} reachable (t, s)"]
    for q in QUANTITIES:
        kind = "total variation" if q == "pi_r" else "absolute error"
        lines.append(f"\n{LABELS[q]} ({kind})")
        lines.append(f"  {'member':<22}{'mean':>10}{'max':>10}{'rmse':>10}{'visited':>10}{'initial':>10}")
        for m in report["members"]:
            e = m["errors"][q]
            lines.append(f"  {m['name']:<22}" + "".join(f"{e[k]:>10.4f}" for k in ("mean", "max", "rmse", "visited", "initial")))
        a = report["across_members"][q]
        lines.append(f"  {'mean +- std':<22}" + f"{a['mean']['mean']:>10.4f}{a['max']['mean']:>10.4f}{'':>10}"
                     f"{a['visited']['mean']:>10.4f}{a['initial']['mean']:>10.4f}")
    lines.append("\nV_r's signed error (learned - exact) by source (value_error_sources), initial / visited")
    lines.append(f"  {'member':<22}" + "".join(f"{k:>18}" for k in SOURCES + ("total",)))
    for m in report["members"]:
        src = m["v_r_error_sources"]
        tot = {x: sum(src[k][x] for k in SOURCES) for x in ("initial", "visited")}
        lines.append(f"  {m['name']:<22}" + "".join(f"{src[k]['initial']:>9.3f}/{src[k]['visited']:<8.3f}" for k in SOURCES)
                     + f"{tot['initial']:>9.3f}/{tot['visited']:<8.3f}")
    lines.append("\npi_r's visited TV at states where the exact Q_r's two best actions tie, and elsewhere")
    lines.append(f"  {'member':<22}{'tie occupancy':>15}{'TV at ties':>12}{'elsewhere':>12}")
    for m in report["members"]:
        e = m["errors"]["pi_r"]
        lines.append(f"  {m['name']:<22}{e['tie_occupancy']:>15.3f}{e['visited_at_ties']:>12.3f}{e['visited_elsewhere']:>12.3f}")
    lines.append("\ninitial state (learned / oracle):")
    for m in report["members"]:
        li, oi = m["learned_initial"], m["oracle_initial"]
        pi = " ".join(f"{a:.3f}/{b:.3f}" for a, b in zip(li["pi_r"], oi["pi_r"]))
        lines.append(f"  {m['name']:<22} V_r {li['v_r']:.3f}/{oi['v_r']:.3f}  X_h "
                     + " ".join(f"{a:.4f}/{b:.4f}" for a, b in zip(li["x_h"], oi["x_h"])) + f"  pi_r {pi}")
    return "\n".join(lines)


def plot_learned_vs_exact(learned: OracleResult, star: OracleResult, reach: np.ndarray, names: list[str], path: str) -> None:
    """Scatter of learned against exact values over the reachable ``(t, s)``, one panel per
    quantity, one colour per member (``learned``/``star`` leaves have a leading member axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("v_r", "V_r"), ("pi_r", "pi_r"), ("x_h", "X_h"), ("v_h_e", "V_h^e"), ("q_r", "Q_r")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4))
    T = star.q_r.shape[1]
    for ax, (q, label) in zip(axes, panels):
        lo, hi = np.inf, -np.inf
        for i, name in enumerate(names):
            a = np.asarray(getattr(learned, q))[i][:T][reach]
            b = np.asarray(getattr(star, q))[i][:T][reach]
            ax.scatter(b.reshape(-1), a.reshape(-1), s=4, alpha=0.4, label=name)
            lo, hi = min(lo, b.min(), a.min()), max(hi, b.max(), a.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"exact {label}")
        ax.set_ylabel(f"learned {label}")
        ax.set_title(label)
    if len(names) <= 8:
        axes[0].legend(fontsize=7, markerscale=3)
    fig.suptitle("learned vs exact over all reachable (t, s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def read_columns(path: str) -> dict[str, np.ndarray]:
    """A columnar CSV of the runner (``metrics.csv``, ``eval.csv``) as numpy columns."""
    import pyarrow.csv as pcsv

    table = pcsv.read_csv(path)
    return {c: table.column(c).to_numpy(zero_copy_only=False) for c in table.column_names}


def plot_curves(run_dir: str, path: str) -> None:
    """Losses, beta_r and (when evaluated) the errors against the oracle over training, per
    member, with the warm-up stage transitions as vertical lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = read_columns(os.path.join(run_dir, "metrics.csv"))
    evals_path = os.path.join(run_dir, "eval.csv")
    e = read_columns(evals_path) if os.path.exists(evals_path) else {}
    losses = [c for c in m if c.startswith("loss_")]
    err_cols = [c for c in ("eval_v_r_error", "eval_pi_r_error", "eval_x_h_error", "eval_v_h_e_error") if c in e]
    names = list(dict.fromkeys(m["name"].tolist()))
    n = 2 + (1 if err_cols else 0)
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 4))
    first = m["name"] == names[0]
    x, stage = m["train_step"][first], m["stage"][first]
    changes = [(x[i - 1], int(stage[i])) for i in range(1, len(x)) if stage[i] != stage[i - 1]]
    label = len(names) * len(losses) <= 12
    for name in names:
        sel = m["name"] == name
        for c in losses:
            axes[0].plot(m["train_step"][sel], m[c][sel], lw=0.8, label=f"{c[5:]} {name}" if label else None)
    axes[0].set_yscale("log")
    axes[0].set_title("losses (MSE)")
    axes[1].plot(x, m["beta_r"][first], color="k")
    axes[1].set_title("effective beta_r")
    if err_cols:
        per_update = float(x[0]) / max(float(m["update"][first][0]), 1.0)  # training steps per update
        label = len(names) * len(err_cols) <= 16
        for name in names:
            sel = e["name"] == name
            for c in err_cols:
                axes[2].plot(e["update"][sel] * per_update, e[c][sel], marker=".", lw=0.8,
                             label=f"{c[5:-6]} {name}" if label else None)
        axes[2].set_yscale("log")
        axes[2].set_title("mean error vs oracle (reachable (t, s))")
    for ax in axes:
        for xc, st in changes:
            ax.axvline(xc, color="grey", ls=":", lw=0.8)
            ax.text(xc, 0.98, STAGE_NAMES[st], rotation=90, va="top", ha="right", fontsize=7,
                    transform=ax.get_xaxis_transform())
        ax.set_xlabel("training steps")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
