"""``runner.codegen``: the backend optimisation level chosen per backend, and reaching the compile."""
import pytest

from rljax import backend
from rljax.errors import ConfigError


def test_codegen_resolution_on_cpu():
    assert backend.platform() == "cpu"
    assert backend.codegen("auto", stalls_vectorizer=True) == "o1"
    assert backend.codegen("auto", stalls_vectorizer=False) == "default"
    assert backend.codegen("default", stalls_vectorizer=True) == "default"
    assert backend.compiler_options("default") is None
    assert backend.compiler_options("o1") == {"xla_backend_optimization_level": "1"}
    with pytest.raises(ConfigError, match="runner.codegen"):
        backend.codegen("o3")


def test_recurrent_pursuit_policies_compile_at_o1():
    from rljax.experiments.pursuit.experiment import EXPERIMENT, build

    assert build(EXPERIMENT.make_config(overrides=["network.encoder=history"])).stalls_vectorizer
    assert build(EXPERIMENT.make_config(overrides=["network.recurrent=true", "env.history=1",
                                                   "ppo.num_minibatches=4"])).stalls_vectorizer
    assert not build(EXPERIMENT.make_config(overrides=[])).stalls_vectorizer


def test_runner_compiles_with_the_chosen_options(monkeypatch, tmp_path):
    """Initialisation, chunks and evaluation compile with ``compiler_options(choices.codegen)``:
    an option XLA rejects must surface from each of the runner's compiles."""
    from rljax.experiments.cartpole.experiment import EXPERIMENT
    from rljax.runner import Runner

    cfg = EXPERIMENT.make_config(overrides=["ppo.num_envs=2", "ppo.num_steps=4", "ppo.num_minibatches=1",
                                            "ppo.num_epochs=1", "ppo.total_timesteps=8", "runner.progress=false",
                                            "runner.codegen=o1"])
    runner = Runner(EXPERIMENT, cfg, str(tmp_path / "run"))
    assert runner.choices.codegen == "o1"
    seen = []
    monkeypatch.setattr(backend, "compiler_options", lambda mode: seen.append(mode) or {"xla_not_an_option_at_all": "1"})
    with pytest.raises(Exception, match="xla_not_an_option_at_all"):
        runner.chunk_fn(1, *runner.abstract_carry())
    with pytest.raises(Exception, match="xla_not_an_option_at_all"):
        runner.init_state()
    with pytest.raises(Exception, match="xla_not_an_option_at_all"):
        runner.evaluate(runner.abstract_carry()[0])
    assert seen == ["o1"] * 3
