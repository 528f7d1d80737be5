"""The five phase-2 quantities as neural networks over a world's features.

Input of every network: a situation's features ``x[D]`` (the world's ``features``, e.g.
multigrid's one-hot grid encoding of walls, objects and agents, plus a one-hot step count when
``include_step_count``). Architecture, after the original's roles (sizes from
:class:`~rljax.empo.config.Phase2Config`):

* shared encoders, trained only by the V_h^e loss: state ``relu(Dense_{state_feature_dim}(x))``,
  goal ``relu(Dense_{goal_feature_dim}(goal features))`` (e.g. a goal's cell mask), human ``Embed_{agent_embedding_dim}``;
* ``V_h^e(s, g, h)``: MLP over [state, goal, human] features; a soft clamp to [0, 1] in
  training (linear inside, exponential tails), a hard clamp for targets and evaluation;
* ``X_h(s, h)``: its own state encoder plus the DETACHED shared state and human features; soft
  clamp to (0, 1];
* ``U_r``: MLP over the detached shared state features predicting ``log(y - 1)``, so
  ``y = 1 + exp(out) > 1`` and ``U_r = -y^eta``;
* ``Q_r(s, .)``: its own state encoder plus the detached shared features, one output per robot
  joint action: ``Q_r = -softplus(out)``, or in z-space ``z = sigmoid(out)``,
  ``Q_r = -z^(-eta xi)``;
* ``V_r``: MLP over the detached shared features, ``-softplus(out)`` (or the z-space form).

Every MLP is ``Dense(hidden) -> relu -> dropout -> Dense(hidden) -> relu -> dropout -> Dense``
(dropout only in training, i.e. when a key is given). The first layer over concatenated
features is computed piecewise (each feature block at its own shape, then broadcast-added), which
is the same function but lets one state's features serve many goals and humans.

Parameters: ``{name: {...}}`` for the quantities that are networks; the shared encoders live in
``params["v_h_e"]["shared"]`` (they belong to the V_h^e optimiser). Initialisation is LeCun
normal drawn from hashed seeds (no orthogonal initialiser, so no batched QR inside the
members' vmap, and one PRNG call for all weights).
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rljax.empo.config import Phase2Config
from rljax.empo.draws import derive, hash_normal, hash_uniform, seeds


def draws_seed(key: Array) -> Array:
    """One ``uint32`` seed from a PRNG key."""
    return seeds(key, ())

Array = jax.Array


def _init(seed: Array, shape: tuple, dtype: Any = jnp.float32) -> Array:
    """LeCun normal (variance 1 / fan_in), drawn from a seed (:mod:`rljax.empo.draws`: no
    threefry call per weight matrix)."""
    return (hash_normal(seed, shape) / jnp.sqrt(shape[0])).astype(dtype)


def soft_clamp(z: Array, a: float = 0.0, b: float = 1.0) -> Array:
    """The original's ``SoftClamp(a, b)``: identity on [a, b], exponential tails of range
    ``R = b - a`` beyond, slope 1 at both ends (so gradients never vanish at the bounds)."""
    r = b - a
    return jnp.clip(z, a, b) + r * (1.0 - jnp.exp(-jax.nn.relu(z - b) / r)) + r * (jnp.exp(-jax.nn.relu(a - z) / r) - 1.0)


def negative_output(raw: Array, z_space: bool, eta_xi: Array | float) -> Array:
    """``-softplus(raw)``, or ``-sigmoid(raw)^(-eta xi)`` in z-space (both strictly negative)."""
    if z_space:
        z = jnp.clip(jax.nn.sigmoid(raw), 1e-7, 1.0 - 1e-7)
        return -jnp.exp(-eta_xi * jnp.log(z))
    return -jax.nn.softplus(raw)


def _dense(key: Array, n_in: int, n_out: int) -> dict:
    return {"w": _init(key, (n_in, n_out), jnp.float32), "b": jnp.zeros((n_out,), jnp.float32)}


def _apply_dense(p: dict, x: Array) -> Array:
    return x @ p["w"] + p["b"]




def _dropout(x: Array, rate: float, seed: Array | None) -> Array:
    if seed is None or rate <= 0.0:
        return x
    keep = hash_uniform(seed, x.shape) >= rate
    return jnp.where(keep, x / (1.0 - rate), 0.0)


def _head_init(key: Array, blocks: dict[str, int], hidden: int, n_out: int) -> dict:
    """An MLP whose first layer takes named input blocks (each its own weight matrix)."""
    keys = [derive(key, i) for i in range(len(blocks) + 2)]
    first = {name: _init(k, (n, hidden), jnp.float32) for (name, n), k in zip(blocks.items(), keys)}
    return {"in": first, "b1": jnp.zeros((hidden,), jnp.float32), "h2": _dense(keys[-2], hidden, hidden),
            "out": _dense(keys[-1], hidden, n_out)}


def _head_apply(p: dict, pre: Array, rate: float, seed: Array | None) -> Array:
    """The MLP after its first layer's pre-activation ``pre[..., hidden]`` (sum of blocks)."""
    k1, k2 = (derive(seed, 0), derive(seed, 1)) if seed is not None else (None, None)
    h = _dropout(jax.nn.relu(pre + p["b1"]), rate, k1)
    h = _dropout(jax.nn.relu(_apply_dense(p["h2"], h)), rate, k2)
    return _apply_dense(p["out"], h)


def _expand(x: Array, lead: int, extra: int) -> Array:
    """``x[L..., F]`` -> ``x[L..., 1 (extra times), F]``."""
    return x.reshape(x.shape[:lead] + (1,) * extra + x.shape[lead:])


class NetworkModel:
    """Neural representation of the phase-2 quantities (see the module docstring).

    ``points(world, ws)`` turns situations (any leading shape ``L``) into network inputs; the
    quantity functions take those inputs plus, for per-human/per-goal quantities, human and goal
    indices of shape ``L + E`` (broadcast against the inputs). ``key`` (a ``uint32`` seed for
    the dropout masks, :mod:`rljax.empo.draws`) given: training mode (dropout, soft clamps);
    ``None``: evaluation (no dropout, hard clamps).
    """

    kind = "network"

    def __init__(self, world: Any, cfg: Phase2Config):
        self.world, self.cfg = world, cfg
        self.use = cfg.network_in_use
        self.n_humans, self.n_goals = world.n_humans, world.n_goals
        self.num_robot_actions = world.num_robot_actions
        self.goal_features = world.goal_features  # [n_h, G, F]

    # -- parameters ------------------------------------------------------------------------
    def init(self, key: Array) -> dict:
        c, d = self.cfg, self.world.feature_size
        seed = draws_seed(key)
        ks, kg, ka, kv, kx, kxe, ku, kq, kqe, kr = (derive(seed, i) for i in range(10))
        shared = {"state": _dense(ks, d, c.state_feature_dim),
                  "goal": _dense(kg, int(self.goal_features.shape[-1]), c.goal_feature_dim),
                  "agent": _init(ka, (self.n_humans, c.agent_embedding_dim), jnp.float32)}
        params = {"v_h_e": {"shared": shared, "head": _head_init(
            kv, {"state": c.state_feature_dim, "goal": c.goal_feature_dim, "agent": c.agent_embedding_dim},
            c.hidden_dim, 1)}}
        if self.use["x_h"]:
            params["x_h"] = {"encoder": _dense(kxe, d, c.state_feature_dim), "head": _head_init(
                kx, {"own": c.state_feature_dim, "state": c.state_feature_dim, "agent": c.agent_embedding_dim},
                c.hidden_dim, 1)}
        if self.use["u_r"]:
            params["u_r"] = {"head": _head_init(ku, {"state": c.state_feature_dim}, c.hidden_dim, 1)}
        params["q_r"] = {"encoder": _dense(kqe, d, c.state_feature_dim), "head": _head_init(
            kq, {"own": c.state_feature_dim, "state": c.state_feature_dim}, c.hidden_dim, self.num_robot_actions)}
        if self.use["v_r"]:
            params["v_r"] = {"head": _head_init(kr, {"state": c.state_feature_dim}, c.hidden_dim, 1)}
        return params

    # -- inputs ----------------------------------------------------------------------------
    def points(self, world: Any, ws: Any) -> Array:
        """Network inputs ``float32[L..., D]`` of situations with leading shape ``L``."""
        f = world.features
        for _ in range(jax.tree.leaves(ws)[0].ndim):
            f = jax.vmap(f)
        return f(ws)

    def _shared(self, params: dict, x: Array) -> Array:
        return jax.nn.relu(_apply_dense(params["v_h_e"]["shared"]["state"], x))

    # -- quantities ------------------------------------------------------------------------
    def v_h_e(self, params: dict, x: Array, h: Array, g: Array, key: Array | None = None) -> Array:
        """``V_h^e(s, g, h)``: ``x[L, D]``, ``h``/``g`` int ``[L + E]`` -> ``[L + E]``."""
        lead, extra = x.ndim - 1, h.ndim - (x.ndim - 1)
        shared, head = params["v_h_e"]["shared"], params["v_h_e"]["head"]
        s_pre = _expand(self._shared(params, x) @ head["in"]["state"], lead, extra)
        goal_feat = jax.nn.relu(_apply_dense(shared["goal"], self.goal_features))  # [n_h, G, Fg]
        g_pre = (goal_feat @ head["in"]["goal"])[h, g]  # [L + E, hidden]
        a_pre = (shared["agent"] @ head["in"]["agent"])[h]
        out = _head_apply(head, s_pre + g_pre + a_pre, self.cfg.dropout, key)[..., 0]
        return soft_clamp(out) if key is not None else jnp.clip(out, 0.0, 1.0)

    def x_h(self, params: dict, x: Array, h: Array, key: Array | None = None) -> Array:
        """``X_h(s, h)``: ``x[L, D]``, ``h`` int ``[L + E]`` -> ``[L + E]``."""
        lead, extra = x.ndim - 1, h.ndim - (x.ndim - 1)
        p = params["x_h"]
        shared = jax.lax.stop_gradient(self._shared(params, x))
        agent = jax.lax.stop_gradient(params["v_h_e"]["shared"]["agent"])
        own = jax.nn.relu(_apply_dense(p["encoder"], x))
        pre = _expand(own @ p["head"]["in"]["own"] + shared @ p["head"]["in"]["state"], lead, extra)
        pre = pre + (agent @ p["head"]["in"]["agent"])[h]
        out = _head_apply(p["head"], pre, self.cfg.dropout, key)[..., 0]
        return soft_clamp(out) if key is not None else jnp.clip(out, 0.0, 1.0)

    def y(self, params: dict, x: Array, key: Array | None = None) -> Array:
        """The U_r network's ``y = 1 + exp(out) > 1`` (``U_r = -y^eta``): ``[L]``."""
        p = params["u_r"]
        shared = jax.lax.stop_gradient(self._shared(params, x))
        return 1.0 + jnp.exp(_head_apply(p["head"], shared @ p["head"]["in"]["state"], self.cfg.dropout, key)[..., 0])

    def q_r(self, params: dict, x: Array, eta_xi: Array | float, key: Array | None = None) -> Array:
        """``Q_r(s, .)``: ``[L, A_r]``, strictly negative."""
        p = params["q_r"]
        shared = jax.lax.stop_gradient(self._shared(params, x))
        own = jax.nn.relu(_apply_dense(p["encoder"], x))
        pre = own @ p["head"]["in"]["own"] + shared @ p["head"]["in"]["state"]
        raw = _head_apply(p["head"], pre, self.cfg.dropout, key)
        return negative_output(raw, self.cfg.use_z_space_transform, eta_xi)

    def v_r(self, params: dict, x: Array, eta_xi: Array | float, key: Array | None = None) -> Array:
        """``V_r(s)``: ``[L]``, strictly negative."""
        p = params["v_r"]
        shared = jax.lax.stop_gradient(self._shared(params, x))
        raw = _head_apply(p["head"], shared @ p["head"]["in"]["state"], self.cfg.dropout, key)[..., 0]
        return negative_output(raw, self.cfg.use_z_space_transform, eta_xi)
