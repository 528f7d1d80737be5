"""AMS-DRL self-play (rljax.selfplay, experiments/pursuit/experiment.py).

Pure state machines on scripted evaluation results (curriculum advance/regress, evader-first,
warm start, NE gap), then one tiny protocol of two seeds vmapped through the runner, shared by
the module: rollbacks restore exact earlier parameters and optimiser states, a killed and
resumed run ends in the same state, and each seed alone equals its member of the vmapped run.
"""
import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.environments.pursuit_evasion import EVADER, PURSUER
from rljax.experiments.pursuit.experiment import EXPERIMENT
from rljax.selfplay.evaluation import ne_gap
from rljax.selfplay.curriculum import CurriculumConfig, at_max_level, curriculum_init, curriculum_step, curriculum_task
from rljax.selfplay.pool import ring_init, ring_push, ring_rollback
from rljax.selfplay.protocol import COLD, DONE, PHASE, WARM, ProtocolConfig, protocol_init, segment_end
from rljax.runner import Runner, resume_runner
from tests.bits import same


# -- curriculum on scripted evaluation results ------------------------------------------------
def _run_curriculum(cfg, results):
    s = curriculum_init(cfg)
    trace = []
    for cap, esc in results:
        s, adv, reg = curriculum_step(cfg, s, cap, esc)
        trace.append((bool(adv), bool(reg), float(curriculum_task(cfg, s)[1])))
    return s, trace


def test_smooth_curriculum_advances_on_ne_gap_streak_and_regresses_after_three_floors():
    cfg = CurriculumConfig(kind="smooth", increment=0.5, ne_gap_threshold=0.15, ne_gap_consecutive=2)
    balanced, lopsided, dominated = (0.5, 0.5), (0.9, 0.1), (1.0, 0.0)
    s, trace = _run_curriculum(cfg, [balanced, lopsided, balanced, balanced])
    # a lopsided phase breaks the streak; two balanced in a row advance by one increment
    assert [t[:2] for t in trace] == [(False, False)] * 3 + [(True, False)]
    assert trace[-1][2] == 5.5 and int(s.advances) == 1 and int(s.ne_streak) == 0
    # three consecutive phases with escape rate < 0.02 regress (above the minimum only)
    s2, trace = _run_curriculum(cfg, [balanced, balanced, dominated, dominated, dominated])
    assert [t[:2] for t in trace] == [(False, False), (True, False), (False, False), (False, False), (False, True)]
    assert trace[-1][2] == 5.0
    _, trace = _run_curriculum(cfg, [dominated] * 4)  # at the minimum level nothing regresses
    assert not any(t[1] for t in trace) and trace[-1][2] == 5.0
    # obstacles appear once max_d reaches 8 m; max level at 15 m
    s3 = curriculum_init(cfg).replace(max_d=jnp.float32(8.0))
    assert int(curriculum_task(cfg, s3)[2]) == 3 and int(curriculum_task(cfg, curriculum_init(cfg))[2]) == 0
    assert bool(at_max_level(cfg, s3.replace(max_d=jnp.float32(15.0)))) and not bool(at_max_level(cfg, s3))


def test_discrete_curriculum_capture_threshold_advance():
    cfg = CurriculumConfig(kind="discrete", ne_gap_advancement=False, advancement_threshold=0.7, min_escape_rate=0.15)
    s, trace = _run_curriculum(cfg, [(0.75, 0.10), (0.71, 0.29), (0.70, 0.30)])
    # capture > 0.7 AND escape >= 0.15: only the second phase advances (L1 -> L2: max_d 15)
    assert [t[0] for t in trace] == [False, True, False] and int(s.level) == 1
    assert tuple(float(x) for x in curriculum_task(cfg, s)[:2]) == (5.0, 15.0)


def test_protocol_evader_first_and_warm_start_on_advance():
    cfg = ProtocolConfig(max_phases=6, cold_start_timesteps=100, warm_start_evader=True, warm_start_timesteps=50)
    ps = protocol_init(cfg, 10, 5)
    assert (int(ps.stage), int(ps.phase), int(ps.role)) == (COLD, 0, EVADER)
    f = jnp.asarray(False)
    ps, _ = segment_end(cfg, ps, f, f)  # S0 -> phase 1 (pursuer)
    assert (int(ps.stage), int(ps.phase), int(ps.role)) == (PHASE, 1, PURSUER)
    ps, _ = segment_end(cfg, ps, jnp.asarray(True), f)  # advance after phase 1: warm start, then the evader
    assert (int(ps.stage), int(ps.phase), int(ps.role)) == (WARM, 1, EVADER)
    ps, _ = segment_end(cfg, ps, f, f)
    assert (int(ps.stage), int(ps.phase), int(ps.role)) == (PHASE, 2, EVADER)
    ps, _ = segment_end(cfg, ps, f, f)  # parity again: phase 3 = pursuer
    assert (int(ps.stage), int(ps.phase), int(ps.role)) == (PHASE, 3, PURSUER)
    # evader-first on an odd phase (would be the pursuer's), without warm start
    cfg2 = dataclasses.replace(cfg, warm_start_evader=False)
    ps2, _ = segment_end(cfg2, ps, jnp.asarray(True), f)
    assert (int(ps2.stage), int(ps2.phase), int(ps2.role)) == (PHASE, 4, EVADER)
    ps3, _ = segment_end(cfg2, ps2, jnp.asarray(True), f)  # phase 5 forced to the evader too
    assert (int(ps3.phase), int(ps3.role)) == (5, EVADER)
    # convergence ends the protocol; so does max_phases
    assert int(segment_end(cfg, ps, f, jnp.asarray(True))[0].stage) == DONE
    assert int(segment_end(cfg, ps.replace(phases_done=jnp.int32(5)), f, f)[0].stage) == DONE


def test_ne_gap():
    np.testing.assert_allclose(ne_gap(jnp.array([0.5, 0.9, 0.0, 0.45]), jnp.array([0.5, 0.1, 1.0, 0.55])),
                               [0.0, 0.8, 1.0, 0.1], atol=1e-6)


def test_ring_rollback_returns_the_third_newest_and_cuts():
    ring = ring_init(jnp.zeros(3), 4)
    for i in range(6):  # 6 pushes into 4 slots: holds 2, 3, 4, 5
        ring = ring_push(ring, jnp.full(3, float(i)))
    ring, item, ok = ring_rollback(ring, 3)
    assert bool(ok) and float(item[0]) == 3.0 and int(ring.count) == 2
    _, _, ok = ring_rollback(ring, 3)
    assert not bool(ok)  # fewer than 3 held: the reference's "cannot rollback"


# -- one tiny protocol, two seeds vmapped ---------------------------------------------------------
# 128 env-steps per update; cold start 2 updates, 3 phases of 2, warm starts of 1 update; NE-gap
# threshold 1.0 advances after every non-degenerate phase; the entropy floor of 10 (entropy is
# ~2.8) triggers a rollback whenever the cooldown allows, so rollbacks happen in every phase.
TINY = ["ppo.num_envs=8", "ppo.num_steps=16", "ppo.num_minibatches=2", "ppo.num_epochs=2", "network.hidden=[16,16]",
        "env.max_steps=40", "protocol.cold_start_timesteps=256", "protocol.max_phases=3",
        "protocol.timesteps_per_phase=512", "protocol.warmup_timesteps=[512]", "protocol.warm_start_timesteps=128",
        "curriculum.ne_gap_threshold=1.0", "curriculum.ne_gap_consecutive=1", "curriculum.increment=5.0",
        "health.snapshot_every=128", "health.cooldown=256", "health.window=8", "health.entropy_collapse=10.0",
        "selfplay.eval_episodes=8", "selfplay.pool_lanes=2", "selfplay.pool_size=4", "selfplay.nav_max_steps=40",
        "runner.chunk_updates=1", "runner.checkpoint_every=1", "runner.eval_episodes=2", "runner.eval_max_steps=40",
        "runner.progress=false"]


def _cfg(*extra):
    return EXPERIMENT.make_config(overrides=TINY + list(extra))


@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory):
    """The killed, resumed and straight runs are the same program: a persistent compilation
    cache for this module compiles it once (restored afterwards)."""
    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")
    old = {n: getattr(jax.config, n) for n in names}
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("xla_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    yield
    for n, v in old.items():
        jax.config.update(n, v)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, compile_cache):
    trace = []

    def record(ctx):
        trace.append((ctx.update, jax.tree.map(np.asarray, (ctx.state.params, ctx.state.opt_state)),
                      {k: np.asarray(v) for k, v in ctx.metrics.items()}))

    out = str(tmp_path_factory.mktemp("selfplay") / "run")
    runner = Runner(EXPERIMENT, _cfg("runner.num_seeds=2"), out, on_chunk_end=[record])
    runner.run()
    return runner, trace


def test_tiny_protocol_runs_every_stage(tiny):
    runner, trace = tiny
    s = runner.state
    assert runner.num_updates == len(trace)
    stages = np.stack([m["stage"][:, -1] for _, _, m in trace])  # [T, 2]
    for member in range(2):
        assert {COLD, PHASE}.issubset(set(stages[:, member].astype(int).tolist()))
    assert (np.asarray(s.protocol.stage) == DONE).all()
    assert (np.asarray(s.protocol.phases_done) == 3).all()
    assert (np.asarray(s.evaluation.count) >= 4).all()  # after S0 and each phase
    assert (np.asarray(s.rollbacks) > 0).all()
    assert (np.asarray(s.pool.count) > 0).any()
    # summary.json counts the steps the learners actually trained, not the protocol's static length
    summary = json.load(open(os.path.join(runner.out_dir, "summary.json")))
    trained = np.asarray(s.learner_steps).sum(axis=-1)
    assert [m["env_steps"] for m in summary["members"]] == trained.tolist()
    assert trained.max() <= summary["env_steps_per_member"]
    assert summary["total_steps_per_second"] == pytest.approx(trained.sum() / summary["train_seconds"], rel=1e-6)


def test_rollback_restores_exact_earlier_parameters_and_optimiser_state(tiny):
    """At every rollback, each restored row (the learner and, bilateral, the frozen opponent;
    a row is restored when its snapshot ring shrank) holds exactly the parameters AND
    optimiser state it had at an earlier update, and differs from the update before."""
    _, trace = tiny
    restored = {0: 0, 1: 0}
    for t in range(1, len(trace)):
        _, (params, opt), m = trace[t]
        prev = trace[t - 1][2]
        for member in range(2):
            if m["rollback"][member, -1] < 1:
                continue
            learner = int(m["role"][member, -1])
            for role, ring in enumerate(("ring_pursuer", "ring_evader")):
                if not m[ring][member, -1] < prev[ring][member, -1]:
                    continue  # fewer than 3 snapshots held: nothing restored
                row = lambda tree, i=member, r=role: jax.tree.map(lambda x: x[i, r], tree)  # noqa: E731
                now = (row(params), row(opt))
                assert not same(now, (row(trace[t - 1][1][0]), row(trace[t - 1][1][1]))), (t, member, role)
                assert any(same(now, (row(p), row(o))) for _, (p, o), _ in trace[:t - 1]), (t, member, role)
                restored[role == learner] += 1
    assert restored[True] >= 1 and restored[False] >= 1, restored  # the learner and the opponent


def test_kill_and_resume_mid_protocol_ends_in_the_same_state(tiny, tmp_path):
    runner, _ = tiny

    class Killed(Exception):
        pass

    def kill(ctx):
        if ctx.update >= 6:  # mid-protocol: after the cold start, inside the phases
            raise Killed

    killed = str(tmp_path / "killed")
    with pytest.raises(Killed):
        Runner(EXPERIMENT, _cfg("runner.num_seeds=2"), killed, on_chunk_end=[kill]).run()
    resumed = resume_runner(killed)
    summary = resumed.run()
    assert 0 < summary["resumed_from_update"] <= 6
    assert same(resumed.state, runner.state)


def test_each_seed_alone_equals_its_member_of_the_vmapped_run(tiny, tmp_path):
    runner, _ = tiny
    alone = Runner(EXPERIMENT, _cfg("runner.seeds=[1]"), str(tmp_path / "alone"))
    alone.run()
    member = jax.tree.map(lambda x: x[1], runner.state)
    single = jax.tree.map(lambda x: x[0], alone.state)
    # the protocol's discrete state exactly, parameters to float tolerance
    for name in ("protocol", "curriculum", "rollbacks", "learner_steps"):
        assert same(getattr(member, name), getattr(single, name)), name
    for a, b in zip(jax.tree.leaves(member.params), jax.tree.leaves(single.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4, rtol=1e-3)


def test_s1_bilateral_rollback_restores_the_cold_start_evader(tiny):
    """In phase 1 the evader's only snapshot is the cold start's final (S52 Fix 1); with
    ``health.partial_rollback`` (the default) a rollback of the pursuer restores it too (the
    reference needs 3 and skips: tests/test_selfplay_health.py runs that behaviour)."""
    _, trace = tiny
    s1 = [(t, member) for t, (_, _, m) in enumerate(trace) for member in range(2)
          if m["rollback"][member, -1] > 0 and m["phase"][member, -1] == 1 and m["stage"][member, -1] == PHASE]
    assert s1, "no rollback in phase 1"
    for t, member in s1:
        m = trace[t][2]
        assert m["ring_evader"][member, -1] == 1 and m["restored_opponent"][member, -1] == 1
        # the restored evader is the cold start's final evader (its parameters did not move since)
        cold = [u for u, (_, _, mm) in enumerate(trace) if mm["stage"][member, -1] == COLD][-1]
        row = lambda tree, i=member: jax.tree.map(lambda x: x[i, EVADER], tree)  # noqa: E731
        assert same(row(trace[t][1][0]), row(trace[cold][1][0]))


def test_agents_are_rated_against_the_scripted_baselines_after_every_evaluation(tiny):
    """After S0 and every phase both agents play the random policy and the scripted baselines;
    the logged Elo follows the logged win rates by the reference's rule (k 32, baselines at 1200)."""
    from rljax.selfplay.elo import ELO_START, elo_matches

    runner, trace = tiny
    pursuer_side = ["random_evader", "flee_away", "flee_to_corner"]
    evader_side = ["random_pursuer", "pure_pursuit"]
    assert [b.name for b in runner.algorithm.rated_baselines] == pursuer_side + evader_side
    for member in range(2):
        elo = np.array([ELO_START, ELO_START], np.float32)
        evaluations = 0
        for t, (_, _, m) in enumerate(trace):
            rates = {n: m[f"baseline/{n}"][member, -1] for n in pursuer_side + evader_side}
            cold_end = (m["stage"][member, -1] == COLD and t + 1 < len(trace)
                        and trace[t + 1][2]["stage"][member, -1] != COLD)
            if not (cold_end or m["phase_end"][member, -1] > 0):
                continue
            evaluations += 1
            assert all(0.0 <= r <= 1.0 for r in rates.values()), rates
            elo = np.array([elo_matches(elo[0], np.array([rates[n] for n in pursuer_side])),
                            elo_matches(elo[1], np.array([rates[n] for n in evader_side]))])
            np.testing.assert_allclose([m["elo/pursuer"][member, -1], m["elo/evader"][member, -1]], elo, rtol=1e-6)
        assert evaluations == 4  # S0 and three phases
