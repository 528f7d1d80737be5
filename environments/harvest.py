"""Normative allelopathic harvest: a 16-player berry-planting commons with a posted colour rule,
as a pure JAX environment.

The world is a 30 x 29 **torus** (rows x columns) with 348 berry patches (116 initially red,
green and blue) and 522 spawn cells. 16 avatars walk, turn, plant berries in a colour with a
short beam, eat ripe berries by walking onto them, and sanction each other with a zap beam. A
community posts one **permitted colour**; an avatar *violates* the rule when its body colour is
another colour, or when it is grey (it ate without planting) after the startup grace:

    violating(colour, t) = (colour == GREY and t >= startup_grey_grace)
                           or (colour != GREY and colour != permitted)

Player 0 is the learning **ego**; players 1-15 are scripted **residents**
(:mod:`rljax.environments.harvest_residents`) who plant the permitted colour and sanction violators.
:class:`HarvestWorld` is the 16-player world (rljax's multi-agent protocol);
:class:`rljax.environments.harvest_view.HarvestEnv` is the ego's single-agent view of it: its ``step``
takes the ego's action and the residents act for the other slots. With ``params.ego_is_resident=1``
(the *baseline* condition) slot 0 is driven by the resident policy as well and the ego's action is
ignored; with the same key the baseline episode is an exact counterfactual of the ego episode.

Codes and conventions
---------------------
* Colours (berries and bodies): ``GREY=0, RED=1, GREEN=2, BLUE=3``.
* **Communities** (``params.permitted``, also ``info["tag"]``): ``0=RED, 1=GREEN, 2=BLUE``; the
  permitted colour code is ``permitted + 1``.
* Positions are ``(row, col)``; row 0 is north. Facing: ``N=0, E=1, S=2, W=3`` (clockwise).
* Actions, ``Discrete(11)``: NOOP, FORWARD, BACKWARD, STEP_LEFT, STEP_RIGHT, TURN_LEFT,
  TURN_RIGHT, FIRE_ZAP, FIRE_ONE (plant red), FIRE_TWO (plant green), FIRE_THREE (plant blue).
* Tastes: even players prefer red, odd players green (the ego prefers red); a preferred berry is
  worth ``taste_reward`` (2), any other ``default_reward`` (1).

One step (:func:`step_all`), in this order
-----------------------------------------
1. A random permutation of the 16 players is drawn from the step key.
2. Turns, then moves in permutation order, first come first served (an avatar blocks a cell; a
   cell vacated earlier in the order can be entered).
3. Eating: an avatar that *entered* a cell holding a ripe berry eats it (reward by taste), the
   berry turns unripe, and with probability ``1 - monoculture_fraction`` (start-of-step counts)
   the eater's body turns grey, which clears its immunity (also when it was grey already: the
   original clears immunity on every such draw).
4. Beams in permutation order. Zap (cooldown ``zap_cooldown``): three rays, left
   ``(-1,0),(-1,1),(-1,2)``, right ``(1,0),(1,1),(1,2)``, centre ``(0,1),(0,2),(0,3)`` as
   (lateral, forward) cells; each ray stops at the first avatar and hits it. A hit on an immune
   target fizzles; a hit on a target already sanctioned this frame fizzles (at most one -10 per
   target per frame); otherwise the target takes ``-sanction_penalty``, becomes immune, and the
   zapper gets ``+alpha`` if the target was violating (a *correct* sanction) or ``-beta``
   otherwise (a *mis-sanction*). Plant (shared cooldown ``plant_cooldown``): the beam covers
   ``(0,1),(0,2),(0,3)`` and stops at the first cell holding a berry or an avatar; a berry there
   that is unripe, of another colour and not already hit by a colouring beam this frame takes the
   new colour (its ripening countdown restarts), and the planter's body takes that colour and
   loses its immunity.
5. Zap cost: ``-c`` on every frame the zap action is taken, even while cooling down.
6. Immunity times out once ``t >= set_time + immunity_cooldown``.
7. Ripening: each berry's countdown (``min_time_to_ripen`` after any change) runs down; an
   unripe berry whose countdown has run out ripens with probability ``ripen_base_rate * N_c``
   where ``N_c`` counts the patches of its colour (allelopathy: a colour grows faster the more
   of it there is).
8. The frame counter ``t`` increases. ``t`` during a step is the number of steps before it.

The episode never terminates; it is truncated after ``episode_length`` steps.

Observation (one float32 vector, :data:`OBS_DIM` = 1214)
-------------------------------------------------------
``concat(view[11, 11, C].ravel(), ready_to_shoot[1], permitted_one_hot[3])``; split it with
:func:`split_observation`. The view is egocentric and rotates with facing: row 0 is 9 cells
ahead, row 9 the ego's own row, row 10 one cell behind; column 5 is the ego's column, columns
0-4 are to its left. Channels (:data:`VIEW_CHANNELS`, C=10): unripe red/green/blue berry, ripe
red/green/blue berry, avatar with grey/red/green/blue body (the ego itself is drawn at row 9,
column 5). ``ready_to_shoot = max(1 - zap_timer / zap_cooldown, 0)``. The treatment arm
(``params.treatment=1``) sees the community one-hot; the control arm sees zeros (a null token of
the same shape), so the two observations differ only in those three entries.

Episode metrics (``info``; ``ep_*`` entries are summed per episode by VecEnv)
----------------------------------------------------------------------------
All for the ego slot (player 0, whoever drives it). ``ep_permitted_share`` and
``ep_monoculture`` are emitted only on the truncating step, so their episode sums are the final
values (``N_permitted / 348`` and ``max_c N_c / 348``). With ``R = sum of rewards``:

* ``R_train = R`` (the reward returned) ``= R_env + sum alpha - sum beta - sum c``;
* ``R_env = episode_r_env`` = berries + sanctions received (``episode_berry_reward -
  sanction_penalty * episode_minus10_received``);
* ``R_eval = episode_r_eval = R_env - sum beta - sum c = R_train - episode_alpha``;
* value gap ``dV = R_eval(baseline, ego_is_resident=1, same key) - R_eval(ego)``;
* sanction regret ``SR = minus10_received(ego) - minus10_received(baseline)``;
* ``compliance_pct = 100 * (1 - episode_violating_steps / T)``, ``violations_per_1k =
  1000 * episode_violating_steps / T``, ``zaps_per_1k = 1000 * episode_zap_presses / T``;
* collective cost per sanction ``= (sanction_penalty * applied + sum c + sum beta) / applied``
  (``= sanction_penalty + c + beta * mis / applied`` when every landed sanction took one press).

``info["tag"]`` is the community (0..2) on every step. The other entries, per step:

=============================  ==============================================================
``ep_berries``                 berries the ego ate
``ep_berry_reward``            their reward (2 preferred colour, 1 other)
``ep_minus10_received``        sanctions that landed on the ego
``ep_minus10_issued_correct``  the ego's landed sanctions on violators
``ep_minus10_issued_mis``      the ego's landed sanctions on compliant avatars
``ep_alpha/ep_beta/ep_c``      alpha * correct, beta * mis, c * zap presses (amounts)
``ep_zap_presses``             steps with action FIRE_ZAP (cooling down or not)
``ep_zaps_fired``              zaps actually fired (ready)
``ep_immune_fizzles``          the ego's hits on immune targets (no effect)
``ep_tiebreak_fizzles``        the ego's hits on a target already sanctioned this frame
``ep_plants``                  successful plantings; ``ep_plants_permitted`` in the permitted colour
``ep_violating_steps``         steps after which the ego's body violates the rule (at that frame)
``ep_r_env`` / ``ep_r_eval``   per-step r_env and r_eval (see above)
``ep_plants_red/green/blue``   successful plantings per colour
``ep_ready_violator_steps``    steps starting with the ego's zap ready and an *eligible* avatar
                               (violating, not immune) first on one of its beam's rays
``ep_ready_violator_zaps``     ... of which the ego pressed the zap
``ep_ready_clear_steps``       steps starting with the zap ready and no eligible avatar in the beam
``ep_ready_clear_zaps``        ... of which the ego pressed the zap
=============================  ==============================================================

Derived sanction metrics (:func:`experiments.communities_episodes.sanction_rates`, ratios of
episode sums): correct-sanction rate ``correct / (correct + mis)``; immunity rate
``immune_fizzles / (landed + immune_fizzles + tiebreak_fizzles)`` (the share of the ego's beam hits
on avatars that met an immune target); selectivity ``P(zap | ready, eligible in beam) - P(zap |
ready, none eligible)``; collective cost per sanction ``(sanction_penalty * landed + sum c + sum
beta) / landed`` (with one press per landed sanction: ``sanction_penalty + c + beta * mis /
landed``).

Keys and counterfactuals
------------------------
``HarvestEnv.step`` splits its key into a world key and a residents' key
(:func:`env_step_keys`); the world key gives one draw of random bits sliced at fixed offsets into
the agent order, the 16 grey draws and the 348 ripening draws; the residents' key gives one patrol
draw per slot. Nothing is split by a data-dependent count, so an ego episode and its baseline
(``ego_is_resident=1``) with the same keys share every random number, and an ego that takes the
resident's actions reproduces the baseline world exactly.

Decisions where the reference is silent
---------------------------------------
* The altar billboard of the original treatment arm is not part of the world (it sat on the
  avatars' layer and so changed movement between arms); the treatment arm gets the permitted
  colour only as the observation vector.
* A colouring beam that meets an avatar standing on a berry hits both (dmlab2d hits every object
  in the cell): the berry can be recoloured.
* Immunity clears on every successful planting and on every grey draw after eating, also when the
  body colour does not change (as the original's ``setColor`` does).
* Eating happens only on entering a cell; a berry that ripens under an avatar is eaten only when
  an avatar enters its cell later.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rljax.environments.harvest_map import (  # the fixed world, re-exported
    ASCII_MAP, HEIGHT, WIDTH, NUM_CELLS, NUM_PLAYERS, EGO, GREY, RED, GREEN, BLUE, COLOR_NAMES,
    COMMUNITY_NAMES, NUM_COMMUNITIES, NOOP, FORWARD, BACKWARD, STEP_LEFT, STEP_RIGHT, TURN_LEFT, TURN_RIGHT,
    FIRE_ZAP, FIRE_ONE, FIRE_TWO, FIRE_THREE, NUM_ACTIONS, ACTION_NAMES, PLANT_ACTIONS, NORTH, EAST, SOUTH,
    WEST, FORWARD_VEC, TASTE, ZAP_RAYS, PLANT_RAY, VIEW_ROWS, VIEW_COLS, VIEW_AHEAD, VIEW_BEHIND, VIEW_SIDE,
    EGO_VIEW_ROW, EGO_VIEW_COL, VIEW_CHANNELS, NUM_VIEW_CHANNELS, VIEW_DIM, OBS_DIM, NEVER, PATCH_POS,
    PATCH_INIT_COLOR, CELL_PATCH, SPAWN_CELLS, NUM_PATCHES, CELL_PATCH_PAD, rel_to_world, ZAP_OFFSETS,
    PLANT_OFFSETS, VIEW_OFFSETS, wrap, flat_index,
)
from rljax.envs.multi_agent import MultiAgentEnvironment
from rljax.envs.params import ParamTable, Spec, stack_params
from rljax.envs.spaces import Discrete

Array = jax.Array

# ----------------------------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------------------------
@struct.dataclass
class HarvestParams:
    """Per-instance parameters; every leaf is a jnp scalar (``community_probs`` a [3] vector) so
    instances and members can differ under ``vmap``. Build with :func:`harvest_params`."""

    alpha: Array  # reward to the zapper for a correct sanction
    beta: Array  # cost to the zapper of a mis-sanction (positive)
    c: Array  # cost of every frame the zap action is taken (positive)
    sanction_penalty: Array  # what a landed sanction costs its target (positive: -10)
    immunity_cooldown: Array  # K: frames of immunity after a sanction
    startup_grey_grace: Array  # frames during which grey is not a violation
    episode_length: Array  # T: truncation
    zap_cooldown: Array
    plant_cooldown: Array
    ripen_base_rate: Array  # p_c = ripen_base_rate * N_c
    min_time_to_ripen: Array
    taste_reward: Array  # a berry of the eater's preferred colour
    default_reward: Array  # any other berry
    permitted: Array  # community: 0=RED, 1=GREEN, 2=BLUE
    treatment: Array  # 1: the ego observes the permitted colour; 0: zeros (control)
    ego_is_resident: Array  # 1: baseline, slot 0 runs the resident policy, the action is ignored
    community_probs: Array  # [3] distribution of the per-reset community draw (sample_community)
    resident_quirks: Array  # 1: the residents' original quirks (see harvest_residents)
    resident_guard: Array  # 0 off, 1 bystander guard, 2 (default) state-only guard (see harvest_residents)


def _cross_checks(v: dict[str, Any], t: ParamTable) -> None:
    p = np.asarray(v["community_probs"], np.float64)
    t.require(bool(np.all(p >= 0)), "community_probs", v["community_probs"], "must be finite and >= 0")
    t.require(abs(float(p.sum()) - 1.0) < 1e-5, "community_probs", v["community_probs"], "must sum to 1")
    v["community_probs"] = tuple(p / p.sum())


PARAMS: ParamTable[HarvestParams] = ParamTable("harvest", HarvestParams, {
    "alpha": Spec(0.5, ge=0, doc="a magnitude; the sign is fixed by the rule"),
    "beta": Spec(0.5, ge=0),
    "c": Spec(0.2, ge=0),
    "sanction_penalty": Spec(10.0, ge=0),
    "immunity_cooldown": Spec(200, "int", ge=1),
    "startup_grey_grace": Spec(25, "int", ge=0),
    "episode_length": Spec(2000, "int", ge=1),
    "zap_cooldown": Spec(4, "int", ge=1),
    "plant_cooldown": Spec(2, "int", ge=0),
    # p_c = ripen_base_rate * N_c must be a probability
    "ripen_base_rate": Spec(5e-6, ge=0, le=1.0 / NUM_PATCHES),
    "min_time_to_ripen": Spec(10, "int", ge=0),
    "taste_reward": Spec(2.0),
    "default_reward": Spec(1.0),
    "permitted": Spec(0, "int", choices=(0, 1, 2), doc="0 (RED), 1 (GREEN) or 2 (BLUE)"),
    "treatment": Spec(1, "flag"),
    "ego_is_resident": Spec(0, "flag"),
    "community_probs": Spec((1 / 3, 1 / 3, 1 / 3), "vector", doc="RED, GREEN, BLUE"),
    "resident_quirks": Spec(0, "flag"),
    "resident_guard": Spec(2, "int", choices=(0, 1, 2), doc="0 (off), 1 (bystander guard) or 2 (the state-only guard)"),
}, check=_cross_checks, step_limit="episode_length")

# The documented values (default) and what the original phase-5 runs actually used (their
# YAML alpha/beta/c were never passed to the substrate, whose defaults then applied).
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "as_run": {"alpha": 5.0, "beta": 5.0, "c": 0.5},
}


def harvest_params(preset: str = "default", **overrides: Any) -> HarvestParams:
    """Validated params from a preset (``"default"`` or ``"as_run"``) and field overrides.

    ``permitted`` may also be a community name (``"RED"``, ``"GREEN"``, ``"BLUE"``). An unknown
    field or a bad value raises ``ValueError`` naming the field and the value.
    """
    if preset not in PRESETS:
        PARAMS.fail("preset", preset, f"must be one of {tuple(PRESETS)}")
    permitted = overrides.get("permitted")
    if isinstance(permitted, str):
        PARAMS.require(permitted.upper() in COMMUNITY_NAMES, "permitted", permitted, f"must be one of {COMMUNITY_NAMES} or 0..2")
        overrides = {**overrides, "permitted": COMMUNITY_NAMES.index(permitted.upper())}
    return PARAMS.build(overrides, base=PRESETS[preset])


def sample_community(key: Array, base_params: HarvestParams) -> HarvestParams:
    """``base_params`` with ``permitted ~ Categorical(base_params.community_probs)``.

    The signature of VecEnv's ``param_sampler``: it is called with each instance's own key at
    every reset, so every instance draws its community independently per episode. A community
    with probability 0 (held out) is never drawn.
    """
    logits = jnp.log(base_params.community_probs)
    return base_params.replace(permitted=jax.random.categorical(key, logits).astype(jnp.int32))


# ----------------------------------------------------------------------------------------
# State
# ----------------------------------------------------------------------------------------
@struct.dataclass
class HarvestState:
    """The whole world. Players are indexed 0..15 (0 = ego slot), patches 0..347 in map order
    (row-major; positions in :data:`PATCH_POS`)."""

    pos: Array  # [16, 2] int32 (row, col)
    facing: Array  # [16] int32 N/E/S/W
    body: Array  # [16] int32 GREY/RED/GREEN/BLUE
    zap_timer: Array  # [16] int32, 0 = ready
    plant_timer: Array  # [16] int32, 0 = ready
    immune: Array  # [16] bool
    immune_set_t: Array  # [16] int32 frame of the sanction that made it immune
    berry_color: Array  # [348] int32 RED/GREEN/BLUE
    berry_ripe: Array  # [348] bool
    countdown: Array  # [348] int32 frames before the berry may ripen
    t: Array  # int32 frames done
    # Resident memory (kept for all 16 slots so the baseline can drive slot 0 with it):
    patrol_action: Array  # [16] int32 the current patrol action
    patrol_left: Array  # [16] int32 patrol calls before a new patrol action is drawn
    last_plant_t: Array  # [16] int32 frame the resident last chose to plant


def reset_world(key: Array, params: HarvestParams) -> HarvestState:
    """16 avatars on distinct random spawn cells with random facing, grey, ready, not immune;
    every berry unripe in its map colour."""
    # One draw of random bits for everything: the 16 largest of 522 iid draws are a uniformly
    # random set of distinct spawn cells (cheaper to compile and run than a shuffle).
    bits = jax.random.bits(key, (len(SPAWN_CELLS) + NUM_PLAYERS,), jnp.uint32)
    chosen = jax.lax.top_k(bits[: len(SPAWN_CELLS)], NUM_PLAYERS)[1]
    cells = jnp.asarray(SPAWN_CELLS)[chosen]
    facing = (bits[len(SPAWN_CELLS):] % 4).astype(jnp.int32)
    n = NUM_PLAYERS
    zeros = jnp.zeros((n,), jnp.int32)
    return HarvestState(
        pos=jnp.stack([cells // WIDTH, cells % WIDTH], -1).astype(jnp.int32),
        facing=facing,
        body=zeros,
        zap_timer=zeros,
        plant_timer=zeros,
        immune=jnp.zeros((n,), bool),
        immune_set_t=zeros,
        berry_color=jnp.asarray(PATCH_INIT_COLOR),
        berry_ripe=jnp.zeros((NUM_PATCHES,), bool),
        countdown=jnp.full((NUM_PATCHES,), params.min_time_to_ripen, jnp.int32),
        t=jnp.zeros((), jnp.int32),
        patrol_action=zeros,
        patrol_left=zeros,  # the first patrol call draws an action
        last_plant_t=jnp.full((n,), NEVER, jnp.int32),
    )


# ----------------------------------------------------------------------------------------
# Pieces shared by the step, the observation and the residents
# ----------------------------------------------------------------------------------------
def violating(body: Array, t: Array, params: HarvestParams) -> Array:
    """The posted rule, elementwise over ``body`` colours at frame ``t``."""
    grey = body == GREY
    return (grey & (t >= params.startup_grey_grace)) | (~grey & (body != params.permitted + 1))


def color_counts(berry_color: Array) -> Array:
    """``[3]`` patches per colour (RED, GREEN, BLUE)."""
    return jnp.stack([jnp.sum(berry_color == c) for c in (RED, GREEN, BLUE)]).astype(jnp.int32)


def avatar_grid(pos: Array) -> Array:
    """``[H*W]`` int32: 1 + the index of the avatar in each cell, 0 where none."""
    return jnp.zeros((NUM_CELLS,), jnp.int32).at[flat_index(pos)].set(jnp.arange(1, NUM_PLAYERS + 1, dtype=jnp.int32))


def zap_hits(pos: Array, facing: Array) -> Array:
    """``[16, 3]`` the avatar each player's zap would hit on each ray (left, right, centre),
    -1 where the ray meets nobody: the first avatar along the ray."""
    occ = avatar_grid(pos)
    cells = wrap(pos[:, None, None, :] + jnp.asarray(ZAP_OFFSETS)[facing])  # [16, 3, 3, 2]
    who = occ[flat_index(cells)] - 1  # [16, 3 rays, 3 cells]
    return jnp.where(who[..., 0] >= 0, who[..., 0], jnp.where(who[..., 1] >= 0, who[..., 1], who[..., 2]))


def plant_targets(pos: Array, facing: Array) -> Array:
    """``[16]`` the patch each player's colouring beam would hit, -1 if it meets nothing or an
    avatar first (a berry under an avatar is hit together with the avatar)."""
    occ = avatar_grid(pos)
    cells = flat_index(wrap(pos[:, None, :] + jnp.asarray(PLANT_OFFSETS)[facing]))  # [16, 3]
    patch = jnp.asarray(CELL_PATCH)[cells]
    stop = (patch >= 0) | (occ[cells] > 0)
    first = jnp.argmax(stop, axis=1)
    hit = jnp.take_along_axis(patch, first[:, None], 1)[:, 0]
    return jnp.where(jnp.any(stop, axis=1), hit, -1)


def move_deltas(actions: Array, facing: Array) -> Array:
    """``[16, 2]`` the (row, col) step each action moves its avatar (zero for non-moves)."""
    fwd = jnp.asarray(FORWARD_VEC)[facing]
    right = jnp.asarray(FORWARD_VEC)[(facing + 1) % 4]
    a = actions[:, None]
    zero = jnp.zeros_like(fwd)
    return jnp.where(a == FORWARD, fwd, jnp.where(a == BACKWARD, -fwd, jnp.where(
        a == STEP_RIGHT, right, jnp.where(a == STEP_LEFT, -right, zero))))


def resolve_moves(pos: Array, target: Array, order: Array) -> tuple[Array, Array]:
    """Sequential first-come-first-served moves in ``order``: an avatar moves to its
    ``target`` unless another avatar stands there at its turn. Returns ``(pos, moved[16])``."""

    def body(p, i):
        ti = target[i]
        free = ~jnp.any(jnp.all(p == ti, axis=-1))
        return p.at[i].set(jnp.where(free, ti, p[i])), free

    new_pos, moved_in_order = jax.lax.scan(body, pos, order)
    moved = jnp.zeros((NUM_PLAYERS,), bool).at[order].set(moved_in_order)
    return new_pos, moved


# ----------------------------------------------------------------------------------------
# The 16-player step
# ----------------------------------------------------------------------------------------
# The random numbers of one step, drawn at once from the step key (one RNG call compiles and runs
# faster than several) and sliced by purpose at fixed offsets: agent order, grey draws, ripening.
_ORDER, _GREY, _RIPEN = slice(0, NUM_PLAYERS), slice(NUM_PLAYERS, 2 * NUM_PLAYERS), slice(2 * NUM_PLAYERS, 2 * NUM_PLAYERS + NUM_PATCHES)
_NUM_BITS = 2 * NUM_PLAYERS + NUM_PATCHES


def uniform_from_bits(bits: Array) -> Array:
    """uint32 bits -> float32 uniforms in [0, 1) (23 random mantissa bits, as jax.random does)."""
    return jax.lax.bitcast_convert_type((bits >> 9) | jnp.uint32(0x3F800000), jnp.float32) - 1.0


def step_order(key: Array) -> Array:
    """``[16]`` the random agent order :func:`step_all` draws from its ``key`` (players by turn):
    the ranks of 16 random 32-bit draws (ties, ~3e-8 a step, go to the lower index)."""
    return jnp.argsort(jax.random.bits(key, (_NUM_BITS,), jnp.uint32)[_ORDER]).astype(jnp.int32)


def env_step_keys(key: Array) -> tuple[Array, Array]:
    """``(world_key, residents_key)``: how the ego's view (``HarvestEnv.step``, an
    :class:`~rljax.envs.multi_agent.AgentView`) splits its key by purpose."""
    k_world, k_res = jax.random.split(key)
    return k_world, k_res


EVENT_KEYS = ("eat_reward", "eaten", "greyed", "received", "correct", "mis", "fizzle_immune", "fizzle_tie",
              "zap_press", "zap_fired", "planted")


def step_all(key: Array, state: HarvestState, actions: Array, params: HarvestParams) -> tuple[HarvestState, Array, dict[str, Array]]:
    """All 16 players act once. ``actions[16]`` int in ``[0, 11)``.

    Returns ``(state, rewards[16], events)`` where ``events`` maps each of :data:`EVENT_KEYS` to
    a ``[16]`` per-player array (berry reward, berries eaten, turned grey after eating (this
    clears immunity even when the body was grey already, as in the original), -10s received, correct and mis
    sanctions issued, issued hits that fizzled on immunity / on the one-per-frame rule, zap
    presses, zaps actually fired, successful plantings). Resident memory is left untouched.
    """
    bits = jax.random.bits(key, (_NUM_BITS,), jnp.uint32)
    actions = jnp.asarray(actions, jnp.int32)
    t = state.t
    order = jnp.argsort(bits[_ORDER]).astype(jnp.int32)  # = step_order(key)

    # -- turns and moves ---------------------------------------------------------------------
    f = state.facing
    facing = jnp.where(actions == TURN_LEFT, (f + 3) % 4, jnp.where(actions == TURN_RIGHT, (f + 1) % 4, f))
    target = wrap(state.pos + move_deltas(actions, f))
    pos, moved = resolve_moves(state.pos, target, order)

    # -- eating on entry ---------------------------------------------------------------------
    counts0 = color_counts(state.berry_color)
    monoculture = jnp.max(counts0) / NUM_PATCHES
    patch = jnp.asarray(CELL_PATCH_PAD)[flat_index(pos)]  # NUM_PATCHES where none
    ripe_pad = jnp.concatenate([state.berry_ripe, jnp.zeros((1,), bool)])
    color_pad = jnp.concatenate([state.berry_color, jnp.zeros((1,), jnp.int32)])
    eats = moved & ripe_pad[patch]
    eaten_color = color_pad[patch]
    eat_reward = jnp.where(eats, jnp.where(eaten_color == jnp.asarray(TASTE), params.taste_reward, params.default_reward), 0.0)
    eat_idx = jnp.where(eats, patch, NUM_PATCHES)
    berry_ripe = state.berry_ripe.at[eat_idx].set(False, mode="drop")
    countdown = state.countdown.at[eat_idx].set(params.min_time_to_ripen, mode="drop")
    to_grey = eats & (uniform_from_bits(bits[_GREY]) < 1.0 - monoculture)
    body = jnp.where(to_grey, GREY, state.body)
    immune = state.immune & ~to_grey

    # -- beams ---------------------------------------------------------------------------------
    zap_press = actions == FIRE_ZAP
    zap_fired = zap_press & (state.zap_timer == 0)
    zap_timer = jnp.where(state.zap_timer > 0, state.zap_timer - 1, jnp.where(zap_press, params.zap_cooldown, 0))
    plant_press = actions >= FIRE_ONE
    plant_fired = plant_press & (state.plant_timer == 0)
    plant_timer = jnp.where(state.plant_timer > 0, state.plant_timer - 1, jnp.where(plant_press, params.plant_cooldown, 0))
    beams = resolve_beams(
        order, t, params, zap_fired, zap_hits(pos, facing), plant_fired, plant_targets(pos, facing),
        actions - (FIRE_ONE - RED), body, immune, state.immune_set_t, berry_ripe, state.berry_color, countdown,
    )
    body, immune, immune_set_t, berry_color, countdown = (
        beams["body"], beams["immune"], beams["immune_set_t"], beams["berry_color"], beams["countdown"])

    # -- zap cost, immunity timeout, ripening, frame counter -------------------------------------
    rewards = (eat_reward - params.sanction_penalty * beams["received"] + params.alpha * beams["correct"]
               - params.beta * beams["mis"] - params.c * zap_press)
    immune = immune & (t < immune_set_t + params.immunity_cooldown)
    counts = color_counts(berry_color)
    prob = params.ripen_base_rate * counts[berry_color - 1]
    countdown = jnp.maximum(countdown - 1, 0)
    ripen = ~berry_ripe & (countdown == 0) & (uniform_from_bits(bits[_RIPEN]) < prob)
    berry_ripe = berry_ripe | ripen
    countdown = jnp.where(ripen, params.min_time_to_ripen, countdown)

    new_state = state.replace(
        pos=pos, facing=facing, body=body, zap_timer=zap_timer, plant_timer=plant_timer, immune=immune,
        immune_set_t=immune_set_t, berry_color=berry_color, berry_ripe=berry_ripe, countdown=countdown, t=t + 1,
    )
    events = {
        "eat_reward": eat_reward, "eaten": eats, "greyed": to_grey, "received": beams["received"], "correct": beams["correct"],
        "mis": beams["mis"], "fizzle_immune": beams["fizzle_immune"], "fizzle_tie": beams["fizzle_tie"],
        "zap_press": zap_press, "zap_fired": zap_fired, "planted": beams["planted"],
    }
    return new_state, rewards.astype(jnp.float32), events


def resolve_beams(order: Array, t: Array, params: HarvestParams, zap_fired: Array, hits: Array, plant_fired: Array,
                  ptarget: Array, plant_color: Array, body: Array, immune: Array, immune_set_t: Array,
                  berry_ripe: Array, berry_color: Array, countdown: Array) -> dict[str, Array]:
    """The beams of one frame, player by player in ``order`` (a scan of 16 cheap bodies; beams
    interact only through a target's immunity, its sanction this frame and its colour, and
    through a berry hit twice). ``hits[16, 3]`` from :func:`zap_hits`, ``ptarget[16]`` from
    :func:`plant_targets`, ``plant_color[16]`` the colour each planter fires. Returns ``[16]``
    int32 counts ``received, correct, mis, fizzle_immune, fizzle_tie, planted`` and the updated
    ``body, immune, immune_set_t, berry_color, countdown`` (and ``sanctioned, berry_hit``)."""
    n = NUM_PLAYERS
    ids = jnp.arange(n)
    zero = jnp.zeros((n,), jnp.int32)

    def body_fn(c, i):
        # zap: up to three distinct targets at once (one per ray)
        hit = zap_fired[i] & jnp.any(hits[i][None, :] == ids[:, None], axis=1)
        fiz_imm = hit & c["immune"]
        fiz_tie = hit & ~c["immune"] & c["sanctioned"]
        land = hit & ~c["immune"] & ~c["sanctioned"]
        viol = violating(c["body"], t, params)
        n_correct = jnp.sum(land & viol)
        n_mis = jnp.sum(land & ~viol)
        c = dict(c)
        c["received"] = c["received"] + land
        c["immune"] = c["immune"] | land
        c["immune_set_t"] = jnp.where(land, t, c["immune_set_t"])
        c["sanctioned"] = c["sanctioned"] | land
        c["correct"] = c["correct"].at[i].add(n_correct)
        c["mis"] = c["mis"].at[i].add(n_mis)
        c["fizzle_immune"] = c["fizzle_immune"].at[i].add(jnp.sum(fiz_imm))
        c["fizzle_tie"] = c["fizzle_tie"].at[i].add(jnp.sum(fiz_tie))
        # plant: at most one berry
        b = ptarget[i]
        shoots = plant_fired[i] & (b >= 0)
        bi = jnp.maximum(b, 0)
        pc = plant_color[i]
        ok = shoots & ~c["berry_hit"][bi] & ~berry_ripe[bi] & (c["berry_color"][bi] != pc)
        c["berry_hit"] = c["berry_hit"].at[bi].set(c["berry_hit"][bi] | shoots)
        c["berry_color"] = c["berry_color"].at[bi].set(jnp.where(ok, pc, c["berry_color"][bi]))
        c["countdown"] = c["countdown"].at[bi].set(jnp.where(ok, params.min_time_to_ripen, c["countdown"][bi]))
        c["body"] = c["body"].at[i].set(jnp.where(ok, pc, c["body"][i]))
        c["immune"] = c["immune"].at[i].set(c["immune"][i] & ~ok)
        c["planted"] = c["planted"].at[i].set(ok.astype(jnp.int32))
        return c, None

    init = dict(
        body=body, immune=immune, immune_set_t=immune_set_t, sanctioned=jnp.zeros((n,), bool),
        berry_color=berry_color, countdown=countdown, berry_hit=jnp.zeros((NUM_PATCHES,), bool),
        received=zero, correct=zero, mis=zero, fizzle_immune=zero, fizzle_tie=zero, planted=zero,
    )
    out, _ = jax.lax.scan(body_fn, init, order)
    return out


# ----------------------------------------------------------------------------------------
# Observation
# ----------------------------------------------------------------------------------------
def observe_view(state: HarvestState, agent: int | Array = EGO) -> Array:
    """``[11, 11, C]`` float32 symbolic egocentric view of ``agent`` (see the module docstring)."""
    cells = flat_index(wrap(state.pos[agent] + jnp.asarray(VIEW_OFFSETS)[state.facing[agent]]))  # [11, 11]
    code = jnp.concatenate([state.berry_color + 3 * state.berry_ripe, jnp.zeros((1,), jnp.int32)])  # 1..6, pad 0
    berry = code[jnp.asarray(CELL_PATCH_PAD)[cells]]
    av_grid = jnp.zeros((NUM_CELLS,), jnp.int32).at[flat_index(state.pos)].set(state.body + 1)
    avatar = av_grid[cells]
    return jnp.concatenate([jax.nn.one_hot(berry - 1, 6, dtype=jnp.float32),
                            jax.nn.one_hot(avatar - 1, 4, dtype=jnp.float32)], axis=-1)


def ready_to_shoot(state: HarvestState, params: HarvestParams, agent: int | Array = EGO) -> Array:
    return jnp.maximum(1.0 - state.zap_timer[agent] / params.zap_cooldown, 0.0).astype(jnp.float32)


def observe(state: HarvestState, params: HarvestParams, agent: int | Array = EGO) -> Array:
    """The flat ``[OBS_DIM]`` float32 observation of ``agent``: view, ready_to_shoot and the
    permitted colour one-hot (treatment) or zeros (control)."""
    permitted = jax.nn.one_hot(params.permitted, NUM_COMMUNITIES, dtype=jnp.float32) * (params.treatment > 0)
    return jnp.concatenate([observe_view(state, agent).reshape(-1), ready_to_shoot(state, params, agent)[None], permitted])


def split_observation(obs: Array) -> tuple[Array, Array, Array]:
    """``obs[..., OBS_DIM] -> (view[..., 11, 11, C], ready[..., 1], permitted[..., 3])``."""
    lead = obs.shape[:-1]
    view = obs[..., :VIEW_DIM].reshape(lead + (VIEW_ROWS, VIEW_COLS, NUM_VIEW_CHANNELS))
    return view, obs[..., VIEW_DIM:VIEW_DIM + 1], obs[..., VIEW_DIM + 1:]


# ----------------------------------------------------------------------------------------
# The single-agent environment
# ----------------------------------------------------------------------------------------
INFO_KEYS = (
    "ep_berries", "ep_berry_reward", "ep_minus10_received", "ep_minus10_issued_correct", "ep_minus10_issued_mis",
    "ep_alpha", "ep_beta", "ep_c", "ep_zap_presses", "ep_zaps_fired", "ep_immune_fizzles", "ep_tiebreak_fizzles",
    "ep_plants", "ep_plants_permitted", "ep_violating_steps", "ep_r_env", "ep_r_eval",
    "ep_permitted_share", "ep_monoculture", "ep_plants_red", "ep_plants_green", "ep_plants_blue",
    "ep_ready_violator_steps", "ep_ready_violator_zaps", "ep_ready_clear_steps", "ep_ready_clear_zaps", "tag",
)


class HarvestWorld(MultiAgentEnvironment[HarvestState, HarvestParams]):
    """The 16-player world as a :class:`~rljax.envs.multi_agent.MultiAgentEnvironment`:
    ``actions[16]`` (int32), ``rewards[16]``, ``obs[16, OBS_DIM]``. It never terminates and
    is truncated after ``episode_length`` steps. ``info`` holds the metrics of the ego slot
    (player 0, whoever drives it; see the module docstring). The residents' memory fields of
    :class:`HarvestState` are left untouched (the resident policy owns them).

    :class:`rljax.environments.harvest_view.HarvestEnv` is the ego's single-agent view with the
    scripted residents (:mod:`rljax.environments.harvest_residents`).
    """

    name = "harvest_world"
    num_agents = NUM_PLAYERS

    def default_params(self) -> HarvestParams:
        return harvest_params()

    def observation_shape(self, params: HarvestParams | None = None) -> tuple[int, ...]:
        return (OBS_DIM,)

    def action_space(self, params: HarvestParams, agent: int = EGO) -> Discrete:
        return Discrete(NUM_ACTIONS)

    def max_steps(self, params: HarvestParams) -> int:
        return PARAMS.max_steps(params)

    def info_keys(self) -> tuple[str, ...]:
        return INFO_KEYS

    render_jittable = True

    def render(self, state: HarvestState, params: HarvestParams) -> Array:
        """``uint8[240, 232, 3]``: the whole world, north up, the ego's avatar with white eyes
        (:func:`rljax.environments.harvest_render.render_world`). Jittable."""
        from rljax.environments.harvest_render import render_world

        return render_world(state)

    def reset_state(self, key: Array, params: HarvestParams) -> HarvestState:
        return reset_world(key, params)

    def observe(self, state: HarvestState, params: HarvestParams) -> Array:
        return jax.vmap(lambda i: observe(state, params, i))(jnp.arange(NUM_PLAYERS))

    def observe_agent(self, state: HarvestState, params: HarvestParams, agent: int | Array) -> Array:
        return observe(state, params, agent)

    def transition(self, key: Array, state: HarvestState, actions: Array, params: HarvestParams
                   ) -> tuple[HarvestState, Array, Array, Array, dict[str, Array]]:
        """``(state, rewards[16], terminated, truncated, info)`` of ``actions[16]``; ``key`` is
        the world key (:func:`env_step_keys`)."""
        t = state.t
        new_state, rewards, ev = step_all(key, state, actions, params)
        truncated = new_state.t >= params.episode_length
        counts = color_counts(new_state.berry_color)
        last = truncated.astype(jnp.float32)
        e = {k: v[EGO].astype(jnp.float32) for k, v in ev.items()}
        alpha, beta, c = params.alpha * e["correct"], params.beta * e["mis"], params.c * e["zap_press"]
        r_env = e["eat_reward"] - params.sanction_penalty * e["received"]
        ego_body = new_state.body[EGO]
        # selectivity: was an eligible avatar first on one of the ego's rays when it chose its action?
        hits = zap_hits(state.pos, state.facing)[EGO]
        eligible = violating(state.body, t, params) & ~state.immune
        in_beam = jnp.any((hits >= 0) & eligible[jnp.maximum(hits, 0)])
        ready = (state.zap_timer[EGO] == 0).astype(jnp.float32)
        info = {
            "ep_berries": e["eaten"],
            "ep_berry_reward": e["eat_reward"],
            "ep_minus10_received": e["received"],
            "ep_minus10_issued_correct": e["correct"],
            "ep_minus10_issued_mis": e["mis"],
            "ep_alpha": alpha,
            "ep_beta": beta,
            "ep_c": c,
            "ep_zap_presses": e["zap_press"],
            "ep_zaps_fired": e["zap_fired"],
            "ep_immune_fizzles": e["fizzle_immune"],
            "ep_tiebreak_fizzles": e["fizzle_tie"],
            "ep_plants": e["planted"],
            "ep_plants_permitted": e["planted"] * (ego_body == params.permitted + 1),
            "ep_violating_steps": violating(ego_body, t, params).astype(jnp.float32),
            "ep_r_env": r_env,
            "ep_r_eval": r_env - beta - c,
            "ep_permitted_share": last * counts[params.permitted] / NUM_PATCHES,
            "ep_monoculture": last * jnp.max(counts) / NUM_PATCHES,
            **{f"ep_plants_{name.lower()}": e["planted"] * (ego_body == RED + i) for i, name in enumerate(COMMUNITY_NAMES)},
            "ep_ready_violator_steps": ready * in_beam,
            "ep_ready_violator_zaps": ready * in_beam * e["zap_press"],
            "ep_ready_clear_steps": ready * ~in_beam,
            "ep_ready_clear_zaps": ready * ~in_beam * e["zap_press"],
            "tag": params.permitted.astype(jnp.int32),
        }
        return new_state, rewards, jnp.zeros((), bool), truncated, info
