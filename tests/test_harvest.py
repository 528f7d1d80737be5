"""Exact rules of the normative allelopathic-harvest substrate: one test per mechanic, on
hand-built states, plus statistical tests of its probabilities."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.environments.harvest import (
    BACKWARD, BLUE, CELL_PATCH, COMMUNITY_NAMES, EGO_VIEW_COL, EGO_VIEW_ROW, FIRE_ONE, FIRE_THREE, FIRE_TWO,
    FIRE_ZAP, FORWARD, FORWARD_VEC, GREEN, GREY, HEIGHT, NOOP, NUM_ACTIONS, NUM_PATCHES, NUM_PLAYERS, OBS_DIM,
    PATCH_INIT_COLOR, PATCH_POS, RED, SPAWN_CELLS, STEP_LEFT, STEP_RIGHT, TURN_LEFT, TURN_RIGHT, WIDTH,
    NEVER, env_step_keys, harvest_params, observe, observe_view, reset_world, split_observation, step_all, step_order,
)
from rljax.environments.harvest_view import HarvestEnv
from rljax.environments.harvest_residents import beam_risk, hold_fire, resident_actions

ENV = HarvestEnv()
P = harvest_params()
_step_all = jax.jit(step_all)
_step_keys = jax.jit(jax.vmap(step_all, in_axes=(0, None, None, None)))
N_KEYS = 2048  # one batch size for every statistical test: one compilation
_reset_world = jax.jit(reset_world)
_order = jax.jit(step_order)
_observe = jax.jit(observe)

# Cells where the avatars a test does not use wait, far from the rows the tests use (3..16).
PARK = [(r, c) for r in (23, 27) for c in range(0, 29, 4)][:NUM_PLAYERS]


def patch_at(r: int, c: int) -> int:
    return int(CELL_PATCH[(r % HEIGHT) * WIDTH + (c % WIDTH)])


def rel(pos, facing, lateral, forward):
    """World cell at (lateral, forward) from ``pos`` facing ``facing``."""
    fwd, right = FORWARD_VEC[facing], FORWARD_VEC[(facing + 1) % 4]
    r, c = np.asarray(pos) + forward * fwd + lateral * right
    return int(r % HEIGHT), int(c % WIDTH)


def find_spot(pattern, facing=1, rows=range(4, 17)):
    """First cell (in rows 4..16) from which the cells at (lateral, forward) -> wants_patch
    match the map."""
    for r in rows:
        for c in range(WIDTH):
            if all((patch_at(*rel((r, c), facing, lat, fw)) >= 0) == want for (lat, fw), want in pattern.items()):
                return (r, c)
    raise AssertionError(f"no spot for {pattern}")


def make_state(agents, t=0, park=PARK, **fields):
    """A world where ``agents[i] = (row, col, facing[, body])`` places player i; the others wait
    in ``park``. Every berry starts unripe in its map colour with countdown 10."""
    st = _reset_world(jax.random.key(0), P)
    pos = np.array(park, np.int32)
    facing = np.zeros(NUM_PLAYERS, np.int32)
    body = np.zeros(NUM_PLAYERS, np.int32)
    for i, a in agents.items():
        pos[i] = a[:2]
        facing[i] = a[2]
        body[i] = a[3] if len(a) > 3 else GREY
    st = st.replace(pos=jnp.asarray(pos), facing=jnp.asarray(facing), body=jnp.asarray(body), t=jnp.int32(t))
    return st.replace(**{k: jnp.asarray(v) for k, v in fields.items()})


def acts(**by_player):
    a = np.full(NUM_PLAYERS, NOOP, np.int32)
    for k, v in by_player.items():
        a[int(k[1:])] = v
    return jnp.asarray(a)


def key_with_order(pred, start=0):
    """A step key whose agent order satisfies ``pred(rank)`` (rank[i] = turn of player i)."""
    for s in range(start, start + 2000):
        k = jax.random.key(s)
        rank = np.argsort(np.asarray(_order(k)))
        if pred(rank):
            return k
    raise AssertionError("no key found")


def ripe_at(*patches):
    ripe = np.zeros(NUM_PATCHES, bool)
    ripe[list(patches)] = True
    return ripe


# -- map and reset --------------------------------------------------------------------------------
def test_map_layout_and_reset():
    assert (HEIGHT, WIDTH) == (30, 29) and NUM_PATCHES == 348 and len(SPAWN_CELLS) == 522
    assert [int((PATCH_INIT_COLOR == c).sum()) for c in (RED, GREEN, BLUE)] == [116, 116, 116]
    states = jax.vmap(_reset_world, in_axes=(0, None))(jax.random.split(jax.random.key(1), 64), P)
    for i in range(64):
        cells = np.asarray(states.pos[i, :, 0] * WIDTH + states.pos[i, :, 1])
        assert len(set(cells.tolist())) == NUM_PLAYERS and np.isin(cells, SPAWN_CELLS).all()
    assert set(np.asarray(states.facing).ravel().tolist()) == {0, 1, 2, 3}, "random facing"
    assert (states.body == GREY).all() and (states.zap_timer == 0).all() and not states.immune.any()
    assert not states.berry_ripe.any() and (states.countdown == 10).all() and (states.t == 0).all()
    np.testing.assert_array_equal(states.berry_color[0], PATCH_INIT_COLOR)


# -- movement -----------------------------------------------------------------------------------
@pytest.mark.parametrize("facing", range(4))
def test_moves_turns_and_torus_wrap(facing):
    fwd, right = FORWARD_VEC[facing], FORWARD_VEC[(facing + 1) % 4]
    for start in [(0, 0), (29, 28), (10, 5)]:
        for action, d in [(FORWARD, fwd), (BACKWARD, -fwd), (STEP_LEFT, -right), (STEP_RIGHT, right), (NOOP, 0 * fwd)]:
            st, *_ = _step_all(jax.random.key(0), make_state({3: (*start, facing)}), acts(p3=action), P)
            assert tuple(np.asarray(st.pos[3])) == ((start[0] + d[0]) % HEIGHT, (start[1] + d[1]) % WIDTH), (start, action)
            assert int(st.facing[3]) == facing
        for action, f2 in [(TURN_LEFT, (facing + 3) % 4), (TURN_RIGHT, (facing + 1) % 4)]:
            st, *_ = _step_all(jax.random.key(0), make_state({3: (*start, facing)}), acts(p3=action), P)
            assert int(st.facing[3]) == f2 and tuple(np.asarray(st.pos[3])) == start


def test_agent_order_resolves_move_conflicts():
    # Both step into (10, 11): the earlier in the step's order wins.
    seen = set()
    for s in range(24):
        k = jax.random.key(s)
        rank = np.argsort(np.asarray(_order(k)))
        st, *_ = _step_all(k, make_state({1: (10, 10, 1), 2: (10, 12, 3)}), acts(p1=FORWARD, p2=FORWARD), P)
        winner = 1 if rank[1] < rank[2] else 2
        loser = 3 - winner
        assert tuple(np.asarray(st.pos[winner])) == (10, 11)
        assert tuple(np.asarray(st.pos[loser])) == ((10, 10) if loser == 1 else (10, 12))
        seen.add(winner)
    assert seen == {1, 2}
    # A chain: 1 follows 2 into the cell 2 leaves; it succeeds only if 2 moved first.
    for want_first in (1, 2):
        k = key_with_order(lambda r: (r[2] < r[1]) == (want_first == 2))
        st, *_ = _step_all(k, make_state({1: (10, 10, 1), 2: (10, 11, 1)}), acts(p1=FORWARD, p2=FORWARD), P)
        assert tuple(np.asarray(st.pos[2])) == (10, 12)
        assert tuple(np.asarray(st.pos[1])) == ((10, 11) if want_first == 2 else (10, 10))
    # A swap is blocked for both, whatever the order.
    for s in range(6):
        st, *_ = _step_all(jax.random.key(s), make_state({1: (10, 10, 1), 2: (10, 11, 3)}), acts(p1=FORWARD, p2=FORWARD), P)
        assert tuple(np.asarray(st.pos[1])) == (10, 10) and tuple(np.asarray(st.pos[2])) == (10, 11)


# -- eating -------------------------------------------------------------------------------------
def test_eating_on_entry_and_taste():
    x = find_spot({(0, 0): True})  # a patch
    b = patch_at(*x)
    start = rel(x, 1, 0, -1)  # one cell west of it, facing east
    all_red = np.full(NUM_PATCHES, RED, np.int32)  # monoculture 1: nobody turns grey
    for player, color, expect in [(0, RED, 2.0), (0, GREEN, 1.0), (0, BLUE, 1.0), (1, GREEN, 2.0), (1, RED, 1.0)]:
        colors = all_red.copy()
        colors[b] = color
        st = make_state({player: (*start, 1, BLUE)}, berry_color=colors, berry_ripe=ripe_at(b))
        st2, r, ev = _step_all(jax.random.key(1), st, acts(**{f"p{player}": FORWARD}), P)
        assert float(ev["eat_reward"][player]) == expect and float(r[player]) == expect
        assert bool(ev["eaten"][player]) and not bool(st2.berry_ripe[b])
        assert int(st2.countdown[b]) == 9, "countdown restarts at 10 and runs this frame"
        if color == RED:  # all-red map: monoculture fraction 1, never grey
            assert int(st2.body[player]) == BLUE
    # Standing on a ripe berry, turning on it, or being blocked from entering it eats nothing.
    st = make_state({0: (*x, 1), 1: (*start, 1), 2: (*rel(x, 1, 0, 1), 1)}, berry_ripe=ripe_at(b))
    st2, r, ev = _step_all(jax.random.key(1), st, acts(p0=TURN_LEFT, p1=FORWARD), P)
    assert not bool(ev["eaten"].any()) and bool(st2.berry_ripe[b]) and float(r.sum()) == 0.0


def test_grey_after_eating_with_probability_one_minus_monoculture():
    x = find_spot({(0, 0): True})
    b = patch_at(*x)
    start = rel(x, 1, 0, -1)
    n = N_KEYS
    keys = jax.random.split(jax.random.key(5), n)
    for n_red in (174, 290):
        colors = np.where(np.arange(NUM_PATCHES) < n_red, RED, np.where(np.arange(NUM_PATCHES) % 2 == 0, GREEN, BLUE))
        colors[b] = RED
        mono = max(np.bincount(colors, minlength=4)[1:]) / NUM_PATCHES
        st = make_state({0: (*start, 1, BLUE)}, berry_color=colors.astype(np.int32), berry_ripe=ripe_at(b),
                        immune=np.ones(NUM_PLAYERS, bool))
        st2, _, ev = _step_keys(keys, st, acts(p0=FORWARD), P)
        assert bool(ev["eaten"][:, 0].all())
        grey = np.asarray(st2.body[:, 0] == GREY)
        p = 1.0 - mono
        assert abs(grey.mean() - p) < 4 * np.sqrt(p * (1 - p) / n), (n_red, grey.mean(), p)
        # Turning grey clears immunity; staying coloured keeps it.
        np.testing.assert_array_equal(np.asarray(st2.immune[:, 0]), ~grey)


# -- ripening -----------------------------------------------------------------------------------
def test_ripening_countdown_and_allelopathy():
    counts = {RED: 200, GREEN: 100, BLUE: 48}
    colors = np.array([RED] * 200 + [GREEN] * 100 + [BLUE] * 48, np.int32)
    params = harvest_params(ripen_base_rate=1 / 400)  # p = N_c / 400: 0.5, 0.25, 0.12
    # Exact: a countdown that has not run out never ripens, whatever the probability.
    mono = np.full(NUM_PATCHES, RED, np.int32)
    st = make_state({}, berry_color=mono, countdown=np.full(NUM_PATCHES, 2, np.int32))
    st2, *_ = _step_all(jax.random.key(0), st, acts(), harvest_params(ripen_base_rate=1 / NUM_PATCHES))
    assert not bool(st2.berry_ripe.any()) and (st2.countdown == 1).all()
    st2, *_ = _step_all(jax.random.key(0), st2, acts(), harvest_params(ripen_base_rate=1 / NUM_PATCHES))
    assert bool(st2.berry_ripe.all()), "monoculture: p = 348 / 348 = 1 once the countdown has run out"
    assert (st2.countdown == 10).all(), "ripening is a state change: the countdown restarts"
    # Statistical: ripening frequency per colour is base_rate * N_c.
    st = make_state({}, berry_color=colors, countdown=np.ones(NUM_PATCHES, np.int32))
    n_keys = N_KEYS
    st2, *_ = _step_keys(jax.random.split(jax.random.key(3), n_keys), st, acts(), params)
    ripe = np.asarray(st2.berry_ripe)
    for c, n_c in counts.items():
        p = n_c / 400
        freq = ripe[:, colors == c].mean()
        assert abs(freq - p) < 4 * np.sqrt(p * (1 - p) / (n_c * n_keys)), (c, freq, p)
    # The default rate at the start of an episode: 116 * 5e-6 per frame.
    assert float(P.ripen_base_rate) * 116 == pytest.approx(5.8e-4)


# -- planting -----------------------------------------------------------------------------------
def test_planting_beam_rules():
    f = 1  # facing east
    spot = find_spot({(0, 1): True}, f)
    x = patch_at(*rel(spot, f, 0, 1))
    green = np.asarray(PATCH_INIT_COLOR).copy()
    green[x] = GREEN
    base = dict(berry_color=green, immune=np.ones(NUM_PLAYERS, bool))
    # Unripe, another colour: recoloured, countdown restarts, planter takes the colour, loses immunity.
    st2, r, ev = _step_all(jax.random.key(0), make_state({4: (*spot, f)}, **base), acts(p4=FIRE_ONE), P)
    assert int(st2.berry_color[x]) == RED and int(st2.countdown[x]) == 9
    assert int(st2.body[4]) == RED and not bool(st2.immune[4]) and int(ev["planted"][4]) == 1 and float(r[4]) == 0.0
    # Ripe: nothing happens; same colour: nothing happens and the planter stays grey.
    for ripe, action in [(True, FIRE_ONE), (False, FIRE_TWO)]:
        st = make_state({4: (*spot, f)}, **base, berry_ripe=ripe_at(x) if ripe else np.zeros(NUM_PATCHES, bool))
        st2, _, ev = _step_all(jax.random.key(0), st, acts(p4=action), P)
        assert int(st2.berry_color[x]) == GREEN and int(st2.body[4]) == GREY and bool(st2.immune[4])
        assert int(ev["planted"][4]) == 0
    # Range 3: a berry at (0, 3) behind two empty cells is reached; one at (0, 4) is not.
    spot3 = find_spot({(0, 1): False, (0, 2): False, (0, 3): True}, f)
    x3 = patch_at(*rel(spot3, f, 0, 3))
    colors = np.asarray(PATCH_INIT_COLOR).copy()
    colors[x3] = GREEN
    st2, *_ = _step_all(jax.random.key(0), make_state({4: (*spot3, f)}, berry_color=colors), acts(p4=FIRE_THREE), P)
    assert int(st2.berry_color[x3]) == BLUE and int(st2.body[4]) == BLUE
    spot4 = find_spot({(0, 1): False, (0, 2): False, (0, 3): False, (0, 4): True}, f)
    x4 = patch_at(*rel(spot4, f, 0, 4))
    for action in PLANT_CHOICES:
        st2, *_ = _step_all(jax.random.key(0), make_state({4: (*spot4, f)}), acts(p4=action), P)
        assert int(st2.berry_color[x4]) == PATCH_INIT_COLOR[x4]
    # The beam stops at the first berry (a ripe one shields the unripe one behind it) ...
    spot2 = find_spot({(0, 1): True, (0, 2): True}, f)
    x1, x2 = patch_at(*rel(spot2, f, 0, 1)), patch_at(*rel(spot2, f, 0, 2))
    colors = np.asarray(PATCH_INIT_COLOR).copy()
    colors[[x1, x2]] = GREEN
    st2, *_ = _step_all(jax.random.key(0), make_state({4: (*spot2, f)}, berry_color=colors, berry_ripe=ripe_at(x1)), acts(p4=FIRE_ONE), P)
    assert int(st2.berry_color[x2]) == GREEN and int(st2.berry_color[x1]) == GREEN
    # ... or at an avatar (an avatar standing on a berry shields nothing: that berry is hit).
    spot_b = find_spot({(0, 1): False, (0, 2): True}, f)
    xb = patch_at(*rel(spot_b, f, 0, 2))
    colors = np.asarray(PATCH_INIT_COLOR).copy()
    colors[xb] = GREEN
    st2, *_ = _step_all(jax.random.key(0), make_state({4: (*spot_b, f), 5: (*rel(spot_b, f, 0, 1), 0)}, berry_color=colors), acts(p4=FIRE_ONE), P)
    assert int(st2.berry_color[xb]) == GREEN and int(st2.body[4]) == GREY
    st2, *_ = _step_all(jax.random.key(0), make_state({4: (*spot, f), 5: (*rel(spot, f, 0, 1), 0)}, berry_color=green), acts(p4=FIRE_ONE), P)
    assert int(st2.berry_color[x]) == RED and int(st2.body[4]) == RED


PLANT_CHOICES = (FIRE_ONE, FIRE_TWO, FIRE_THREE)


def test_plant_cooldown_is_shared_by_the_three_beams():
    f = 1
    spot = find_spot({(0, 1): True}, f)
    x = patch_at(*rel(spot, f, 0, 1))
    colors = np.asarray(PATCH_INIT_COLOR).copy()
    colors[x] = BLUE
    st = make_state({4: (*spot, f)}, berry_color=colors)
    got = []
    for i, action in enumerate([FIRE_ONE, FIRE_TWO, FIRE_TWO, FIRE_TWO, FIRE_THREE, FIRE_THREE, FIRE_ONE]):
        st, _, ev = _step_all(jax.random.key(i), st, acts(p4=action), P)
        got.append((int(st.berry_color[x]), int(st.plant_timer[4])))
    # Fires on frames 0, 3 and 6 (cooldown 2: two frames in between do nothing).
    assert got == [(RED, 2), (RED, 1), (RED, 0), (GREEN, 2), (GREEN, 1), (GREEN, 0), (RED, 2)]


def test_two_planters_on_one_berry_first_in_order_wins():
    f = 1
    spot = find_spot({(0, 1): True}, f)
    xpos = rel(spot, f, 0, 1)
    x = patch_at(*xpos)
    other = rel(xpos, f, 0, 1)  # the cell beyond, facing back west
    colors = np.asarray(PATCH_INIT_COLOR).copy()
    colors[x] = GREEN
    for first in (4, 5):
        k = key_with_order(lambda r: (r[4] < r[5]) == (first == 4))
        st = make_state({4: (*spot, f), 5: (*other, 3)}, berry_color=colors)
        st2, _, ev = _step_all(k, st, acts(p4=FIRE_ONE, p5=FIRE_THREE), P)
        assert int(st2.berry_color[x]) == (RED if first == 4 else BLUE)
        assert int(st2.body[first]) == int(st2.berry_color[x]) and int(st2.body[9 - first]) == GREY
        assert int(ev["planted"][first]) == 1 and int(ev["planted"][9 - first]) == 0


# -- zapping ------------------------------------------------------------------------------------
FOOTPRINT = {(0, 1), (0, 2), (0, 3), (-1, 0), (-1, 1), (-1, 2), (1, 0), (1, 1), (1, 2)}
NEAR_MISSES = {(0, 4), (-1, 3), (1, 3), (-2, 0), (2, 1), (0, -1), (-1, -1), (1, -1), (2, 2), (-2, 3)}


@pytest.mark.parametrize("facing", range(4))
def test_zap_footprint(facing):
    z = (12, 14)
    for cell in FOOTPRINT | NEAR_MISSES:
        st = make_state({1: (*z, facing), 2: (*rel(z, facing, *cell), 0, BLUE)})
        _, r, ev = _step_all(jax.random.key(0), st, acts(p1=FIRE_ZAP), P)
        assert int(ev["received"][2]) == (cell in FOOTPRINT), cell
        assert float(r[2]) == (-10.0 if cell in FOOTPRINT else 0.0)


def test_zap_rays_stop_at_the_first_avatar_and_pass_berries():
    z, f = (12, 14), 0
    # Centre ray: (0,1) shields (0,3); left ray: (-1,0) shields (-1,2); the right ray hits (1,2).
    placed = {1: (*z, f), 2: (*rel(z, f, 0, 1), 0, BLUE), 3: (*rel(z, f, 0, 3), 0, BLUE),
              4: (*rel(z, f, -1, 0), 0, BLUE), 5: (*rel(z, f, -1, 2), 0, BLUE), 6: (*rel(z, f, 1, 2), 0, BLUE)}
    _, r, ev = _step_all(jax.random.key(0), make_state(placed), acts(p1=FIRE_ZAP), P)
    np.testing.assert_array_equal(np.asarray(ev["received"][2:7]), [1, 0, 1, 0, 1])
    assert int(ev["correct"][1]) == 3 and float(r[1]) == pytest.approx(3 * 0.5 - 0.2)
    # Berries do not block the zap: a target behind a patch cell is hit.
    spot = find_spot({(0, 1): True, (0, 2): False}, 1)
    _, _, ev = _step_all(jax.random.key(0), make_state({1: (*spot, 1), 2: (*rel(spot, 1, 0, 2), 0, BLUE)}), acts(p1=FIRE_ZAP), P)
    assert int(ev["received"][2]) == 1
    # Torus: zapping north from row 0 hits row 29.
    _, _, ev = _step_all(jax.random.key(0), make_state({1: (0, 5, 0), 2: (29, 5, 0, BLUE)}), acts(p1=FIRE_ZAP), P)
    assert int(ev["received"][2]) == 1


def test_zap_cooldown_ready_to_shoot_and_cost_on_every_press():
    params = harvest_params(c=0.25, alpha=0.0, immunity_cooldown=1)
    z = (12, 14)
    st = make_state({0: (*z, 1), 2: (*rel(z, 1, 0, 2), 0, BLUE)})
    fired, ready, rewards = [], [], []
    for i in range(11):
        st, r, ev = _step_all(jax.random.key(i), st, acts(p0=FIRE_ZAP), params)
        fired.append(int(ev["zap_fired"][0]))
        ready.append(float(_observe(st, params)[OBS_DIM - 4]))
        rewards.append(float(r[0]))
    assert fired == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    assert ready == [0.0, 0.25, 0.5, 0.75, 1.0] * 2 + [0.0]
    np.testing.assert_allclose(rewards, -0.25)  # c on every press, cooling down or not


@pytest.mark.parametrize("t,body,permitted,correct", [
    (24, GREY, 0, False), (25, GREY, 0, True), (0, RED, 0, False), (0, GREEN, 0, True), (0, BLUE, 2, False),
    (99, RED, 2, True),
])
def test_sanction_classification_and_grace(t, body, permitted, correct):
    params = harvest_params(alpha=0.7, beta=0.3, c=0.11, permitted=permitted)
    z = (12, 14)
    st = make_state({1: (*z, 1), 2: (*rel(z, 1, 0, 1), 0, body)}, t=t)
    _, r, ev = _step_all(jax.random.key(0), st, acts(p1=FIRE_ZAP), params)
    assert int(ev["correct"][1]) == correct and int(ev["mis"][1]) == (not correct)
    assert float(r[1]) == pytest.approx((0.7 if correct else -0.3) - 0.11)
    assert float(r[2]) == -10.0


def test_immunity_fizzle_and_timeout():
    params = harvest_params(immunity_cooldown=5, alpha=1.0, c=0.0)
    z = (12, 14)
    st = make_state({1: (*z, 1), 2: (*rel(z, 1, 0, 1), 0, BLUE)}, t=50)
    st, r, ev = _step_all(jax.random.key(0), st, acts(p1=FIRE_ZAP), params)  # lands at t=50
    assert bool(st.immune[2]) and int(st.immune_set_t[2]) == 50 and float(r[2]) == -10.0
    immune_after = []
    for i in range(6):  # steps at t = 51..56
        st, *_ = _step_all(jax.random.key(i), st, acts(), params)
        immune_after.append(bool(st.immune[2]))
    assert immune_after == [True, True, True, True, False, False], "cleared at the end of frame t = 50 + K"
    # A hit on an immune target fizzles: no -10, no alpha, counted.
    st = make_state({1: (*z, 1), 2: (*rel(z, 1, 0, 1), 0, BLUE)}, t=50, immune=np.ones(NUM_PLAYERS, bool),
                    immune_set_t=np.full(NUM_PLAYERS, 49, np.int32))
    _, r, ev = _step_all(jax.random.key(0), st, acts(p1=FIRE_ZAP), params)
    assert int(ev["received"][2]) == 0 and int(ev["fizzle_immune"][1]) == 1 and float(r[1]) == 0.0 and float(r[2]) == 0.0


def test_one_minus10_per_target_per_frame_and_tie_break():
    z1, z2 = (11, 14), (13, 14)  # above and below the target, facing it
    tgt = (12, 14)
    # Two zappers on one violating target: one -10, alpha to the first in order, the other fizzles.
    for first in (1, 2):
        k = key_with_order(lambda r: (r[1] < r[2]) == (first == 1))
        st = make_state({1: (*z1, 2), 2: (*z2, 0), 3: (*tgt, 1, BLUE)})
        _, r, ev = _step_all(k, st, acts(p1=FIRE_ZAP, p2=FIRE_ZAP), P)
        assert int(ev["received"][3]) == 1 and float(r[3]) == -10.0
        assert int(ev["correct"][first]) == 1 and int(ev["correct"][3 - first]) == 0
        assert int(ev["fizzle_immune"][3 - first]) == 1
    # The target plants between the two zaps (clearing its immunity): the later zap still fizzles.
    spot = find_spot({(0, 1): True}, 1)
    x = patch_at(*rel(spot, 1, 0, 1))
    colors = np.asarray(PATCH_INIT_COLOR).copy()
    colors[x] = GREEN
    up, down = rel(spot, 1, -1, 0), rel(spot, 1, 1, 0)  # north and south of the target
    k = key_with_order(lambda r: r[1] < r[3] < r[2])
    st = make_state({1: (*up, 2), 2: (*down, 0), 3: (*spot, 1, BLUE)}, berry_color=colors)
    st2, r, ev = _step_all(k, st, acts(p1=FIRE_ZAP, p2=FIRE_ZAP, p3=FIRE_ONE), P)
    assert int(ev["planted"][3]) == 1 and int(st2.body[3]) == RED and not bool(st2.immune[3])
    assert int(ev["received"][3]) == 1 and int(ev["correct"][1]) == 1 and int(ev["fizzle_tie"][2]) == 1
    assert int(ev["mis"][2]) == 0 and float(r[3]) == -10.0


# -- observation and rendering ------------------------------------------------------------------
def reference_view(st, agent=0):
    """The window by explicit loops over (lateral, forward): row 9 - forward, column 5 + lateral."""
    st = jax.tree.map(np.asarray, st)
    view = np.zeros((11, 11, 10), np.float32)
    who = {tuple(p): i for i, p in enumerate(st.pos.tolist())}
    for forward in range(-1, 10):
        for lateral in range(-5, 6):
            cell = rel(st.pos[agent], int(st.facing[agent]), lateral, forward)
            i, j = 9 - forward, 5 + lateral
            b = patch_at(*cell)
            if b >= 0:
                view[i, j, st.berry_color[b] - 1 + 3 * int(st.berry_ripe[b])] = 1
            if cell in who:
                view[i, j, 6 + st.body[who[cell]]] = 1
    return view


@pytest.mark.parametrize("facing", range(4))
def test_observation_window_geometry(facing):
    e = (0, 0)  # a corner: the window wraps around the torus
    placed = {0: (*e, facing, RED), 1: (*rel(e, facing, -5, 9), 0, GREEN), 2: (*rel(e, facing, 5, -1), 0, BLUE),
              3: (*rel(e, facing, 2, 3), 0, GREY), 4: (*rel(e, facing, 0, 10), 0, BLUE), 5: (*rel(e, facing, 6, 0), 0, BLUE),
              6: (*rel(e, facing, 0, -2), 0, BLUE)}
    far = [(r, c) for r in (13, 15) for c in range(10, 26, 2)]  # out of any window from (0, 0)
    st = make_state(placed, park=far, berry_ripe=np.arange(NUM_PATCHES) % 3 == 0)
    view = np.asarray(observe_view(st, 0))
    assert view[EGO_VIEW_ROW, EGO_VIEW_COL, 6 + RED] == 1, "the ego sees itself at row 9, column 5"
    assert view[0, 0, 6 + GREEN] == 1 and view[10, 10, 6 + BLUE] == 1 and view[6, 7, 6 + GREY] == 1
    assert view[..., 6:].sum() == 4, "players 4-6 (10 ahead, 6 right, 2 behind) are out of sight"
    np.testing.assert_array_equal(view, reference_view(st))


def test_observation_vector_treatment_control_and_split():
    st = _reset_world(jax.random.key(4), P)
    for permitted in range(3):
        treat = _observe(st, harvest_params(permitted=permitted, treatment=1))
        ctrl = _observe(st, harvest_params(permitted=permitted, treatment=0))
        assert treat.shape == (OBS_DIM,) == ctrl.shape and treat.dtype == jnp.float32
        np.testing.assert_array_equal(treat[:-3], ctrl[:-3])
        np.testing.assert_array_equal(treat[-3:], np.eye(3)[permitted])
        np.testing.assert_array_equal(ctrl[-3:], 0.0)
    view, ready, perm = split_observation(jnp.stack([treat, ctrl]))
    assert view.shape == (2, 11, 11, 10) and ready.shape == (2, 1) and perm.shape == (2, 3)
    np.testing.assert_array_equal(view[0], observe_view(st, 0))
    assert float(ready[0, 0]) == 1.0


def test_renderer_matches_symbolic_view_cell_by_cell():
    from rljax.environments.harvest_render import VIEW_PX, WORLD_PX, decode_view, render_view, render_world

    params = harvest_params(ego_is_resident=1)
    _, st = ENV.reset(jax.random.key(2), params)
    step = jax.jit(ENV.step)
    render = jax.jit(render_view)
    views = jax.jit(jax.vmap(observe_view, in_axes=(None, 0)))
    rng = np.random.default_rng(0)
    facings = set()
    for i in range(40):
        _, st, *_ = step(jax.random.key(100 + i), st, 0, params)
        if i % 8 == 7:
            # every body colour and ripeness, in worlds the residents moved about in
            st = st.replace(body=jnp.asarray(rng.integers(0, 4, NUM_PLAYERS), jnp.int32),
                            berry_ripe=jnp.asarray(rng.random(NUM_PATCHES) < 0.3))
            sym = np.asarray(views(st, jnp.arange(NUM_PLAYERS)))
            for a in range(NUM_PLAYERS):
                img = np.asarray(render(st, a))
                assert img.shape == VIEW_PX + (3,) and img.dtype == np.uint8
                np.testing.assert_array_equal(decode_view(img), sym[a])
                facings.add(int(st.facing[a]))
    assert facings == {0, 1, 2, 3} and sym[:, :, :, 3:6].sum() > 0 and sym[:, :, :, 7:].sum() > 0
    world = np.asarray(render_world(st))
    assert world.shape == WORLD_PX + (3,)
    dec = decode_view(world)  # the world picture decodes to the true world (north up)
    assert dec[..., 6:].sum() == NUM_PLAYERS and dec[..., :6].sum() == NUM_PATCHES


# -- params ---------------------------------------------------------------------------------------
def test_presets():
    d, r = harvest_params(), harvest_params("as_run")
    assert (float(d.alpha), float(d.beta), float(d.c)) == pytest.approx((0.5, 0.5, 0.2))
    assert (float(r.alpha), float(r.beta), float(r.c)) == pytest.approx((5.0, 5.0, 0.5))
    for p in (d, r):
        assert (int(p.immunity_cooldown), int(p.startup_grey_grace), int(p.episode_length)) == (200, 25, 2000)
        assert int(p.resident_quirks) == 0 and int(p.treatment) == 1 and int(p.ego_is_resident) == 0
    assert int(harvest_params(permitted="blue").permitted) == 2 and COMMUNITY_NAMES[2] == "BLUE"
    np.testing.assert_allclose(d.community_probs, 1 / 3, rtol=1e-6)
    assert ENV.action_space(d).n == NUM_ACTIONS == 11 and ENV.observation_shape(d) == (OBS_DIM,) == (1214,)


@pytest.mark.parametrize("override,field", [
    ({"alpha": -1.0}, "alpha"), ({"c": float("nan")}, "c"), ({"immunity_cooldown": 0}, "immunity_cooldown"),
    ({"startup_grey_grace": 2.5}, "startup_grey_grace"), ({"episode_length": 0}, "episode_length"),
    ({"zap_cooldown": 0}, "zap_cooldown"), ({"plant_cooldown": -1}, "plant_cooldown"),
    ({"ripen_base_rate": 0.01}, "ripen_base_rate"), ({"min_time_to_ripen": -2}, "min_time_to_ripen"),
    ({"permitted": 3}, "permitted"), ({"permitted": "PURPLE"}, "permitted"), ({"treatment": 2}, "treatment"),
    ({"ego_is_resident": -1}, "ego_is_resident"), ({"resident_quirks": 0.5}, "resident_quirks"),
    ({"resident_guard": 3}, "resident_guard"), ({"community_probs": (0.5, 0.5)}, "community_probs"),
    ({"community_probs": (0.5, 0.6, -0.1)}, "community_probs"), ({"community_probs": (0.2, 0.2, 0.2)}, "community_probs"),
    ({"sanction_penalty": "10"}, "sanction_penalty"), ({"beta": True}, "beta"), ({"bogus": 1}, "bogus"),
    ({"taste_reward": float("inf")}, "taste_reward"),
])
def test_params_validation(override, field):
    with pytest.raises(ValueError, match=field):
        harvest_params(**override)


def test_unknown_preset():
    with pytest.raises(ValueError, match="preset"):
        harvest_params("phase5")


# -- residents ------------------------------------------------------------------------------------
_residents = jax.jit(resident_actions)


def resident_scene(agents, params=P, t=0, patrol=FORWARD, **fields):
    """Resident 1's action in a scene; the plant gate is closed, every colouring beam is cooling
    down (nobody can plant this frame) and the patrol action is ``patrol`` (kept for 5 more calls)
    unless ``fields`` say otherwise."""
    base = dict(last_plant_t=np.full(NUM_PLAYERS, t, np.int32), patrol_action=np.full(NUM_PLAYERS, patrol, np.int32),
                patrol_left=np.full(NUM_PLAYERS, 5, np.int32), plant_timer=np.ones(NUM_PLAYERS, np.int32))
    base.update(fields)
    st = make_state(agents, t=t, **base)
    a, st2 = _residents(jax.random.key(0), st, params)
    return int(a[1]), st2


def test_resident_p1_fires_only_at_eligible_targets_in_the_beam():
    z = (12, 14)
    assert resident_scene({1: (*z, 1), 2: (*rel(z, 1, 0, 2), 0, BLUE)})[0] == FIRE_ZAP
    assert resident_scene({1: (*z, 1), 2: (*rel(z, 1, -1, 0), 0, GREY)}, t=25)[0] == FIRE_ZAP, "grey after grace"
    # Not eligible: compliant, grey within the grace, or immune -> P1 does not apply (patrol here).
    assert resident_scene({1: (*z, 1), 2: (*rel(z, 1, 0, 2), 0, RED)})[0] == FORWARD
    assert resident_scene({1: (*z, 1), 2: (*rel(z, 1, 0, 2), 0, GREY)}, t=24)[0] == FORWARD
    assert resident_scene({1: (*z, 1), 2: (*rel(z, 1, 0, 2), 0, BLUE)}, immune=np.ones(NUM_PLAYERS, bool))[0] == FORWARD
    # Not ready: no P1. The original read readiness as ready_to_shoot > 0.5, one frame early.
    assert resident_scene({1: (*z, 1), 2: (*rel(z, 1, 0, 2), 0, BLUE)}, zap_timer=np.ones(NUM_PLAYERS, np.int32))[0] == FORWARD
    quirky = harvest_params(resident_quirks=1)
    assert resident_scene({1: (*z, 1), 2: (*rel(z, 1, 0, 2), 0, BLUE)}, quirky, zap_timer=np.ones(NUM_PLAYERS, np.int32))[0] == FIRE_ZAP
    # Residents read the community from params.
    assert resident_scene({1: (*z, 1), 2: (*rel(z, 1, 0, 2), 0, BLUE)}, harvest_params(permitted=2))[0] == FORWARD


def test_resident_bystander_guard():
    z = (12, 14)
    scene = {1: (*z, 1), 2: (*rel(z, 1, 0, 2), 0, BLUE), 3: (*rel(z, 1, -1, 1), 0, RED)}
    assert resident_scene(scene)[0] != FIRE_ZAP, "a compliant bystander on another ray holds fire"
    assert resident_scene(scene, harvest_params(resident_guard=0))[0] == FIRE_ZAP
    immune3 = np.zeros(NUM_PLAYERS, bool)
    immune3[3] = True
    assert resident_scene(scene, immune=immune3)[0] == FIRE_ZAP, "an immune bystander only fizzles"


_hold_fire = jax.jit(hold_fire)


def test_comparison_only_foresight_guard_holds_fire_exactly_when_a_mis_sanction_is_possible():
    """The earlier foresight guard (kept only for the residents-only comparison): resident 1 fires at violator 2 (BLUE, straight ahead) unless this frame's joint
    action may put a hittable compliant avatar in its beam when the beam resolves."""
    z = (12, 14)
    everyone = np.ones(NUM_PLAYERS, bool)

    def case(a3=NOOP, a2=NOOP, t=30, params=P, immune3=False, residents=everyone, resolve=False, extra={}):
        agents = {1: (*z, 1), 2: (*rel(z, 1, 0, 2), 0, BLUE), 3: (*rel(z, 1, -2, 1), 1, RED), **extra}
        immune = np.zeros(NUM_PLAYERS, bool)
        immune[3] = immune3
        st = make_state(agents, t=t, immune=immune)
        acts = np.full(NUM_PLAYERS, NOOP, np.int32)
        acts[1], acts[2], acts[3] = FIRE_ZAP, a2, a3
        got = np.asarray(_hold_fire(st, jnp.asarray(acts), params, jnp.asarray(residents)))
        if resolve:  # mis-sanctions by resident 1 when the actions resolve as given / as held
            return [int(_step_all(jax.random.key(0), st, a, params)[2]["mis"][1]) for a in (jnp.asarray(acts), got)]
        return int(got[1])

    assert case() == FIRE_ZAP, "the bystander stays outside the beam"
    assert case(a3=STEP_RIGHT) == NOOP, "the bystander may step into the left ray"
    assert case(a3=FORWARD) == FIRE_ZAP, "it steps to (-2, 2), beside the beam"
    behind = {4: (*rel(z, 1, 0, 3), 1, RED)}  # compliant, behind the target on the centre ray
    assert case(extra=behind) == FIRE_ZAP, "the target stays and shields it"
    assert case(extra=behind, a2=STEP_LEFT) == NOOP, "the target may step aside and expose it"
    assert case(a3=STEP_RIGHT, resolve=True) == [1, 0], "...and would be mis-sanctioned"
    assert case(a3=STEP_RIGHT, immune3=True) == FIRE_ZAP, "an immune mover stays immune unless it turns grey"
    assert case(a3=STEP_RIGHT, immune3=True, t=10) == NOOP, "within the grace a mover that turns grey is compliant"
    assert case(a2=FIRE_ONE) == NOOP, "the target may plant the permitted colour (RED) first"
    assert case(a2=FIRE_THREE) == FIRE_ZAP, "planting BLUE keeps it violating"
    assert case(a3=STEP_RIGHT, params=harvest_params(resident_quirks=1)) == FIRE_ZAP, "quirks: no guards"
    ego1 = everyone.copy()
    ego1[1] = False
    assert case(a3=STEP_RIGHT, residents=ego1) == FIRE_ZAP, "the ego's own zaps are never changed"


def test_state_only_guard_holds_fire_when_any_action_could_mis_sanction():
    """guard 2 (default): resident 1 (facing east) fires at violator 2 (BLUE, 2 ahead) unless some
    avatar, whatever it does this frame, may be in the beam compliant and not immune."""
    z = find_spot({(-1, 1): True, (0, 3): True}, facing=1)
    ahead = patch_at(*rel(z, 1, 0, 3))  # the first patch on 2's colouring beam (2 faces east too)

    def case(at3=(-3, 1), t=30, immune3=False, ripe=False, plant2=False, ahead_color=BLUE, params=P):
        agents = {1: (*z, 1), 2: (*rel(z, 1, 0, 2), 1, BLUE), 3: (*rel(z, 1, *at3), 1, RED)}
        immune = np.zeros(NUM_PLAYERS, bool)
        immune[3] = immune3
        plant_timer = np.ones(NUM_PLAYERS, np.int32)
        plant_timer[2] = 0 if plant2 else 1
        color = np.array(PATCH_INIT_COLOR)
        color[ahead] = ahead_color
        return resident_scene(agents, params, t=t, immune=immune, plant_timer=plant_timer, berry_color=color,
                              berry_ripe=np.full(NUM_PATCHES, ripe))[0]

    assert case() == FIRE_ZAP, "the compliant avatar is two steps from the beam"
    assert case(at3=(-2, 1)) != FIRE_ZAP, "one step from the left ray: it may step in"
    assert case(at3=(-2, 1), params=harvest_params(resident_guard=1)) == FIRE_ZAP, "guard 1 reads positions only"
    assert case(at3=(-2, 1), immune3=True) == FIRE_ZAP, "immune, and grey after eating would violate (t >= grace)"
    assert case(at3=(-2, 1), immune3=True, t=10) == FIRE_ZAP, "in the grace, but no ripe berry to eat on the beam"
    assert case(at3=(-2, 1), immune3=True, t=10, ripe=True) != FIRE_ZAP, "it may eat at (-1, 1), turn grey, lose immunity"
    assert case(plant2=True) != FIRE_ZAP, "the target may plant the permitted colour (RED) on the BLUE berry ahead"
    assert case(plant2=True, ahead_color=RED) == FIRE_ZAP, "the berry ahead is RED already: planting it does nothing"
    assert case(at3=(0, 4)) != FIRE_ZAP, "behind the centre ray's end (0, 3): it may step back into it"
    assert case(at3=(0, 5)) == FIRE_ZAP, "two steps behind the centre ray's end"
    assert case(at3=(1, 3)) != FIRE_ZAP, "beside the centre ray's end"


@jax.jit
def _random_crowd_frame(key):
    """A crowded random frame (16 avatars in a 6 x 6 block, random colours, immunity, timers, ripe
    berries, before or after the grace) and a uniformly random joint action: ``(beam_risk, events)``."""
    ks = jax.random.split(key, 10)
    cells = jax.random.permutation(ks[0], 36)[:NUM_PLAYERS]
    pos = jnp.stack([10 + cells // 6, 12 + cells % 6], -1).astype(jnp.int32)
    params = P.replace(permitted=jax.random.randint(ks[1], (), 0, 3))
    st = reset_world(ks[2], params).replace(
        pos=pos, facing=jax.random.randint(ks[3], (NUM_PLAYERS,), 0, 4), body=jax.random.randint(ks[4], (NUM_PLAYERS,), 0, 4),
        immune=jax.random.bernoulli(ks[5], 0.3, (NUM_PLAYERS,)), plant_timer=jax.random.randint(ks[6], (NUM_PLAYERS,), 0, 2),
        berry_ripe=jax.random.bernoulli(ks[7], 0.3, (NUM_PATCHES,)), t=jnp.where(jax.random.bernoulli(ks[8]), 10, 40))
    actions = jax.random.randint(ks[9], (NUM_PLAYERS,), 0, NUM_ACTIONS)
    _, _, ev = step_all(jax.random.fold_in(key, 1), st, actions, params)
    return beam_risk(st, params), ev


def test_state_only_guard_is_conservative_over_every_joint_action():
    """Wherever ``beam_risk`` is False, a zap lands no mis-sanction whatever the joint action (4096
    random crowded frames, uniformly random actions, random agent order)."""
    risk, ev = jax.vmap(_random_crowd_frame)(jax.random.split(jax.random.key(21), 4096))
    risk, mis, correct = np.asarray(risk), np.asarray(ev["mis"]), np.asarray(ev["correct"])
    assert not (mis[~risk] > 0).any(), "a mis-sanction the guard did not foresee"
    assert (mis[risk] > 0).sum() > 20, "the test must see mis-sanctions (where the guard holds fire)"
    assert (correct[~risk] > 0).sum() > 20, "the guard must let correct sanctions through"


def test_veto_scene_residents_act_from_the_state_alone():
    """The issue's scene: a grey ego violates at t=100 (RED) inside a ready resident's beam, its
    colouring beam cooling down. The resident's action and the ego's -10 do not depend on the ego's
    action (before, planting the permitted colour in the same frame made the resident hold fire)."""
    z = find_spot({(0, 3): True}, facing=1)
    params = harvest_params(permitted="RED")
    step = jax.jit(ENV.step)
    joint = jax.jit(ENV.joint_actions)
    for plant_timer0, fires in ((1, True), (0, False)):  # cooling down; ready in front of a non-RED berry
        plant_timer = np.ones(NUM_PLAYERS, np.int32)
        plant_timer[0] = plant_timer0
        color = np.array(PATCH_INIT_COLOR)
        color[patch_at(*rel(z, 1, 0, 3))] = BLUE
        st = make_state({1: (*z, 1), 0: (*rel(z, 1, 0, 1), 1, GREY)}, t=100, plant_timer=plant_timer, berry_color=color,
                        last_plant_t=np.full(NUM_PLAYERS, 100, np.int32))
        outcomes = []
        for ego_action in range(NUM_ACTIONS):
            key = jax.random.key(3)
            res = int(joint(env_step_keys(key)[1], st, jnp.int32(ego_action), params)[0][1])
            assert (res == FIRE_ZAP) == fires, (plant_timer0, ego_action, res)
            outcomes.append(res)
            if ego_action in (NOOP, FIRE_ONE):
                _, _, _, _, _, info = step(key, st, jnp.int32(ego_action), params)
                assert float(info["ep_minus10_received"]) == float(fires), (plant_timer0, ego_action)
        assert len(set(outcomes)) == 1, "the resident's action is independent of the ego's"


@pytest.mark.parametrize("facing,offset,fixed,quirky", [
    (0, (0, 2), TURN_RIGHT, TURN_RIGHT),  # target east, facing north
    (2, (0, 2), TURN_LEFT, TURN_RIGHT),  # facing south: the quirk wants S, already faces it, turns right
    (3, (0, 2), TURN_RIGHT, TURN_LEFT),  # facing west: half a turn (right) vs the quirk's S (left)
    (1, (-3, 0), TURN_LEFT, TURN_RIGHT),  # target north, facing east; the quirk wants W
    (3, (-3, 0), TURN_RIGHT, TURN_RIGHT),  # target north, facing west; the quirk already faces W
    (0, (1, -2), TURN_LEFT, TURN_RIGHT),  # larger column offset -> W; the quirk wants N, already faces it
])
def test_resident_turns_toward_could_zap_target(facing, offset, fixed, quirky):
    z = (12, 14)
    scene = {1: (*z, facing), 2: (z[0] + offset[0], z[1] + offset[1], 0, BLUE)}
    assert resident_scene(scene)[0] == fixed
    assert resident_scene(scene, harvest_params(resident_quirks=1))[0] == quirky


def test_resident_turn_target_selection_wrap_and_masking():
    z = (12, 14)
    # The nearest eligible target decides (east at 2 beats north at 3); ties go to the lowest index.
    assert resident_scene({1: (*z, 2), 2: (12, 16, 0, BLUE), 3: (9, 14, 0, BLUE)})[0] == TURN_LEFT
    assert resident_scene({1: (*z, 2), 3: (12, 16, 0, BLUE), 2: (12, 12, 0, BLUE)})[0] == TURN_RIGHT  # 2 is west
    assert resident_scene({1: (*z, 2), 2: (12, 16, 0, BLUE), 3: (12, 12, 0, BLUE)})[0] == TURN_LEFT  # 2 is east
    # Across the torus edge: column 1 is two east of column 28; the quirky controller does not wrap.
    assert resident_scene({1: (12, 28, 0), 2: (12, 1, 0, BLUE)})[0] == TURN_RIGHT
    # (with quirks P1 does not apply; the shared gate never closes, so it plants)
    assert resident_scene({1: (12, 28, 0), 2: (12, 1, 0, BLUE)}, harvest_params(resident_quirks=1))[0] == FIRE_ONE
    # Facing the target but masked by a compliant avatar: P1 does not apply (the quirk turns right).
    masked = {1: (*z, 1), 2: (*rel(z, 1, 0, 1), 0, RED), 3: (*rel(z, 1, 0, 2), 0, BLUE)}
    assert resident_scene(masked)[0] == FORWARD
    assert resident_scene(masked, harvest_params(resident_quirks=1))[0] == TURN_RIGHT


def test_resident_p2_harvest_and_p3_plant_gate():
    b = patch_at(*find_spot({(0, 0): True}))
    x = tuple(PATCH_POS[b])
    near, far = rel(x, 0, -2, -2), rel(x, 0, -1, -3)  # offsets (2, 2) and (3, 1): distances 2.83 and 3.16
    assert resident_scene({1: (*near, 0)}, patrol=TURN_LEFT, berry_ripe=ripe_at(b))[0] == FORWARD
    assert resident_scene({1: (*far, 0)}, patrol=TURN_LEFT, berry_ripe=ripe_at(b))[0] == TURN_LEFT
    # The gate: plant at t, not at t + 1 (patrol instead), again at t + 2; per resident.
    for permitted in range(3):
        params = harvest_params(permitted=permitted)
        a, st = resident_scene({1: (12, 14, 0)}, params, t=40, patrol=TURN_LEFT, last_plant_t=np.full(NUM_PLAYERS, NEVER, np.int32))
        assert a == FIRE_ONE + permitted and int(st.last_plant_t[1]) == 40
        got = [int(_residents(jax.random.key(0), st.replace(t=jnp.int32(t)), params)[0][1]) for t in (41, 42)]
        assert got == [TURN_LEFT, FIRE_ONE + permitted]
    # The quirky shared gate never closes.
    quirky = harvest_params(resident_quirks=1)
    a, st = resident_scene({1: (12, 14, 0)}, quirky, t=40, last_plant_t=np.full(NUM_PLAYERS, NEVER, np.int32))
    assert a == FIRE_ONE and int(_residents(jax.random.key(0), st.replace(t=jnp.int32(41)), quirky)[0][1]) == FIRE_ONE


def test_resident_p4_patrol_persists_for_8_calls():
    st = make_state({1: (12, 14, 0)}, t=5, last_plant_t=np.full(NUM_PLAYERS, 5, np.int32))
    actions, lefts = [], []
    for i in range(25):
        a, st = _residents(jax.random.key(i), st, P)
        actions.append(int(a[1]))
        lefts.append(int(st.patrol_left[1]))
    assert lefts == [8, 7, 6, 5, 4, 3, 2, 1] * 3 + [8]
    for block in range(3):
        assert len(set(actions[8 * block: 8 * block + 8])) == 1
    assert set(actions) <= {FORWARD, TURN_LEFT, TURN_RIGHT}
    # Draws are uniform over the three patrol actions.
    keys = jax.random.split(jax.random.key(9), 3000)
    a = np.asarray(jax.vmap(lambda k: _residents(k, st.replace(patrol_left=jnp.zeros(NUM_PLAYERS, jnp.int32)), P)[0][1])(keys))
    freq = np.array([(a == x).mean() for x in (FORWARD, TURN_LEFT, TURN_RIGHT)])
    assert np.abs(freq - 1 / 3).max() < 4 * np.sqrt(2 / 9 / 3000), freq
