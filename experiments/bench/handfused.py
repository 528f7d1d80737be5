"""The reference for every CartPole benchmark: the tightest single-function PPO we could write
for PureJaxRL's settings, with nothing the algorithm does not need (no logging, episode
statistics, metrics, normalisation or checkpoints). Benchmarks (``bench_cartpole``,
``bench_scale``) time rljax against it in the same invocation.

Two variants, so the cost of doing truncation right is shown apart:

- ``bootstrap=True`` (what rljax computes): where an episode is truncated at 500 steps the
  advantage bootstraps from the critic's value of the final observation;
- ``bootstrap=False``: classic PureJaxRL, truncation treated as termination.

What makes it tight: gymnax's ``step_env`` (no reset computed inside), the auto-reset and the
bootstrap critic each under a ``"cond"`` (only on steps where some environment of some seed
needs it, reduced over the seed vmap axis ``axis`` so the conditional survives the vmap) or a
``"select"`` (every step), chosen by the same rule as rljax's (:func:`rljax.backend.branch_mode`), every
random key of a rollout split in one op outside the step loop, nothing carried through the
step loop but the environment state and observation.
"""
from __future__ import annotations

from typing import Callable

# PureJaxRL's CartPole settings.
NUM_ENVS, NUM_STEPS, EPOCHS, MINIBATCHES, LR = 4, 128, 4, 4, 2.5e-4
GAMMA, LAMBDA, CLIP, ENT, VF, MAX_GRAD = 0.99, 0.95, 0.2, 0.01, 0.5, 0.5


def make_handfused(steps: int, bootstrap: bool = True, branch: str = "cond", axis: str | None = None,
                   bootstrap_branch: str | None = None) -> tuple[Callable, Callable, Callable]:
    """``(train(key[, params]) -> params, evaluate(params, key) -> mean greedy return over 20
    episodes, init_for(key) -> initial params)`` for one seed and ``steps`` environment steps.

    Jit ``train``; for many seeds build the parameters with ``lax.map(init_for)`` on CPU and
    ``vmap(train, axis_name=axis)`` over (keys, params). ``branch``: ``"cond"`` or ``"select"``
    for the auto-reset, ``bootstrap_branch`` for the bootstrap critic (default: ``branch``)."""
    import gymnax
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    env, env_params = gymnax.make("CartPole-v1")
    num_updates = steps // (NUM_ENVS * NUM_STEPS)
    batch = NUM_ENVS * NUM_STEPS
    mb = batch // MINIBATCHES
    max_t = env_params.max_steps_in_episode

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

    def value(p, obs):
        return mlp(p["c"], obs)[..., 0]

    def anywhere(pred):
        out = pred.any()
        return out if axis is None else jax.lax.pmax(out.astype(jnp.int32), axis) > 0

    def rare(pred, fn, fallback, mode):
        """``fn()`` where ``pred`` may hold, ``fallback`` otherwise, under ``mode``."""
        if mode == "select":
            return fn()
        return jax.lax.cond(anywhere(pred), fn, lambda: fallback)

    tx = optax.chain(optax.clip_by_global_norm(MAX_GRAD),
                     optax.adam(lambda c: LR * (1 - (c // (EPOCHS * MINIBATCHES)) / num_updates), eps=1e-5))
    reset = jax.vmap(env.reset_env, (0, None))
    step_envs = jax.vmap(env.step_env, (None, 0, 0, None))

    def train(key, params=None):
        """``params``: initial parameters from ``init_for(key)``, made outside any vmap
        (batched QR inside a big vmapped program can hang XLA's CPU pool); None = make them here."""
        key, pk, rk = jax.random.split(key, 3)
        params = init(pk) if params is None else params
        opt = tx.init(params)
        obs, st = reset(jax.random.split(rk, NUM_ENVS), env_params)

        def update(carry, _):
            params, opt, st, obs, key = carry
            key, sk, ek = jax.random.split(key, 3)
            # per step: one action key and NUM_ENVS reset keys
            keys = jax.random.split(sk, NUM_STEPS * (1 + NUM_ENVS)).reshape(NUM_STEPS, 1 + NUM_ENVS, -1)

            def step(c, k):
                st, obs = c
                logits, v = forward(params, obs)
                a = jax.random.categorical(k[0], logits)
                logp = jnp.take_along_axis(jax.nn.log_softmax(logits), a[:, None], 1)[:, 0]
                nobs, nst, r, term, _ = step_envs(k[0], st, a, env_params)
                done = term | (nst.time >= max_t)
                out = (obs, a, logp, v, r, term, done)
                if bootstrap:  # V(final obs) where truncated; unused where terminated
                    out += (rare(done & ~term, lambda: value(params, nobs), v, bootstrap_branch or branch),)

                def do_reset():
                    ro, rs = reset(k[1:], env_params)
                    sel = lambda x, y: jnp.where(done.reshape((-1,) + (1,) * (x.ndim - 1)), x, y)
                    return sel(ro, nobs), jax.tree.map(sel, rs, nst)

                nobs, nst = rare(done, do_reset, (nobs, nst), branch)
                return (nst, nobs), out

            (st, obs), traj = jax.lax.scan(step, (st, obs), keys)
            o, a, lp, v, r, term, done = traj[:7]
            nv = jnp.concatenate([v[1:], value(params, obs)[None]])
            if bootstrap:
                delta = r + GAMMA * jnp.where(done, traj[7], nv) * (1 - term) - v
            else:
                delta = r + GAMMA * nv * (1 - done) - v

            def back(g, x):
                d, dn = x
                g = d + GAMMA * LAMBDA * (1 - dn) * g
                return g, g

            _, adv = jax.lax.scan(back, jnp.zeros(NUM_ENVS), (delta, done), reverse=True)
            data = jax.tree.map(lambda x: x.reshape((batch,) + x.shape[2:]), (o, a, lp, v, adv, adv + v))

            def loss(p, d):
                o, a, lp, v, adv, tgt = d
                logits, nv = forward(p, o)
                logps = jax.nn.log_softmax(logits)
                ratio = jnp.exp(jnp.take_along_axis(logps, a[:, None], 1)[:, 0] - lp)
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
                    u, s = tx.update(jax.grad(loss)(p, d), s, p)
                    return (optax.apply_updates(p, u), s), None

                return jax.lax.scan(mstep, c, mbs)[0], None

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
                alive = alive * (1 - (term | (st.time >= max_t)))
                return (obs, st, alive, ret), None

            return jax.lax.scan(step, (obs, st, 1.0, 0.0), None, 500)[0][3]

        return jax.vmap(episode)(jax.random.split(key, 20)).mean()

    init_for = lambda key: init(jax.random.split(key, 3)[1])
    return train, evaluate, init_for
