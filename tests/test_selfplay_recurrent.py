"""A recurrent (GRU) policy in the pursuit self-play protocol (``network.recurrent``).

One tiny protocol of two seeds vmapped through the runner (cold start and two phases), shared
by the module: it runs, the learner's carry starts over at every stage start, the opponent's
carry in the view's state starts over at every episode start, and the evaluation carries both
agents' memories (its result differs from the same parameters with the carry zeroed every
step). Then bad options fail naming their key.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.envs.vec_env import VecEnv
from rljax.environments.pursuit_evasion import EVADER, PURSUER
from rljax.errors import ConfigError
from rljax.experiments.pursuit.experiment import EXPERIMENT
from rljax.runner import Runner
from rljax.selfplay.evaluation import MemoryAct, head_to_head
from rljax.selfplay.protocol import COLD, DONE, PHASE
from rljax.selfplay.stages import protocol_sampler
from rljax.selfplay.view import OpponentMemory
from tests.test_selfplay import TINY

CELL = 8
RECURRENT = ["network.recurrent=true", f"network.cell_size={CELL}", "env.history=1", "protocol.max_phases=2",
             "runner.checkpoint_every=1000"]


def _cfg(*extra):
    return EXPERIMENT.make_config(overrides=TINY + RECURRENT + list(extra))


def _member(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    trace = []

    def record(ctx):  # chunk_updates=1: the state after every update
        s = ctx.state
        trace.append({"step": np.asarray(s.protocol.step), "stage": np.asarray(s.protocol.stage),
                      "carry": np.asarray(s.carry)})

    runner = Runner(EXPERIMENT, _cfg("runner.num_seeds=2"), str(tmp_path_factory.mktemp("selfplay_rnn") / "run"),
                    on_chunk_end=[record])
    runner.run()
    return runner, trace


def test_recurrent_protocol_runs_cold_start_and_two_phases(run):
    runner, trace = run
    s = runner.state
    assert runner.algorithm.policy.recurrent
    assert runner.algorithm.env.observation_shape() == (runner.algorithm.env.frame_dim,)  # env.history=1
    assert np.asarray(s.carry).shape == (2, 8, CELL)  # [members, envs, cell]
    stages = np.stack([t["stage"] for t in trace])
    for member in range(2):
        assert {COLD, PHASE}.issubset(set(stages[:, member].astype(int).tolist()))
    assert (np.asarray(s.protocol.stage) == DONE).all()
    assert (np.asarray(s.protocol.phases_done) == 2).all()
    assert (np.asarray(s.evaluation.count) >= 3).all()  # after S0 and each phase
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(s.params))
    # the two seeds differ (the vmap did not collapse them)
    assert not np.allclose(np.asarray(s.carry[0]), np.asarray(s.carry[1]))


def test_learner_carry_starts_over_with_every_stage(run):
    """After an update that began a stage (its environments were reset: ``protocol.step == 0``)
    the learner's carry is the initial one; within a stage it is not."""
    _, trace = run
    began = within = 0
    for t in trace:
        for m in range(2):
            norm = np.abs(t["carry"][m]).max()
            if t["stage"][m] == DONE:
                continue
            if t["step"][m] == 0:
                assert norm == 0.0
                began += 1
            else:
                assert norm > 0.0
                within += 1
    assert began >= 2 * 2 and within > 0  # S0 -> phase 1 -> phase 2, each seed


@pytest.fixture(scope="module")
def arena_run(run):
    """The protocol environment PPO steps (member 0's last stage, the pursuer learning) against
    lanes of member 0's trained evader, stepped 60 times with a fixed learner action; returns
    the opponent's carries ``[T + 1, N, C]`` and the ``done`` flags ``[T, N]``."""
    runner, _ = run
    tr = runner.algorithm
    s = _member(runner.state, 0)
    g, n = tr.num_lanes, tr.ppo.num_envs
    lanes = jax.tree.map(lambda x: jnp.broadcast_to(x[EVADER], (g,) + x.shape[1:]), s.params)
    venv = VecEnv(tr._env(jnp.asarray(PURSUER), False, (lanes, jnp.zeros((g,), bool))), n, protocol_sampler(g))

    @jax.jit
    def play(key):
        k_reset, k_run = jax.random.split(key)
        _, vs = venv.reset(k_reset, s.env_params)

        def step(vs, k):
            _, vs, _, term, trunc, _ = venv.step(k, vs, jnp.full((n, 2), 0.5), s.env_params)
            return vs, (vs.env_state.carry, term | trunc)

        _, (carries, done) = jax.lax.scan(step, vs, jax.random.split(k_run, 60))
        return vs.env_state, carries, done

    state0, carries, done = play(jax.random.key(3))
    return state0, np.asarray(carries), np.asarray(done)


def test_opponent_carry_lives_in_the_view_state_and_starts_over_at_every_episode(arena_run):
    state0, carries, done = arena_run
    assert isinstance(state0, OpponentMemory) and state0.carry.shape == (8, CELL)
    assert np.abs(np.asarray(state0.carry)).max() == 0.0  # reset: the initial carry
    norms = np.abs(carries).max(-1)  # [T, N]
    assert done.any() and (~done).any()  # 40-step episodes within 60 steps
    # where an episode ended the auto-reset gave the next one the initial carry; elsewhere the
    # opponent's memory moved
    assert (norms[done] == 0.0).all()
    assert (norms[~done] > 0.0).all()


def test_evaluation_carries_both_memories(run):
    """The head-to-head with both agents' carries differs from the same parameters with the
    carries zeroed before every step (the memory matters and the evaluation keeps it)."""
    runner, _ = run
    tr = runner.algorithm
    s = _member(runner.state, 0)
    arena = tr.task_params(s.task, s.curriculum)
    keys = jax.random.split(jax.random.key(5), 4)

    def forgetful(act):
        return MemoryAct(lambda k, o, c: act.fn(k, o, jax.tree.map(jnp.zeros_like, c)), act.init)

    @jax.jit
    def both():
        acts = [tr.agent_act(jax.tree.map(lambda x: x[r], s.params), arena) for r in (PURSUER, EVADER)]
        kept = head_to_head(tr.game, arena, keys, 40, *acts)
        lost = head_to_head(tr.game, arena, keys, 40, *[forgetful(a) for a in acts])
        return kept, lost, tr.evaluation(s, keys, 40)

    kept, lost, ev = both()
    assert isinstance(tr.agent_act(jax.tree.map(lambda x: x[0], s.params), arena), MemoryAct)
    np.testing.assert_array_equal(np.asarray(ev["return"]), np.asarray(kept["return"]))  # the trainer's evaluation
    # the returns are dominated by the timeout's -100; the shaping terms still tell the runs apart
    # (an evaluation that dropped the carry would give these bitwise equal)
    assert not np.array_equal(np.asarray(kept["return"]), np.asarray(lost["return"]))


@pytest.mark.parametrize("overrides, key", [
    (["network.cell_size=0"], "network.cell_size"),
    (["network.encoder=history"], "network.encoder"),
    (["ppo.num_minibatches=16"], "ppo.num_minibatches"),  # divides the batch (128), not the 8 envs
    (["selfplay.ewc=true"], "selfplay.ewc"),
    (["selfplay.rnd=true"], "selfplay.rnd"),
    (["env.history=0"], "env.history"),
])
def test_bad_recurrent_options_name_their_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        _cfg(*overrides)


def test_feedforward_default_has_no_carry():
    cfg = EXPERIMENT.make_config(overrides=TINY)
    assert not cfg.network.recurrent and cfg.env.history == 10
    setup = EXPERIMENT.build(cfg)
    tr, task = setup.algorithm, setup.variants[0][1]
    assert not tr.policy.recurrent and not tr.view.recurrent
    state = jax.eval_shape(lambda: tr.init_state(jax.random.key(0), task, tr.hparams(task)))
    assert state.carry == () and not isinstance(state.env_state.env_state, OpponentMemory)
