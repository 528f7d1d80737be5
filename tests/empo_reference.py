"""Shared by the EMPO tests: plain-Python float64 references (written after the original's loops)
of the exact phase-2 backward induction and the Boltzmann prior over any finite world, and the
trainer's model-based targets evaluated at the oracle's own values."""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from rljax.empo.oracle import solve_phase2
from rljax.empo.world import TableSituation

TAU = -1e-10  # terminal V_r


def reference_phase2(world, pol, beta_r, gamma_r, gamma_h, zeta, xi, eta, x_h_sum=False):
    """``x_h_sum``: X_h the weighted SUM over goals (the original's backward induction),
    else the expectation under the goal probabilities; no X_h clamp."""
    idx, pr = np.asarray(world.next_state), np.asarray(world.next_prob, np.float64)
    ach = np.asarray(world.achieved, np.float64)
    probs, weights = np.asarray(world.goal_probs, np.float64), np.asarray(world.goal_weights, np.float64)
    pol = np.asarray(pol, np.float64)
    horizon, a = world.horizon, world.actions_per_human
    s_count, n_h, n_g = ach.shape
    v_r = np.zeros((horizon + 1, s_count))
    v_r[horizon] = TAU
    v_he = np.zeros((horizon + 1, s_count, n_h, n_g))
    pi_out = np.zeros((horizon, s_count, world.num_robot_actions))
    human_profiles = list(itertools.product(range(a), repeat=n_h))
    joint = [sum(x * a ** (n_h - 1 - i) for i, x in enumerate(ha)) for ha in human_profiles]
    for t in reversed(range(horizon)):
        for s in range(s_count):
            p_s = pol[t, s] if pol.ndim == 5 else pol[s]
            mu = [sum(probs[h, g] * p_s[h, g] for g in range(n_g)) for h in range(n_h)]
            q = np.zeros(world.num_robot_actions)
            for ra in range(world.num_robot_actions):
                v = 0.0
                for ha, j in zip(human_profiles, joint):
                    p = np.prod([mu[h][ha[h]] for h in range(n_h)])
                    v += p * sum(pr[s, ra, j, k] * v_r[t + 1, idx[s, ra, j, k]] for k in range(idx.shape[3]))
                q[ra] = gamma_r * v
            logits = -beta_r * np.log(-q)
            ps = np.exp(logits - logits.max())
            ps /= ps.sum()
            pi_out[t, s] = ps
            powersum = 0.0
            for h in range(n_h):
                xh = 0.0
                for g in range(n_g):
                    vh = 0.0
                    for ra in range(world.num_robot_actions):
                        v = 0.0
                        for ha, j in zip(human_profiles, joint):
                            p = p_s[h, g][ha[h]] * np.prod([mu[o][ha[o]] for o in range(n_h) if o != h])
                            for k in range(idx.shape[3]):
                                s2 = idx[s, ra, j, k]
                                u = ach[s2, h, g]
                                v += p * pr[s, ra, j, k] * (u + (1 - u) * gamma_h * v_he[t + 1, s2, h, g])
                        vh += ps[ra] * v
                    v_he[t, s, h, g] = vh
                    xh += (1.0 if x_h_sum else probs[h, g]) * weights[h, g] * vh**zeta
                powersum += xh ** (-xi)
            ur = -((powersum / n_h) ** eta)
            v_r[t, s] = ur + ps @ q
    return v_r, v_he, pi_out


def reference_boltzmann(world, beta_h, gamma_h):
    """Every other agent (the robots' joint action and the other humans) uniform."""
    idx, pr, ach = np.asarray(world.next_state), np.asarray(world.next_prob, np.float64), np.asarray(world.achieved)
    horizon, a, a_r = world.horizon, world.actions_per_human, world.num_robot_actions
    s_count, n_h, n_g = ach.shape
    v = np.zeros((horizon + 1, s_count, n_h, n_g))
    v[horizon] = ach
    pol = np.zeros((horizon, s_count, n_h, n_g, a))
    others = list(itertools.product(range(a), repeat=n_h - 1))
    for t in reversed(range(horizon)):
        for s in range(s_count):
            for h in range(n_h):
                for g in range(n_g):
                    if ach[s, h, g]:
                        v[t, s, h, g], pol[t, s, h, g] = 1.0, 1.0 / a
                        continue
                    q = np.zeros(a)
                    for act in range(a):
                        for ra in range(a_r):
                            for rest in others:
                                acts = list(rest[:h]) + [act] + list(rest[h:])
                                j = sum(x * a ** (n_h - 1 - i) for i, x in enumerate(acts))
                                q[act] += sum(pr[s, ra, j, k] * v[t + 1, idx[s, ra, j, k], h, g]
                                              for k in range(idx.shape[3])) / (len(others) * a_r)
                    q *= gamma_h
                    p = np.exp(beta_h * (q - q.max()))
                    p /= p.sum()
                    pol[t, s, h, g], v[t, s, h, g] = p, p @ q
    return pol, v


def targets_at_the_oracle(trainer):
    """``(targets, oracle, ts, ss)``: the model-based targets of every reachable ``(t, s)`` of
    ``trainer.exact`` (goal 0 stored, the nominal beta_r) with the V_h^e and Q_r tables set to the
    oracle's values; with the full expectation over the human prior and every goal trained
    (the ``trivial_table`` preset) they must reproduce the oracle (eqs. 4 and 6)."""
    world, h = trainer.exact, trainer.hparams(None)
    star = trainer.oracle(h)
    params = {"v_h_e": {"table": star.v_h_e[:world.horizon]}, "q_r": {"table": star.q_r}}
    ts, ss = np.nonzero(np.asarray(world.reachable()))
    ws = TableSituation(t=jnp.asarray(ts, jnp.int32), s=jnp.asarray(ss, jnp.int32))
    th = trainer.theory(h, 10**9)  # past the ramp: the nominal beta_r
    goals = jnp.zeros((len(ts), 1), jnp.int32)
    out = jax.jit(lambda: trainer.quantities.model_based({n: params for n in params}, ws, goals, goals[:, 0], th,
                                                         jax.random.PRNGKey(0)))()
    return out, star, ts, ss


def assert_oracle_matches_reference(world, prior, beta_r, **theory):
    """The oracle of ``world`` under ``prior`` equals :func:`reference_phase2`; returns it."""
    res = solve_phase2(world, prior, beta_r=beta_r, **theory)
    v_r, v_he, pi = reference_phase2(world, prior, beta_r, **theory)
    np.testing.assert_allclose(res.v_r, v_r, rtol=2e-5)
    np.testing.assert_allclose(res.v_h_e, v_he, atol=2e-5)
    np.testing.assert_allclose(res.pi_r, pi, atol=2e-4)
    return res
