"""Drawing pursuit-evasion episodes: PNG frames or an animated GIF (matplotlib, Agg).

Rendering is Python at the edge: give it a trajectory of :class:`PursuitState` (a list, or one
state whose leaves have a leading time axis, as ``lax.scan`` returns) and the arena params.
:func:`rollout_episode` produces such a trajectory from two policies in one compiled scan.

Drawn: the arena walls, obstacles, both robots (pursuer red, evader blue) with headings, their
trails, the capture radius around the pursuer, optionally each agent's FOV cone and the
noiseless lidar rays, and a caption with the step, the distance and whether the line of sight
is blocked.
"""
from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any, Callable, Sequence

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Circle, Rectangle, Wedge  # noqa: E402

from rljax.environments.pursuit_arena import ARENA_HALF, EVADER, PURSUER  # noqa: E402

if TYPE_CHECKING:
    from rljax.environments.pursuit_evasion import PursuitEvasion, PursuitParams, PursuitState
from rljax.environments.pursuit_sensors import lidar_ranges, line_of_sight_blocked  # noqa: E402

Array = jax.Array
COLOURS = ("tab:red", "tab:blue")


def unstack_states(states: PursuitState | Sequence[PursuitState]) -> list[PursuitState]:
    """A list of per-step states (numpy leaves) from a list or a time-stacked state."""
    if isinstance(states, (list, tuple)):
        return [jax.tree.map(np.asarray, s) for s in states]
    leaves = jax.tree.map(np.asarray, states)
    n = leaves.pose.shape[0]
    return [jax.tree.map(lambda x, i=i: x[i], leaves) for i in range(n)]


def _sensor_tracks(seq: list[PursuitState], params: PursuitParams, n_rays: int, lidar: bool) -> tuple[np.ndarray, np.ndarray]:
    """Line-of-sight flags ``[T]`` and noiseless lidar ranges ``[T, 2, n_rays]`` of a
    trajectory, in one jitted call (eager per-frame calls would dominate the drawing time)."""
    poses = jnp.asarray(np.stack([s.pose for s in seq]))
    obstacles = jnp.asarray(np.stack([s.obstacles for s in seq]))
    masks = jnp.asarray(np.stack([s.obstacle_mask for s in seq]))

    @jax.jit
    def run(poses, obstacles, masks, params):
        blocked = jax.vmap(lambda p, o, m: line_of_sight_blocked(p[PURSUER, :2], p[EVADER, :2], o, m))(poses, obstacles, masks)
        scan = lambda p, o, m: lidar_ranges(p, o, m, n_rays, params.lidar_range, ARENA_HALF, params.lidar_bounds_bug)  # noqa: E731
        per_agent = jax.vmap(scan, in_axes=(0, None, None))
        ranges = jax.vmap(per_agent)(poses, obstacles, masks) if lidar else jnp.zeros((poses.shape[0], 2, 0))
        return blocked, ranges

    blocked, ranges = run(poses, obstacles, masks, params)
    return np.asarray(blocked), np.asarray(ranges)


def draw_state(ax: Any, state: PursuitState, params: PursuitParams, trail: np.ndarray | None = None,
               fov: bool = True, ranges: np.ndarray | None = None, caption: str = "") -> None:
    """Draws one state (numpy leaves) onto ``ax``. ``trail[T, 2, 2]``: past positions;
    ``ranges[2, n_rays]``: lidar rays to draw."""
    h = ARENA_HALF
    ax.clear()
    arena = Rectangle((-h, -h), 2 * h, 2 * h, fill=False, lw=2, ec="black")
    ax.add_patch(arena)
    for (x, y, r), ok in zip(np.asarray(state.obstacles), np.asarray(state.obstacle_mask)):
        if ok:
            ax.add_patch(Circle((x, y), r, color="dimgray", alpha=0.8))
    pose = np.asarray(state.pose)
    rr = float(params.robot_radius)
    if ranges is not None and ranges.shape[-1] > 0:
        offsets = 2.0 * math.pi * np.arange(ranges.shape[-1]) / ranges.shape[-1] - math.pi
        for i in range(2):
            ang = pose[i, 2] + offsets
            xs = np.stack([np.full_like(ang, pose[i, 0]), pose[i, 0] + ranges[i] * np.cos(ang)])
            ys = np.stack([np.full_like(ang, pose[i, 1]), pose[i, 1] + ranges[i] * np.sin(ang)])
            ax.plot(xs, ys, color=COLOURS[i], lw=0.4, alpha=0.35)
    for i in range(2):
        x, y, th = pose[i]
        if trail is not None and len(trail) > 1:
            ax.plot(trail[:, i, 0], trail[:, i, 1], color=COLOURS[i], lw=1, alpha=0.6)
        if fov:
            half = math.degrees(float(params.fov_half_angle))
            cone = Wedge((x, y), float(params.fov_range), math.degrees(th) - half, math.degrees(th) + half,
                         color=COLOURS[i], alpha=0.07)
            ax.add_patch(cone)
            cone.set_clip_path(arena)
        ax.add_patch(Circle((x, y), max(rr, 0.15), color=COLOURS[i]))
        ax.arrow(x, y, 0.6 * math.cos(th), 0.6 * math.sin(th), head_width=0.25, color=COLOURS[i])
    ax.add_patch(Circle(tuple(pose[PURSUER, :2]), float(params.capture_radius), fill=False, ls="--", ec=COLOURS[PURSUER]))
    ax.set_xlim(-h - 0.3, h + 0.3)
    ax.set_ylim(-h - 0.3, h + 0.3)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(caption, fontsize=9)


def render_state(state: PursuitState, params: PursuitParams, goal: np.ndarray | None = None, caption: str | None = None,
                 size: float = 4.0, dpi: int = 60) -> np.ndarray:
    """``uint8[H, W, 3]`` picture of ONE state (``H = W = size * dpi``): :func:`draw_state`
    without trails or lidar, plus an optional ``goal`` ``(x, y)`` marker (navigation). Draws
    with matplotlib: Python, not jittable. ``caption`` defaults to the step and distance."""
    state = jax.tree.map(np.asarray, state)
    params = jax.tree.map(np.asarray, params)
    if caption is None:
        d = float(np.linalg.norm(state.pose[PURSUER, :2] - state.pose[EVADER, :2]))
        caption = f"t={int(state.t)}  d={d:.2f} m"
    fig, ax = plt.subplots(figsize=(size, size), dpi=dpi)
    try:
        fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.92)
        draw_state(ax, state, params, caption=caption)
        if goal is not None:
            ax.plot([float(goal[0])], [float(goal[1])], marker="*", markersize=12, color="gold", mec="black")
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    finally:
        plt.close(fig)


def render_frames(states: PursuitState | Sequence[PursuitState], params: PursuitParams, fov: bool = True,
                  lidar: bool = False, n_rays: int = 36, every: int = 1, size: float = 4.0, dpi: int = 80) -> list[np.ndarray]:
    """``[H, W, 3]`` uint8 RGB images of every ``every``-th state of the trajectory (and the
    last one)."""
    seq = unstack_states(states)
    params = jax.tree.map(np.asarray, params)
    if not seq:
        return []
    blocked, ranges = _sensor_tracks(seq, params, n_rays, lidar)
    positions = np.stack([s.pose[:, :2] for s in seq])
    fig, ax = plt.subplots(figsize=(size, size), dpi=dpi)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.92)
    images = []
    picks = list(range(0, len(seq), every))
    if picks[-1] != len(seq) - 1:
        picks.append(len(seq) - 1)
    try:
        for k in picks:
            s = seq[k]
            d = float(np.linalg.norm(s.pose[PURSUER, :2] - s.pose[EVADER, :2]))
            caption = f"t={int(s.t)}  d={d:.2f} m" + ("  (LOS blocked)" if blocked[k] else "")
            draw_state(ax, s, params, positions[: k + 1], fov=fov, ranges=ranges[k] if lidar else None, caption=caption)
            fig.canvas.draw()
            images.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    finally:
        plt.close(fig)
    return images


def save_episode(states: PursuitState | Sequence[PursuitState], params: PursuitParams, path: str, fps: int = 20,
                 **kwargs: Any) -> list[str]:
    """Writes the episode: ``path`` ending in ``.gif`` or ``.mp4`` -> one video
    (:func:`rljax.render.write_video`); otherwise ``path`` is a directory and receives
    ``frame_00000.png`` ... Returns the written paths. ``kwargs`` go to :func:`render_frames`."""
    from PIL import Image

    from rljax.render import write_video

    images = render_frames(states, params, **kwargs)
    if not images:
        raise ValueError("save_episode: the trajectory has no states")
    if path.lower().endswith((".gif", ".mp4")):
        return [write_video(images, path, fps)]
    os.makedirs(path, exist_ok=True)
    out = []
    for i, im in enumerate(images):
        p = os.path.join(path, f"frame_{i:05d}.png")
        Image.fromarray(im).save(p)
        out.append(p)
    return out


def rollout_episode(
    env: PursuitEvasion,
    params: PursuitParams,
    key: Array,
    pursuer_act: Callable[[Any, Array, Array], Array],
    pursuer_params: Any,
    evader_act: Callable[[Any, Array, Array], Array],
    evader_params: Any,
    num_steps: int | None = None,
) -> tuple[PursuitState, Array, Array]:
    """One episode of two policies ``act(p, key, obs) -> action`` in one compiled scan.

    Returns ``(states, rewards[T, 2], alive[T + 1])``: ``states`` has a leading ``[T + 1]``
    axis (reset state first); after the episode ends the state is frozen and ``alive`` is
    False, so ``states[alive]`` is the episode. ``num_steps`` defaults to ``max_steps``.
    """
    steps = env.max_steps(params) if num_steps is None else num_steps

    def body(carry, k):
        state, obs, alive = carry
        k_p, k_e, k_env = jax.random.split(k, 3)
        actions = jnp.stack([pursuer_act(pursuer_params, k_p, obs[PURSUER]), evader_act(evader_params, k_e, obs[EVADER])])
        new_obs, new_state, rewards, term, trunc, _ = env.step_both(k_env, state, actions, params)
        keep = lambda a, b: jnp.where(alive, a, b)  # noqa: E731
        state_out = jax.tree.map(keep, new_state, state)
        obs_out = keep(new_obs, obs)
        return (state_out, obs_out, alive & ~(term | trunc)), (state_out, jnp.where(alive, rewards, 0.0), alive)

    @jax.jit
    def run(key):
        k_reset, k_run = jax.random.split(key)
        obs, state = env.reset(k_reset, params)
        _, (states, rewards, alive) = jax.lax.scan(body, (state, obs, jnp.asarray(True)), jax.random.split(k_run, steps))
        states = jax.tree.map(lambda first, rest: jnp.concatenate([first[None], rest]), state, states)
        return states, rewards, jnp.concatenate([jnp.ones((1,), bool), alive])

    return run(key)
