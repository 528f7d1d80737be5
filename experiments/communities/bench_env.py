"""Harvest substrate throughput (environment only, no learning) and the residents-only world.

Throughput: ``N`` instances of :class:`rljax.environments.harvest.HarvestEnv` in a VecEnv (auto-reset,
a community drawn per instance at every reset), a uniformly random ego and the 15 scripted
residents inside every step, ``--steps`` steps per compiled scan; ego-steps/s = N x steps / time.
Each configuration runs in a fresh subprocess (the XLA CPU device count is fixed at start);
compile time is excluded and printed apart; figures are medians of ``--repeats`` runs. With 2
devices the instance axis is split over two XLA CPU devices with ``shard_map`` (one XLA
process keeps only about one core busy on small ops).

Residents-only world (``--share``): 16 residents (``ego_is_resident=1``) for 2000 steps per
seed and community; reports the permitted colour's share of the 348 patches at t=2000 (the
original's README aims at >= 0.85; nothing is tuned toward it) and the residents' sanctions.

    python -m experiments.communities.bench_env                      # throughput, 1 and 2 devices
    python -m experiments.communities.bench_env --num-envs 256 1024 --devices 1
    python -m experiments.communities.bench_env --share --seeds 8    # the residents-only report
    python -m experiments.communities.bench_env --residents --seeds 4  # guard / quirks / foresight side by side

The target is 6,600 ego-steps/s on 2 CPU cores; the original Melting Pot substrate with its
Python residents ran 67 ego-steps/s.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

from rljax.experiments.bench.fresh_process import call

TARGET = 6600.0
ORIGINAL = 67.0


def measure_throughput(num_envs: int, steps: int, devices: int, repeats: int) -> dict:
    import jax

    if devices > 1:
        jax.config.update("jax_num_cpu_devices", devices)
    import numpy as np
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    from rljax.environments.harvest import harvest_params, sample_community
    from rljax.environments.harvest_view import HarvestEnv
    from rljax.envs.vec_env import VecEnv

    if num_envs % devices:
        raise SystemExit(f"--num-envs {num_envs} must divide over {devices} devices")
    env = HarvestEnv()
    base = harvest_params()
    venv = VecEnv(env, num_envs // devices, param_sampler=sample_community)

    def chunk(key, vstate):
        """``steps`` steps of the local instances with a uniformly random ego."""
        key = key[0]

        def body(vs, k):
            ka, ks = jax.random.split(k)
            action = jax.random.randint(ka, (venv.num_envs,), 0, 11)
            _, vs, reward, *_ = venv.step(ks, vs, action, base)
            return vs, reward.sum()

        vstate, rewards = jax.lax.scan(body, vstate, jax.random.split(key, steps))
        return vstate, rewards.sum()[None]

    def reset(key):
        return venv.reset(key[0], base)[1]

    mesh = Mesh(np.array(jax.devices()[:devices]), ("d",))
    spec = P("d")
    run = jax.jit(jax.shard_map(chunk, mesh=mesh, in_specs=(spec, spec), out_specs=(spec, spec), check_vma=False))
    init = jax.jit(jax.shard_map(reset, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False))
    keys = jax.device_put(jax.random.split(jax.random.key(0), devices), NamedSharding(mesh, spec))
    vstate = init(keys)
    t0 = time.perf_counter()
    compiled = run.lower(keys, vstate).compile()
    compile_s = time.perf_counter() - t0
    vstate, _ = compiled(keys, vstate)  # warm up
    jax.block_until_ready(vstate)
    rates = []
    for i in range(repeats):
        keys = jax.device_put(jax.random.split(jax.random.key(i + 1), devices), NamedSharding(mesh, spec))
        t0 = time.perf_counter()
        vstate, total = compiled(keys, vstate)
        jax.block_until_ready((vstate, total))
        rates.append(num_envs * steps / (time.perf_counter() - t0))
    return {"num_envs": num_envs, "devices": jax.device_count(), "steps": steps, "compile_seconds": compile_s,
            "steps_per_second": float(np.median(rates)), "all_steps_per_second": rates}


def measure_share(seeds: int, quirks: int, guard: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from rljax.environments.harvest import (
        NUM_COMMUNITIES, NUM_PATCHES, color_counts, env_step_keys, harvest_params, reset_world, stack_params, step_all,
    )
    from rljax.environments.harvest_view import HarvestEnv

    env = HarvestEnv()

    def episode(key, params):
        k0, key = jax.random.split(key)
        st = reset_world(k0, params)

        def body(st, k):
            k_world, k_res = env_step_keys(k)  # the same split as HarvestEnv.step
            a, st = env.joint_actions(k_res, st, jnp.int32(0), params)  # 16 residents (ego_is_resident)
            st, _, ev = step_all(k_world, st, a, params)
            return st, {n: ev[n].sum() for n in ("received", "correct", "mis", "planted", "eaten")}

        st, ev = jax.lax.scan(body, st, jax.random.split(key, 2000))
        counts = color_counts(st.berry_color)
        return counts[params.permitted] / NUM_PATCHES, counts.max() / NUM_PATCHES, jax.tree.map(lambda x: x.sum(), ev)

    params = stack_params([harvest_params(permitted=c, resident_quirks=quirks, resident_guard=guard, ego_is_resident=1)
                           for c in range(NUM_COMMUNITIES) for _ in range(seeds)])
    keys = jax.random.split(jax.random.key(2000), NUM_COMMUNITIES * seeds)
    share, mono, ev = jax.jit(jax.vmap(episode))(keys, params)
    share = np.asarray(share).reshape(NUM_COMMUNITIES, seeds)
    mono = np.asarray(mono).reshape(NUM_COMMUNITIES, seeds)
    ev = {k: np.asarray(v).reshape(NUM_COMMUNITIES, seeds) for k, v in ev.items()}
    return {"seeds": seeds, "quirks": quirks, "guard": guard, "share": share.tolist(), "monoculture": mono.tolist(),
            "events": {k: v.tolist() for k, v in ev.items()}}


# The side-by-side residents report: label -> (resident_quirks, resident_guard, foresight).
RESIDENT_VARIANTS = {
    "state-only guard (default)": (0, 2, False),
    "resident_quirks=1": (1, 0, False),
    "old foresight (joint action)": (0, 1, True),
}
REPORT_TIMES = (500, 1000, 2000)


def measure_residents(seeds: int, quirks: int, guard: int, foresight: bool, community: int = 0, steps: int = 2000) -> dict:
    """``seeds`` residents-only episodes (16 residents, ``ego_is_resident=1``) in ``community``:
    permitted share and ripe berries at :data:`REPORT_TIMES`, and per episode the landed -10s,
    zaps fired, zap presses, mis-sanctions and the fraction of avatar-frames that violate the rule.
    ``foresight``: the earlier guard that reads the frame's joint action (comparison only)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from rljax.environments.harvest import (
        NUM_PATCHES, NUM_PLAYERS, color_counts, env_step_keys, harvest_params, reset_world, step_all, violating,
    )
    from rljax.environments.harvest_residents import hold_fire, resident_actions

    params = harvest_params(permitted=community, resident_quirks=quirks, resident_guard=guard, ego_is_resident=1,
                            episode_length=steps)
    everyone = jnp.ones((NUM_PLAYERS,), bool)

    def episode(key):
        k0, key = jax.random.split(key)
        st = reset_world(k0, params)

        def body(st, k):
            k_world, k_res = env_step_keys(k)  # the same split as HarvestEnv.step
            a, st2 = resident_actions(k_res, st, params)
            if foresight:
                a = hold_fire(st, a, params, everyone)
            st2, _, ev = step_all(k_world, st2, a, params)
            counts = color_counts(st2.berry_color)
            out = {n: ev[n].sum() for n in ("received", "correct", "mis", "zap_fired", "zap_press", "planted")}
            out["violating"] = violating(st2.body, st.t, params).sum()
            out["share"] = counts[params.permitted] / NUM_PATCHES
            out["ripe"] = st2.berry_ripe.sum()
            return st2, out

        _, out = jax.lax.scan(body, st, jax.random.split(key, steps))
        return out

    keys = jax.random.split(jax.random.key(2000), seeds)
    out = jax.tree.map(np.asarray, jax.jit(jax.vmap(episode))(keys))  # [seeds, steps]
    at = [t - 1 for t in REPORT_TIMES if t <= steps]
    return {
        "seeds": seeds, "quirks": quirks, "guard": guard, "foresight": foresight, "steps": steps,
        "times": [t + 1 for t in at],
        "share": out["share"][:, at].tolist(), "ripe": out["ripe"][:, at].tolist(),
        **{k: out[k].sum(1).tolist() for k in ("received", "correct", "mis", "zap_fired", "zap_press", "planted")},
        "violation_fraction": (out["violating"].sum(1) / (steps * NUM_PLAYERS)).tolist(),
    }


def residents_report(seeds: int) -> None:
    """Prints the side-by-side residents-only table (RED, 2000 steps) for :data:`RESIDENT_VARIANTS`."""
    head = (f"{'residents':<30}" + "".join(f"{'share@' + str(t):>13}" for t in REPORT_TIMES)
            + "".join(f"{'ripe@' + str(t):>10}" for t in REPORT_TIMES)
            + f"{'landed -10':>12}{'zaps fired':>12}{'mis':>6}{'viol frac':>11}")
    print(f"\nresidents only, RED, 2000 steps, {seeds} seeds (mean +- std over seeds; per episode)")
    print(head)
    print("-" * len(head))
    for label, (quirks, guard, foresight) in RESIDENT_VARIANTS.items():
        r = call("rljax.experiments.communities.bench_env", "measure_residents", seeds=seeds, quirks=quirks, guard=guard,
                 foresight=foresight)
        cols = list(zip(*r["share"]))
        ripe = list(zip(*r["ripe"]))
        print(f"{label:<30}" + "".join(f"{_mean(c):>7.3f}+-{_std(c):.2f}"[:13].rjust(13) for c in cols)
              + "".join(f"{_mean(c):>10.1f}" for c in ripe)
              + f"{_mean(r['received']):>7.1f}+-{_std(r['received']):<3.0f}{_mean(r['zap_fired']):>12.1f}"
              + f"{_mean(r['mis']):>6.1f}{_mean(r['violation_fraction']):>11.3f}", flush=True)


def _mean(xs) -> float:
    return sum(xs) / len(xs)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num-envs", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--devices", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=200, help="steps per compiled chunk")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--share", action="store_true", help="report the residents-only world instead")
    ap.add_argument("--seeds", type=int, default=8, help="episodes per community for --share / --residents")
    ap.add_argument("--residents", action="store_true",
                    help="the side-by-side residents-only report (RED, 2000 steps): state-only guard, quirks, old foresight")
    args = ap.parse_args(argv)

    import jax

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__}, "
          f"python {platform.python_version()}")
    print("command: python -m experiments.communities.bench_env " + " ".join(sys.argv[1:] if argv is None else argv))
    if args.residents:
        residents_report(args.seeds)
        return
    if args.share:
        from rljax.environments.harvest import COMMUNITY_NAMES

        for quirks, guard, label in [(0, 2, "default residents (quirks fixed, state-only guard)"),
                                     (0, 1, "quirks fixed, bystander guard only"),
                                     (0, 0, "quirks fixed, no bystander guard"), (1, 0, "original quirks")]:
            t0 = time.perf_counter()
            r = call("rljax.experiments.communities.bench_env", "measure_share", seeds=args.seeds, quirks=quirks, guard=guard)
            print(f"\n{label}: {args.seeds} residents-only episodes of 2000 steps per community "
                  f"({time.perf_counter() - t0:.0f} s)")
            print(f"{'community':<10}{'permitted share at t=2000':>30}{'min':>8}{'max':>8}{'landed -10':>12}{'mis':>8}{'plants':>9}")
            for c, name in enumerate(COMMUNITY_NAMES):
                s = r["share"][c]
                ev = {k: sum(v[c]) / len(v[c]) for k, v in r["events"].items()}
                print(f"{name:<10}{sum(s) / len(s):>22.3f} +- {_std(s):.3f}{min(s):>8.3f}{max(s):>8.3f}"
                      f"{ev['received']:>12.1f}{ev['mis']:>8.1f}{ev['planted']:>9.1f}")
            allv = [x for row in r["share"] for x in row]
            print(f"{'all':<10}{sum(allv) / len(allv):>22.3f} +- {_std(allv):.3f}   (target of the original README: >= 0.85)")
        return

    print(f"target {TARGET:.0f} ego-steps/s; original substrate {ORIGINAL:.0f} ego-steps/s")
    print(f"{'devices':>8}{'num_envs':>10}{'ego-steps/s':>14}{'x target':>10}{'x original':>12}{'compile s':>11}")
    for devices in args.devices:
        for n in args.num_envs:
            r = call("rljax.experiments.communities.bench_env", "measure_throughput", num_envs=n, steps=args.steps, devices=devices,
                     repeats=args.repeats)
            sps = r["steps_per_second"]
            print(f"{r['devices']:>8}{n:>10}{sps:>14,.0f}{sps / TARGET:>10.1f}{sps / ORIGINAL:>12.0f}{r['compile_seconds']:>11.1f}",
                  flush=True)
    print("(medians of repeats; the machine may be shared with other jobs while measuring)")


def _std(xs: list[float]) -> float:
    m = sum(xs) / len(xs)
    return (sum((x - m) ** 2 for x in xs) / max(len(xs) - 1, 1)) ** 0.5


if __name__ == "__main__":
    main()
