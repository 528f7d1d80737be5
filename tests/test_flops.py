"""rljax.flops counts the matrix arithmetic of a traced program: checked against hand counts."""
import jax
import jax.numpy as jnp
import pytest

from rljax.flops import FlopCount, jaxpr_flops
from rljax.networks.cnn import BaseCNN


def test_dense_scan_cond_and_while():
    x, w = jnp.zeros((3, 4)), jnp.zeros((4, 5))
    assert jaxpr_flops(jnp.dot, x, w) == FlopCount(2 * 3 * 4 * 5)
    scanned = lambda x, w: jax.lax.scan(lambda c, _: (c, c @ w), x, None, length=7)[1]
    assert jaxpr_flops(scanned, x, w).flops == 7 * 120
    # cond: the costlier branch; while: the body once, flagged
    branchy = lambda p, x, w: jax.lax.cond(p, lambda: (x @ w) @ jnp.zeros((5, 6)), lambda: jnp.zeros((3, 6)))
    assert jaxpr_flops(branchy, True, x, w).flops == 120 + 2 * 3 * 5 * 6
    looped = jax.jit(lambda x, w: jax.lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] @ jnp.eye(4)), (0, x)))
    c = jaxpr_flops(looped, x, w)
    assert c.flops == 2 * 3 * 4 * 4 and c.while_loops == 1


def test_convolution_network_forward_and_gradient_match_the_hand_count():
    """Goodhart's CNN (3 same-padded 3x3 convolutions 6->32->64->64 on 11x11, dense 7744->512,
    heads 512->8 and 512->1) as XLA convolutions: forward 2 x multiply-adds; the gradient adds
    the weight gradients of every layer and the input gradients of all but the first."""
    from rljax.experiments.goodhart.bench import flops_per_sample

    net = BaseCNN(num_actions=8, conv_impl="lax")
    x = jnp.zeros((2, 11, 11, 6))
    params = net.init(jax.random.key(0), x[:1])
    convs = 121 * 9 * (6 * 32 + 32 * 64 + 64 * 64)
    dense = 121 * 64 * 512 + 512 * 8 + 512
    assert jaxpr_flops(net.apply, params, x).flops == pytest.approx(2 * 2 * (convs + dense), rel=1e-12)
    loss = lambda p, x: sum(jnp.sum(o) for o in jax.tree.leaves(net.apply(p, x)))
    # the gradient of a SUM of the heads' outputs never needs the heads' own forward products
    # (the outputs are linear in them), which the count drops like XLA does
    heads = 2 * (512 * 8 + 512)
    assert jaxpr_flops(jax.grad(loss), params, x).flops == pytest.approx(2 * (flops_per_sample() - heads), rel=1e-12)


def test_computations_no_output_needs_are_not_counted():
    x, w = jnp.zeros((3, 4)), jnp.zeros((4, 5))

    def actor_only(x, w):
        unused = x @ jnp.zeros((4, 100))  # a critic nobody reads
        return x @ w

    assert jaxpr_flops(actor_only, x, w).flops == 120


def test_a_custom_vjp_call_counts_its_primal_once():
    """A ``custom_vjp`` function's primal is a jaxpr inside the call (counted once); its
    forward and backward rules are thunks the count cannot see and must not double."""

    @jax.custom_vjp
    def matmul(x, w):
        return x @ w

    matmul.defvjp(lambda x, w: (x @ w, (x, w)), lambda r, g: (g @ r[1].T, r[0].T @ g))
    x, w = jnp.ones((8, 16)), jnp.ones((16, 4))
    assert jaxpr_flops(matmul, x, w).flops == 2 * 8 * 16 * 4
    assert jaxpr_flops(lambda x, w: matmul(x, w) + matmul(x, w), x, w).flops == 2 * 2 * 8 * 16 * 4
