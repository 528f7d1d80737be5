"""The goodhart experiment end to end: config errors, a tiny training run of two modes in one
program (CSV, checkpoints, dashboard, summary), learning (a ground-truth agent eats more food
per poison than a random agent), the verify command, and the survival test's rules."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.environments.foraging import FOOD, POISON, Foraging, params_for_mode, render_observation
from rljax.environments.foraging_seekers import omniscient_seeker, proxy_seeker, random_policy
from rljax.experiments.goodhart.experiment import EXPERIMENT
from rljax.experiments.goodhart.verify import (
    STARVATION_WORLD, SurvivalResult, per_agent, simulate_survival, starvation_step, starvation_verdict, survival_test,
)
from rljax.cli import experiment_main

# A small world and network that learn within seconds; the rules are the default preset's.
TINY_WORLD = ["env.grid_size=20", "env.min_food=10", "env.max_food=20", "env.min_poison=5", "env.max_poison=10",
              "env.episode_length=200"]
TINY = TINY_WORLD + [
    "env.modes=[ground_truth,proxy]", "network.channels=[8,16,16]", "network.hidden=64",
    "ppo.num_envs=16", "ppo.num_steps=64", "ppo.lr=1e-3", "ppo.total_timesteps=40960",
    "runner.chunk_updates=10", "runner.eval_episodes=2", "runner.eval_max_steps=50", "runner.progress=false",
]


def _set(items):
    return [x for kv in items for x in ("--set", kv)]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("goodhart") / "run")
    assert experiment_main("goodhart", ["--out", out, "--dashboard", *_set(TINY)]) == 0
    return out


def test_run_writes_every_output_per_mode(tiny_run):
    files = set(os.listdir(tiny_run))
    for mode in ("ground_truth", "proxy"):
        m = f"{mode}_seed0"
        assert {f"metrics_{m}.csv", f"episodes_{m}.csv", f"dashboard_{m}.png"} <= files
        header = open(os.path.join(tiny_run, f"metrics_{m}.csv")).readline()
        assert "episode_food" in header and "episode_poison" in header
    summary = json.load(open(os.path.join(tiny_run, "summary.json")))
    assert [m["variant"] for m in summary["members"]] == ["ground_truth", "proxy"]
    assert summary["env_steps_per_member"] == 40960
    assert os.listdir(os.path.join(tiny_run, "checkpoints"))


def _food_per_poison(policy, policy_params, key, agents=32, steps=300):
    env = Foraging(grid_size=20)
    params = params_for_mode("ground_truth", min_food=10, max_food=20, min_poison=5, max_poison=10,
                             episode_length=steps + 1)
    # one agent per grid: the densities the agent was trained on
    trace = jax.jit(lambda p, k: simulate_survival(policy, p, params, k, agents, 1, steps, env))(policy_params, key)
    food, poison = np.asarray(trace.counts)[2:]
    return food / max(poison, 1), food, poison


def test_ground_truth_agent_eats_more_food_per_poison_than_random(tiny_run):
    from rljax.runner import load_run

    runner, ts = load_run(tiny_run)
    gt = [i for i, m in enumerate(runner.members) if m.variant == "ground_truth"][0]
    params = jax.tree.map(lambda x: x[gt], ts.params)
    trainer = runner.algorithm

    def sample(p, keys, obs):
        logits = trainer.apply(p, obs)[0]
        return jax.vmap(jax.random.categorical)(keys, logits)

    key = jax.random.key(7)
    trained, t_food, t_poison = _food_per_poison(sample, params, key)
    rand, r_food, r_poison = _food_per_poison(per_agent(random_policy), None, key)
    # a random walk eats items in proportion to their density (~2 food per poison here)
    assert trained > 1.5 * rand, (t_food, t_poison, r_food, r_poison)
    assert t_food > 2 * r_food


def test_verify_command_writes_table_json_chart_and_saliency(tiny_run, tmp_path, capsys):
    out = str(tmp_path / "verify")
    code = experiment_main("goodhart", ["verify", tiny_run, "--runs", "1", "--agents", "4", "--steps", "60", "--out", out])
    assert code == 0
    printed = capsys.readouterr().out
    for name in ("ground_truth", "proxy", "OmniscientSeeker", "ProxySeeker", "poison deaths/1k"):
        assert name in printed
    report = json.load(open(os.path.join(out, "verify.json")))
    agents = [e["agent"] for e in report["summary"]]
    assert agents == ["ground_truth", "proxy", "OmniscientSeeker", "ProxySeeker"]
    for e in report["members"]:
        assert 0.0 <= e["directional_accuracy"] <= 1.0
        assert e["poison_deaths"] + e["starvation_deaths"] == pytest.approx(e["deaths_per_1000_steps"] * 4 * 60 / 1000)
    # the omniscient seeker is built to pass every directional probe
    assert report["summary"][2]["directional_accuracy"] == 1.0
    assert {f"saliency_{m}.png" for m in ("ground_truth", "proxy")} | {"verify.png", "verify.json"} <= set(os.listdir(out))
    shares = report["saliency_share"]["ground_truth"][0]
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-5)
    # the zero-food check: 60 steps at energy 5 and cost 0.5 -> 6 starvations per agent, on schedule
    assert "zero-food check" in printed and "PASSED for all 4 agents" in printed
    assert report["starvation_check"] == {"world": STARVATION_WORLD, "expected_step": 10, "passed": True}
    for e in report["members"]:
        assert e["starvation_check"]["starvation_deaths"] == 4 * 6 and e["starvation_check"]["wrong_agent_steps"] == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "env.modes=[ground_truth,oracle]"], "env.modes"),
        (["--set", "env.min_food=30", "--set", "env.max_food=10"], "env.max_food"),
        (["--set", "env.grid_size=5"], "grid_size"),
        (["--set", "network.conv_impl=fft"], "network.conv_impl"),
        (["verify", "/nonexistent/run"], "not found"),
        (["verify", "/tmp", "--steps", "0"], "--steps"),
    ],
)
def test_bad_input_is_one_line_naming_the_key(args, message, capsys):
    assert experiment_main("goodhart", args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_verify_of_a_directory_that_is_no_run_names_that_directory(tmp_path, capsys):
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    for path in (str(inner), "/tmp"):
        assert experiment_main("goodhart", ["verify", path]) == 2
        err = capsys.readouterr().err.strip()
        assert err.endswith(f"{path} is not an rljax run directory (no run.json)") and len(err.splitlines()) == 1


def test_regrid_on_reset_is_a_config_option_that_reaches_the_environment():
    assert EXPERIMENT.build(EXPERIMENT.make_config(None, None, {})).algorithm.env.regrid_on_reset is False
    cfg = EXPERIMENT.make_config(None, None, {"env": {"regrid_on_reset": True}})
    cfg.validate()
    assert EXPERIMENT.build(cfg).algorithm.env.regrid_on_reset is True
    assert "regrid_on_reset" not in cfg.env.overrides(0.99)  # static, not a task parameter


def test_render_observation_shows_what_the_agent_sees():
    from rljax.environments.foraging import observation_from_cells

    cells = np.zeros((11, 11), np.int32)
    cells[5, 3], cells[5, 7] = FOOD, POISON
    gt = render_observation(observation_from_cells(jnp.asarray(cells), params_for_mode("ground_truth")))
    px = render_observation(observation_from_cells(jnp.asarray(cells), params_for_mode("proxy")))
    assert gt[5, 3, 1] > gt[5, 3, 0] and gt[5, 7, 0] > gt[5, 7, 1]  # food green, poison red
    # in the proxy view food and poison differ only by interestingness 1.0 vs 0.9
    assert np.abs(px[5, 3] - px[5, 7]).max() < 0.15
    assert np.all(gt[5, 5] == 0) and np.all(px[5, 5] == 0)


# The original verify_goodhart.py setting: E0 100, move cost 0.5, 100 food, 100 poison.
HARSH = dict(initial_energy=100.0, move_cost=0.5, min_food=100, max_food=100, min_poison=100, max_poison=100)


def test_proxy_seeker_dies_of_poison_and_omniscient_seeker_does_not():
    key = jax.random.key(3)
    omni = survival_test(omniscient_seeker, "ground_truth", key, runs=1, steps=500, agents=10, **HARSH)
    prox = survival_test(proxy_seeker, "proxy", key, runs=1, steps=500, agents=10, **HARSH)
    assert omni.poison_eaten == 0 and omni.poison_deaths == 0
    assert prox.poison_eaten > 0 and prox.poison_deaths > 0
    assert omni.deaths_per_1000_steps <= prox.deaths_per_1000_steps


def test_starvation_step_follows_the_float32_energy_rules():
    assert starvation_step(5.0, 0.5) == 10
    assert starvation_step(100.0, 0.5) == 200
    assert starvation_step(50.0, 0.1) == 501  # 50 - 500 * 0.1 is still +1.9e-4 in float32


def test_zero_food_check_on_a_shared_grid_is_exact_and_can_fail():
    env = Foraging(grid_size=16)
    params = params_for_mode("ground_truth", **STARVATION_WORLD, episode_length=1000)
    trace = jax.jit(lambda k: simulate_survival(per_agent(random_policy), None, params, k, 2, 10, 35, env))(jax.random.key(0))
    deaths = np.asarray(trace.deaths)
    assert deaths.shape == (35, 20)
    # every agent starves on its 10th, 20th and 30th step, and at no other step
    np.testing.assert_array_equal(np.flatnonzero(deaths.any(1)) + 1, [10, 20, 30])
    assert deaths[[9, 19, 29]].all()
    verdict = starvation_verdict(deaths, np.asarray(trace.counts), 10)
    assert verdict["passed"] and verdict["starvation_deaths"] == 60 == verdict["expected_deaths"]
    assert float(trace.final_energy) == pytest.approx(5.0 - 5 * 0.5)
    late = deaths.copy()
    late[9, 3], late[10, 3] = False, True  # one agent starving a step late fails the check
    assert not starvation_verdict(late, np.asarray(trace.counts), 10)["passed"]
    assert not starvation_verdict(deaths, np.array([1, 59, 0, 0]), 10)["passed"]  # a poison death fails it


def test_zero_food_means_every_death_is_starvation_on_schedule():
    # Energy 50 at 0.1 per step: in float32, 50 - 500 * 0.1 is still +1.9e-4, so an agent
    # starves on its 501st step; in 1002 steps each starves exactly twice. The omniscient
    # seeker never touches poison.
    res = survival_test(omniscient_seeker, "ground_truth", jax.random.key(0), runs=1, steps=1002, agents=6,
                        min_food=0, max_food=0)
    assert isinstance(res, SurvivalResult)
    assert res.poison_deaths == 0 and res.food_eaten == 0
    assert res.starvation_deaths == 12
    assert res.mean_survival_steps == pytest.approx(501.0)
