"""The gated two-level categorical (harvest's game + sanction heads) as one joint distribution."""
import jax
import jax.numpy as jnp
import numpy as np

from rljax.distributions import gated_categorical, make_distribution
from rljax.envs.spaces import Discrete

LOGITS = jnp.asarray([[0.3, -1.0, 2.0], [0.0, 0.0, 0.0]])
GATE = jnp.asarray([0.7, -3.0])
DIST = gated_categorical(LOGITS, GATE, gate_action=1)  # 4 actions; action 1 is the gated one


def test_probabilities_are_gate_then_renormalised_rest():
    p = np.exp(np.asarray(DIST.heads[0].full_log_probs()))
    g = 1 / (1 + np.exp(-np.asarray(GATE)))
    rest = np.exp(LOGITS) / np.exp(LOGITS).sum(-1, keepdims=True)
    np.testing.assert_allclose(p[:, 1], g, rtol=1e-6)
    np.testing.assert_allclose(p[:, [0, 2, 3]], (1 - g)[:, None] * rest, rtol=1e-5)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-6)
    a = jnp.asarray([1, 3])
    np.testing.assert_allclose(DIST.log_prob(a), np.log([g[0], (1 - g[1]) * rest[1, 2]]), rtol=1e-5)


def test_two_entropy_terms_game_then_gate():
    e = np.asarray(DIST.entropy())
    assert e.shape == (2, 2)
    rest = np.exp(LOGITS) / np.exp(LOGITS).sum(-1, keepdims=True)
    np.testing.assert_allclose(e[:, 0], -(rest * np.log(rest)).sum(-1), rtol=1e-5)
    g = 1 / (1 + np.exp(-np.asarray(GATE)))
    np.testing.assert_allclose(e[:, 1], -(g * np.log(g) + (1 - g) * np.log(1 - g)), rtol=1e-5)
    assert make_distribution(Discrete(4), DIST) is DIST


def test_samples_follow_the_probabilities_and_mode_is_argmax():
    keys = jax.random.split(jax.random.key(0), 20000)
    s = np.asarray(jax.vmap(lambda k: DIST.sample(k))(keys))
    freq = np.stack([(s[:, b, None] == np.arange(4)).mean(0) for b in range(2)])
    p = np.exp(np.asarray(DIST.heads[0].full_log_probs()))
    np.testing.assert_allclose(freq, p, atol=0.015)
    np.testing.assert_array_equal(DIST.mode(), np.argmax(p, -1))
