"""Config loading keeps an experiment's own section defaults when only some keys are set."""
from rljax.experiments.goodhart.experiment import EXPERIMENT, GOODHART_PPO


def test_partial_override_keeps_experiment_ppo_defaults():
    cfg = EXPERIMENT.make_config(overrides=["ppo.total_timesteps=16384"])
    assert cfg.ppo.total_timesteps == 16384
    # everything else is still the experiment's PPO (spec: lr 5e-4, entropy 0.02, 64 x 128), not PPOConfig()'s
    assert (cfg.ppo.lr, cfg.ppo.ent_coef, cfg.ppo.num_envs, cfg.ppo.num_steps) == (5e-4, 0.02, 64, 128)
    assert cfg.ppo.advantage_norm == GOODHART_PPO.advantage_norm == "batch"
    assert cfg.runner.log_episodes and cfg.runner.eval_episodes == 8 and cfg.runner.checkpoint_minutes == 5.0


def test_preset_keeps_defaults_of_untouched_sections():
    cfg = EXPERIMENT.make_config("smoke")
    assert cfg.ppo.lr == 5e-4 and cfg.ppo.num_envs == 16
    assert cfg.runner.log_episodes
