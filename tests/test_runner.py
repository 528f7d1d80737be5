"""Runner: determinism, chunked == compiled, vmapped seeds == single runs, no retracing,
outputs on disk, many-seed initialisation."""
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.experiments.cartpole.experiment import EXPERIMENT
from rljax.runner import Runner
from tests.bits import differs, same

TINY = ["ppo.total_timesteps=6144", "runner.chunk_updates=4", "runner.progress=false", "runner.eval_episodes=2",
        "runner.eval_max_steps=50"]


def tiny(seeds=1, extra=()):
    return EXPERIMENT.make_config(overrides=TINY + [f"runner.num_seeds={seeds}", *extra])


def leaves_equal(a, b):
    return same(a, b)  # exact on CPU, float tolerance on GPU/TPU (tests/bits.py)


@pytest.fixture(scope="module")
def two_seed_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run2")
    runner = Runner(EXPERIMENT, tiny(2), str(out))
    summary = runner.run()
    return runner, summary, out


def test_same_key_twice_is_bit_identical(two_seed_run, tmp_path):
    runner, _, _ = two_seed_run
    again = Runner(EXPERIMENT, tiny(2), str(tmp_path))
    again.run()
    assert leaves_equal(runner.state, again.state)


def test_chunked_runner_equals_fully_compiled_run(two_seed_run):
    runner, _, _ = two_seed_run
    compiled, _ = runner.train_compiled()
    assert leaves_equal(runner.state, compiled)


def test_vmapped_seed_matches_single_run(two_seed_run, tmp_path):
    runner, _, _ = two_seed_run
    single = Runner(EXPERIMENT, tiny(1, ["runner.seed=1"]), str(tmp_path))
    single.run()
    batched_seed1 = jax.tree.map(lambda x: x[1], runner.state.params)
    only = jax.tree.map(lambda x: x[0], single.state.params)
    chex.assert_trees_all_close(batched_seed1, only, atol=1e-5, rtol=1e-4)
    # and the two seeds really differ
    assert not leaves_equal(jax.tree.map(lambda x: x[0], runner.state.params), batched_seed1)


def test_run_directory_contents(two_seed_run):
    _, summary, out = two_seed_run
    data = json.loads((out / "summary.json").read_text())
    assert [m["seed"] for m in data["members"]] == [0, 1]
    for m in data["members"]:
        assert np.isfinite(m["eval_return"]) and m["env_steps"] == 6144 - 6144 % 512
        assert m["steps_per_second"] > 0
    for seed in (0, 1):
        rows = (out / f"metrics_seed{seed}.csv").read_text().strip().splitlines()
        assert rows[0].startswith("update,env_steps,") and len(rows) == 1 + 12
    meta = json.loads((out / "run.json").read_text())
    assert meta["config"]["ppo"]["total_timesteps"] == 6144 and meta["jax_version"] == jax.__version__
    assert (out / "checkpoints" / "latest").is_dir() and (out / "checkpoints" / "best").is_dir()


def test_update_is_not_retraced(two_seed_run):
    runner, _, _ = two_seed_run
    trainer = runner.algorithm
    traced = chex.assert_max_traces(trainer.update, n=1)
    step = jax.jit(jax.vmap(traced))
    ts = runner.init_state()
    for _ in range(3):
        ts, _ = step(ts)
    chex.clear_trace_counter()


def test_hyperparameter_axis_changes_only_its_member(tmp_path):
    r = Runner(EXPERIMENT, tiny(1), str(tmp_path), grid=[{"lr": 2.5e-4}, {"lr": 0.0}])
    r.run()
    init_keys, init_params = r.init_params()
    frozen = jax.tree.map(lambda x: x[1], r.state.params)
    start = jax.tree.map(lambda x: x[1], init_params)
    assert leaves_equal(frozen, start)  # lr = 0: parameters never move
    assert not leaves_equal(jax.tree.map(lambda x: x[0], r.state.params), jax.tree.map(lambda x: x[0], init_params))


@pytest.mark.timeout(300)
def test_initialising_many_seeds_completes(tmp_path):
    # jit(vmap(init)) with orthogonal init once hung XLA's CPU pool; the runner initialises
    # parameters one member at a time. 64 members must finish well inside the timeout.
    r = Runner(EXPERIMENT, tiny(64), str(tmp_path))
    ts = r.init_state()
    assert jax.tree.leaves(ts.params)[0].shape[0] == 64
    first = jax.tree.leaves(ts.params)[1]
    assert differs(first[0], first[1])


def test_member_loop_map_equals_single_runs_and_vmap(two_seed_run, tmp_path):
    """``runner.member_loop=map`` runs members one after another in the same program: each
    member is bit-identical to its single run, and agrees with the batched run to float
    tolerance."""
    runner, _, _ = two_seed_run
    mapped = Runner(EXPERIMENT, tiny(2, ["runner.member_loop=map"]), str(tmp_path / "map"))
    mapped.run()
    single = Runner(EXPERIMENT, tiny(1, ["runner.seed=1", "runner.member_loop=map"]), str(tmp_path / "one"))
    single.run()
    assert leaves_equal(jax.tree.map(lambda x: x[1], mapped.state.params), jax.tree.map(lambda x: x[0], single.state.params))
    chex.assert_trees_all_close(mapped.state.params, runner.state.params, atol=1e-4, rtol=1e-3)


def test_member_loop_rejects_unknown_value():
    from rljax.errors import ConfigError

    with pytest.raises(ConfigError, match="runner.member_loop"):
        tiny(1, ["runner.member_loop=loop"])


def test_rare_branches_stay_branches_under_the_member_vmap():
    """A batched predicate turns ``lax.cond`` into a select that runs the reset on every
    step; reduced over the named member axis it stays a branch."""
    from rljax.environments.cartpole import make_cartpole
    from rljax.envs.vec_env import VecEnv

    env = make_cartpole()
    params = env.default_params()

    def primitives(member_axis):
        venv = VecEnv(env, 4, member_axis=member_axis)
        obs, state = jax.vmap(venv.reset, in_axes=(0, None))(jax.random.split(jax.random.key(0), 2), params)
        step = lambda k, s: venv.step(k, s, jnp.zeros(4, jnp.int32), params)
        jaxpr = jax.make_jaxpr(jax.vmap(step, axis_name="members"))(jax.random.split(jax.random.key(1), 2), state)
        return {e.primitive.name for e in jaxpr.jaxpr.eqns}

    assert "cond" in primitives("members")
    assert "cond" not in primitives(None)
