"""Exact rules of the EMPO multigrid subset: hand-worked pushes and conflicts, the trivial map's
256 reachable configurations, the transition tensor against an independent Python stepper."""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.environments.multigrid import (
    BLOCK,
    DIR_TO_VEC,
    EMPTY,
    FORWARD,
    LEFT,
    RIGHT,
    ROCK,
    STILL,
    EnsembleConfig,
    MultiGrid,
    achieved_table,
    enumerate_states,
    num_reachable_pairs,
    parse_map,
    random_ensemble_map,
    small_rectangle_goals,
    small_task,
    state_index,
    transition_table,
    transition_tensor,
    trivial_task,
)

# One 2-agent structure (robot = agent 0, human = agent 1) on a 7x5 grid; the layouts below
# differ only in params (walls) and state, so every test shares one compiled program.
ENV = MultiGrid(5, 7, ("robot", "human"))
_succ = jax.jit(ENV.successors)
_exec = jax.jit(ENV.execute)
_step = jax.jit(ENV.step)
_index = jax.jit(state_index)

TRIVIAL = trivial_task()
SPACE = enumerate_states(TRIVIAL.env, TRIVIAL.params, TRIVIAL.initial_state)
TABLE = transition_table(TRIVIAL.env, TRIVIAL.params, SPACE)
P = transition_tensor(TABLE)


def layout(text: str, dirs=(0, 0)):
    """Params and state of a 7x5 map whose first agent (row-major) is the robot."""
    env, params, state = parse_map(text, 10)
    assert (env.height, env.width, env.roles) == (ENV.height, ENV.width, ENV.roles)
    return params, state.replace(agent_dir=jnp.asarray(dirs, jnp.int32))


def outcomes(params, state, actions):
    """{(robot (x,y,dir), human (x,y,dir), objects bytes): probability}, duplicates merged."""
    probs, nxt = _succ(state, ENV.joint_action(jnp.asarray(actions)), params)
    out: dict = {}
    for k in range(ENV.num_outcomes):
        key = tuple(
            (int(nxt.agent_pos[k, i, 0]), int(nxt.agent_pos[k, i, 1]), int(nxt.agent_dir[k, i])) for i in range(2)
        ) + (np.asarray(nxt.objects[k]).tobytes(),)
        out[key] = out.get(key, 0.0) + float(probs[k])
    return out


def objects_of(state):
    obj = np.asarray(state.objects)
    return {(int(x), int(y)): int(obj[y, x]) for y, x in zip(*np.nonzero(obj))}


# ---------------------------------------------------------------------------------------
# Maps
# ---------------------------------------------------------------------------------------
def test_trivial_and_small_maps_are_parsed_exactly():
    t = TRIVIAL
    walls = np.ones((4, 6), bool)
    walls[1, 1:5] = False
    walls[2, 2] = False
    np.testing.assert_array_equal(t.params.walls, walls)
    assert t.env.roles == ("robot", "human") and int(t.params.max_steps) == 10
    np.testing.assert_array_equal(t.initial_state.agent_pos, [[1, 1], [2, 2]])
    np.testing.assert_array_equal(t.initial_state.agent_dir, [0, 0])
    assert objects_of(t.initial_state) == {(2, 1): ROCK}
    # Goals (2,1), (1,1), (3,1), (2,2), (1,2): uniform, weight 1.
    cells = np.asarray(t.goals.cells)[0]
    assert [tuple(map(int, np.argwhere(c)[0][::-1])) for c in cells] == [(2, 1), (1, 1), (3, 1), (2, 2), (1, 2)]
    np.testing.assert_allclose(t.goals.probs, [[0.2] * 5])
    np.testing.assert_allclose(t.goals.weights, [[1.0] * 5])

    s = small_task()
    assert (s.env.height, s.env.width, int(s.params.max_steps)) == (6, 6, 15)
    np.testing.assert_array_equal(s.initial_state.agent_pos, [[4, 1], [2, 4]])
    assert objects_of(s.initial_state) == {(2, 3): ROCK}
    np.testing.assert_allclose(s.goals.probs, [[0.4, 0.3, 0.2, 0.1]], rtol=1e-6)
    cells = np.asarray(s.goals.cells)[0]
    assert [tuple(map(int, np.argwhere(c)[0][::-1])) for c in cells] == [(2, 1), (2, 2), (3, 2), (4, 2)]


def test_parse_map_rejects_cells_outside_the_subset():
    with pytest.raises(ValueError, match="'Cr'"):
        parse_map("We We We\nWe Cr We\nWe We We", 5)
    with pytest.raises(ValueError, match="odd length"):
        parse_map("We We W\nWe .. We", 5)
    with pytest.raises(ValueError, match="max_steps"):
        parse_map("We We We\nWe Ay We\nWe We We", 0)


# ---------------------------------------------------------------------------------------
# Hand-worked rules
# ---------------------------------------------------------------------------------------
def test_robot_pushes_rock_into_empty_cell():
    params, st = layout("""
        We We We We We We We
        We Ae Ro .. .. .. We
        We We We We We We We
        We We We We We Ay We
        We We We We We We We""")
    out = outcomes(params, st, [FORWARD, STILL])
    assert len(out) == 1 and list(out.values()) == [1.0]
    (robot, human, _), = out
    assert robot == (2, 1, 0) and human == (5, 3, 0)
    probs, nxt = _succ(st, ENV.joint_action(jnp.asarray([FORWARD, STILL])), params)
    assert objects_of(jax.tree.map(lambda x: x[0], nxt)) == {(3, 1): ROCK}
    assert int(nxt.step[0]) == 1


def test_chain_of_rock_and_block_is_pushed_together():
    params, st = layout("""
        We We We We We We We
        We Ae Ro Bl .. .. We
        We We We We We We We
        We We We We We Ay We
        We We We We We We We""")
    _, nxt = _succ(st, ENV.joint_action(jnp.asarray([FORWARD, STILL])), params)
    s0 = jax.tree.map(lambda x: x[0], nxt)
    assert objects_of(s0) == {(3, 1): ROCK, (4, 1): BLOCK}
    assert tuple(np.asarray(s0.agent_pos[0])) == (2, 1)


@pytest.mark.parametrize("row", ["We Ae Ro We .. .. We", "We Ae Ro Ro We .. We", "We Ae Ro Bl We .. We"])
def test_push_blocked_by_wall_behind_the_chain(row):
    params, st = layout(f"""
        We We We We We We We
        {row}
        We We We We We We We
        We We We We We Ay We
        We We We We We We We""")
    out = outcomes(params, st, [FORWARD, STILL])
    assert len(out) == 1
    (robot, _, objs), = out
    assert robot == (1, 1, 0), "the robot stays where it is"
    assert objs == np.asarray(st.objects).tobytes(), "nothing moves"


def test_push_blocked_by_an_agent_behind_the_rock():
    params, st = layout("""
        We We We We We We We
        We Ae Ro Ay .. .. We
        We We We We We We We
        We We We We We We We
        We We We We We We We""")
    out = outcomes(params, st, [FORWARD, STILL])
    (robot, human, objs), = out
    assert robot == (1, 1, 0) and human == (3, 1, 0) and objs == np.asarray(st.objects).tobytes()


def test_human_cannot_push_a_rock_but_can_push_a_block():
    params, st = layout("""
        We We We We We We We
        We Ae We We We We We
        We .. Ay Ro .. .. We
        We We We We We We We
        We We We We We We We""")
    (_, human, objs), = outcomes(params, st, [STILL, FORWARD])
    assert human == (2, 2, 0) and objs == np.asarray(st.objects).tobytes()
    params, st = layout("""
        We We We We We We We
        We Ae We We We We We
        We .. Ay Bl .. .. We
        We We We We We We We
        We We We We We We We""")
    probs, nxt = _succ(st, ENV.joint_action(jnp.asarray([STILL, FORWARD])), params)
    s0 = jax.tree.map(lambda x: x[0], nxt)
    assert tuple(np.asarray(s0.agent_pos[1])) == (3, 2) and objects_of(s0) == {(4, 2): BLOCK}


def test_turns_and_walls():
    params, st = layout("""
        We We We We We We We
        We Ae .. .. .. .. We
        We We We We We We We
        We We We We We Ay We
        We We We We We We We""", dirs=(3, 1))
    (robot, human, _), = outcomes(params, st, [LEFT, RIGHT])
    assert robot == (1, 1, 2) and human == (5, 3, 2)
    (robot, human, _), = outcomes(params, st, [FORWARD, FORWARD])  # both face walls
    assert robot == (1, 1, 3) and human == (5, 3, 1)


def test_two_agents_moving_into_the_same_cell_win_half_each():
    params, st = layout("""
        We We We We We We We
        We Ae .. Ay .. .. We
        We We We We We We We
        We We We We We We We
        We We We We We We We""", dirs=(0, 2))
    out = outcomes(params, st, [FORWARD, FORWARD])
    assert len(out) == 2
    by_winner = {(k[0][:2], k[1][:2]): p for k, p in out.items()}
    assert by_winner == {((2, 1), (3, 1)): 0.5, ((1, 1), (2, 1)): 0.5}


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_moving_into_a_cell_being_vacated_is_blocked_in_both_orders(order):
    # The robot follows the human east. Robot first: the human still stands on (2,1), so the
    # robot is blocked; human first: (2,1) is empty now, but it was occupied at the start of
    # the step, and nobody may enter such a cell before the next step. Both orders: blocked.
    params, st = layout("""
        We We We We We We We
        We Ae Ay .. .. .. We
        We We We We We We We
        We We We We We We We
        We We We We We We We""")
    nxt = _exec(st, jnp.asarray([FORWARD, FORWARD]), jnp.asarray(order), params)
    np.testing.assert_array_equal(nxt.agent_pos, [[1, 1], [3, 1]])
    out = outcomes(params, st, [FORWARD, FORWARD])
    assert len(out) == 1 and list(out.values()) == [1.0]


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_pushing_into_a_cell_being_vacated_is_blocked_in_both_orders(order):
    params, st = layout("""
        We We We We We We We
        We Ae Ro Ay .. .. We
        We We We We We We We
        We We We We We We We
        We We We We We We We""")
    nxt = _exec(st, jnp.asarray([FORWARD, FORWARD]), jnp.asarray(order), params)
    np.testing.assert_array_equal(nxt.agent_pos, [[1, 1], [4, 1]])
    assert objects_of(nxt) == {(2, 1): ROCK}


def test_push_and_move_into_the_same_cell_conflict_half_each():
    # Robot pushes the rock east into (3,1) while the human steps north into (3,1).
    # Robot first: the rock lands on (3,1) and blocks the human (humans cannot push rocks).
    # Human first: the human lands on (3,1) and the rock cannot be pushed onto it.
    params, st = layout("""
        We We We We We We We
        We Ae Ro .. .. .. We
        We We We Ay We We We
        We We We We We We We
        We We We We We We We""", dirs=(0, 3))
    robot_first = _exec(st, jnp.asarray([FORWARD, FORWARD]), jnp.asarray([0, 1]), params)
    np.testing.assert_array_equal(robot_first.agent_pos, [[2, 1], [3, 2]])
    assert objects_of(robot_first) == {(3, 1): ROCK}
    human_first = _exec(st, jnp.asarray([FORWARD, FORWARD]), jnp.asarray([1, 0]), params)
    np.testing.assert_array_equal(human_first.agent_pos, [[1, 1], [3, 1]])
    assert objects_of(human_first) == {(2, 1): ROCK}
    out = outcomes(params, st, [FORWARD, FORWARD])
    assert sorted(out.values()) == [0.5, 0.5]


def test_sampled_steps_follow_the_exact_distribution():
    params, st = layout("""
        We We We We We We We
        We Ae .. Ay .. .. We
        We We We We We We We
        We We We We We We We
        We We We We We We We""", dirs=(0, 2))
    a = ENV.joint_action(jnp.asarray([FORWARD, FORWARD]))
    keys = jax.random.split(jax.random.key(0), 4000)
    nxt = jax.vmap(lambda k: _step(k, st, a, params))(keys)
    robot_won = int(jnp.sum(nxt.agent_pos[:, 0, 0] == 2))
    human_won = int(jnp.sum(nxt.agent_pos[:, 1, 0] == 2))
    assert robot_won + human_won == 4000
    robot_won /= 4000
    assert abs(robot_won - 0.5) < 0.03  # 4000 draws: sd 0.008


def test_terminal_states_are_absorbing():
    t = TRIVIAL
    st = t.initial_state.replace(step=jnp.int32(10))
    assert bool(t.env.is_terminal(st, t.params)) and not bool(t.env.is_terminal(t.initial_state, t.params))
    _, nxt = jax.jit(t.env.successors)(st, t.env.joint_action(jnp.asarray([FORWARD, FORWARD])), t.params)
    np.testing.assert_array_equal(nxt.agent_pos, np.broadcast_to(st.agent_pos, nxt.agent_pos.shape))
    np.testing.assert_array_equal(nxt.step, [10, 10])


def test_joint_action_convention():
    assert int(ENV.joint_action(jnp.asarray([3, 1]))) == 13  # agent 0 most significant
    np.testing.assert_array_equal(ENV.agent_actions(13), [3, 1])
    # joint_action_of[a_r, a_h] with robot = agent 0, human = agent 1.
    assert ENV.joint_action_of[2, 1] == 9
    env3 = MultiGrid(3, 3, ("human", "robot", "robot"))
    ar = 1 * 4 + 2  # robots (agents 1, 2) take actions 1, 2
    assert env3.joint_action_of[ar, 3] == 3 * 16 + 1 * 4 + 2


# ---------------------------------------------------------------------------------------
# Enumeration and the transition tensor
# ---------------------------------------------------------------------------------------
def test_trivial_map_has_256_reachable_configurations():
    assert SPACE.num_states == 256
    st = SPACE.states
    # Every configuration has the rock at (2,1) [robot (1,1), human (2,2)], at (3,1) [3 placements]
    # or at (4,1) [the 12 ordered placements of two agents on (1,1), (2,1), (3,1), (2,2)], each
    # with all 16 orientation pairs: 16 * (1 + 3 + 12) = 256.
    rock_x = np.asarray(jnp.argmax(st.objects[:, 1, :] == ROCK, axis=-1))
    np.testing.assert_array_equal(np.bincount(rock_x, minlength=5)[2:], [16, 48, 192])
    placements = {(int(rock_x[i]),) + tuple(np.asarray(st.agent_pos[i]).ravel()) for i in range(256)}
    assert len(placements) == 16
    assert int(SPACE.first_step[0]) == 0 and np.all(np.asarray(st.step) == 0)
    # Within MAX_STEPS = 10 steps only 223 of them occur (33 need 11-12 steps); 1115 (t, s) pairs.
    fs = np.asarray(SPACE.first_step)
    assert int((fs <= 10).sum()) == 223 and fs.max() == 12
    assert num_reachable_pairs(SPACE, 10) == 1115


def test_small_map_enumerates():
    s = small_task()
    space = enumerate_states(s.env, s.params, s.initial_state)
    assert space.num_states == 10384
    assert int((np.asarray(space.first_step) <= 15).sum()) == 2702


def test_transition_tensor_rows_sum_to_one_and_match_the_table():
    assert P.shape == (256, 16, 256)
    np.testing.assert_allclose(P.sum(-1), 1.0, atol=1e-6)
    assert float(P.min()) >= 0.0
    # Only multiples of 1/2 occur with two agents.
    vals = np.unique(np.asarray(P))
    assert set(np.round(vals, 6)) <= {0.0, 0.5, 1.0}
    np.testing.assert_allclose(TABLE.next_prob.sum(-1), 1.0, atol=1e-6)
    # All-still is a self-loop.
    np.testing.assert_allclose(P[jnp.arange(256), 0, jnp.arange(256)], 1.0)


def test_state_index_round_trips():
    np.testing.assert_array_equal(_index(SPACE, SPACE.states), np.arange(256))
    odd = TRIVIAL.initial_state.replace(agent_pos=jnp.asarray([[3, 1], [4, 1]], jnp.int32))
    assert int(_index(SPACE, odd)) == -1
    # The step count is not part of a configuration.
    assert int(_index(SPACE, TRIVIAL.initial_state.replace(step=jnp.int32(7)))) == 0


def test_achieved_table_of_the_trivial_map():
    ach = np.asarray(achieved_table(TRIVIAL.env, SPACE, TRIVIAL.goals))
    assert ach.shape == (256, 1, 5)
    np.testing.assert_array_equal(ach[0, 0], [False, False, False, True, False])
    assert not ach[:, 0, 4].any(), "goal (1,2) is a wall"
    hx, hy = np.asarray(SPACE.states.agent_pos[:, 1]).T
    np.testing.assert_array_equal(ach[:, 0, 2], (hx == 3) & (hy == 1))


def _reference_step(walls, objects, agents, can_push, actions, order):
    """An independent sequential stepper written from the rules in plain Python."""
    h, w = walls.shape
    objs = dict(objects)
    agents = list(agents)
    start = {(x, y) for x, y, _ in agents}
    for i in order:
        x, y, d = agents[i]
        a = actions[i]
        if a == LEFT:
            d = (d - 1) % 4
        elif a == RIGHT:
            d = (d + 1) % 4
        elif a == FORWARD:
            dx, dy = (int(v) for v in DIR_TO_VEC[d])
            f = (x + dx, y + dy)
            now = {(ax, ay) for j, (ax, ay, _) in enumerate(agents) if j != i}
            if f in start or walls[f[1], f[0]]:
                pass
            elif f in objs:
                chain, c, ok = [], f, True
                while c in objs:
                    if objs[c] == ROCK and not can_push[i]:
                        ok = False
                        break
                    chain.append(c)
                    c = (c[0] + dx, c[1] + dy)
                if ok and 0 <= c[0] < w and 0 <= c[1] < h and not walls[c[1], c[0]] and c not in now and c not in start:
                    for p in reversed(chain):
                        objs[(p[0] + dx, p[1] + dy)] = objs.pop(p)
                    x, y = f
            elif f not in now:
                x, y = f
        agents[i] = (x, y, d)
    return objs, agents


def _reference_row(objs, agents, h, w):
    grid = np.zeros((h, w), np.int32)
    for (x, y), v in objs.items():
        grid[y, x] = v
    pos = [v for x, y, _ in agents for v in (x, y)]
    return np.array(pos + [d for _, _, d in agents] + grid.ravel().tolist(), np.int32).tobytes()


def test_tensor_matches_an_independent_python_stepper():
    env, params = TRIVIAL.env, TRIVIAL.params
    walls = np.asarray(params.walls)
    rows = np.asarray(SPACE.rows)
    index = {r.tobytes(): i for i, r in enumerate(rows)}
    p_ref = np.zeros((256, 16, 256))
    for s in range(256):
        st = jax.tree.map(lambda x: np.asarray(x[s]), SPACE.states)
        objs = {(int(x), int(y)): int(st.objects[y, x]) for y, x in zip(*np.nonzero(st.objects))}
        agents = [(int(st.agent_pos[i, 0]), int(st.agent_pos[i, 1]), int(st.agent_dir[i])) for i in range(2)]
        for a, actions in enumerate(itertools.product(range(4), repeat=2)):
            for order in itertools.permutations(range(2)):
                o2, a2 = _reference_step(walls, objs, agents, env.can_push_rocks, actions, order)
                p_ref[s, a, index[_reference_row(o2, a2, 4, 6)]] += 0.5
    np.testing.assert_allclose(np.asarray(P), p_ref, atol=1e-7)


# ---------------------------------------------------------------------------------------
# The random ensemble
# ---------------------------------------------------------------------------------------
CFG = EnsembleConfig()
ENS = CFG.env()
_KEYS = jax.random.split(jax.random.key(1), 256).at[1].set(jax.random.key(1234)).at[2].set(jax.random.key(1234))
ENS_PARAMS, ENS_STATES = jax.jit(jax.vmap(lambda k: random_ensemble_map(k, CFG)))(_KEYS)


def test_ensemble_maps_are_valid():
    params, st = ENS_PARAMS, ENS_STATES
    walls, obj = np.asarray(params.walls), np.asarray(st.objects)
    assert ENS.roles == ("human", "human", "robot", "robot")
    assert walls[:, 0, :].all() and walls[:, -1, :].all() and walls[:, :, 0].all() and walls[:, :, -1].all()
    pos = np.asarray(st.agent_pos)
    b = np.arange(256)[:, None]
    assert not walls[b, pos[..., 1], pos[..., 0]].any() and (obj[b, pos[..., 1], pos[..., 0]] == EMPTY).all()
    assert all(len({tuple(p) for p in pos[i]}) == 4 for i in range(256)), "agents on distinct cells"
    inner = walls[:, 1:-1, 1:-1]
    # 256 maps x 25 inner cells: the wall rate is 0.12 (sd 0.004), rocks and blocks 0.02 each.
    assert abs(inner.mean() - 0.12) < 0.02
    assert abs((obj == ROCK).mean() * 49 / 25 - 0.02) < 0.01 and abs((obj == BLOCK).mean() * 49 / 25 - 0.02) < 0.01
    np.testing.assert_array_equal(st.agent_dir, 0)
    assert int(params.max_steps[0]) == 30
    # The same key gives the same map; different keys differ.
    np.testing.assert_array_equal(walls[1], walls[2])
    np.testing.assert_array_equal(pos[1], pos[2])
    assert len({walls[i].tobytes() + pos[i].tobytes() for i in range(256)}) > 250


def test_ensemble_maps_step_under_vmap():
    params, st = jax.tree.map(lambda x: x[:8], (ENS_PARAMS, ENS_STATES))
    a = jnp.full((8,), 255)  # everybody forward
    nxt = jax.jit(jax.vmap(ENS.step))(jax.random.split(jax.random.key(3), 8), st, a, params)
    assert nxt.agent_pos.shape == (8, 4, 2) and np.all(np.asarray(nxt.step) == 1)
    probs, outs = jax.jit(jax.vmap(ENS.successors))(st, a, params)
    assert probs.shape == (8, 24) and outs.agent_pos.shape == (8, 24, 4, 2)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    # The sampled step is one of the exact outcomes.
    same = jnp.all(outs.agent_pos == nxt.agent_pos[:, None], axis=(-1, -2)) & jnp.all(
        outs.objects == nxt.objects[:, None], axis=(-1, -2))
    assert bool(jnp.all(jnp.any(same, axis=1)))
    goals = small_rectangle_goals(ENS)
    assert goals.cells.shape == (2, 144, 7, 7)  # rectangles up to 3x3 in the 5x5 interior
    np.testing.assert_allclose(goals.probs.sum(-1), 1.0, rtol=1e-6)


def test_encoding_marks_walls_objects_and_agents():
    t = TRIVIAL
    x = np.asarray(t.env.encode(t.initial_state, t.params))
    assert x.shape == (4, 6, 13)
    assert x[0, 0, 0] == 1 and x[1, 2, 1] == 1 and x[1, 2, 2] == 0
    assert x[1, 1, 3] == 1 and x[1, 1, 4] == 1  # robot present, facing east
    assert x[2, 2, 8] == 1 and x[2, 2, 9] == 1  # human present, facing east
    assert x.sum() == 19 + 1 + 4  # 19 walls, 1 rock, 2 agents x (presence + orientation)


def test_robot_action_successors_match_the_table():
    t = TRIVIAL
    succ = jax.jit(jax.vmap(t.env.robot_action_successors, in_axes=(None, 0, None)))
    probs, nxt = succ(t.initial_state, jnp.arange(4), t.params)
    assert probs.shape == (4, 4, 2)
    np.testing.assert_array_equal(jax.jit(state_index)(SPACE, nxt), TABLE.next_idx[0][t.env.joint_action_of.T])
