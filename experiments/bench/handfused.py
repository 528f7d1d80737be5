"""The reference for every CartPole benchmark: the tightest single-function PPO we could write
for PureJaxRL's settings (plain jnp MLPs, gymnax physics with reset only where done, the
truncation bootstrap computed every step and selected, everything in one jit), with no
logging, episode statistics or checkpoints. Benchmarks (``bench_cartpole``, ``bench_scale``)
time rljax against it in the same invocation.
"""
from __future__ import annotations

from typing import Callable

# PureJaxRL's CartPole settings.
NUM_ENVS, NUM_STEPS, EPOCHS, MINIBATCHES, LR = 4, 128, 4, 4, 2.5e-4
GAMMA, LAMBDA, CLIP, ENT, VF, MAX_GRAD = 0.99, 0.95, 0.2, 0.01, 0.5, 0.5


def make_handfused(steps: int) -> tuple[Callable, Callable, Callable]:
    """``(train(key[, params]) -> params, evaluate(params, key) -> mean greedy return over 20
    episodes, init_for(key) -> initial params)`` for one seed and ``steps`` environment steps.
    Jit ``train``; for many seeds build the parameters with ``lax.map(init_for)`` on CPU and
    ``vmap(train)`` over (keys, params)."""
    import gymnax
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    env, env_params = gymnax.make("CartPole-v1")
    num_updates = steps // (NUM_ENVS * NUM_STEPS)
    batch = NUM_ENVS * NUM_STEPS
    mb = batch // MINIBATCHES

    def dense(key, n_in, n_out, gain):
        return {"w": jax.nn.initializers.orthogonal(gain)(key, (n_in, n_out)), "b": jnp.zeros(n_out)}

    def init(key):
        k = jax.random.split(key, 6)
        g = np.sqrt(2)
        return {"a": [dense(k[0], 4, 64, g), dense(k[1], 64, 64, g), dense(k[2], 64, 2, 0.01)],
                "c": [dense(k[3], 4, 64, g), dense(k[4], 64, 64, g), dense(k[5], 64, 1, 1.0)]}

    def mlp(layers, x):
        for l in layers[:-1]:
            x = jnp.tanh(x @ l["w"] + l["b"])
        return x @ layers[-1]["w"] + layers[-1]["b"]

    def forward(p, obs):
        return mlp(p["a"], obs), mlp(p["c"], obs)[..., 0]

    tx = optax.chain(optax.clip_by_global_norm(MAX_GRAD),
                     optax.adam(lambda c: LR * (1 - (c // (EPOCHS * MINIBATCHES)) / num_updates), eps=1e-5))

    def train(key, params=None):
        """``params``: initial parameters made by ``init(split(key, 3)[1])`` outside a vmap
        (batched QR inside a big vmapped program can hang XLA's CPU pool); None = make them here."""
        key, pk, rk = jax.random.split(key, 3)
        params = init(pk) if params is None else params
        opt = tx.init(params)
        obs, st = jax.vmap(env.reset_env, (0, None))(jax.random.split(rk, NUM_ENVS), env_params)

        def update(carry, _):
            params, opt, st, obs, key = carry

            def step(c, _):
                st, obs, key = c
                key, ak, rk = jax.random.split(key, 3)
                logits, v = forward(params, obs)
                a = jax.random.categorical(ak, logits)
                logp = jax.nn.log_softmax(logits)[jnp.arange(NUM_ENVS), a]
                nobs, nst, r, term, _ = jax.vmap(env.step_env, (None, 0, 0, None))(rk, st, a, env_params)
                trunc = nst.time >= env_params.max_steps_in_episode
                done = term | trunc
                bv = jnp.where(trunc & ~term, forward(params, nobs)[1], 0.0)

                def reset(_):
                    ro, rs = jax.vmap(env.reset_env, (0, None))(jax.random.split(rk, NUM_ENVS), env_params)
                    sel = lambda x, y: jnp.where(done.reshape((-1,) + (1,) * (x.ndim - 1)), x, y)
                    return sel(ro, nobs), jax.tree.map(sel, rs, nst)

                nobs2, nst2 = jax.lax.cond(done.any(), reset, lambda _: (nobs, nst), None)
                return (nst2, nobs2, key), (obs, a, logp, v, r, term, done, bv)

            (st, obs, key), (o, a, lp, v, r, term, done, bv) = jax.lax.scan(step, (st, obs, key), None, NUM_STEPS)
            last_v = forward(params, obs)[1]
            nv = jnp.where(done, bv, jnp.concatenate([v[1:], last_v[None]]))
            delta = r + GAMMA * nv * (1 - term) - v

            def back(g, x):
                d, dn = x
                g = d + GAMMA * LAMBDA * (1 - dn) * g
                return g, g

            _, adv = jax.lax.scan(back, jnp.zeros(NUM_ENVS), (delta, done), reverse=True)
            tgt = adv + v
            data = jax.tree.map(lambda x: x.reshape((batch,) + x.shape[2:]), (o, a, lp, v, adv, tgt))

            def loss(p, d):
                o, a, lp, v, adv, tgt = d
                logits, nv = forward(p, o)
                logps = jax.nn.log_softmax(logits)
                ratio = jnp.exp(logps[jnp.arange(mb), a] - lp)
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                pg = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - CLIP, 1 + CLIP) * adv).mean()
                vc = v + jnp.clip(nv - v, -CLIP, CLIP)
                vl = 0.5 * jnp.maximum((nv - tgt) ** 2, (vc - tgt) ** 2).mean()
                ent = -(jnp.exp(logps) * logps).sum(-1).mean()
                return pg + VF * vl - ENT * ent

            def epoch(c, k):
                perm = jax.random.permutation(k, batch)
                mbs = jax.tree.map(lambda x: x[perm].reshape((MINIBATCHES, mb) + x.shape[1:]), data)

                def mstep(c, d):
                    p, s = c
                    g = jax.grad(loss)(p, d)
                    u, s = tx.update(g, s, p)
                    return (optax.apply_updates(p, u), s), None

                return jax.lax.scan(mstep, c, mbs)[0], None

            key, ek = jax.random.split(key)
            (params, opt), _ = jax.lax.scan(epoch, (params, opt), jax.random.split(ek, EPOCHS))
            return (params, opt, st, obs, key), None

        (params, *_), _ = jax.lax.scan(update, (params, opt, st, obs, key), None, num_updates)
        return params

    def evaluate(params, key):
        def episode(k):
            obs, st = env.reset_env(k, env_params)

            def step(c, _):
                obs, st, alive, ret = c
                a = jnp.argmax(forward(params, obs)[0])
                obs, st, r, term, _ = env.step_env(k, st, a, env_params)
                ret = ret + alive * r
                alive = alive * (1 - (term | (st.time >= env_params.max_steps_in_episode)))
                return (obs, st, alive, ret), None

            return jax.lax.scan(step, (obs, st, 1.0, 0.0), None, 500)[0][3]

        return jax.vmap(episode)(jax.random.split(key, 20)).mean()

    init_for = lambda key: init(jax.random.split(key, 3)[1])
    return train, evaluate, init_for
