"""Benchmark: the Goodhart BaseCNN update, rljax vs PyTorch, and end-to-end training speed.

    python -m experiments.goodhart.bench [--batch 1024] [--repeats 10] [--updates 2]

Prints the median update time (forward + backward + Adam, after warm-up) of rljax's BaseCNN
with the patch-matmul convolution and with ``lax.conv_general_dilated``, of the same network
in PyTorch (skipped with a message if torch is not installed), the float32 matmul peak of
``jnp.dot`` and each update's share of it; then the end-to-end training throughput
(env-steps/s, rollouts + GAE + 4 epochs of PPO, all 4 modes) of the default ``goodhart``
config through the runner, with members run one after another (``runner.member_loop=map``,
the default; ``--compare-vmap`` adds batched members), and the FLOP-bound limit at the
measured peak.
"""
from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rljax.devices import configure_devices
from rljax.flops import matmul_peak_gflops
from rljax.networks.cnn import BaseCNN

OBS_SHAPE = (11, 11, 6)
NUM_ACTIONS = 8


def flops_per_sample(h: int = 11, w: int = 11, c: int = 6, channels=(32, 64, 64), hidden: int = 512) -> float:
    """Forward + backward FLOPs of one sample: 2 per MAC forward, twice that backward (input
    and weight gradients; the first conv needs no input gradient)."""
    convs, cin, fwd, bwd = [], c, 0.0, 0.0
    for i, cout in enumerate(channels):
        macs = h * w * 9 * cin * cout
        fwd += 2 * macs
        bwd += 2 * macs * (1 if i == 0 else 2)
        cin = cout
    for n_in, n_out in ((h * w * cin, hidden), (hidden, NUM_ACTIONS), (hidden, 1)):
        fwd += 2 * n_in * n_out
        bwd += 4 * n_in * n_out
    return fwd + bwd


def _median_time(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def rljax_update_time(conv_impl: str, batch: int, repeats: int) -> float:
    net = BaseCNN(num_actions=NUM_ACTIONS, conv_impl=conv_impl)
    params = net.init(jax.random.key(0), jnp.zeros((1,) + OBS_SHAPE))
    opt = optax.adam(5e-4)
    opt_state = opt.init(params)
    obs = jax.random.uniform(jax.random.key(1), (batch,) + OBS_SHAPE)
    actions = jax.random.randint(jax.random.key(2), (batch,), 0, NUM_ACTIONS)
    targets = jax.random.normal(jax.random.key(3), (batch,))

    def loss(p):
        logits, value = net.apply(p, obs)
        logp = jax.nn.log_softmax(logits)
        return -jnp.take_along_axis(logp, actions[:, None], 1).mean() + 0.5 * ((value - targets) ** 2).mean()

    @jax.jit
    def update(p, s):
        g = jax.grad(loss)(p)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    state = [params, opt_state]

    def run():
        state[0], state[1] = update(*state)
        jax.block_until_ready(state[0])

    return _median_time(run, repeats)


def torch_update_time(batch: int, repeats: int) -> float | None:
    try:
        import torch
        from torch import nn
    except ImportError:
        return None
    torch.manual_seed(0)
    c = OBS_SHAPE[-1]
    torso = nn.Sequential(
        nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(64 * 11 * 11, 512), nn.ReLU(),
    )
    pi, v = nn.Linear(512, NUM_ACTIONS), nn.Linear(512, 1)
    modules = nn.ModuleList([torso, pi, v])
    opt = torch.optim.Adam(modules.parameters(), lr=5e-4)
    obs = torch.rand(batch, c, 11, 11)
    actions = torch.randint(0, NUM_ACTIONS, (batch,))
    targets = torch.randn(batch)

    def run():
        h = torso(obs)
        logp = torch.log_softmax(pi(h), -1)
        loss = -logp.gather(1, actions[:, None]).mean() + 0.5 * ((v(h)[:, 0] - targets) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return _median_time(run, repeats)


def end_to_end(member_loop: str, updates: int) -> tuple[float, int]:
    """Env-steps/s of the default goodhart config (all modes, 1 seed) over ``updates`` timed
    PPO updates after a compiled warm-up update; returns ``(steps/s, members)``."""
    from rljax.experiments.goodhart.experiment import EXPERIMENT
    from rljax.runner import Runner

    cfg = EXPERIMENT.make_config(None, None, {"runner": {"member_loop": member_loop, "progress": False}})
    runner = Runner(EXPERIMENT, cfg, "/tmp/rljax-bench-goodhart")
    carry = (runner.init_state(), runner.initial_frozen())
    fn = runner.chunk_fn(1, *carry)
    carry, _ = fn(*carry)
    jax.block_until_ready(carry)
    t0 = time.perf_counter()
    for _ in range(updates):
        carry, _ = fn(*carry)
    jax.block_until_ready(carry)
    steps = updates * cfg.ppo.batch_size * len(runner.members)
    return steps / (time.perf_counter() - t0), len(runner.members)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--updates", type=int, default=2, help="timed PPO updates per end-to-end run (0: skip)")
    ap.add_argument("--compare-vmap", action="store_true", help="also time runner.member_loop=vmap (~4 more minutes)")
    ap.add_argument("--devices", type=int, default=None,
                    help="XLA CPU devices (default: what `rljax run goodhart` picks: the most, up to the core count, "
                         "that divide the 4 members)")
    args = ap.parse_args(argv)
    # Before JAX starts, as the CLI does, so the end-to-end figure is the program a run compiles.
    configure_devices(args.devices, members=4)  # the default config: one member per observation mode

    gflop = flops_per_sample() * args.batch / 1e9
    peak = matmul_peak_gflops()
    print(f"devices: {jax.devices()}  batch {args.batch}  obs {OBS_SHAPE}  load average {os.getloadavg()[0]:.1f}")
    print(f"fwd+bwd: {flops_per_sample() / 1e6:.1f} MFLOP/sample, {gflop:.1f} GFLOP/update")
    print(f"jnp.dot float32 peak: {peak:.0f} GFLOP/s")

    def line(name: str, t: float) -> None:
        rate = gflop / t
        print(f"{name:<28s} {t * 1e3:8.1f} ms/update  {rate:6.0f} GFLOP/s  {100 * rate / peak:5.1f}% of peak")

    fast = rljax_update_time("patches", args.batch, args.repeats)
    line("rljax BaseCNN (patches)", fast)
    ref = rljax_update_time("lax", args.batch, args.repeats)
    line("rljax BaseCNN (lax.conv)", ref)
    torch_t = torch_update_time(args.batch, args.repeats)
    if torch_t is None:
        print("torch: not installed, skipped (pip install torch==2.13.0 for the CPU wheel)")
    else:
        import torch

        line(f"torch {torch.__version__} ({torch.get_num_threads()} thr)", torch_t)
        print(f"ratio torch / rljax-patches: {torch_t / fast:.2f}x  (>1 means rljax is faster)")
    print(f"ratio lax.conv / patches: {ref / fast:.2f}x")
    if args.updates <= 0:
        return
    # PPO per env-step: one forward in the rollout, then num_epochs forward+backward passes.
    from rljax.experiments.goodhart.experiment import GOODHART_PPO

    fwd = flops_per_sample() / 3
    per_step = fwd + GOODHART_PPO.num_epochs * flops_per_sample()
    bound = peak * 1e9 / per_step
    print(f"end-to-end default config: {per_step / 1e6:.0f} MFLOP/env-step -> FLOP-bound limit {bound:.0f} env-steps/s")
    for loop in ("map", "vmap") if args.compare_vmap else ("map",):
        sps, m = end_to_end(loop, args.updates)
        print(f"  runner.member_loop={loop:<5} {m} members: {sps:7.0f} env-steps/s  ({100 * sps / bound:.0f}% of the limit)")


if __name__ == "__main__":
    main()
