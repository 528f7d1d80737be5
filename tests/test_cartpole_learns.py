import json

from rljax.experiments.cartpole.experiment import EXPERIMENT
from rljax.runner import Runner


def test_ppo_solves_cartpole_within_500k_steps(tmp_path):
    cfg = EXPERIMENT.make_config(overrides=["runner.progress=false", "runner.eval_episodes=10"])
    assert cfg.ppo.total_timesteps == 500_000
    summary = Runner(EXPERIMENT, cfg, str(tmp_path)).run()
    assert summary["members"][0]["eval_return"] >= 475.0, summary["members"][0]
    assert json.loads((tmp_path / "summary.json").read_text())["members"][0]["env_steps"] <= 500_000
