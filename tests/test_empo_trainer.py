"""EMPO phase 2 on the engine: the model-based targets are a fixed point of the exact oracle,
the tabular trainer converges to the oracle, the network trainer runs end to end through the
CLI (metrics, evaluation against the oracle, checkpoints, compare), the replay ring is cleared
at the ramp boundaries inside the trainer, resume equals an uninterrupted run, vmapped seeds
equal single runs, and bad configs fail with one line."""
from __future__ import annotations

import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.environments.multigrid_worlds import table_world
from rljax.experiments.empo.experiment import EXPERIMENT
from rljax.cli import experiment_main
from rljax.empo.compare import read_columns
from rljax.empo.schedules import stage_ends
from rljax.empo.trainer import EmpoTrainer, occupancy
from rljax.runner import Runner, load_run
from tests.bits import same
from tests.empo_reference import targets_at_the_oracle

WORLD = table_world("trivial")

# A tiny network run: N = 120 training steps of 10 environment steps each (stages: V_h^e to 12,
# Q_r to 24, the beta_r ramp to 48, then full training), 2 seeds in one program.
TINY = ["empo.num_training_steps=120", "runner.chunk_updates=20", "runner.checkpoint_every=40",
        "runner.eval_every=60", "runner.progress=false", "runner.num_seeds=2"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny run (what ``--preset smoke --set ...`` builds), its runner and final state;
    the runner's compiled chunk and evaluation are reused by the resume test."""
    out = str(tmp_path_factory.mktemp("empo") / "run")
    runner = Runner(EXPERIMENT, EXPERIMENT.make_config("smoke", overrides=TINY), out)
    runner.run()
    return out, runner, jax.device_get(runner.state)


@pytest.fixture(scope="module")
def cli_run(tiny):
    return tiny[0]


# ---------------------------------------------------------------------------------------
# Targets and the tabular trainer against the oracle
# ---------------------------------------------------------------------------------------
def test_model_based_targets_are_a_fixed_point_of_the_oracle():
    """With every table equal to the oracle's values and the full expectation over the human
    prior, the targets of every reachable (t, s) and goal reproduce the oracle (eqs. 4 and 6)."""
    out, star, ts, ss = targets_at_the_oracle(EmpoTrainer(WORLD, EXPERIMENT.make_config("trivial_table").empo, WORLD))
    np.testing.assert_allclose(out["v_h_e"], star.v_h_e[ts, ss], atol=1e-6)
    np.testing.assert_allclose(out["q_r"], star.q_r[ts, ss], rtol=1e-5)
    np.testing.assert_allclose(out["pi_r"], star.pi_r[ts, ss], atol=1e-5)


def test_tabular_trainer_converges_to_the_oracle():
    """The tabular ("direct") trainer with exact targets on the trivial map, 4000 training steps
    (40k environment steps, ~5 s): V_r, pi_r and X_h at the initial state and along the states
    the oracle's policy visits are within tolerance of the oracle (beta_r = 10, V_r* = -24.75).

    Tolerances: 1% of |V_r| at the initial state (0.25) and 0.1 on average over the visited
    states, 0.03 / 0.02 total variation for pi_r, 0.01 / 0.005 for X_h. They leave room for
    entries the data visits rarely (their errors shrink as 1/visits) and fail for any error in
    the targets: one wrong discount, goal or outcome probability moves V_r by whole units."""
    cfg = EXPERIMENT.make_config("trivial_table", overrides=["empo.num_training_steps=4000",
                                                             "empo.epsilon_r_decay_steps=2000"]).empo
    tr = EmpoTrainer(WORLD, cfg, WORLD)
    h = tr.hparams(None)
    st = jax.jit(tr.init_state)(jax.random.PRNGKey(0), None, h)
    st, _ = jax.jit(lambda s: jax.lax.scan(lambda c, _: tr.update(c), s, None, length=tr.num_updates))(st)
    assert int(st.train_step) == 4000
    learned, star = tr.learned(st.params, h), tr.oracle(h)
    occ = occupancy(WORLD, star.pi_r, tr.mu_h_table())

    def visited(err):  # mean error weighted by the oracle policy's occupancy of (t, s)
        return float((err.reshape(err.shape[:2] + (-1,)).mean(-1) * occ).sum() / occ.sum())

    T = WORLD.horizon
    tv = 0.5 * jnp.abs(learned.pi_r - star.pi_r).sum(-1)
    assert abs(float(learned.v_r[0, 0] - star.v_r[0, 0])) < 0.25
    assert float(tv[0, 0]) < 0.03
    assert abs(float(learned.x_h[0, 0, 0] - star.x_h[0, 0, 0])) < 0.01
    assert visited(jnp.abs(learned.v_r[:T] - star.v_r[:T])) < 0.1
    assert visited(tv) < 0.02
    assert visited(jnp.abs(learned.x_h - star.x_h)) < 0.005
    # The evaluation's return is the exact objective the learned policy attains; near-optimal.
    ev = jax.jit(lambda s: tr.evaluation(s, jax.random.split(jax.random.PRNGKey(1), 4), T))(st)
    assert abs(float(ev["return"][0]) - float(star.v_r[0, 0])) < 0.25
    assert float(ev["v_r_error_visited"][0]) < 0.1


# ---------------------------------------------------------------------------------------
# The network trainer through the CLI
# ---------------------------------------------------------------------------------------
def test_run_logs_stages_beta_and_learning_rates(cli_run):
    files = set(os.listdir(cli_run))
    assert {"metrics.csv", "eval.csv", "summary.json", "run.json", "metrics_seed0.csv", "metrics_seed1.csv"} <= files
    m = read_columns(os.path.join(cli_run, "metrics.csv"))
    for col in ("stage", "active_networks", "beta_r", "lr_v_h_e", "lr_q_r", "epsilon_r", "epsilon_h", "replay_size",
                "loss_v_h_e", "loss_q_r", "train_step", "trained_steps"):
        assert col in m, col
    seed0 = m["member"] == 0
    stage, beta, t = m["stage"][seed0], m["beta_r"][seed0], m["train_step"][seed0]
    np.testing.assert_array_equal(t, np.arange(1, 121))  # one training step per update
    # Stage of the update's last training step (t - 1): 0 until 12, 3 until 24, 5 until 48, then 6.
    np.testing.assert_array_equal(stage, np.select([t - 1 < 12, t - 1 < 24, t - 1 < 48], [0, 3, 5], 6))
    assert beta[t - 1 < 24].max() == 0.0 and beta[-1] == 1000.0 and np.all(np.diff(beta) >= 0)
    np.testing.assert_allclose(m["lr_v_h_e"][seed0][t < 84], 1e-2, rtol=1e-6)  # constant for 70%, then 1/t
    assert m["lr_v_h_e"][seed0][-1] == pytest.approx(1e-2 * 84 / 119, rel=1e-5)
    e = read_columns(os.path.join(cli_run, "eval.csv"))
    assert list(e["update"][e["member"] == 0]) == [60, 120]
    for col in ("eval_return", "eval_realised_return", "eval_oracle_v_r", "eval_v_r_error", "eval_pi_r_error",
                "eval_x_h_error", "eval_v_r_error_visited"):
        assert col in e and np.all(np.isfinite(e[col])), col
    assert e["eval_oracle_v_r"][0] == pytest.approx(-21.987907, abs=1e-4)  # beta_r = 1000 (the demo's)
    summary = json.load(open(os.path.join(cli_run, "summary.json")))
    assert [x["name"] for x in summary["members"]] == ["seed0", "seed1"]
    assert summary["env_steps_per_member"] == 1200
    assert os.listdir(os.path.join(cli_run, "checkpoints", "latest"))


def test_replay_is_cleared_at_the_ramp_boundaries(cli_run):
    """The ring is cleared inside the training step that enters the ramp (t = 24) and the one
    that leaves it (t = 48): it then holds nothing, refills by 10 transitions per update and
    trains again once it holds a batch (16)."""
    m = read_columns(os.path.join(cli_run, "metrics.csv"))
    seed0 = m["member"] == 0
    size, trained = m["replay_size"][seed0], m["trained_steps"][seed0]
    ends = stage_ends(EXPERIMENT.make_config("smoke", overrides=TINY).empo)
    assert (ends.v_r, ends.ramp) == (24, 48)
    # update u runs training step u - 1; sizes after each update:
    expect = np.minimum(10 * np.arange(1, 121), 2000)
    expect[24:] = 10 * np.arange(0, 96)  # cleared at update 25 (step 24)
    expect[48:] = 10 * np.arange(0, 72)  # and at update 49 (step 48)
    np.testing.assert_array_equal(size, expect)
    np.testing.assert_array_equal(trained, (size >= 16).astype(trained.dtype))


def test_load_gives_the_robot_policy_the_evaluation_scores_and_render_draws_it(tiny, tmp_path, capsys):
    """rljax.load on an EMPO run: the member's robot, whose pi_r at every enumerated (t, s) is
    the learned policy the run's evaluation scores (EmpoTrainer.learned); rljax render plays it
    with the humans on their prior and draws the multigrid."""
    import rljax
    from PIL import Image

    out, runner, state = tiny
    policy, world, hparams = rljax.load(out, member="seed1")
    assert type(policy).__name__ == "EmpoRobotPolicy" and policy.info["checkpoint"] == {"which": "latest", "step": 120}
    member = jax.tree.map(lambda x: x[1], state)
    learned = runner.algorithm.learned(member.params, member.hparams)
    ws = world.all_situations()  # [T, S]
    np.testing.assert_allclose(np.asarray(jax.jit(policy.probabilities)(ws)), np.asarray(learned.pi_r), atol=1e-6)
    greedy = np.asarray(policy(ws, jax.random.key(0), deterministic=True))
    np.testing.assert_array_equal(greedy, np.asarray(learned.pi_r).argmax(-1))
    from rljax.cli import main

    gif = str(tmp_path / "robot.gif")
    assert main(["render", out, "--member", "seed1", "--out", gif]) == 0
    assert Image.open(gif).size == (24 * 6, 24 * 4)  # the trivial map: 6 x 4 cells
    # the map's 10-step horizon, 11 situations drawn (identical frames may merge in the GIF)
    assert "seed1 (checkpoint latest/120): 10 steps; 21 frames" in capsys.readouterr().out


def test_compare_command_writes_tables_json_and_plots(cli_run, tmp_path, capsys):
    out = str(tmp_path / "compare")
    assert experiment_main("empo", ["compare", cli_run, "--out", out]) == 0
    printed = capsys.readouterr().out
    for label in ("V_r (absolute error)", "pi_r (total variation)", "X_h", "V_h^e", "Q_r", "seed0", "seed1", "initial state"):
        assert label in printed
    report = json.load(open(os.path.join(out, "compare.json")))
    assert [m["name"] for m in report["members"]] == ["seed0", "seed1"]
    assert report["reachable_pairs"] == 892
    for m in report["members"]:
        assert m["train_step"] == 120
        assert m["oracle_initial"]["v_r"] == pytest.approx(-21.987907, abs=1e-4)
        for q in ("v_r", "pi_r", "x_h", "v_h_e", "q_r"):
            e = m["errors"][q]
            assert 0 <= e["visited"] <= e["max"] and 0 <= e["mean"] <= e["max"]
    assert {"compare.png", "curves.png", "compare.json"} <= set(os.listdir(out))


def test_resume_after_interruption_equals_the_uninterrupted_run(tiny, tmp_path):
    class Interrupted(Exception):
        pass

    def stop(ctx):
        if ctx.update >= 60:  # after the checkpoint at 40 and the evaluation at 60
            raise Interrupted

    _, shared, straight = tiny
    out = str(tmp_path / "interrupted")
    # A runner of the same config, given the tiny run's compiled programs (compiling them again
    # would double this test's time; the programs depend only on the config).
    runner = Runner(EXPERIMENT, EXPERIMENT.make_config("smoke", overrides=TINY), out, on_chunk_end=[stop])
    runner._chunk_fns, runner._eval_fn = dict(shared._chunk_fns), shared._eval_fn
    with pytest.raises(Interrupted):
        runner.run()
    runner.on_chunk_end.clear()
    runner.resume = True  # the same compiled programs continue from the latest checkpoint on disk
    summary = runner.run()
    assert summary["resumed_from_update"] == 40
    assert same(runner.state, straight)  # exact on CPU (tests/bits.py)
    _, restored = load_run(out)
    assert same(restored, straight)
    rows = read_columns(os.path.join(out, "metrics.csv"))
    assert list(rows["update"][rows["member"] == 0]) == list(range(1, 121))  # each update once


def test_vmapped_seeds_equal_single_runs(tiny, tmp_path):
    single = Runner(EXPERIMENT, EXPERIMENT.make_config("smoke", overrides=TINY + ["runner.seeds=[1]"]), str(tmp_path))
    state, _ = single.train_compiled()
    both = tiny[2]
    one = jax.tree.map(lambda x: x[0], state)
    member1 = jax.tree.map(lambda x: x[1], both)
    leaves = zip(jax.tree.leaves(one.params), jax.tree.leaves(member1.params))
    for a, b in leaves:
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-4)
    assert int(one.replay.size) == int(member1.replay.size)
    np.testing.assert_array_equal(one.actor.goals, member1.actor.goals)
    # and the two seeds really differ
    assert not np.allclose(jax.tree.leaves(both.params)[0][0], jax.tree.leaves(both.params)[0][1])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "empo.lr_q_r=-1"], "empo.lr_q_r"),
        (["--set", "empo.warmup_q_r_fraction=1.5"], "empo.warmup_q_r_fraction"),
        (["--set", "empo.no_such_key=1"], "empo.no_such_key"),
        (["--set", "env.map=huge"], "env.map"),
        (["--set", "empo.representation=table", "--set", "env.map=ensemble"], "empo.representation"),
        (["--set", "empo.v_h_e_all_goals=true"], "empo.v_h_e_all_goals"),
        (["--set", "empo.training_steps_per_env_step=0.3", "--set", "empo.env_steps_per_update=5"], "env_steps_per_update"),
        (["--vary", "empo.batch_size=8,16"], "empo.batch_size"),
        (["oracle", "ensemble"], "enumerable"),
        (["compare", "/nonexistent/run"], "not found"),
    ],
)
def test_bad_input_is_one_line_naming_the_key(args, message, capsys):
    assert experiment_main("empo", args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_oracle_command_prints_the_initial_state(capsys):
    assert experiment_main("empo", ["oracle", "trivial", "--beta-r", "10"]) == 0
    out = capsys.readouterr().out
    # the values the oracle benchmark prints (float32 summation order may move the last digit)
    number = lambda label: float(re.search(re.escape(label) + r"\s*=?\s*(-?[0-9.]+)", out).group(1))  # noqa: E731
    assert number("V_r =") == pytest.approx(-24.7486, abs=1e-4)
    assert number("forward=") == pytest.approx(0.520817, abs=1e-5)
    assert number("(2, 1)=") == pytest.approx(0.916927, abs=1e-5)
