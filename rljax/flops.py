"""How much matrix arithmetic a program does, and how fast this machine can do it.

A FLOP bound for a training program is ``peak / FLOPs per sample``: the rate it would reach if
every multiply-add ran at the speed of one large ``jnp.dot``. :func:`jaxpr_flops` counts the
FLOPs of the matrix products and convolutions in a traced function (2 per multiply-add), which
is what dominates a network's forward and backward passes; elementwise work, random numbers and
the environment are not counted, so the bound is an upper limit, never a promise.

It counts the program as traced, not a formula: a patch convolution written as ``dot_general``
over gathered patches, a ``lax.map`` over minibatch chunks, PPO's ``scan`` over epochs and
minibatches, a custom VJP's backward rule, all are found where they live. Loops are multiplied
by their trip count (``scan``: its length; ``while``: once, with the loop reported in
:class:`FlopCount.while_loops`, because its trip count is data-dependent); ``cond`` counts its
costliest branch.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.extend  # not imported by "import jax": _sub_jaxprs needs jax.extend.core
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class FlopCount:
    """``flops``: 2 x multiply-adds of every ``dot_general`` and ``conv_general_dilated``;
    ``while_loops``: loops whose body was counted once (trip count unknown at trace time)."""

    flops: float
    while_loops: int = 0

    def __add__(self, other: "FlopCount") -> "FlopCount":
        return FlopCount(self.flops + other.flops, self.while_loops + other.while_loops)

    def __mul__(self, k: float) -> "FlopCount":
        return FlopCount(self.flops * k, self.while_loops)


def _eqn_flops(eqn) -> float:
    name = eqn.primitive.name
    if name == "dot_general":
        (lhs_contract, _), _ = eqn.params["dimension_numbers"]
        lhs = eqn.invars[0].aval
        k = math.prod(lhs.shape[d] for d in lhs_contract)
        return 2.0 * eqn.outvars[0].aval.size * k
    if name == "conv_general_dilated":
        rhs = eqn.invars[1].aval
        out_feature_dim = eqn.params["dimension_numbers"].rhs_spec[0]
        # each output element is a dot over the kernel's spatial window x its input features
        return 2.0 * eqn.outvars[0].aval.size * (rhs.size / rhs.shape[out_feature_dim])
    return 0.0


def _sub_jaxprs(eqn):
    for v in eqn.params.values():
        if isinstance(v, jax.extend.core.ClosedJaxpr):
            yield v.jaxpr
        elif isinstance(v, jax.extend.core.Jaxpr):
            yield v
        elif isinstance(v, (tuple, list)):
            for w in v:
                if isinstance(w, jax.extend.core.ClosedJaxpr):
                    yield w.jaxpr
                elif isinstance(w, jax.extend.core.Jaxpr):
                    yield w


def _count(jaxpr) -> FlopCount:
    total = FlopCount(0.0)
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "scan":
            total = total + _count(eqn.params["jaxpr"].jaxpr) * eqn.params["length"]
        elif name == "while":
            body = _count(eqn.params["body_jaxpr"].jaxpr) + _count(eqn.params["cond_jaxpr"].jaxpr)
            total = total + FlopCount(body.flops, body.while_loops + 1)
        elif name == "cond":
            branches = [_count(b.jaxpr) for b in eqn.params["branches"]]
            total = total + max(branches, key=lambda c: c.flops)
        else:  # a custom_vjp/jvp call's primal is a jaxpr param (counted); its rules are thunks (not)
            total = total + FlopCount(_eqn_flops(eqn))
            for sub in _sub_jaxprs(eqn):
                total = total + _count(sub)
    return total


def jaxpr_flops(fn: Callable, *args: Any, **kwargs: Any) -> FlopCount:
    """Matrix-product and convolution FLOPs of ``fn(*args, **kwargs)`` as JAX traces it
    (shapes only: nothing runs). A function under ``jax.grad`` counts its forward and backward.
    Computations no output depends on are dropped first (XLA drops them too), so a policy-only
    apply of an actor-critic counts the actor alone; inside loops nothing is dropped."""
    jaxpr = jax.make_jaxpr(fn)(*args, **kwargs).jaxpr
    try:  # drop what no output needs (a critic under a policy-only apply), as XLA would
        from jax._src.interpreters.partial_eval import dce_jaxpr

        jaxpr, _ = dce_jaxpr(jaxpr, [True] * len(jaxpr.outvars))
    except (ImportError, TypeError):  # pragma: no cover - another JAX layout: count everything
        pass
    return _count(jaxpr)


def matmul_peak_gflops(n: int = 4096, repeats: int = 5) -> float:
    """float32 GFLOP/s of one ``n x n`` ``jnp.dot`` on the default device (median of
    ``repeats`` after two warm-ups): the rate a FLOP bound divides by."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    dot = jax.jit(jnp.dot)
    for _ in range(2):
        dot(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        dot(a, b).block_until_ready()
        times.append(time.perf_counter() - t0)
    return 2.0 * n**3 / float(np.median(times)) / 1e9
