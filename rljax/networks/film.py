"""The FiLM two-head policy of normative harvest: one trunk, a context-conditioned (FiLM) hidden
state, a game head over the 10 non-zap actions, a sanction head for the zap, and a value head.

It maps an observation ``obs[..., view_rows * view_cols * view_channels + 1 + context_dim]``
laid out as ``concat(view.ravel(), ready_to_shoot[1], context[context_dim])`` (the harvest
environment's :func:`rljax.environments.harvest.split_observation` layout) to

    (gated_categorical(game_logits[..., 10], sanction_logit[...], gate_action=7), value[...])

so PPO treats it as ONE joint distribution over the 11 actions with two entropy terms
``[H_game, H_sanction]`` (:class:`rljax.distributions.GatedCategorical`): ``p(zap) =
sigmoid(s)`` and the other actions share ``1 - p(zap)`` by the game head's softmax; ``H_game`` is
the entropy of that renormalised softmax and ``H_sanction`` the binary entropy of the zap, so
``ppo.ent_coef=(0.01, 0.02)`` gives the head-wise bonus ``0.01 H_game + 0.02 H_sanction``, once.

Layers (widths as the reference's ``film_policy.py``; ``C`` is the context: the permitted colour
one-hot in the treatment arm, zeros in the control arm, so the arms share one architecture)::

    trunk     view -> Conv(32) -> ReLU -> Conv(64) -> ReLU -> Conv(64) -> ReLU -> flatten
                   -> Linear(256) -> ReLU                                         = h_visual
              [h_visual, ready_to_shoot, timestep = 0] (258) -> Linear(256) -> ReLU = h
    FiLM      gamma = W_g C + b_g,  beta = W_b C + b_b  (W = 0, b_g = 1, b_b = 0 at init)
              h~ = gamma * h + beta
    game      h~ -> Linear(128) -> ReLU -> Linear(10)          logits of actions 0-6, 8, 9, 10
    sanction  s = Linear(1)(h~) + u . SiLU(FiLM_s(C, Linear(128)(h~)))       logit of action 7
              (u = 0 and FiLM_s the identity at init, so s starts as the linear term alone)
    value     h~ -> Linear(128) -> ReLU -> Linear(64) -> ReLU -> Linear(1)

With ``W = 0`` in both FiLMs the context has no effect at initialisation: the treatment and the
control arm start as the same function, and only learning can make the treatment arm use it.
The timestep input is the reference's optional ``t/T`` feature, off by default there too; it is
kept as a constant 0 so the second layer has the reference's 258 inputs.

**What changed in the trunk, and why.** The reference's trunk reads the 88x88 RGB rendering (8
pixels per cell of the same 11x11 window): Conv(3->32, k8, s4) -> Conv(32->64, k4, s2) ->
Conv(64->64, k3, s1) -> 7x7x64 = 3136 -> Linear(256). Our default observation is the symbolic
11x11x10 view (one cell per position, the spec's decision), on which an 8x8 stride-4 kernel would
leave a 1x1 map after the first layer. The channel widths (32, 64, 64) and every linear width are
kept; only the kernels and strides are adapted to a cell grid (``trunk``):

* ``"full"``: three 3x3 stride-1 convolutions, valid, valid, same: 11 -> 9 -> 7 -> 7, so the
  feature map is 7x7x64 = 3136, the reference's size, and Linear(3136 -> 256) is the reference's
  layer. A 3x3 cell kernel covers what the reference's first layers see (a cell and its
  neighbours); receptive field 7x7 cells.
* ``"strided"``: 3x3 valid stride 1, 3x3 valid stride 2, 3x3 same stride 1: 11 -> 9 -> 4 -> 4,
  a 4x4x64 = 1024 map. The stride-2 second layer mirrors the reference's second-layer stride.
* ``"compact"`` (the default): as ``"strided"`` with a valid third layer: 11 -> 9 -> 4 -> 2, a
  2x2x64 = 256 map; receptive field 11x11 cells (the whole window). It is the cheapest of the
  three (a PPO gradient step costs about a third of ``"full"`` and half of ``"strided"`` here);
  training speed: ``experiments/communities/bench.py`` and ``docs/communities.md``.

Convolutions run as XLA's convolution (``conv_impl="lax"``, the right choice on GPUs) or as
patch extraction plus one matmul with a hand-written backward pass (``"patches"``, faster on
XLA's CPU backend, as :mod:`rljax.networks.cnn` found for Goodhart's trunk: a gradient step on
a 4096-sample minibatch of the compact trunk took 1.95 s against 3.42 s for XLA's convolution,
and 1.16 s once the input gradient became a col2im and the first layer's was dropped; 2-core
EPYC shared with other jobs, load about 7); the parameters
(``kernel[k, k, Cin, Cout]``, ``bias[Cout]``) and the maths are the same.

:class:`RecurrentFiLMPolicy` is the GRU variant (``network.recurrent=true`` in the communities
experiment): ``h -> GRU -> FiLM -> heads``, every other layer as above.

Initialisation: orthogonal (gain sqrt 2) for hidden layers, 0.01 for the game logits and the
sanction's linear term, 1.0 for the value output; zero biases; FiLMs and ``u`` as above.
"""
from __future__ import annotations

from functools import partial
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rljax.distributions import JointDistribution, gated_categorical
from rljax.networks.cnn import join_batch, split_batch

Array = jax.Array

# Per convolution: (kernel size, stride, padding). See the module docstring.
TRUNKS: dict[str, tuple[tuple[int, int, str], ...]] = {
    "full": ((3, 1, "VALID"), (3, 1, "VALID"), (3, 1, "SAME")),
    "strided": ((3, 1, "VALID"), (3, 2, "VALID"), (3, 1, "SAME")),
    "compact": ((3, 1, "VALID"), (3, 2, "VALID"), (3, 1, "VALID")),
}
CONV_IMPLS = ("lax", "patches")


# ----------------------------------------------------------------------------------------
# Convolution as patches + matmul (CPU) with its own backward pass
# ----------------------------------------------------------------------------------------
def _patches(x: Array, k: int, stride: int) -> Array:
    """``x[B, H, W, C] -> [B, Ho, Wo, k*k*C]`` (valid windows, channel order ``(ky, kx, c)``)."""
    ho, wo = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
    span_h, span_w = (ho - 1) * stride + 1, (wo - 1) * stride + 1
    return jnp.concatenate([x[:, i:i + span_h:stride, j:j + span_w:stride, :] for i in range(k) for j in range(k)], axis=-1)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv_valid(x: Array, kernel: Array, stride: int, chunk: int, input_grad: bool = True) -> Array:
    k = kernel.shape[0]
    km = kernel.reshape(-1, kernel.shape[-1])
    return join_batch(jax.lax.map(lambda xc: _patches(xc, k, stride) @ km, split_batch(x, chunk)), x.shape[0])


def _conv_valid_fwd(x, kernel, stride, chunk, input_grad):
    return _conv_valid(x, kernel, stride, chunk, input_grad), (x, kernel)


def _conv_valid_bwd(stride, chunk, input_grad, res, dy):
    x, kernel = res
    k, cin, cout = kernel.shape[0], kernel.shape[2], kernel.shape[3]
    h, w = x.shape[1], x.shape[2]
    ho, wo = dy.shape[1], dy.shape[2]
    span_h, span_w = (ho - 1) * stride + 1, (wo - 1) * stride + 1
    km_t = kernel.reshape(-1, cout).T

    # Kernel gradient: patches(x)^T @ dy, accumulated chunk by chunk. Input gradient: the patch
    # gradient dy @ kernel^T scattered back onto the input ("col2im": each of the k*k slices
    # is placed at its strided offset by an interior-padded pad, and the k*k pieces summed).
    # This costs what the forward costs; the transposed convolution of the zero-dilated dy it
    # replaces multiplied mostly zeros (5x the work at stride 2 on the 11x11 view, 4x on 4x4 ->
    # 2x2). ``input_grad=False`` (a layer reading the observation) skips the input gradient.
    def body(dk, xs):
        xc, dyc = xs
        dk = dk + _patches(xc, k, stride).reshape(-1, k * k * cin).T @ dyc.reshape(-1, cout)
        if not input_grad:
            return dk, None
        dp = dyc @ km_t
        dx = None
        for n, (i, j) in enumerate((i, j) for i in range(k) for j in range(k)):
            piece = jax.lax.pad(dp[..., n * cin:(n + 1) * cin], jnp.zeros((), dp.dtype),
                                [(0, 0, 0), (i, h - i - span_h, stride - 1), (j, w - j - span_w, stride - 1), (0, 0, 0)])
            dx = piece if dx is None else dx + piece
        return dk, dx

    dk, dx = jax.lax.scan(body, jnp.zeros((k * k * cin, cout), dy.dtype), (split_batch(x, chunk), split_batch(dy, chunk)))
    dx = join_batch(dx, x.shape[0]) if input_grad else jnp.zeros_like(x)
    return dx, dk.reshape(kernel.shape)


_conv_valid.defvjp(_conv_valid_fwd, _conv_valid_bwd)


def conv2d(x: Array, kernel: Array, stride: int = 1, padding: str = "VALID", impl: str = "lax",
           chunk: int = 32, input_grad: bool = True) -> Array:
    """Cross-correlation ``x[..., H, W, Cin]`` with ``kernel[k, k, Cin, Cout]`` (odd ``k``),
    ``padding`` ``"VALID"`` or ``"SAME"`` (zeros, ``k // 2`` on each side, as for stride 1).
    ``impl``: ``"lax"`` (XLA's convolution) or ``"patches"`` (same result; faster on CPU). The
    patch path works through the batch ``chunk`` samples at a time (``lax.map``/``scan``) so the
    patch arrays (9x the input) stay in cache: this machine streams memory at only a few GB/s.
    ``input_grad=False`` (patches only) returns a zero gradient for ``x`` without computing it: for
    a layer whose input is the observation."""
    lead = x.shape[:-3]
    x4 = x.reshape((-1,) + x.shape[-3:])
    k = kernel.shape[0]
    if impl == "lax":
        pad = [(k // 2, k // 2)] * 2 if padding == "SAME" else "VALID"
        y = jax.lax.conv_general_dilated(x4, kernel, (stride, stride), pad, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    elif impl == "patches":
        if padding == "SAME":
            x4 = jnp.pad(x4, [(0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)])
        y = _conv_valid(x4, kernel, stride, min(chunk, max(x4.shape[0], 1)), input_grad)
    else:
        raise ValueError(f"conv2d impl={impl!r} is invalid: must be one of {CONV_IMPLS}")
    return y.reshape(lead + y.shape[1:])


# ----------------------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------------------
def _ortho(gain: float) -> nn.initializers.Initializer:
    return nn.initializers.orthogonal(gain)


def _dense(features: int, gain: float = float(np.sqrt(2)), name: str | None = None) -> nn.Dense:
    return nn.Dense(features, kernel_init=_ortho(gain), bias_init=nn.initializers.zeros, name=name)


class Conv(nn.Module):
    """A convolution with bias; ``x[..., H, W, Cin] -> [..., Ho, Wo, features]``."""

    features: int
    kernel_size: int = 3
    stride: int = 1
    padding: str = "VALID"
    impl: str = "lax"
    input_grad: bool = True  # False: the input is data (the observation), its gradient is never used

    @nn.compact
    def __call__(self, x: Array) -> Array:
        # Orthogonal over the flattened (k*k*Cin, Cout) matrix, as PyTorch/SB3 do for convs.
        kernel = self.param("kernel", _ortho(np.sqrt(2)), (self.kernel_size, self.kernel_size, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return conv2d(x, kernel, self.stride, self.padding, self.impl, input_grad=self.input_grad) + bias


class FiLM(nn.Module):
    """``gamma(C) * h + beta(C)`` with ``gamma = W_g C + b_g`` and ``beta = W_b C + b_b``,
    initialised to the identity (``W = 0, b_g = 1, b_b = 0``)."""

    @nn.compact
    def __call__(self, context: Array, h: Array) -> Array:
        n = h.shape[-1]
        gamma = nn.Dense(n, kernel_init=nn.initializers.zeros, bias_init=nn.initializers.ones, name="gamma")(context)
        beta = nn.Dense(n, kernel_init=nn.initializers.zeros, bias_init=nn.initializers.zeros, name="beta")(context)
        return gamma * h + beta


class FiLMPolicy(nn.Module):
    """``obs[..., D] -> (JointDistribution, value[...])``; see the module docstring.

    ``view_shape``: ``(rows, cols, channels)`` of the view at the start of the observation;
    ``context_dim``: entries of the context at its end (after one ``ready_to_shoot`` entry).
    """

    view_shape: tuple[int, int, int] = (11, 11, 10)
    context_dim: int = 3
    num_actions: int = 11
    gate_action: int = 7
    trunk: str = "compact"
    channels: Sequence[int] = (32, 64, 64)
    hidden: int = 256
    head_hidden: int = 128
    value_hidden: Sequence[int] = (128, 64)
    conv_impl: str = "lax"

    def split(self, obs: Array) -> tuple[Array, Array, Array]:
        """``obs[..., D] -> (view[..., r, c, ch], ready[..., 1], context[..., context_dim])``."""
        n = int(np.prod(self.view_shape))
        expected = n + 1 + self.context_dim
        if obs.shape[-1] != expected:
            raise ValueError(f"FiLMPolicy: observation has {obs.shape[-1]} entries, expected {expected} "
                             f"(view {self.view_shape} + ready_to_shoot + context {self.context_dim})")
        view = obs[..., :n].reshape(obs.shape[:-1] + tuple(self.view_shape))
        return view, obs[..., n:n + 1], obs[..., n + 1:]

    @nn.compact
    def __call__(self, obs: Array) -> tuple[JointDistribution, Array]:
        h, context = _film_trunk(self, obs)
        return _film_heads(self, h, context)


class RecurrentFiLMPolicy(FiLMPolicy):
    """The GRU variant of :class:`FiLMPolicy`: ``(carry[..., cell_size], obs[..., D]) -> (carry,
    (JointDistribution, value[...]))``, driven by PPO through :class:`rljax.ppo.policy.Policy`.

    The memory sits between the trunk and the FiLM: ``h -> GRU -> h_mem -> FiLM(C, h_mem) ->
    heads``. So the context still conditions every head directly (FiLM after the memory, not
    fed into it), and with the FiLMs at their identity initialisation the treatment and the
    control arm again start as the same function. Every layer keeps :class:`FiLMPolicy`'s name;
    the GRU adds ``gru``. ``cell_size`` defaults to the trunk's width (256), as
    :func:`rljax.networks.recurrent.recurrent_cnn` keeps the Goodhart trunk's.
    """

    cell_size: int = 256

    recurrent = True  # read by rljax.ppo.policy.is_recurrent

    def initial_carry(self, batch_shape: tuple[int, ...]) -> Array:
        """The zero memory of an episode start, ``[*batch_shape, cell_size]``."""
        return jnp.zeros(tuple(batch_shape) + (self.cell_size,), jnp.float32)

    @nn.compact
    def __call__(self, carry: Array, obs: Array) -> tuple[Array, tuple[JointDistribution, Array]]:
        h, context = _film_trunk(self, obs)
        carry, memory = nn.GRUCell(self.cell_size, name="gru")(carry, h)
        return carry, _film_heads(self, memory, context)


# The two halves of the FiLM policy, shared by the feedforward and the recurrent form. They are
# called from inside a module's compact ``__call__``, so the layers they create belong to that
# module under the names given here: the feedforward policy's parameters are exactly what they
# were before the split (same names, hence the same initial values for a key).
def _film_trunk(m: FiLMPolicy, obs: Array) -> tuple[Array, Array]:
    """``obs[..., D] -> (h[..., hidden], context[..., context_dim])``: convolutions, the visual
    layer and the hidden layer over ``[h_visual, ready_to_shoot, timestep = 0]``."""
    if m.trunk not in TRUNKS:
        raise ValueError(f"FiLMPolicy trunk={m.trunk!r} is invalid: must be one of {tuple(TRUNKS)}")
    if len(m.channels) != len(TRUNKS[m.trunk]):
        raise ValueError(f"FiLMPolicy: {len(m.channels)} channel widths for a {len(TRUNKS[m.trunk])}-layer trunk")
    obs = obs.astype(jnp.float32)
    view, ready, context = m.split(obs)
    lead = obs.shape[:-1]

    x = view
    for i, (width, (k, s, pad)) in enumerate(zip(m.channels, TRUNKS[m.trunk])):
        x = nn.relu(Conv(width, k, s, pad, m.conv_impl, input_grad=i > 0, name=f"conv{i}")(x))
    h_visual = nn.relu(_dense(m.hidden, name="visual")(x.reshape(lead + (-1,))))
    timestep = jnp.zeros(lead + (1,), jnp.float32)
    h = nn.relu(_dense(m.hidden, name="hidden")(jnp.concatenate([h_visual, ready, timestep], axis=-1)))
    return h, context


def _film_heads(m: FiLMPolicy, h: Array, context: Array) -> tuple[JointDistribution, Array]:
    """``(h[..., hidden], context) -> (gated_categorical(game, sanction), value[...])``: the FiLM
    on ``h``, the game head, the sanction head (with its own FiLM) and the value head."""
    h = FiLM(name="film")(context, h)

    game = _dense(m.num_actions - 1, 0.01, name="game_logits")(
        nn.relu(_dense(m.head_hidden, name="game_hidden")(h)))
    linear = _dense(1, 0.01, name="sanction_linear")(h)[..., 0]
    z = FiLM(name="film_sanction")(context, _dense(m.head_hidden, name="sanction_hidden")(h))
    u = m.param("u", nn.initializers.zeros, (m.head_hidden,))
    sanction = linear + nn.silu(z) @ u

    v = h
    for i, width in enumerate(m.value_hidden):
        v = nn.relu(_dense(width, name=f"value_hidden{i}")(v))
    value = _dense(1, 1.0, name="value")(v)[..., 0]
    return gated_categorical(game, sanction, m.gate_action), value
