"""Phase-2 schedules against the spec's formulas, Phase2Config validation and presets, and the
replay ring buffer with its clearing at the two ends of the beta_r ramp."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.empo import replay
from rljax.empo.config import NETWORKS, Phase2Config
from rljax.empo.schedules import (
    active_mask_bits,
    active_networks,
    effective_beta_r,
    epsilon_h,
    epsilon_r,
    grad_clip,
    is_fully_trained,
    is_in_rampup,
    is_in_warmup,
    learning_rate,
    lr_decay_start,
    should_clear_replay,
    stage_ends,
    warmup_stage,
)
from rljax.errors import ConfigError

_add = jax.jit(replay.add)
_sample = jax.jit(replay.sample, static_argnums=2)
DEFAULT = Phase2Config()  # N = 1e5: stages 10k (V_h^e), 10k (X_h), 10k (Q_r), ramp 20k
ALL_NETS = Phase2Config(u_r_use_network=True, v_r_use_network=True)


def sig(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_fractions_give_the_code_defaults():
    assert ALL_NETS.warmup_steps == {"v_h_e": 10_000, "x_h": 10_000, "u_r": 5_000, "q_r": 10_000, "v_r": 5_000}
    assert ALL_NETS.beta_r_rampup_steps == 20_000
    # Networks not in use get 0-step stages (u_r and v_r are direct by default).
    assert DEFAULT.warmup_steps == {"v_h_e": 10_000, "x_h": 10_000, "u_r": 0, "q_r": 10_000, "v_r": 0}
    e = stage_ends(DEFAULT)
    assert (e.v_h_e, e.x_h, e.u_r, e.q_r, e.v_r, e.ramp) == (10_000, 20_000, 20_000, 30_000, 30_000, 50_000)
    e = stage_ends(ALL_NETS)
    assert (e.v_h_e, e.x_h, e.u_r, e.q_r, e.v_r, e.ramp) == (10_000, 20_000, 25_000, 35_000, 40_000, 60_000)
    assert stage_ends(Phase2Config(x_h_use_network=False)).q_r == 20_000


@pytest.mark.parametrize(
    "cfg, steps, stages",
    [
        (DEFAULT, [0, 9_999, 10_000, 19_999, 20_000, 29_999, 30_000, 49_999, 50_000, 99_999], [0, 0, 1, 1, 3, 3, 5, 5, 6, 6]),
        (ALL_NETS, [0, 10_000, 20_000, 24_999, 25_000, 35_000, 40_000, 59_999, 60_000], [0, 1, 2, 2, 3, 4, 5, 5, 6]),
        (Phase2Config(x_h_use_network=False), [9_999, 10_000, 19_999, 20_000, 40_000], [0, 3, 3, 5, 6]),
    ],
)
def test_warmup_stage_boundaries(cfg, steps, stages):
    np.testing.assert_array_equal(warmup_stage(cfg, jnp.asarray(steps)), stages)
    assert [int(warmup_stage(cfg, s)) for s in steps] == stages


def test_active_network_masks():
    def names(cfg, step):
        return {n for n, a in zip(NETWORKS, np.asarray(active_networks(cfg, step))) if a}

    assert names(DEFAULT, 0) == {"v_h_e"}
    assert names(DEFAULT, 10_000) == {"v_h_e", "x_h"}
    assert names(DEFAULT, 19_999) == {"v_h_e", "x_h"}
    assert names(DEFAULT, 20_000) == {"v_h_e", "x_h", "q_r"}  # u_r and v_r are never networks here
    assert names(DEFAULT, 90_000) == {"v_h_e", "x_h", "q_r"}
    assert names(ALL_NETS, 20_000) == {"v_h_e", "x_h", "u_r"}
    assert names(ALL_NETS, 25_000) == {"v_h_e", "x_h", "u_r", "q_r"}
    assert names(ALL_NETS, 35_000) == set(NETWORKS)
    assert names(Phase2Config(x_h_use_network=False), 10_000) == {"v_h_e", "q_r"}
    assert int(active_mask_bits(DEFAULT, 20_000)) == 0b01011
    assert int(active_mask_bits(ALL_NETS, 35_000)) == 0b11111


def test_phase_predicates():
    assert bool(is_in_warmup(DEFAULT, 29_999)) and not bool(is_in_warmup(DEFAULT, 30_000))
    assert bool(is_in_rampup(DEFAULT, 30_000)) and bool(is_in_rampup(DEFAULT, 49_999))
    assert not bool(is_in_rampup(DEFAULT, 50_000)) and bool(is_fully_trained(DEFAULT, 50_000))


def test_beta_r_ramp_follows_the_normalised_sigmoid():
    b, vr, t_ramp = 10.0, 30_000, 20_000

    def expected(step):
        if step < vr:
            return 0.0
        tau = step - vr
        if tau >= 3 * t_ramp:
            return b
        x = (sig(6 * (tau / t_ramp - 0.5)) - sig(-3)) / (sig(3) - sig(-3))
        return b * min(1.0, max(0.0, x))

    steps = [0, 29_999, 30_000, 32_000, 35_000, 40_000, 45_000, 49_999, 50_000, 60_000, 95_000]
    got = np.asarray(effective_beta_r(DEFAULT, jnp.asarray(steps)))
    np.testing.assert_allclose(got, [expected(s) for s in steps], rtol=1e-5, atol=1e-6)
    assert got[2] == 0.0 and abs(got[5] - 5.0) < 1e-5 and abs(got[8] - 10.0) < 1e-5
    ramp = np.asarray(effective_beta_r(DEFAULT, jnp.arange(29_000, 52_000, 100)))
    assert np.all(np.diff(ramp) >= 0), "the ramp is monotone"
    # No ramp: nominal at once when the warm-up ends.
    no_ramp = Phase2Config(beta_r_rampup_fraction=0.0, beta_r=7.0)
    np.testing.assert_allclose(effective_beta_r(no_ramp, jnp.asarray([29_999, 30_000])), [0.0, 7.0])


def test_learning_rate_constant_then_one_over_t():
    assert lr_decay_start(DEFAULT) == 70_000  # max(ramp end 50k, 0.7 * 1e5)
    lr = lambda cfg, n, s: float(learning_rate(cfg, n, s))  # noqa: E731
    assert lr(DEFAULT, "q_r", 0) == pytest.approx(1e-4)
    assert lr(DEFAULT, "q_r", 69_999) == pytest.approx(1e-4)
    assert lr(DEFAULT, "q_r", 70_000) == pytest.approx(1e-4)
    assert lr(DEFAULT, "q_r", 140_000) == pytest.approx(0.5e-4)
    assert lr(DEFAULT, "v_h_e", 100_000) == pytest.approx(1e-3 * 70_000 / 100_000)
    # 1/sqrt(t): base * sqrt(d / t).
    sq = Phase2Config(constant_lr_then_1_over_t=False)
    assert lr(sq, "x_h", 280_000) == pytest.approx(1e-4 * math.sqrt(70_000 / 280_000))
    # The decay never starts before the ramp ends.
    early = Phase2Config(lr_constant_fraction=0.1)
    assert lr_decay_start(early) == 50_000 and lr(early, "q_r", 49_999) == pytest.approx(1e-4)
    assert lr(early, "q_r", 100_000) == pytest.approx(0.5e-4)
    # use_sqrt_lr_decay=False keeps every rate constant.
    const = Phase2Config(use_sqrt_lr_decay=False)
    assert lr(const, "q_r", 10**6) == pytest.approx(1e-4)
    # Auto gradient clip scales with lr / 1e-4.
    assert float(grad_clip(DEFAULT, "q_r", 140_000)) == pytest.approx(5.0)
    assert float(grad_clip(Phase2Config(auto_grad_clip=False), "v_h_e", 0)) == pytest.approx(10.0)


def test_epsilon_schedules_are_linear():
    np.testing.assert_allclose(epsilon_r(DEFAULT, jnp.asarray([0, 5_000, 10_000, 50_000])), [1.0, 0.505, 0.01, 0.01], rtol=1e-6)
    cfg = Phase2Config(epsilon_h_start=0.5, epsilon_h_end=0.1, epsilon_h_decay_steps=400)
    np.testing.assert_allclose(epsilon_h(cfg, jnp.asarray([0, 100, 400, 401])), [0.5, 0.4, 0.1, 0.1], rtol=1e-6)
    np.testing.assert_allclose(epsilon_h(Phase2Config(epsilon_h_decay_steps=0), 0), 0.01)


def test_schedules_compile_with_traced_steps():
    @jax.jit
    def all_of(step):
        return (warmup_stage(DEFAULT, step), effective_beta_r(DEFAULT, step), learning_rate(DEFAULT, "q_r", step),
                epsilon_r(DEFAULT, step), should_clear_replay(DEFAULT, step), active_mask_bits(DEFAULT, step))

    steps = jnp.asarray([0, 30_000, 40_000, 50_000, 140_000])
    out = jax.vmap(all_of)(steps)
    for i, s in enumerate(np.asarray(steps)):
        eager = (warmup_stage(DEFAULT, s), effective_beta_r(DEFAULT, s), learning_rate(DEFAULT, "q_r", s),
                 epsilon_r(DEFAULT, s), should_clear_replay(DEFAULT, s), active_mask_bits(DEFAULT, s))
        for a, b in zip(out, eager):
            np.testing.assert_allclose(a[i], b, rtol=1e-6)


def test_replay_is_cleared_exactly_at_the_ramp_boundaries():
    clears = np.nonzero(np.asarray(should_clear_replay(DEFAULT, jnp.arange(100_001))))[0]
    np.testing.assert_array_equal(clears, [30_000, 50_000])
    assert not np.any(should_clear_replay(Phase2Config(beta_r_rampup_fraction=0.0), jnp.arange(100_001)))
    no_warmup = Phase2Config(warmup_v_h_e_fraction=0, warmup_x_h_fraction=0, warmup_q_r_fraction=0)
    np.testing.assert_array_equal(np.nonzero(np.asarray(should_clear_replay(no_warmup, jnp.arange(100_001))))[0], [20_000])

    # A training loop: every step clears if due, then stores the step number.
    cfg = Phase2Config(num_training_steps=100)  # stages 10/10/10, ramp 20: clear at 30 and 50
    buf = replay.init(jnp.int32(0), capacity=1000)

    def body(b, step):
        b = replay.clear_if(b, should_clear_replay(cfg, step))
        b = replay.add(b, step)
        return b, b.size

    buf, sizes = jax.lax.scan(body, buf, jnp.arange(100))
    sizes = np.asarray(sizes)
    assert sizes[29] == 30 and sizes[30] == 1 and sizes[49] == 20 and sizes[50] == 1 and sizes[99] == 50
    batch = replay.sample(buf, jax.random.key(0), 512)
    assert int(batch.min()) >= 50, "only transitions collected at full beta_r remain"


def test_ring_buffer_wraps_samples_uniformly_and_clears():
    buf = replay.init({"x": jnp.zeros(2), "i": jnp.int32(0)}, capacity=5)
    for i in range(7):
        buf = _add(buf, {"x": jnp.full(2, float(i)), "i": jnp.int32(i)})
    assert int(buf.size) == 5 and int(buf.insert_pos) == 2
    batch = _sample(buf, jax.random.key(1), 5000)
    counts = np.bincount(np.asarray(batch["i"]), minlength=7)
    assert counts[0] == counts[1] == 0
    assert np.all(np.abs(counts[2:] / 5000 - 0.2) < 0.025)  # sd 0.006
    np.testing.assert_array_equal(batch["x"][:, 0], batch["i"])
    buf = replay.add_batch(buf, {"x": jnp.ones((3, 2)), "i": jnp.asarray([7, 8, 9], jnp.int32)})
    assert set(np.asarray(_sample(buf, jax.random.key(2), 5000)["i"]).tolist()) == {5, 6, 7, 8, 9}
    buf = replay.clear(buf)
    assert int(buf.size) == 0
    buf = _add(buf, {"x": jnp.zeros(2), "i": jnp.int32(42)})
    assert set(np.asarray(_sample(buf, jax.random.key(3), 5000)["i"]).tolist()) == {42}
    with pytest.raises(ValueError, match="capacity"):
        replay.init(jnp.zeros(1), capacity=0)
    with pytest.raises(ValueError, match="exceeds capacity"):
        replay.add_batch(buf, {"x": jnp.zeros((6, 2)), "i": jnp.zeros(6, jnp.int32)})


def test_config_validation_names_the_field():
    for field, value in [("gamma_r", 1.5), ("zeta", 0.5), ("beta_r", -1.0), ("terminal_v_r", 0.0),
                         ("batch_size", 0), ("warmup_q_r_fraction", 1.2), ("epsilon_h_end", 2.0),
                         ("model_based_human_profile", "median"), ("num_training_steps", 10.5), ("lr_q_r", 0.0)]:
        with pytest.raises(ConfigError, match=field):
            Phase2Config(**{field: value})
    with pytest.raises(ConfigError, match="preset"):
        Phase2Config.preset("nope")
    with pytest.raises(ConfigError, match="unknown config key"):
        Phase2Config.preset("code", warmup_vhe_fraction=0.1)


def test_presets():
    seed = Phase2Config.preset("seed_doc")
    # The seed document's table: 1000-step stages (X_h; U_r and V_r skipped by default), a
    # 2000-step ramp, 1/sqrt(t) decay from the end of the ramp.
    assert seed.warmup_steps == {"v_h_e": 1000, "x_h": 1000, "u_r": 0, "q_r": 1000, "v_r": 0}
    assert seed.beta_r_rampup_steps == 2000 and seed.beta_r == 10.0
    np.testing.assert_array_equal(warmup_stage(seed, jnp.asarray([999, 1000, 2000, 3000, 5000])), [0, 1, 3, 5, 6])
    assert lr_decay_start(seed) == 5000
    assert float(learning_rate(seed, "q_r", 20_000)) == pytest.approx(1e-4 * math.sqrt(5000 / 20_000))
    demo = Phase2Config.preset("demo", num_training_steps=1_000_000, epsilon_r_decay_steps=666_666)
    assert demo.beta_r == 1000.0 and demo.lr_v_h_e == 1e-2 and demo.use_z_space_transform
    assert stage_ends(demo).ramp == 300_000 + 200_000
    assert Phase2Config.preset("code") == Phase2Config()
