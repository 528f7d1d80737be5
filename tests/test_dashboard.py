import numpy as np
from PIL import Image

from rljax.experiments.cartpole.experiment import EXPERIMENT
from rljax.dashboard import Dashboard
from rljax.runner import Runner


def test_dashboard_renders_a_png_per_member_with_history(tmp_path):
    cfg = EXPERIMENT.make_config(overrides=["ppo.total_timesteps=4096", "runner.progress=false", "runner.num_seeds=2",
                                            "runner.chunk_updates=2", "runner.eval_max_steps=20", "runner.eval_episodes=2"])
    dash = Dashboard(obs_to_image=lambda o: np.tile(o[None, :], (2, 1)), inline=False)
    runner = Runner(EXPERIMENT, cfg, str(tmp_path), on_chunk_end=[dash])
    runner.run()
    assert [p.split("/")[-1] for p in dash.paths] == ["dashboard_seed0.png", "dashboard_seed1.png"]
    assert Image.open(dash.paths[0]).size[0] > 500
    # one value per update, per member, and the action fractions of CartPole's 2 actions sum to 1
    assert dash.series("pg_loss").shape == (2, runner.num_updates)
    np.testing.assert_allclose(dash.series("action_frac0") + dash.series("action_frac1"), 1.0, rtol=1e-5)
