"""Self-play is generic: a second two-player game, 1-D tag on a line, trains through the same
:class:`~rljax.selfplay.trainer.SelfPlayTrainer` as the pursuit arena (no cold start, no
curriculum), and the AgentView runs its opponent before the step, never from the learner's
action of the same frame."""
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rljax.envs.multi_agent import AgentView, AgentViewParams, MultiAgentEnvironment
from rljax.envs.spaces import Discrete
from rljax.networks.mlp import ActorCriticMLP
from rljax.ppo import PPOConfig
from rljax.selfplay.curriculum import CurriculumConfig
from rljax.selfplay.evaluation import head_to_head, network_act, random_batch_act
from rljax.selfplay.game import TwoPlayerGame
from rljax.selfplay.health import HealthConfig
from rljax.selfplay.protocol import DONE, PURSUER, ProtocolConfig
from rljax.selfplay.trainer import SelfPlayConfig, SelfPlayTask, SelfPlayTrainer, row_of

HALF = 5.0  # the line is [-5, 5]


@struct.dataclass
class TagParams:
    min_init_d: jax.Array
    max_init_d: jax.Array
    max_steps: jax.Array


@struct.dataclass
class TagState:
    x: jax.Array  # [2] positions (chaser, runner)
    t: jax.Array


class LineTag(MultiAgentEnvironment):
    """Chaser (0) and runner (1) on a line, actions left/stay/right by one unit; a capture
    (distance <= 0.5) terminates, the time limit truncates. Zero-sum closing-speed reward."""

    name, num_agents = "line_tag", 2

    def default_params(self):
        return TagParams(jnp.float32(2.0), jnp.float32(4.0), jnp.int32(20))

    def reset_state(self, key, p):
        k_x, k_d, k_s = jax.random.split(key, 3)
        x0 = jax.random.uniform(k_x, (), minval=-2.0, maxval=2.0)
        d = jax.random.uniform(k_d, (), minval=p.min_init_d, maxval=p.max_init_d)
        x1 = jnp.clip(x0 + jnp.where(jax.random.bernoulli(k_s), d, -d), -HALF, HALF)
        return TagState(jnp.stack([x0, x1]).astype(jnp.float32), jnp.int32(0))

    def transition(self, key, s, actions, p):
        x = jnp.clip(s.x + (actions.astype(jnp.float32) - 1.0), -HALF, HALF)
        d_prev, d = jnp.abs(s.x[0] - s.x[1]), jnp.abs(x[0] - x[1])
        captured = d <= 0.5
        timeout = (s.t + 1 >= p.max_steps) & ~captured
        r = (d_prev - d) / HALF + captured.astype(jnp.float32)
        info = {"ep_captured": captured.astype(jnp.float32)}
        return TagState(x, s.t + 1), jnp.stack([r, -r]), captured, timeout, info

    def observe(self, s, p):
        rel = (s.x[::-1] - s.x) / HALF
        return jnp.stack([s.x / HALF, s.x[::-1] / HALF, rel], axis=-1)

    def observation_shape(self, params=None):
        return (3,)

    def action_space(self, params, agent=0):
        return Discrete(3)

    def max_steps(self, params):
        return 20

    def info_keys(self):
        return ("ep_captured",)


class LineTagGame(TwoPlayerGame):
    env = LineTag()

    def curriculum_params(self, p, min_d, max_d, n_obstacles):
        return p.replace(min_init_d=min_d, max_init_d=max_d)

    def random_action(self, key, params, role):
        return jax.random.randint(key, (), 0, 3)


def test_agent_view_acts_for_the_others_before_the_step():
    """The opponent's action is a function of the state only: the learner's action of the same
    frame does not change it, and the view equals the multi-agent step with that action."""
    env = LineTag()
    seen = []

    def others(pp, key, state, env_params):  # mirrors the learner's position: moves toward it
        a = jnp.where(state.x[0] > state.x[1], 2, 0).astype(jnp.int32)
        return jnp.stack([a, a]), state

    view = AgentView(env, 1, others)
    params = AgentViewParams(env=env.default_params(), others=())
    obs, s = view.reset(jax.random.key(0), params)
    for a in (0, 1, 2):
        o, s2, r, term, trunc, _ = view.step(jax.random.key(1), s, jnp.int32(a), params)
        joint, _ = view.joint_actions(jax.random.key(2), s, jnp.int32(a), params)
        seen.append(int(joint[0]))
        o_ma, s_ma, r_ma, *_ = env.step(jax.random.key(1), s, joint, params.env)
        np.testing.assert_array_equal(o, o_ma[1])
        assert float(r) == float(r_ma[1]) and int(joint[1]) == a
    assert len(set(seen)) == 1
    np.testing.assert_array_equal(obs, env.observe(s, params.env)[1])


def test_a_second_game_trains_through_the_generic_self_play_trainer():
    game = LineTagGame()
    ppo = PPOConfig(num_envs=16, num_steps=24, num_epochs=4, num_minibatches=4, lr=3e-3, anneal_lr=False, ent_coef=0.01)
    trainer = SelfPlayTrainer(
        game, ActorCriticMLP(Discrete(3), hidden=(32, 32)), ppo,
        ProtocolConfig(max_phases=2, timesteps_per_phase=384 * 24, cold_start_timesteps=0, phase_warmup=False,
                       warm_start_evader=False, eta=0.0),
        CurriculumConfig(kind="none"), HealthConfig(enabled=False),
        SelfPlayConfig(eval_episodes=64, pool_lanes=2, pool_size=4))
    task = SelfPlayTask(env=game.env.default_params())
    s0 = trainer.init_state(jax.random.key(0), task, trainer.hparams(task))

    def run(s):
        return jax.lax.scan(lambda c, _: trainer.update(c), s, None, length=trainer.num_updates)

    s, metrics = jax.jit(run)(s0)
    assert int(s.protocol.stage) == DONE and int(s.protocol.phases_done) == 2
    assert int(s.pool.count[0]) == 1 and int(s.pool.count[1]) == 1  # one milestone per role
    assert int(s.evaluation.count) == 2 and np.isfinite(float(s.evaluation.ne_gap))

    # The pursuer trained in phase 1 chases: against the random runner it captures nearly always
    # within the time limit; the untrained (greedy) pursuer catches it only when the random walk
    # runs into it (0.64 measured).
    params = game.env.default_params()
    keys = jax.random.split(jax.random.key(7), 200)
    space = game.env.action_space(params)

    def capture_rate(pursuer):
        act = network_act(trainer.policy_apply, space, pursuer)
        out = head_to_head(game, params, keys, 20, act, random_batch_act(game, params, 1))
        return float(out["captured"].mean())

    before, after = capture_rate(row_of(s0.params, PURSUER)), capture_rate(row_of(s.params, PURSUER))
    assert after >= 0.95 and after - before >= 0.25, (before, after)
