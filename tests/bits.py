"""Bit-exactness where the backend promises it.

On CPU XLA is deterministic and the same program gives the same bits, so reruns, chunked vs
compiled runs and resumed runs are compared exactly. On GPU/TPU some kernels (reductions with
atomics, autotuned convolutions) may change the last bits between programs or runs unless
``--xla_gpu_deterministic_ops`` is set, so the same assertions become tolerance checks there.
"""
import jax
import jax.numpy as jnp
import numpy as np

EXACT = jax.default_backend() == "cpu"
ATOL, RTOL = 1e-5, 1e-4  # off CPU: what float32 reassociation can move in a short run


def same(a, b) -> bool:
    """Leaf-wise equality: exact on CPU, ``allclose`` elsewhere."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    if len(la) != len(lb):
        return False
    if EXACT:
        return all(bool(jnp.array_equal(x, y)) for x, y in zip(la, lb))
    return all(np.allclose(np.asarray(x), np.asarray(y), atol=ATOL, rtol=RTOL, equal_nan=True) for x, y in zip(la, lb))


def differs(a, b) -> bool:
    """The trees are really different (beyond what :func:`same` tolerates)."""
    return not same(a, b)
