"""Bad input ends with exit code 2 and one line naming the problem, no traceback."""
import os
import subprocess
import sys

import pytest

from rljax.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["run", "nosuchexp"], "unknown experiment 'nosuchexp'"),
        # modules beside the experiments that are not experiments (benchmarks, tools)
        (["run", "goodhart_verify"], "unknown experiment 'goodhart_verify'; available: cartpole, "),
        (["run", "bench_scale"], "unknown experiment 'bench_scale'"),
        (["run", "cartpole", "--set", "ppo.lrr=0.1"], "unknown config key 'ppo.lrr' (did you mean 'ppo.lr'?)"),
        (["run", "cartpole", "--set", "ppo.num_envs=four"], "ppo.num_envs: expected an integer"),
        (["run", "cartpole", "--set", "ppo.num_envs=0"], "ppo.num_envs must be > 0"),
        (["run", "cartpole", "--set", "ppo.num_minibatches=3"], "num_minibatches=3 does not divide the batch"),
        (["run", "cartpole", "--preset", "nope"], "unknown preset 'nope'"),
        (["run", "cartpole", "--vary", "ppo.num_envs=1,2"], "not a vmappable hyperparameter"),
        (["run", "cartpole", "--config", "/nonexistent.yaml"], "config file not found"),
        (["eval", "/nonexistent/run"], "run directory not found: /nonexistent/run"),
        (["run", "cartpole", "--resume", "/nonexistent/run"], "run directory not found"),
    ],
)
def test_bad_input_exit_2_one_line(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("rljax: error: ") and needle in err, err


def test_console_exit_code_is_2_in_a_real_process():
    proc = subprocess.run([sys.executable, "-m", "rljax.cli", "run", "cartpole", "--set", "ppo.gamma=2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "rljax: error: ppo.gamma must be in [0, 1], got 2.0"


def test_list_shows_experiments_only(capsys):
    assert main(["list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert names == ["cartpole", "communities", "empo", "goodhart", "memory", "probe", "pursuit"]
