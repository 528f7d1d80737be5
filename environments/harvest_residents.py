"""The scripted residents of normative allelopathic harvest: a priority policy, as a pure,
vectorised function of the true world state.

Every step each resident takes the first rule that applies:

P1 Enforce (only when its zap is ready, ``zap_timer == 0``). *Eligible* = violating the posted
   rule and not immune. If its zap would hit an eligible avatar now (the exact beam: the first
   avatar on each ray, from the current positions) -> FIRE_ZAP, unless the guard holds fire
   (``params.resident_guard``, default 2: the state-only guard; see below).
   Otherwise, among eligible avatars it *could* zap (torus distance <= 3 and within 1 cell of a
   cardinal axis through it) pick the nearest (ties: lowest index) and turn one step toward the
   axis of its larger displacement (TURN_RIGHT when clockwise is not longer than anticlockwise).
   If it already faces that way (the target is masked by another avatar) P1 does not apply.
P2 Harvest: a ripe berry within distance 3 (its own cell included) -> FORWARD.
P3 Plant, gated per resident: only if >= 2 frames have passed since it last chose to plant.
   Then if the nearest unripe berry is at distance < 3 -> plant the permitted colour (the beam
   fires straight ahead, whatever is there); else if one is at distance 3 -> FORWARD. (On this
   map every cell has a patch within distance 2.24, so with the gate open a resident without a
   ripe berry nearby always plants; the FORWARD branch is kept for other maps.)
P4 Patrol: repeat the current patrol action (FORWARD, TURN_LEFT or TURN_RIGHT); every 8th
   patrol call draws a new one uniformly (the first call draws one).

Distances are Euclidean over the torus (minimal image). Residents see everything (privileged)
and read the permitted colour from ``params``, so they act identically in treatment and control.

The guards are an rljax addition for the original's acceptance test R1 (residents never
mis-sanction). Residents decide from the state *before* the step alone (the ego's view calls them
before it knows anybody's action of the frame), so a guard must be conservative over every action
any avatar could take in the frame. ``params.resident_guard``:

0  P1 as the original wrote it: about one in seven of the residents' landed sanctions is a
   mis-sanction (another ray of the beam meets a compliant avatar, or avatars move into the beam
   or change colour in the frame of the zap).
1  bystander guard: hold fire when the beam, from the current positions, would also meet a
   compliant, non-immune avatar. About 2 in 115 landed sanctions remain mis-sanctions: avatars
   that step into the beam, or change colour (planting the permitted colour, or turning grey
   within the grace) in the frame of the zap, under the random agent order.
2  (default) the state-only guard, :func:`beam_risk`: hold fire when any other avatar, whatever
   it does this frame, *may* stand on one of the beam's 9 cells and be compliant and not immune
   when the beam resolves: at its cell or a neighbouring one (every move reaches one of the 4
   neighbours), with its colour as it is, grey after eating a ripe berry it steps onto (compliant
   only within the grace), or the permitted colour after planting it (only when its colouring beam
   is ready and meets a patch of another colour). That rules out every mis-sanction by a resident
   (R1 exactly) without reading anybody's action; the cost is sanctions held back whenever a
   compliant avatar is one step from the beam.

:func:`hold_fire` is the earlier *foresight* guard (it read the frame's joint action, the ego's
included, so an ego could veto its own sanction by what it did in the same frame). It is kept
only to compare the residents-only world with it (``rljax.experiments.communities.bench_env --share``);
nothing in the ego's view uses it.

``params.resident_quirks = 1`` restores the original controller's quirks: the plant gate is
shared by all residents (so it never closes), the turn maps the larger column offset to N/S and
the larger row offset to E/W and turns right when already facing, readiness is read from
``ready_to_shoot > 0.5`` (one frame early, so it may press while cooling down), distances are
taken without wrapping around the torus, and there is no bystander guard.

The random patrol draws come from the residents' key, one per slot per step whether used or not,
so the random stream does not depend on what anybody did.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rljax.environments.harvest import (
    CELL_PATCH_PAD, FIRE_ONE, FIRE_ZAP, FORWARD, GREY, HEIGHT, NOOP, NUM_CELLS, NUM_PATCHES, NUM_PLAYERS,
    PLANT_OFFSETS, RED, STEP_RIGHT, TURN_LEFT, TURN_RIGHT, WIDTH, ZAP_OFFSETS, HarvestParams, HarvestState, move_deltas, flat_index, violating,
    wrap, zap_hits,
)

Array = jax.Array

# The original looked for targets within distance 5; "could zap" (<= 3) lies inside that.
COULD_ZAP_RANGE = 3.0  # beam length
COULD_ZAP_LATERAL = 1.5  # beam radius + 0.5
BERRY_RADIUS = 3  # ripe berries (P2) and unripe berries (P3) are looked for within this distance
PLANT_DISTANCE = 3.0  # plant when the nearest unripe berry is closer than this
PLANT_GATE = 2  # frames between a resident's plant decisions
PATROL_PERSISTENCE = 8
PATROL_ACTIONS = np.array([FORWARD, TURN_LEFT, TURN_RIGHT], np.int32)

# The cells within BERRY_RADIUS of a resident, as (drow, dcol) offsets.
_r = np.arange(-BERRY_RADIUS, BERRY_RADIUS + 1)
_dr, _dc = np.meshgrid(_r, _r, indexing="ij")
_disc = _dr**2 + _dc**2 <= BERRY_RADIUS**2
DISC_OFFSETS = np.stack([_dr[_disc], _dc[_disc]], -1).astype(np.int32)  # [29, 2]


def _disc_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell, the patches within BERRY_RADIUS (padded with NUM_PATCHES), their distances and
    whether they are reached without wrapping around the torus: one row gather per resident
    instead of a gather per disc cell."""
    rows = []
    for cell in range(HEIGHT * WIDTH):
        r, c = divmod(cell, WIDTH)
        found = []
        for dr, dc in DISC_OFFSETS:
            rr, cc = r + dr, c + dc
            patch = CELL_PATCH_PAD[(rr % HEIGHT) * WIDTH + cc % WIDTH]
            if patch < NUM_PATCHES:
                found.append((patch, np.sqrt(dr * dr + dc * dc), 0 <= rr < HEIGHT and 0 <= cc < WIDTH))
        rows.append(found)
    k = max(len(f) for f in rows)
    patch = np.full((len(rows), k), NUM_PATCHES, np.int32)
    dist = np.full((len(rows), k), np.inf, np.float32)
    inside = np.zeros((len(rows), k), bool)
    for i, found in enumerate(rows):
        for j, (b, d, ins) in enumerate(found):
            patch[i, j], dist[i, j], inside[i, j] = b, d, ins
    return patch, dist, inside


DISC_PATCH, DISC_DIST, DISC_INSIDE = _disc_tables()  # [H*W, 19]


def _torus_delta(d: Array, size: int) -> Array:
    """Minimal-image offset in ``[-size//2, size - size//2)``."""
    return (d + size // 2) % size - size // 2


def desired_facing(drow: Array, dcol: Array, quirks: Array) -> Array:
    """The facing toward an offset: the axis of the larger displacement (ties: rows)."""
    horiz = jnp.abs(dcol) > jnp.abs(drow)
    fixed = jnp.where(horiz, jnp.where(dcol > 0, 1, 3), jnp.where(drow > 0, 2, 0))
    # The original maps the larger column offset to S/N and the larger row offset to E/W.
    quirky = jnp.where(horiz, jnp.where(dcol > 0, 2, 0), jnp.where(drow > 0, 1, 3))
    return jnp.where(quirks > 0, quirky, fixed).astype(jnp.int32)


def resident_actions(key: Array, state: HarvestState, params: HarvestParams) -> tuple[Array, HarvestState]:
    """Actions ``int32[16]`` of the resident policy for every slot (slot 0 is used only in the
    baseline) and the state with the residents' memory (patrol, plant gate) updated."""
    n = NUM_PLAYERS
    t = state.t
    quirks = params.resident_quirks > 0
    ids = jnp.arange(n)
    pos, facing = state.pos, state.facing

    # -- P1 enforce -----------------------------------------------------------------------------
    ready = jnp.where(quirks, 2 * state.zap_timer < params.zap_cooldown, state.zap_timer == 0)
    eligible = violating(state.body, t, params) & ~state.immune  # [16]
    hits = zap_hits(pos, facing)  # [16, 3]
    hit = jnp.maximum(hits, 0)
    hit_eligible = (hits >= 0) & eligible[hit]
    # A bystander: compliant and not immune, so hitting it would be a mis-sanction.
    hit_bystander = (hits >= 0) & ~violating(state.body, t, params)[hit] & ~state.immune[hit]
    guard = (params.resident_guard > 0) & ~quirks
    held = jnp.where(params.resident_guard >= 2, beam_risk(state, params), jnp.any(hit_bystander, axis=1))
    fire = ready & jnp.any(hit_eligible, axis=1) & ~(guard & held)

    raw = pos[None, :, :] - pos[:, None, :]  # [i, j, 2] offset of j seen from i
    drow = jnp.where(quirks, raw[..., 0], _torus_delta(raw[..., 0], HEIGHT))
    dcol = jnp.where(quirks, raw[..., 1], _torus_delta(raw[..., 1], WIDTH))
    d2 = drow**2 + dcol**2
    dist = jnp.sqrt(d2.astype(jnp.float32))
    lateral = jnp.minimum(jnp.abs(drow), jnp.abs(dcol))
    could = ((ids[:, None] != ids[None, :]) & (dist <= COULD_ZAP_RANGE) & (lateral <= COULD_ZAP_LATERAL)
             & eligible[None, :])
    rank = jnp.where(could, d2 * n + ids[None, :], jnp.iinfo(jnp.int32).max)
    target = jnp.argmin(rank, axis=1)
    has_target = jnp.any(could, axis=1)
    want = desired_facing(jnp.take_along_axis(drow, target[:, None], 1)[:, 0],
                          jnp.take_along_axis(dcol, target[:, None], 1)[:, 0], params.resident_quirks)
    cw = (want - facing) % 4
    ccw = (facing - want) % 4
    turn = jnp.where(cw <= ccw, TURN_RIGHT, TURN_LEFT)
    turn = jnp.where(cw == 0, TURN_RIGHT, turn)  # only reached with quirks
    do_turn = ready & ~fire & has_target & ((cw != 0) | quirks)

    # -- P2 harvest / P3 plant: berries within radius 3 ----------------------------------------------
    cell = flat_index(pos)
    patch = jnp.asarray(DISC_PATCH)[cell]  # [16, 19], NUM_PATCHES = padding
    # without wrapping (quirks), patches across the map's edge are not seen
    seen = (patch < NUM_PATCHES) & (jnp.asarray(DISC_INSIDE)[cell] | ~quirks)
    ripe = jnp.concatenate([state.berry_ripe, jnp.zeros((1,), bool)])[patch]
    any_ripe = jnp.any(seen & ripe, axis=1)
    nearest_unripe = jnp.min(jnp.where(seen & ~ripe, jnp.asarray(DISC_DIST)[cell], jnp.inf), axis=1)
    gate_open = quirks | (t - state.last_plant_t >= PLANT_GATE)
    plant = gate_open & (nearest_unripe < PLANT_DISTANCE)
    approach = gate_open & jnp.isfinite(nearest_unripe) & ~plant

    # -- P4 patrol ----------------------------------------------------------------------------------
    # bits % 3 is uniform up to 2**-32; one cheap RNG call
    draw = jnp.asarray(PATROL_ACTIONS)[jax.random.bits(key, (n,), jnp.uint32) % len(PATROL_ACTIONS)]
    left = state.patrol_left - 1
    renew = left <= 0
    patrol_action = jnp.where(renew, draw, state.patrol_action)
    patrol_left = jnp.where(renew, PATROL_PERSISTENCE, left)

    plant_action = FIRE_ONE + params.permitted  # community 0..2 -> FIRE_ONE..FIRE_THREE
    action = jnp.select(
        [fire, do_turn, any_ripe, plant, approach],
        [jnp.full((n,), FIRE_ZAP), turn, jnp.full((n,), FORWARD), jnp.broadcast_to(plant_action, (n,)), jnp.full((n,), FORWARD)],
        patrol_action,
    ).astype(jnp.int32)
    p1 = fire | do_turn
    patrols = ~p1 & ~any_ripe & ~plant & ~approach
    planted_now = ~p1 & ~any_ripe & plant
    new_state = state.replace(
        patrol_action=jnp.where(patrols, patrol_action, state.patrol_action),
        patrol_left=jnp.where(patrols, patrol_left, state.patrol_left),
        last_plant_t=jnp.where(planted_now, t, state.last_plant_t),
    )
    return action, new_state


# The cells an avatar may occupy after this frame's moves: where it is, and its 4 neighbours.
STAY_AND_NEIGHBOURS = np.array([(0, 0), (-1, 0), (0, 1), (1, 0), (0, -1)], np.int32)


def beam_risk(state: HarvestState, params: HarvestParams) -> Array:
    """``bool[16]``: whether player ``i``'s zap, fired this frame, *could* land on a compliant
    target, whatever anybody does this frame (the state-only guard, ``resident_guard=2``).

    A function of the state before the step alone. Avatar ``j != i`` is a risk on a cell when,
    at the moment the beam resolves (after the moves, in any agent order), it may stand there
    compliant and not immune:

    * at its cell or any of its 4 neighbours with its colour and immunity as they are (a move
      that eats but does not turn it grey changes neither);
    * at a neighbour holding a ripe berry, grey and not immune (eating may turn it grey, which
      clears immunity), when grey is compliant (``t < startup_grey_grace``);
    * at its cell with the permitted colour and not immune, when its colouring beam is ready and
      the first patch within 3 cells ahead has another colour (planting it recolours the body;
      an avatar in front may step away, a berry eaten this frame may become unripe).

    Avatars that do not stay are never certain to shield a cell, so every cell of the beam's
    three rays counts. Immunity does not time out before the beams resolve, and nothing else
    changes a body's colour, so no mis-sanction is possible where this is False.
    """
    n = NUM_PLAYERS
    t = state.t
    as_is = ~violating(state.body, t, params) & ~state.immune  # [16]
    cand = wrap(state.pos[:, None, :] + jnp.asarray(STAY_AND_NEIGHBOURS)[None])  # [16, 5, 2]
    cand_cell = flat_index(cand)
    ripe_pad = jnp.concatenate([state.berry_ripe, jnp.zeros((1,), bool)])
    ripe_cell = ripe_pad[jnp.asarray(CELL_PATCH_PAD)[cand_cell]]  # [16, 5]
    grey_ok = ~violating(jnp.asarray(GREY), t, params)
    # the first patch on the colouring beam (avatars may step away, so they do not stop it here)
    ahead = flat_index(wrap(state.pos[:, None, :] + jnp.asarray(PLANT_OFFSETS)[state.facing]))  # [16, 3]
    patch = jnp.asarray(CELL_PATCH_PAD)[ahead]
    first = jnp.argmax(patch < NUM_PATCHES, axis=1)
    target = jnp.take_along_axis(patch, first[:, None], 1)[:, 0]
    color_pad = jnp.concatenate([state.berry_color, jnp.zeros((1,), jnp.int32)])
    can_plant_permitted = ((state.plant_timer == 0) & (target < NUM_PATCHES)
                           & (color_pad[target] != params.permitted + 1))
    is_stay = jnp.arange(STAY_AND_NEIGHBOURS.shape[0]) == 0
    mark = (as_is[:, None] | (is_stay[None] & can_plant_permitted[:, None])
            | (~is_stay[None] & ripe_cell & grey_ok))  # [16, 5]
    count = jnp.zeros((NUM_CELLS,), jnp.int32).at[cand_cell.reshape(-1)].add(mark.reshape(-1).astype(jnp.int32))
    beam = flat_index(wrap(state.pos[:, None, None, :] + jnp.asarray(ZAP_OFFSETS)[state.facing])).reshape(n, -1)  # [16, 9]
    # the zapper itself does not move while it fires: take its own marks out
    own = jnp.sum((beam[:, :, None] == cand_cell[:, None, :]) & mark[:, None, :], axis=2)  # [16, 9]
    return jnp.any(count[beam] - own > 0, axis=1)


def hold_fire(state: HarvestState, actions: Array, params: HarvestParams, residents: Array) -> Array:
    """The earlier *foresight* guard, for comparisons only (it reads the frame's joint action,
    which the ego's view never gives its residents): the joint action ``int32[16]`` with
    FIRE_ZAP replaced by NOOP for every resident (mask ``residents[16]``) whose beam could
    mis-sanction given this frame's joint ``actions`` (no quirks; otherwise unchanged).

    Conservative and exact in the sense that no held resident's beam can land on a compliant
    target: an avatar ``j`` may be on the beam's 9 cells after the moves only at its current cell
    or the cell its action moves it to (a blocked move stays), and when the beam resolves its
    (colour, immunity) is its current one, or (GREY, not immune) after eating on a move, or (the
    planted colour, not immune) after planting. ``j`` is a risk when one of those is compliant and
    not immune; cells behind an avatar that is safe in every case and does not move are out of
    reach. Holding fire changes nobody's position or colour, so one pass is enough.
    """
    t = state.t
    moves = (actions >= FORWARD) & (actions <= STEP_RIGHT)  # FORWARD, BACKWARD, STEP_LEFT, STEP_RIGHT
    plants = actions >= FIRE_ONE
    planted_color = actions - (FIRE_ONE - RED)
    as_is = ~violating(state.body, t, params) & ~state.immune
    greyed = moves & ~violating(jnp.full_like(state.body, GREY), t, params)
    planted = plants & ~violating(planted_color, t, params)
    risky = as_is | greyed | planted  # [16]
    target = wrap(state.pos + move_deltas(actions, state.facing))
    cells = jnp.concatenate([flat_index(state.pos), flat_index(target)])
    risky_cell = jnp.zeros((HEIGHT * WIDTH,), bool).at[cells].max(jnp.concatenate([risky, risky]))
    # A safe avatar that does not move is certainly there and stops the ray: cells behind it are out.
    wall = jnp.zeros((HEIGHT * WIDTH,), bool).at[flat_index(state.pos)].max(~moves & ~risky)
    beam = flat_index(wrap(state.pos[:, None, None, :] + jnp.asarray(ZAP_OFFSETS)[state.facing]))  # [16, 3 rays, 3 cells]
    w = wall[beam]
    shadow = jnp.stack([jnp.zeros_like(w[..., 0]), w[..., 0], w[..., 0] | w[..., 1]], -1)
    at_risk = jnp.any(risky_cell[beam] & ~shadow, axis=(1, 2))
    active = params.resident_quirks == 0
    hold = active & residents & (actions == FIRE_ZAP) & (state.zap_timer == 0) & at_risk
    return jnp.where(hold, NOOP, actions).astype(jnp.int32)
