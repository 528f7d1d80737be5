"""Tier 3 (EWC + RND, the ``tier3`` preset of experiments/pursuit/experiment.py) through the compiled
self-play protocol: two seeds vmapped, a tiny budget, one forced curriculum advance.

The advance is scripted through the task: the smooth curriculum starts at 0-0.2 m, inside the
capture radius (0.5 m; the agents close at most 0.1 m per step), so every evaluation episode
of phase 1 is a capture and the capture-threshold rule (capture > 0.7, escape >= 0) advances
(to 0-5.2 m). Then: EWC's snapshot is taken for the evader on that advance and its penalty is
a non-zero loss term in the later evader phases (2 and 4) and zero everywhere else (cold
start, phase 1, the warm start, the pursuer's phase 3); RND's intrinsic reward is non-zero in
evader phases and zero everywhere else (also in the evader's cold and warm starts).
"""
import numpy as np
import pytest

from rljax.environments.pursuit_evasion import EVADER, PURSUER
from rljax.experiments.pursuit.experiment import EXPERIMENT
from rljax.runner import Runner
from rljax.selfplay.protocol import COLD, PHASE, WARM
from tests.test_selfplay import TINY

# On top of the tier3 preset: tiny learner and budgets (TINY), small EWC/RND nets, the forced advance.
TIER3 = ["selfplay.ewc_samples=64", "selfplay.ewc_minibatch=32",
         "selfplay.rnd_hidden=[16]", "selfplay.rnd_features=8", "selfplay.rnd_minibatch=32",
         "protocol.max_phases=4", "protocol.timesteps_per_phase=256", "protocol.warmup_timesteps=[256]",
         "curriculum.kind=smooth", "curriculum.ne_gap_advancement=false", "curriculum.advancement_threshold=0.7",
         "curriculum.min_escape_rate=0.0", "curriculum.initial_min=0.0", "curriculum.initial_max=0.2",
         "health.entropy_collapse=-100.0", "runner.checkpoint_every=0", "runner.num_seeds=2"]


def test_tier3_preset_is_what_this_test_runs():
    cfg = EXPERIMENT.make_config(preset="tier3", overrides=TINY + TIER3)
    assert cfg.selfplay.ewc and cfg.selfplay.rnd


@pytest.fixture(scope="module")
def tier3(tmp_path_factory):
    trace = []
    cfg = EXPERIMENT.make_config(preset="tier3", overrides=TINY + TIER3)
    runner = Runner(EXPERIMENT, cfg, str(tmp_path_factory.mktemp("tier3") / "run"),
                    on_chunk_end=[lambda ctx: trace.append({k: np.asarray(v)[:, -1] for k, v in ctx.metrics.items()})])
    runner.run()
    m = {k: np.stack([t[k] for t in trace]) for k in trace[0]}  # [T, 2 members]
    return runner, m


def test_tier3_protocol_advances_and_gates_ewc_and_rnd_to_evader_phases(tier3):
    runner, m = tier3
    live = m["active"] > 0
    stage, role, phase = m["stage"].astype(int), m["role"].astype(int), m["phase"].astype(int)
    # The forced advance: at the end of phase 1 (the pursuer's), for both seeds.
    adv = (m["advanced"] > 0) & live
    assert (adv.sum(axis=0) >= 1).all()
    first = np.argmax(adv, axis=0)
    assert [(phase[t, i], role[t, i]) for i, t in enumerate(first)] == [(1, PURSUER)] * 2
    assert (np.asarray(runner.state.curriculum.advances) >= 1).all()
    # Every stage ran: cold start, phases of both roles, the warm start after the advance.
    evader_phase = live & (stage == PHASE) & (role == EVADER)
    for member in range(2):
        seen = set(zip(stage[live[:, member], member], role[live[:, member], member]))
        assert {(COLD, EVADER), (PHASE, PURSUER), (WARM, EVADER), (PHASE, EVADER)} <= seen, seen
        assert set(phase[evader_phase[:, member], member].tolist()) == {2, 4}
    # EWC: a non-zero loss term in the evader phase after the advance, zero elsewhere.
    after = np.arange(len(stage))[:, None] > first[None, :]
    penalty = m["ewc/penalty"]
    assert (penalty[evader_phase & after] > 0).all(), penalty[evader_phase]
    assert (m["ewc/active"][evader_phase & after] == 1).all()
    assert (penalty[live & ~(evader_phase & after)] == 0).all()
    # RND: intrinsic reward in evader phases only (not in the evader's cold or warm start).
    intrinsic = m["rnd/reward"]
    assert (intrinsic[evader_phase] > 0).all(), intrinsic[evader_phase]
    assert (intrinsic[live & ~evader_phase] == 0).all()
    assert np.isfinite(m["loss"][live]).all()
