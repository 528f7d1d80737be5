"""The patch-matmul 3x3 convolution equals lax.conv_general_dilated, values and gradients."""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.networks.cnn import BaseCNN, FastConv, conv3x3_lax, conv3x3_patches


def _inputs(batch, h=5, w=6, cin=3, cout=4, seed=0):
    kx, kk = jax.random.split(jax.random.key(seed))
    return jax.random.normal(kx, (batch, h, w, cin)), jax.random.normal(kk, (3, 3, cin, cout))


@pytest.mark.parametrize("batch,chunk", [(1, 16), (7, 3), (8, 4)])  # incl. a batch not divisible by the chunk
def test_patch_conv_matches_lax_values_and_gradients(batch, chunk):
    x, k = _inputs(batch)
    fast = lambda x, k: conv3x3_patches(x, k, chunk=chunk)
    np.testing.assert_allclose(fast(x, k), conv3x3_lax(x, k), rtol=1e-5, atol=1e-5)
    # A non-uniform cotangent checks every output position's gradient path.
    w = jax.random.normal(jax.random.key(9), (batch, 5, 6, 4))
    loss = lambda f: (lambda x, k: jnp.sum(jnp.tanh(f(x, k)) * w))
    gf = jax.grad(loss(fast), argnums=(0, 1))(x, k)
    gl = jax.grad(loss(conv3x3_lax), argnums=(0, 1))(x, k)
    for a, b in zip(gf, gl):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_patch_conv_is_cross_correlation_with_zero_padding():
    """A single 1 at the top-left with a kernel whose only 1 is at (ky=2, kx=2) (bottom-right)
    shows up at output (0, 0) only if the kernel is not flipped and the border is zero-padded."""
    x = jnp.zeros((1, 4, 4, 1)).at[0, 1, 1, 0].set(1.0)
    k = jnp.zeros((3, 3, 1, 1)).at[2, 2, 0, 0].set(1.0)
    y = conv3x3_patches(x, k)[0, ..., 0]
    expected = np.zeros((4, 4))
    expected[0, 0] = 1.0
    np.testing.assert_array_equal(y, expected)


def test_leading_dims_and_vmap():
    x, k = _inputs(6)
    x2 = x.reshape(2, 3, 5, 6, 3)
    np.testing.assert_allclose(conv3x3_patches(x2, k).reshape(6, 5, 6, 4), conv3x3_lax(x, k), rtol=1e-5, atol=1e-5)
    vm = jax.vmap(lambda xx: conv3x3_patches(xx, k, chunk=2))(x2)
    np.testing.assert_allclose(vm.reshape(6, 5, 6, 4), conv3x3_lax(x, k), rtol=1e-5, atol=1e-5)


def test_fastconv_param_layout_and_bad_impl():
    params = FastConv(7).init(jax.random.key(0), jnp.zeros((1, 5, 5, 3)))
    chex.assert_shape(params["params"]["kernel"], (3, 3, 3, 7))
    chex.assert_shape(params["params"]["bias"], (7,))
    with pytest.raises(ValueError, match="impl"):
        FastConv(7, impl="fft").init(jax.random.key(0), jnp.zeros((1, 5, 5, 3)))


@pytest.fixture(scope="module")
def net_and_params():
    net = BaseCNN(num_actions=8, channels=(4, 8, 8), hidden=16)
    params = net.init(jax.random.key(0), jnp.zeros((1, 11, 11, 6)))
    return net, params


def test_basecnn_shapes_and_paths_agree(net_and_params):
    net, params = net_and_params
    obs = jax.random.uniform(jax.random.key(1), (3, 2, 11, 11, 6))
    logits, value = jax.jit(net.apply)(params, obs)
    chex.assert_shape(logits, (3, 2, 8))
    chex.assert_shape(value, (3, 2))
    chex.assert_tree_all_finite((logits, value))
    ref = BaseCNN(num_actions=8, channels=(4, 8, 8), hidden=16, conv_impl="lax")
    lr, vr = ref.apply(params, obs)  # same parameter tree works on both paths
    np.testing.assert_allclose(logits, lr, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(value, vr, rtol=1e-4, atol=1e-6)

    def loss(p, n):
        lg, v = n.apply(p, obs)
        return jnp.sum(jax.nn.log_softmax(lg)[..., 3]) + jnp.sum(v**2)

    g_fast = jax.grad(loss)(params, net)
    g_lax = jax.grad(loss)(params, ref)
    chex.assert_trees_all_close(g_fast, g_lax, rtol=1e-3, atol=1e-6)


def test_basecnn_init_gains(net_and_params):
    _, params = net_and_params
    p = params["params"]
    kernels = {k: v["kernel"] for k, v in p.items()}
    assert set(kernels) == {"FastConv_0", "FastConv_1", "FastConv_2", "Dense_0", "Dense_1", "Dense_2"}
    for v in p.values():
        assert not np.any(v["bias"])
    # Orthogonal columns scaled by the gain: policy 0.01, everything else sqrt(2).
    pol = np.asarray(kernels["Dense_1"])
    np.testing.assert_allclose(pol.T @ pol, 0.01**2 * np.eye(8), atol=1e-6)
    conv = np.asarray(kernels["FastConv_1"]).reshape(-1, 8)
    np.testing.assert_allclose(conv.T @ conv, 2.0 * np.eye(8), atol=1e-4)
