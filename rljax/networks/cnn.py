"""The Goodhart BaseCNN actor-critic, with a CPU-fast 3x3 same convolution.

XLA's CPU convolution is several times slower than PyTorch's oneDNN on small 3x3 convs over
11x11 maps (DESIGN.md). A 3x3 "same" convolution is the same maths as: pad by one, take the 9
shifted copies of the input, concatenate them along channels (``[..., H, W, 9*Cin]``), and
multiply by the kernel reshaped to ``[9*Cin, Cout]``: one large matmul, which XLA's CPU
backend runs near its matmul peak. The parameters keep the usual ``(3, 3, Cin, Cout)`` layout,
so checkpoints are interchangeable with the ``lax.conv_general_dilated`` path.
"""
from __future__ import annotations

from functools import partial
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def extract_patches(x: Array) -> Array:
    """``x[B, H, W, C] -> [B, H, W, 9*C]``: the zero-padded 3x3 neighbourhood of every cell,
    channel order ``(ky, kx, c)`` (matching ``kernel.reshape(9 * C, Cout)``)."""
    h, w = x.shape[-3], x.shape[-2]
    xp = jnp.pad(x, [(0, 0)] * (x.ndim - 3) + [(1, 1), (1, 1), (0, 0)])
    return jnp.concatenate([xp[..., ky : ky + h, kx : kx + w, :] for ky in range(3) for kx in range(3)], axis=-1)


def split_batch(x: Array, chunk: int) -> Array:
    """``[B, ...] -> [ceil(B / chunk), chunk, ...]``, zero-padding the batch."""
    n = -(-x.shape[0] // chunk)
    x = jnp.pad(x, [(0, n * chunk - x.shape[0])] + [(0, 0)] * (x.ndim - 1))
    return x.reshape((n, chunk) + x.shape[1:])


def join_batch(y: Array, batch: int) -> Array:
    """The inverse of :func:`split_batch`: ``[n, chunk, ...] -> [batch, ...]``, padding dropped."""
    return y.reshape((-1,) + y.shape[2:])[:batch]


def _flipped(kernel: Array) -> Array:
    """The kernel whose same-convolution is the input gradient: spatially flipped, Cin<->Cout."""
    return jnp.transpose(kernel[::-1, ::-1], (0, 1, 3, 2))


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_chunked(x: Array, kernel: Array, chunk: int) -> Array:
    k = kernel.reshape(-1, kernel.shape[-1])
    return join_batch(jax.lax.map(lambda xc: extract_patches(xc) @ k, split_batch(x, chunk)), x.shape[0])


def _conv_chunked_fwd(x, kernel, chunk):
    return _conv_chunked(x, kernel, chunk), (x, kernel)


def _conv_chunked_bwd(chunk, res, dy):
    x, kernel = res
    cin, cout = kernel.shape[2], kernel.shape[3]
    kf = _flipped(kernel).reshape(-1, cin)

    # The input gradient is itself a same-convolution of dy; the kernel gradient is
    # dy^T @ patches(x), accumulated chunk by chunk so no [B, H, W, 9C] array reaches memory.
    # (Computing the patch gradient dy @ K^T and folding it back is ~4x slower here.)
    def body(dk_t, xs):
        xc, dyc = xs
        dx_c = extract_patches(dyc) @ kf
        dk_t = dk_t + dyc.reshape(-1, cout).T @ extract_patches(xc).reshape(-1, 9 * cin)
        return dk_t, dx_c

    dk_t, dx = jax.lax.scan(body, jnp.zeros((cout, 9 * cin), dy.dtype), (split_batch(x, chunk), split_batch(dy, chunk)))
    return join_batch(dx, x.shape[0]), dk_t.T.reshape(kernel.shape)


_conv_chunked.defvjp(_conv_chunked_fwd, _conv_chunked_bwd)


def conv3x3_patches(x: Array, kernel: Array, chunk: int = 16) -> Array:
    """3x3 stride-1 zero-padded ("same") convolution as patch extraction plus one matmul.

    ``x[..., H, W, Cin]``, ``kernel[3, 3, Cin, Cout]`` -> ``[..., H, W, Cout]``. Cross-correlation,
    like ``lax.conv_general_dilated`` (and PyTorch's Conv2d).

    Why chunked: this machine streams memory at only ~7 GB/s, and the patch array is 9x the
    input (285 MB for a 1024 x 11x11x64 batch); writing it out costs more than the matmul.
    The batch is processed ``chunk`` samples at a time (``lax.map``) so each chunk's patches
    stay in cache, in the forward pass and in the custom backward pass alike.
    """
    lead = x.shape[:-3]
    x3 = x.reshape((-1,) + x.shape[-3:])
    y = _conv_chunked(x3, kernel, min(chunk, max(x3.shape[0], 1)))
    return y.reshape(lead + y.shape[1:])


def conv3x3_lax(x: Array, kernel: Array) -> Array:
    """Reference: the same convolution through ``lax.conv_general_dilated`` (NHWC, HWIO)."""
    lead = x.shape[:-3]
    x4 = x.reshape((-1,) + x.shape[-3:])
    y = jax.lax.conv_general_dilated(
        x4, kernel, window_strides=(1, 1), padding="SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return y.reshape(lead + y.shape[1:])


CONV_IMPLS = {"patches": conv3x3_patches, "lax": conv3x3_lax}


class FastConv(nn.Module):
    """3x3 same convolution with bias; ``impl`` is ``"patches"`` (fast on CPU) or ``"lax"``.

    ``x[..., H, W, Cin] -> [..., H, W, features]``; params ``kernel (3, 3, Cin, features)``,
    ``bias (features,)``.
    """

    features: int
    impl: str = "patches"
    kernel_init: nn.initializers.Initializer = nn.initializers.orthogonal(np.sqrt(2))
    bias_init: nn.initializers.Initializer = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: Array) -> Array:
        if self.impl not in CONV_IMPLS:
            raise ValueError(f"FastConv impl={self.impl!r} is invalid: must be one of {tuple(CONV_IMPLS)}")
        # Orthogonal init over the flattened (3*3*Cin, Cout) matrix, as PyTorch does for conv.
        kernel = self.param("kernel", self.kernel_init, (3, 3, x.shape[-1], self.features))
        bias = self.param("bias", self.bias_init, (self.features,))
        return CONV_IMPLS[self.impl](x, kernel) + bias


class BaseCNN(nn.Module):
    """Goodhart BaseCNN actor-critic: ``obs[..., H, W, C] -> (logits[..., A], value[...])``.

    Conv(C->32) -> Conv(32->64) -> Conv(64->64) (3x3 same, ReLU) -> flatten -> Dense(512) ->
    ReLU, then a policy Dense(A) (orthogonal gain 0.01) and a separate value Dense(1).
    Orthogonal init with gain sqrt(2) and zero bias elsewhere.
    """

    num_actions: int = 8
    channels: Sequence[int] = (32, 64, 64)
    hidden: int = 512
    conv_impl: str = "patches"

    @nn.compact
    def __call__(self, obs: Array) -> tuple[Array, Array]:
        x = obs.astype(jnp.float32)
        lead = x.shape[:-3]
        for c in self.channels:
            x = nn.relu(FastConv(c, impl=self.conv_impl)(x))
        x = x.reshape(lead + (-1,))
        ortho = nn.initializers.orthogonal
        zeros = nn.initializers.zeros
        h = nn.relu(nn.Dense(self.hidden, kernel_init=ortho(np.sqrt(2)), bias_init=zeros)(x))
        logits = nn.Dense(self.num_actions, kernel_init=ortho(0.01), bias_init=zeros)(h)
        value = nn.Dense(1, kernel_init=ortho(np.sqrt(2)), bias_init=zeros)(h)
        return logits, value[..., 0]
