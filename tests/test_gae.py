import jax.numpy as jnp
import numpy as np

from rljax.gae import gae


def reference_gae(r, v, nv, term, trunc, gamma, lam):
    """Plain-Python GAE over [T, N], one env at a time."""
    T, N = r.shape
    adv = np.zeros((T, N))
    for n in range(N):
        running = 0.0
        for t in reversed(range(T)):
            boot = 0.0 if term[t, n] else nv[t, n]
            delta = r[t, n] + gamma * boot - v[t, n]
            if term[t, n] or trunc[t, n]:
                running = delta
            else:
                running = delta + gamma * lam * running
            adv[t, n] = running
    return adv


def test_gae_matches_reference_with_termination_and_truncation():
    rng = np.random.default_rng(0)
    T, N = 9, 4
    r = rng.normal(size=(T, N)).astype(np.float32)
    v = rng.normal(size=(T, N)).astype(np.float32)
    nv = rng.normal(size=(T, N)).astype(np.float32)
    term = np.zeros((T, N), bool)
    trunc = np.zeros((T, N), bool)
    term[2, 0] = term[6, 1] = True
    trunc[4, 0] = trunc[3, 2] = trunc[8, 3] = True
    term[5, 2] = True  # termination and truncation in the same env, different steps
    adv, ret = gae(jnp.asarray(r), jnp.asarray(v), jnp.asarray(nv), jnp.asarray(term, jnp.float32),
                   jnp.asarray(trunc, jnp.float32), 0.97, 0.9)
    expected = reference_gae(r, v, nv, term, trunc, 0.97, 0.9)
    np.testing.assert_allclose(np.asarray(adv), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(ret), expected + v, rtol=1e-5, atol=1e-5)


def test_truncation_bootstraps_and_termination_does_not():
    r = jnp.ones((1, 2))
    v = jnp.zeros((1, 2))
    nv = jnp.full((1, 2), 10.0)
    term = jnp.asarray([[1.0, 0.0]])
    trunc = jnp.asarray([[0.0, 1.0]])
    adv, _ = gae(r, v, nv, term, trunc, 0.5, 1.0)
    np.testing.assert_allclose(np.asarray(adv), [[1.0, 1.0 + 0.5 * 10.0]])
