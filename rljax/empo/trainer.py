"""EMPO phase 2 behind the runner's :class:`~rljax.algorithm.Algorithm` protocol.

:class:`EmpoTrainer` holds pure functions of ONE member (one seed / setting); the runner maps
them over the member axis, scans ``update`` into chunks and owns logs, evaluation, checkpoints
and resume. One ``update`` is

1. ``E`` environment steps of one actor (``E = steps_per_update``): human actions from the
   world's phase-1 prior for each human's current goal (uniform with probability ``epsilon_h``),
   robot actions from ``pi_r`` of the Q_r TARGET network with the effective ``beta_r``
   (with probability ``epsilon_r`` from the exploration policy: uniform, or ``pi_r`` at
   ``exploration_beta_r``); goals resampled when achieved, else all with
   probability ``goal_resample_prob``; a new episode at the world's horizon or after
   ``steps_per_episode`` steps; every transition goes into the in-JAX replay ring;
2. ``G = E * training_steps_per_env_step`` training steps: the ring is cleared on entering the
   beta_r ramp and on leaving it (:func:`~rljax.empo.schedules.should_clear_replay`); a batch
   (and a larger one for X_h when ``x_h_batch_size`` says so) is drawn, the model-based targets
   are computed from the target networks (:mod:`rljax.empo.targets`; on an enumerated world
   from their tables over every ``(t, s)``, taken at each copy: :meth:`EmpoTrainer.target_copy`,
   ``tabulate_targets``), every loss is an MSE, and
   only the networks active in the current warm-up stage step (a select: no Python between
   steps). Target copies are taken every ``*_target_update_interval`` steps. As in the original,
   a training step with fewer than ``max(batch_size, x_h_batch_size)`` stored transitions
   trains nothing but still counts.

Networks step with Adam (L2 weight decay as torch's ``Adam(weight_decay=...)``, gradient-norm
clip per network, scaled by ``lr / auto_grad_clip_reference_lr`` when ``auto_grad_clip``); tables
step by :func:`rljax.empo.tables.table_step`. Learning rates follow
:func:`~rljax.empo.schedules.learning_rate` with each member's own base rates.

Evaluation (the runner's ``return`` and the best checkpoint): on enumerable worlds, the EXACT
EMPO objective ``V_r(s_0)`` that the learned robot policy attains (the oracle's recursion with
``pi_r`` fixed to the learned one at the nominal ``beta_r``), the same number for every
evaluation episode; plus per-episode ``realised_return`` (``sum_t gamma_r^t U_r(s_t)`` of sampled
episodes, an unbiased estimate of that objective), the oracle's ``V_r(s_0)`` and the mean
errors of the learned quantities against the oracle over every reachable ``(t, s)``. On a world
that cannot be enumerated (no oracle, e.g. multigrid's random ensemble): the realised return under the LEARNED ``U_r`` (the robot's own estimate).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from rljax.algorithm import Algorithm, tree_all_finite
from rljax.empo import draws, schedules
from rljax.empo import replay as ring
from rljax.empo.config import NETWORKS, VARY_KEYS, Phase2Config
from rljax.empo.networks import NetworkModel
from rljax.empo.oracle import OracleResult, robot_policy, solve_oracle
from rljax.empo.tables import TableModel, table_step
from rljax.empo.targets import X_H_MIN, Quantities, Theory, exact_last_step
from rljax.envs.environment import tree_select
from rljax.envs.vec_env import any_member

Array = jax.Array


@struct.dataclass
class EmpoHParams:
    """One member's traced hyperparameters (:data:`~rljax.empo.config.VARY_KEYS`)."""

    beta_r: Array
    gamma_r: Array
    gamma_h: Array
    zeta: Array
    xi: Array
    eta: Array
    lr_q_r: Array
    lr_v_r: Array
    lr_v_h_e: Array
    lr_x_h: Array
    lr_u_r: Array
    goal_resample_prob: Array
    weight_decay: Array
    grad_clip: Array

    @classmethod
    def from_config(cls, cfg: Phase2Config, **overrides: Any) -> "EmpoHParams":
        return cls(**{k: jnp.asarray(overrides.get(k, getattr(cfg, k)), jnp.float32) for k in VARY_KEYS})


@struct.dataclass
class ActorState:
    ws: Any  # the environment's situation (world-specific)
    goals: Array  # int32[n_h]
    episode_step: Array  # int32


@struct.dataclass
class EmpoState:
    """Everything an exact resume needs, for one member."""

    params: dict  # {quantity: parameters} (networks or tables)
    targets: dict  # {quantity: frozen copy of the whole parameter tree}
    opt_state: dict  # {quantity: Adam state} (networks only)
    actor: ActorState
    replay: ring.ReplayState
    key: Array
    train_step: Array  # int32: training steps done (the schedules' clock)
    update_step: Array  # int32: runner updates done
    hparams: EmpoHParams


@dataclass(frozen=True, eq=False)
class EmpoTrainer(Algorithm):
    """Phase-2 trainer of one member (see the module docstring).

    ``world``: where the actor acts (any world of :mod:`rljax.empo.world`: the
    :class:`~rljax.empo.world.TableWorld` of a finite world, or an environment's own world of
    full states); ``exact``: the :class:`~rljax.empo.world.TableWorld` of the same world for
    evaluation against the oracle (``None`` where it cannot be enumerated); ``cfg``: the
    ``empo`` section.
    """

    world: Any
    cfg: Phase2Config
    exact: Any = None
    member_axis: str | None = None
    reset_branch: str = "cond"
    bootstrap_branch: str = "cond"

    config_section = "empo"

    def __post_init__(self):
        # Built here, outside any trace, so no traced constant is ever cached on the trainer.
        model = TableModel(self.world, self.cfg) if self.cfg.representation == "table" else NetworkModel(self.world, self.cfg)
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "quantities", Quantities(model, self.world, self.cfg))
        # Targets read frozen copies; on an enumerated world a network's copy is its table over
        # every (t, s) (``tabulate_targets``), read through a TableModel.
        tabulate = model.kind == "network" and self.cfg.tabulate_targets and getattr(self.world, "exact", False)
        target_model = TableModel(self.world, self.cfg) if tabulate else model
        object.__setattr__(self, "tabulated", tabulate)
        object.__setattr__(self, "target_model", target_model)
        object.__setattr__(self, "target_quantities", Quantities(target_model, self.world, self.cfg))
        object.__setattr__(self, "_unit_beta", dataclasses.replace(self.cfg, beta_r=1.0))

    # -- static facts ----------------------------------------------------------------------
    @property
    def num_updates(self) -> int:
        return self.cfg.num_updates

    @property
    def steps_per_update(self) -> int:
        return self.cfg.update_shape()[0]

    @property
    def training_steps_per_update(self) -> int:
        return self.cfg.update_shape()[1]

    @property
    def vary_keys(self) -> tuple[str, ...]:
        return VARY_KEYS

    @property
    def networks(self) -> tuple[str, ...]:
        """The quantities that are learned (networks or tables), in :data:`NETWORKS` order."""
        return tuple(n for n in NETWORKS if self.cfg.network_in_use[n])

    def hparams(self, variant: Any, **overrides: Any) -> EmpoHParams:
        return EmpoHParams.from_config(self.cfg, **overrides)

    def update_count(self, st: EmpoState) -> Array:
        return st.update_step

    def eval_steps(self, variant: Any) -> int:
        return self.world.horizon

    # -- schedules with the member's own numbers -------------------------------------------
    def theory(self, h: EmpoHParams, step: Array) -> Theory:
        beta = schedules.effective_beta_r(self._unit_beta, step) * h.beta_r
        return Theory(beta_r=beta, gamma_r=h.gamma_r, gamma_h=h.gamma_h, zeta=h.zeta, xi=h.xi, eta=h.eta)

    def learning_rate(self, h: EmpoHParams, name: str, step: Array) -> Array:
        factor = schedules.learning_rate(self.cfg, name, step) / self.cfg.base_lr(name)
        return factor * getattr(h, f"lr_{name}")

    def _grad_clip(self, h: EmpoHParams, lr: Array) -> Array:
        if self.cfg.auto_grad_clip:
            return h.grad_clip * lr / self.cfg.auto_grad_clip_reference_lr
        return h.grad_clip

    # -- initial state ---------------------------------------------------------------------
    def init_state(self, key: Array, variant: Any, hparams: EmpoHParams) -> EmpoState:
        k_param, k_draw, key = jax.random.split(key, 3)
        params = self.model.init(k_param)
        u = jax.random.uniform(k_draw, (1 + self.world.n_humans,))
        ws = self.world.reset(u[0])
        goals = self.world.sample_goals(u[1:])
        item = {"ws": ws, "goals": goals, "a_h": jnp.int32(0), "a_r": jnp.int32(0)}
        opt = {n: optax.scale_by_adam().init(params[n]) for n in params} if self.model.kind == "network" else {}
        return EmpoState(
            params=params, targets={n: self.target_copy(n, params, hparams) for n in params}, opt_state=opt,
            actor=ActorState(ws=ws, goals=goals, episode_step=jnp.int32(0)),
            replay=ring.init(item, self.cfg.buffer_size), key=key,
            train_step=jnp.int32(0), update_step=jnp.int32(0), hparams=hparams,
        )

    def target_copy(self, name: str, params: dict, h: EmpoHParams) -> Any:
        """The frozen copy of ``params`` that ``name``'s targets read: the whole parameter tree,
        or with :attr:`tabulated` the network ``name``'s evaluation-mode outputs at every
        ``(t, s)`` of the world as a :class:`~rljax.empo.tables.TableModel` table
        (``{name: {"table": [T, S, ...]}}``: ``y`` for U_r)."""
        if not self.tabulated:
            return params
        w, m = self.world, self.model
        ws = w.all_situations()
        pts = m.points(w, ws)
        T, S = ws.t.shape
        nh, ng = w.n_humans, w.n_goals
        if name == "v_h_e":
            shape = (T, S, nh, ng)
            table = m.v_h_e(params, pts, jnp.broadcast_to(jnp.arange(nh)[:, None], shape), jnp.broadcast_to(jnp.arange(ng), shape))
        elif name == "x_h":
            table = m.x_h(params, pts, jnp.broadcast_to(jnp.arange(nh), (T, S, nh)))
        elif name == "u_r":
            table = m.y(params, pts)
        elif name == "q_r":
            table = exact_last_step(m.q_r(params, pts, h.eta * h.xi), ws.t, w.horizon, h.gamma_r, self.cfg.terminal_v_r)
        else:
            table = m.v_r(params, pts, h.eta * h.xi)
        return {name: {"table": jax.lax.stop_gradient(table)}}

    # -- acting ----------------------------------------------------------------------------
    def _human_actions(self, u: Array, prior: Array, goals: Array, eps_h: Array) -> Array:
        """Per-human actions from ``pi_h(.|s, g_h)``, uniform with probability ``eps_h``;
        ``u[3, n_h]`` are uniforms (policy draw, uniform draw, exploration coin)."""
        pi = prior[jnp.arange(self.world.n_humans), goals]  # [n_h, A]
        return jnp.where(u[2] < eps_h, draws.index(u[1], pi.shape[-1]), draws.categorical(u[0], pi))

    def _env_step(self, st: EmpoState, th: Theory, eps_r: Array, eps_h: Array):
        """One environment step of the actor, driven by a row of uniforms (``ENV_DRAWS``)."""
        w, cfg, h = self.world, self.cfg, st.hparams
        nh = w.n_humans

        def step(actor: ActorState, u: Array):
            u_h, u_g, u_rg = u[:3 * nh].reshape(3, nh), u[3 * nh:4 * nh], u[4 * nh:5 * nh]
            u_r, u_rx, u_ru, u_step, u_res, u_reset = u[5 * nh:5 * nh + 6]
            a_h = w.human_joint(self._human_actions(u_h, w.prior(actor.ws), actor.goals, eps_h))
            tq = self.target_quantities
            q, pi = tq.q_pi(st.targets, tq.points(actor.ws), w.t(actor.ws), th)
            a_r = jnp.where(u_rx < eps_r, self._explore(u_ru, q), draws.categorical(u_r, pi))
            nxt = w.step(u_step, actor.ws, a_r, a_h)
            item = {"ws": actor.ws, "goals": actor.goals, "a_h": a_h, "a_r": a_r}
            hit = w.achieved(nxt)[jnp.arange(nh), actor.goals]
            fresh = w.sample_goals(u_g)
            resample_all = ~hit.any() & (u_res < h.goal_resample_prob)
            goals = jnp.where(hit | resample_all, fresh, actor.goals)
            ep = actor.episode_step + 1
            done = (w.t(nxt) >= w.horizon) | (ep >= cfg.steps_per_episode)
            # A reset is a constant (or a pool lookup) and a goal draw: cheap enough to select.
            nxt = tree_select(done, w.reset(u_reset), nxt)
            goals = jnp.where(done, w.sample_goals(u_rg), goals)
            new = ActorState(ws=nxt, goals=goals, episode_step=jnp.where(done, 0, ep).astype(jnp.int32))
            return new, (item, done, hit.sum())

        return step

    def _explore(self, u: Array, q: Array) -> Array:
        """The robot's exploration action from the uniform ``u``: uniform over the robot's
        joint actions (``exploration_beta_r = 0``, the spec's default) or drawn from ``pi_r`` of
        the Q_r target ``q`` at ``exploration_beta_r``."""
        if self.cfg.exploration_beta_r == 0:  # static: the default program draws one index
            return draws.index(u, self.world.num_robot_actions)
        return draws.categorical(u, robot_policy(q, self.cfg.exploration_beta_r))

    @property
    def env_draws(self) -> int:
        """Uniforms one environment step consumes."""
        return 5 * self.world.n_humans + 6

    # -- learning --------------------------------------------------------------------------
    def _predictions(self, params: dict, pts_b: Any, t_b: Array, goals_b: Array, pts_x: Any, goals_x: Array,
                     th: Theory, key: Array) -> dict[str, Array]:
        """Training-mode predictions; ``goals_b[B, n_h, E]`` are the goals V_h^e is trained on,
        ``t_b[B]`` the step counts (Q_r is exact at the last one: no loss, no gradient there)."""
        m, use = self.model, self.cfg.network_in_use
        keys = [draws.derive(key, i) for i in range(5)]
        hs_b = jnp.broadcast_to(jnp.arange(self.world.n_humans)[:, None], goals_b.shape)
        out = {"v_h_e": m.v_h_e(params, pts_b, hs_b, goals_b, keys[0]),
               "q_r": exact_last_step(m.q_r(params, pts_b, th.eta_xi, keys[3]), t_b, self.world.horizon, th.gamma_r,
                                      self.cfg.terminal_v_r)}
        if use["x_h"]:
            out["x_h"] = m.x_h(params, pts_x, jnp.broadcast_to(jnp.arange(self.world.n_humans), goals_x.shape), keys[1])
        if use["u_r"]:
            out["u_r"] = m.y(params, pts_b, keys[2])
        if use["v_r"]:
            out["v_r"] = m.v_r(params, pts_b, th.eta_xi, keys[4])
        return out

    def _targets(self, tp: dict, batch: dict, xbatch: dict, th: Theory, key: Array) -> tuple[dict, Any, Any]:
        """The target of every learned quantity for a batch (model-based where the spec says)."""
        q, use, w = self.target_quantities, self.cfg.network_in_use, self.world
        k_mb, k_u, k_v = (draws.derive(key, i) for i in range(3))
        mb = q.model_based(tp, batch["ws"], batch["goals"], batch["a_h"], th, k_mb)
        tpts_b = mb["points"]
        pts_b = self.quantities.points(batch["ws"]) if self.tabulated else tpts_b
        lead = batch["goals"].shape[:1]
        out = {"v_h_e": mb["v_h_e"], "q_r": mb["q_r"]}
        pts_x = pts_b if xbatch is batch else self.quantities.points(xbatch["ws"])
        if use["x_h"]:  # w_h(g_h) * V_h^e(s, g_h)^zeta for the stored goal, or its expectation
            g = xbatch["goals"]
            h = jnp.broadcast_to(jnp.arange(w.n_humans), g.shape)
            tpts_x = tpts_b if xbatch is batch else q.points(xbatch["ws"])
            if self.cfg.x_h_all_goals:  # the exact expectation over the goal set
                shape = g.shape + (w.n_goals,)
                v = self.target_model.v_h_e(tp["v_h_e"], tpts_x, jnp.broadcast_to(h[..., None], shape),
                                            jnp.broadcast_to(jnp.arange(w.n_goals), shape))
                out["x_h"] = jnp.einsum("bhg,hg->bh", v**th.zeta, w.goal_probs * w.goal_weights)
            else:
                v = self.target_model.v_h_e(tp["v_h_e"], tpts_x, h, g)
                out["x_h"] = w.goal_weights[h, g] * v**th.zeta
        if use["u_r"]:  # y from the X_h target network (or V_h^e directly), clamped
            x = jnp.clip(q.x_h(tp, tpts_b, lead, th, k_u), X_H_MIN, 1.0) ** (-th.xi)
            out["u_r"] = x.sum(-1) if self.cfg.u_r_sum_over_humans else x.mean(-1)
        if use["v_r"]:
            out["v_r"] = q.u_r(tp, tpts_b, lead, th, k_v) + (mb["pi_r"] * mb["q_s"]).sum(-1)
        return jax.lax.stop_gradient(out), pts_b, pts_x

    def _rarely(self, pred: Array, fn: Any, otherwise: Any) -> Any:
        """``fn()`` where ``pred`` holds, else ``otherwise``, as a ``lax.cond`` on ``pred``
        reduced over the member axis (members train in lockstep, so the branch is skipped for
        all or taken for all; ``fn`` itself selects per member)."""
        return jax.lax.cond(any_member(pred, self.member_axis), fn, lambda: otherwise)

    def _train_step(self, h: EmpoHParams):
        cfg, model = self.cfg, self.model
        b, bx = cfg.batch_size, max(cfg.batch_size, cfg.x_h_batch_size)
        adam = optax.scale_by_adam()
        is_table = model.kind == "table"

        def step(carry, seed):
            params, targets, opt, replay, t = carry
            replay = ring.clear_if(replay, schedules.should_clear_replay(cfg, t))
            ready = replay.size >= bx
            k_b, k_x, k_t, k_p = (draws.derive(seed, i) for i in range(4))
            batch = ring.sample_at(replay, draws.hash_uniform(k_b, (b,)))
            xbatch = ring.sample_at(replay, draws.hash_uniform(k_x, (bx,))) if bx > b else batch
            th = self.theory(h, t)
            tgt, pts_b, pts_x = self._targets(targets, batch, xbatch, th, k_t)
            active = schedules.active_networks(cfg, t)
            on = {n: active[NETWORKS.index(n)] for n in params}
            lrs = {n: self.learning_rate(h, n, t) for n in params}

            goals_e = self.quantities.goal_axis(batch["goals"])

            def predict(p):
                return self._predictions(p, pts_b, self.world.t(batch["ws"]), goals_e, pts_x, xbatch["goals"], th, k_p)

            def loss_fn(p):
                sq = {n: (v - tgt[n]) ** 2 for n, v in predict(p).items()}
                per = {n: v.mean() for n, v in sq.items()}
                if is_table:  # sum of 0.5 err^2: grad / count = minus the mean error per entry
                    total = sum(on[n] * 0.5 * sq[n].sum() for n in sq)
                else:
                    total = sum(on[n] * per[n] for n in per)
                return total, per

            (_, losses), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            grad_norms = {n: optax.global_norm(grads[n]) for n in params}
            apply = {n: on[n] & ready for n in params}
            if is_table:
                counts = jax.grad(lambda p: sum(v.sum() for v in predict(p).values()))(params)
                new_params, new_opt = table_step(params, grads, counts, lrs, apply), opt
            else:
                new_params, new_opt = {}, {}
                for n in params:
                    def adam_step(n=n):
                        clip = self._grad_clip(h, lrs[n])
                        scale = jnp.where(clip > 0, jnp.minimum(1.0, clip / (grad_norms[n] + 1e-6)), 1.0)
                        g = jax.tree.map(lambda gi, pi: gi * scale + h.weight_decay * pi, grads[n], params[n])
                        upd, o = adam.update(g, opt[n])
                        p = jax.tree.map(lambda pi, ui: pi - lrs[n] * ui, params[n], upd)
                        return tree_select(apply[n], p, params[n]), tree_select(apply[n], o, opt[n])

                    new_params[n], new_opt[n] = self._rarely(apply[n], adam_step, (params[n], opt[n]))
            # Target copies every interval: a branch taken only when some member copies.
            new_targets = {}
            for n in params:
                copy = ready & (t % getattr(cfg, f"{n}_target_update_interval") == 0)
                new_targets[n] = self._rarely(
                    copy, lambda c=copy, n=n: tree_select(c, self.target_copy(n, new_params, h), targets[n]), targets[n])
            metrics = {"losses": losses, "grad_norms": grad_norms, "ready": ready,
                       "v_h_e_target": tgt["v_h_e"].mean(), "q_r_target": tgt["q_r"].mean()}
            return (new_params, new_targets, new_opt, replay, t + 1), metrics

        return step

    # -- the update ------------------------------------------------------------------------
    def update(self, st: EmpoState) -> tuple[EmpoState, dict[str, Array]]:
        cfg = self.cfg
        e, g = cfg.update_shape()
        # All randomness of the update from three threefry draws (rljax.empo.draws).
        key, k_env, k_train = jax.random.split(st.key, 3)
        th = self.theory(st.hparams, st.train_step)
        eps_r, eps_h = schedules.epsilon_r(cfg, st.train_step), schedules.epsilon_h(cfg, st.train_step)
        actor, (items, dones, hits) = jax.lax.scan(self._env_step(st, th, eps_r, eps_h), st.actor,
                                                   jax.random.uniform(k_env, (e, self.env_draws)))
        replay = ring.add_batch(st.replay, items)
        (params, targets, opt, replay, t), tm = jax.lax.scan(
            self._train_step(st.hparams), (st.params, st.targets, st.opt_state, replay, st.train_step),
            draws.seeds(k_train, (g,)))
        ready = tm["ready"].astype(jnp.float32)
        trained = ready.sum()

        def over_ready(x):  # mean over the steps that trained; NaN if none did
            return jnp.where(trained > 0, (x * ready).sum() / jnp.maximum(trained, 1.0), jnp.nan)

        metrics = {f"loss_{n}": over_ready(v) for n, v in tm["losses"].items()}
        metrics.update({f"grad_norm_{n}": over_ready(v) for n, v in tm["grad_norms"].items()})
        metrics.update({f"lr_{n}": self.learning_rate(st.hparams, n, t - 1) for n in params})
        metrics.update({
            "stage": schedules.warmup_stage(cfg, t - 1),
            "active_networks": schedules.active_mask_bits(cfg, t - 1),
            "beta_r": th.beta_r,
            "epsilon_r": eps_r,
            "epsilon_h": eps_h,
            "replay_size": replay.size,
            "trained_steps": trained,
            "train_step": t,
            "episodes": dones.sum(),
            "goals_achieved": hits.sum(),
            "v_h_e_target_mean": over_ready(tm["v_h_e_target"]),
            "q_r_target_mean": over_ready(tm["q_r_target"]),
        })
        new = st.replace(params=params, targets=targets, opt_state=opt, actor=actor, replay=replay, key=key,
                         train_step=t, update_step=st.update_step + 1)
        return new, metrics

    def nonfinite(self, st: EmpoState, metrics: dict[str, Array]) -> dict[str, Array]:
        losses = jnp.stack([metrics[f"loss_{n}"] for n in self.networks])
        return {"loss": (metrics["trained_steps"] > 0) & ~jnp.all(jnp.isfinite(losses)),
                "parameters": ~tree_all_finite(st.params)}

    # -- learned quantities over the enumerated states -------------------------------------
    def learned(self, params: dict, h: EmpoHParams) -> OracleResult:
        """The learned quantities at every ``(t, s)`` of the enumerated world (evaluation mode,
        nominal ``beta_r``), shaped like the oracle's tables. Quantities that are not networks
        are derived as the trainer derives them, except that a direct ``X_h`` is the exact
        expectation over goals of the learned ``V_h^e`` (what the trainer's goal samples
        estimate)."""
        w = self.exact
        if w is None:
            raise ValueError("learned(): the world is not enumerable (no exact world)")
        model = self.model if self.model.kind == "table" else NetworkModel(w, self.cfg)
        ws = w.all_situations()
        pts = model.points(w, ws)
        T, S = ws.t.shape
        nh, ng = w.n_humans, w.n_goals
        shape = (T, S, nh, ng)
        v_h_e = model.v_h_e(params, pts, jnp.broadcast_to(jnp.arange(nh)[:, None], shape), jnp.broadcast_to(jnp.arange(ng), shape))
        if self.cfg.x_h_use_network:
            x_h = model.x_h(params, pts, jnp.broadcast_to(jnp.arange(nh), (T, S, nh)))
        else:
            x_h = jnp.einsum("tshg,hg->tsh", v_h_e**h.zeta, w.goal_probs * w.goal_weights)
        if self.cfg.u_r_use_network:
            y = model.y(params, pts)
        else:
            x = jnp.clip(x_h, X_H_MIN, 1.0) ** (-h.xi)
            y = x.sum(-1) if self.cfg.u_r_sum_over_humans else x.mean(-1)
        u_r = -(y**h.eta)
        q_r = exact_last_step(model.q_r(params, pts, h.eta * h.xi), ws.t, w.horizon, h.gamma_r, self.cfg.terminal_v_r)
        pi_r = robot_policy(q_r, h.beta_r)
        v_r = model.v_r(params, pts, h.eta * h.xi) if self.cfg.v_r_use_network else u_r + (pi_r * q_r).sum(-1)
        term_v = jnp.full((1, S), self.cfg.terminal_v_r, jnp.float32)
        return OracleResult(v_r=jnp.concatenate([v_r, term_v]), q_r=q_r, pi_r=pi_r,
                            v_h_e=jnp.concatenate([v_h_e, jnp.zeros((1,) + v_h_e.shape[1:])]), x_h=x_h, u_r=u_r)

    def oracle(self, h: EmpoHParams, robot_policy_table: Array | None = None) -> OracleResult:
        """The exact phase-2 solution with the member's theory (or the exact evaluation of a
        given robot policy ``[T, S, A_r]``), with the trainer's clamp ``X_h >= 1e-3`` before
        ``X_h^(-xi)``: without it a human who can reach no goal in the time left (X_h = 0, e.g.
        at 1156 reachable (t, s) of the small map) makes ``U_r = -inf``. On the trivial map the
        clamp changes nothing (X_h >= 0.2 at every reachable (t, s), beta_r = 1000)."""
        return solve_oracle(self.exact, beta_r=h.beta_r, gamma_r=h.gamma_r, gamma_h=h.gamma_h, zeta=h.zeta, xi=h.xi,
                            eta=h.eta, terminal_v_r=self.cfg.terminal_v_r, u_r_sum=self.cfg.u_r_sum_over_humans,
                            robot_policy=robot_policy_table, x_h_min=X_H_MIN)

    # -- evaluation ------------------------------------------------------------------------
    def evaluation(self, st: EmpoState, keys: Array, max_steps: int) -> dict[str, Array]:
        h = st.hparams
        if self.exact is None:
            return self._evaluate_model_world(st, keys, max_steps)
        w = self.exact
        learned = self.learned(st.params, h)
        star = self.oracle(h)
        attained = self.oracle(h, learned.pi_r)
        errors = oracle_errors(learned, star, w.reachable())
        visited = oracle_errors(learned, star, occupancy(w, star.pi_r, self.mu_h_table()))
        realised = self._episodes_exact(learned.pi_r, attained.u_r, h, keys, max_steps)
        n = keys.shape[0]
        out = {"return": jnp.full((n,), attained.v_r[0, 0]), "realised_return": realised,
               "oracle_v_r": jnp.full((n,), star.v_r[0, 0]), "learned_v_r": jnp.full((n,), learned.v_r[0, 0])}
        out.update({f"{k}_error": jnp.full((n,), v) for k, v in errors.items()})
        out.update({f"{k}_error_visited": jnp.full((n,), v) for k, v in visited.items()})
        return out

    def mu_h_table(self) -> Array:
        """The humans' goal-marginal profile distribution on the enumerated world: ``mu_H[S, A_h]``,
        or ``[T, S, A_h]`` for a prior given per step count."""
        w = self.exact
        table = w.prior_table
        flat = table.reshape((-1,) + table.shape[-3:])
        mu = self.quantities.profiles(flat, jnp.zeros((flat.shape[0], w.n_humans, 1), jnp.int32))[0]
        return mu.reshape(table.shape[:-3] + mu.shape[-1:])

    def _episodes_exact(self, pi_r: Array, u_r: Array, h: EmpoHParams, keys: Array, max_steps: int) -> Array:
        """``sum_t gamma_r^t U_r(t, s_t)`` of episodes with the robot on ``pi_r[T, S, A_r]`` and
        the humans on their goal-marginal prior (the distribution of the oracle's eq. 4)."""
        w = self.exact
        mu_h = self.mu_h_table()
        steps = min(max_steps, w.horizon)

        def episode(key):
            def step(carry, u):
                ws, ret = carry
                a_r = draws.categorical(u[0], pi_r[ws.t, ws.s])
                a_h = draws.categorical(u[1], mu_h[ws.s] if mu_h.ndim == 2 else mu_h[ws.t, ws.s])
                ret = ret + h.gamma_r ** ws.t * u_r[ws.t, ws.s]
                return (w.step(u[2], ws, a_r, a_h), ret), None

            (_, ret), _ = jax.lax.scan(step, (w.reset(0.0), jnp.zeros(())), jax.random.uniform(key, (steps, 3)))
            return ret

        return jax.vmap(episode)(keys)

    def _evaluate_model_world(self, st: EmpoState, keys: Array, max_steps: int) -> dict[str, Array]:
        """Episodes in a non-enumerable world: the realised return under the learned ``U_r``."""
        w, q, h = self.world, self.quantities, st.hparams
        th = Theory(beta_r=h.beta_r, gamma_r=h.gamma_r, gamma_h=h.gamma_h, zeta=h.zeta, xi=h.xi, eta=h.eta)
        online = {n: st.params for n in st.params}
        steps = min(max_steps, w.horizon)

        nh = w.n_humans

        def episode(key):
            def step(carry, x):
                ws, ret, alive = carry
                u, seed = x
                pts = q.points(jax.tree.map(lambda v: v[None], ws))
                u_r = q.u_r(online, pts, (1,), th, seed)[0]
                _, pi = q.q_pi(online, pts, w.t(ws)[None], th)
                a_r = draws.categorical(u[0], pi[0])
                goals = w.sample_goals(u[2:2 + nh])  # a fresh goal per step: the goal-marginal prior
                a_h = w.human_joint(self._human_actions(u[2 + nh:2 + 4 * nh].reshape(3, nh), w.prior(ws), goals,
                                                        jnp.zeros(())))
                ret = ret + alive * h.gamma_r ** w.t(ws) * u_r
                alive = alive * (w.t(ws) + 1 < w.horizon)
                return (w.step(u[1], ws, a_r, a_h), ret, alive), None

            k_u, k_s, k_reset = jax.random.split(key, 3)
            init = (w.reset(jax.random.uniform(k_reset)), jnp.zeros(()), jnp.ones(()))
            xs = (jax.random.uniform(k_u, (steps, 2 + 4 * nh)), draws.seeds(k_s, (steps,)))
            (_, ret, _), _ = jax.lax.scan(step, init, xs)
            return ret

        ret = jax.vmap(episode)(keys)
        return {"return": ret, "realised_return": ret}


def occupancy(world: Any, pi_r: Array, mu_h: Array) -> Array:
    """``float32[T, S]``: the probability that an episode is in configuration ``s`` at step ``t``
    with the robot on ``pi_r[T, S, A_r]`` and the humans on ``mu_h[S, A_h]`` (or per step
    ``[T, S, A_h]``; each row of ``t`` sums to 1)."""
    S, K = world.num_states, world.num_outcomes
    per_step = mu_h.ndim == 3

    def layer(d, xs):
        pi, mu = xs if per_step else (xs, mu_h)
        w = d[:, None, None, None] * pi[:, :, None, None] * mu[:, None, :, None]  # [S, A_r, A_h, 1]
        w = w / K if world.uniform_outcomes else w * world.next_prob  # [S, A_r, A_h, K]
        return jnp.zeros((S,), jnp.float32).at[world.next_state].add(jnp.broadcast_to(w, world.next_state.shape)), d

    d0 = jnp.zeros((S,), jnp.float32).at[0].set(1.0)
    _, d = jax.lax.scan(layer, d0, (pi_r, mu_h) if per_step else pi_r)
    return d


def oracle_errors(learned: OracleResult, star: OracleResult, weights: Array) -> dict[str, Array]:
    """Weighted mean errors over the non-terminal ``(t, s)`` (``weights[T, S]``, e.g. the
    reachable mask or an occupancy): absolute for ``V_r``, ``X_h``, ``V_h^e``, ``Q_r``, ``U_r``;
    total variation ``0.5 sum |pi - pi*|`` for ``pi_r``."""
    m = weights.astype(jnp.float32)
    n = m.sum()
    T = weights.shape[0]

    def mean(err):  # err [T, S, ...]: averaged over trailing axes, then weighted over (t, s)
        e = err.reshape(err.shape[:2] + (-1,)).mean(-1)
        return (e * m).sum() / n

    return {
        "v_r": mean(jnp.abs(learned.v_r[:T] - star.v_r[:T])),
        "pi_r": mean(0.5 * jnp.abs(learned.pi_r - star.pi_r).sum(-1)),
        "x_h": mean(jnp.abs(learned.x_h - star.x_h)),
        "v_h_e": mean(jnp.abs(learned.v_h_e[:T] - star.v_h_e[:T])),
        "q_r": mean(jnp.abs(learned.q_r - star.q_r)),
        "u_r": mean(jnp.abs(learned.u_r - star.u_r)),
    }
