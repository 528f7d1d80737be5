"""The presets V, W, X, Y, Z1, Z2 are the seed's runs (worklog S52, spec section 2.9) at the
spec's learner (spec section 2.5), and mixed-level replay is the reference's fixed share."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.experiments.pursuit.experiment import EXPERIMENT
from rljax.selfplay.view import make_lane_sampler, selfplay_view_params

# Run: (pursuer speed, evader speed, S52 fixes (warm-up, NE-gap advancement, cold-start snapshot), Tier 3)
S52 = {"V": (1.0, 1.0, False, False), "W": (0.95, 1.0, False, False), "X": (1.0, 1.0, False, True),
       "Y": (0.95, 1.0, False, True), "Z1": (1.0, 1.0, True, False), "Z2": (1.0, 1.0, True, True)}


@pytest.mark.parametrize("run", sorted(S52))
def test_preset_is_the_seed_run(run):
    v_p, v_e, fixes, tier3 = S52[run]
    c = EXPERIMENT.make_config(preset=run)
    # the spec's learner: 4 envs x 512 steps, minibatches of 256, 10 epochs, lr 3e-4, [256, 256] tanh
    assert (c.ppo.num_envs, c.ppo.num_steps, c.ppo.batch_size // c.ppo.num_minibatches, c.ppo.num_epochs) == (4, 512, 256, 10)
    assert (c.ppo.lr, c.ppo.gamma, c.ppo.gae_lambda, c.ppo.clip_eps, c.ppo.ent_coef, c.ppo.vf_coef, c.ppo.max_grad_norm) == \
        (3e-4, 0.99, 0.95, 0.2, 0.01, 0.5, 0.5)
    assert (tuple(c.network.hidden), c.network.activation) == ((256, 256), "tanh")
    # speeds, seed 47, the spec's budgets and arena
    assert (c.env.pursuer_v_max, c.env.evader_v_max) == (v_p, v_e)
    assert c.runner.seed_list() == [47]
    assert (c.protocol.cold_start_timesteps, c.protocol.timesteps_per_phase, c.protocol.max_phases) == (200_000, 500_000, 12)
    assert (c.env.max_steps, c.env.observation, c.env.fixed_speed, c.selfplay.eval_episodes) == (1200, "partial", False, 100)
    assert not c.selfplay.eval_stochastic
    # Tier 1+2: bilateral rollback, evader-first, warm-start 50K, mixed level 0.2 (fixed share), smooth 0.5
    assert c.health.bilateral and c.protocol.evader_first_on_advance and c.protocol.warm_start_evader
    assert c.protocol.warm_start_timesteps == 50_000
    assert (c.selfplay.mixed_level_ratio, c.selfplay.mixed_level) == (0.2, "fixed")
    assert (c.curriculum.kind, c.curriculum.increment, c.curriculum.initial_max) == ("smooth", 0.5, 5.0)
    # the original's defaults: opponent pool off, log_std clamped at -2, its health monitor
    assert not c.selfplay.opponent_pool and c.selfplay.log_std_floor == -2.0
    assert (c.health.window, c.health.min_episodes, c.health.partial_rollback, c.health.rollback_back) == (200, 0, False, 3)
    # S52's fixes
    assert c.protocol.phase_warmup == fixes and c.curriculum.ne_gap_advancement == fixes
    assert c.health.cold_start_snapshot == fixes
    if fixes:
        assert tuple(c.protocol.warmup_timesteps) == (100_000, 100_000, 200_000, 200_000, 300_000, 300_000)
        assert (c.curriculum.ne_gap_threshold, c.curriculum.ne_gap_consecutive) == (0.15, 2)
    else:
        assert c.curriculum.advancement_threshold == 0.7
    # Tier 3
    assert (c.selfplay.ewc, c.selfplay.rnd) == (tier3, tier3)
    assert (c.selfplay.ewc_lambda, c.selfplay.rnd_coef) == (1000.0, 0.1)


def test_mixed_level_fixed_share_is_the_first_instances():
    base = selfplay_view_params(jnp.float32(5.0), 0.0, jnp.float32(4.5), mixed_envs=1)
    sampler = make_lane_sampler(1)
    keys = jax.random.split(jax.random.key(0), 4)
    for trial in range(3):  # every reset: instance 0 at the previous task, the others at the current
        ks = jax.vmap(lambda k: jax.random.fold_in(k, trial))(keys)
        p = jax.vmap(sampler, in_axes=(0, None, 0))(ks, base, jnp.arange(4))
        np.testing.assert_array_equal(np.asarray(p.env), [4.5, 5.0, 5.0, 5.0])
    # the per-episode option: a share in expectation, spread over instances
    base = selfplay_view_params(jnp.float32(5.0), 0.25, jnp.float32(4.5))
    p = jax.vmap(sampler, in_axes=(0, None, 0))(jax.random.split(jax.random.key(1), 4000), base, jnp.arange(4000) % 4)
    assert abs(float(jnp.mean(p.env == 4.5)) - 0.25) < 0.03


def test_history_encoder_is_the_originals_extractor_and_needs_partial_observation():
    """``network.encoder=history`` puts the original's features extractor (Conv1d over the newest
    lidar, MLP over the newest state, a bidirectional LSTM over the history) in front of the
    actor-critic, shared by both; it reads frames, so full observation is refused by name."""
    import jax
    import jax.numpy as jnp

    from rljax.errors import ConfigError
    from rljax.experiments.pursuit.experiment import EXPERIMENT, build

    cfg = EXPERIMENT.make_config("V", overrides=["network.encoder=history"])
    net = build(cfg).algorithm.network
    params = jax.jit(net.init)(jax.random.PRNGKey(0), jnp.zeros((430,)))["params"]  # jitted, as the trainer does
    extractor = params["HistoryFeatures_0"]
    assert extractor["Conv1D_0"]["kernel"].shape == (5, 1, 32) and extractor["Conv1D_1"]["kernel"].shape == (5, 32, 64)
    # 4 pooled bins x 64 channels + the state's 64 + the LSTM's 32 feed the first 256-wide layer
    assert extractor["Dense_3"]["kernel"].shape == (4 * 64 + 64 + 32, 256)
    assert params["ActorCriticMLP_0"]["MLP_0"]["Dense_0"]["kernel"].shape == (256, 256)
    (mean, _), value = net.apply({"params": params}, jnp.zeros((3, 430)))
    assert mean.shape == (3, 2) and value.shape == (3,)
    # Conv1D is the VALID convolution nn.Conv computes (window-major kernel layout)
    from rljax.selfplay.policy import Conv1D

    x = jax.random.normal(jax.random.PRNGKey(1), (3, 36, 2))
    conv = Conv1D(4)
    p = conv.init(jax.random.PRNGKey(2), x)
    ref = jax.lax.conv_general_dilated(x, p["params"]["kernel"], (1,), "VALID", dimension_numbers=("NWC", "WIO", "NWC"))
    assert jnp.allclose(conv.apply(p, x), ref + p["params"]["bias"], atol=1e-5)
    with pytest.raises(ConfigError, match="network.encoder=history"):
        EXPERIMENT.make_config("V", overrides=["network.encoder=history", "env.observation=full",
                                               "protocol.cold_start_timesteps=0"]).validate()
