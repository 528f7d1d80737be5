"""Episodes of a trained run you can watch: ``rljax render RUN_DIR --out episode.gif|.mp4``.

Built on :func:`rljax.trained.load_players` (the run's policies, environment and task params)
and the environment protocol's ``render(state, params) -> uint8[H, W, 3]`` (an EMPO run: its
world's ``render(ws)``, the humans acting from their prior):
:func:`play_episode` plays one episode in one compiled scan and returns its states, then each
state is drawn (jitted where the environment's ``render_jittable`` says so) and
:func:`write_video` writes the frames: ``.gif`` with Pillow (a core dependency), ``.mp4`` with
imageio's ffmpeg writer (the ``video`` extra).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rljax.errors import ConfigError
from rljax.optional import require

Array = jax.Array
FORMATS = (".gif", ".mp4")
# ``act(obs, key, carry) -> (action, carry)``: one step of the players (see joint_act).
Act = Callable[[Array, Array, Any], tuple[Array, Any]]


def joint_act(players: Sequence[Any], deterministic: bool = True) -> tuple[Act, Any]:
    """``(act, initial carry)`` of the loaded players (:class:`rljax.trained.Loaded`): one
    player acts on the environment's observation; several (self-play) each act on their own row
    ``obs[i]`` and their actions are stacked ``[n, A]``, as the two-player game steps."""
    policies = [p.policy for p in players]

    def one(policy, obs, key, carry):
        if policy.recurrent:
            return policy(obs, key, carry=carry, deterministic=deterministic)
        return policy(obs, key, deterministic=deterministic), carry

    carries = tuple(p.initial_carry(()) for p in policies)
    if len(policies) == 1:
        return (lambda obs, key, carry: (lambda a, c: (a, (c,)))(*one(policies[0], obs, key, carry[0]))), carries

    def act(obs, key, carry):
        out = [one(p, obs[i], k, c) for i, (p, k, c) in enumerate(zip(policies, jax.random.split(key, len(policies)), carry))]
        return jnp.stack([a for a, _ in out]), tuple(c for _, c in out)

    return act, carries


def make_player(act: Act, carry: Any, env: Any, max_steps: int) -> Callable[[Array, Any], tuple[Any, Array, Array]]:
    """``play(key, env_params) -> (states, alive[T + 1], rewards[T])``: one episode of ``act`` in
    ``env`` (single-agent, or a multi-agent world whose players are all in ``act``), compiled
    once as one scan of ``max_steps`` steps (see :func:`play_episode`)."""

    def body(c, k):
        obs, state, alive, carry, env_params = c
        k_act, k_env = jax.random.split(k)
        action, carry = act(obs, k_act, carry)
        obs2, state2, reward, term, trunc, _ = env.step(k_env, state, action, env_params)
        keep = lambda new, old: jnp.where(alive, new, old)  # noqa: E731
        state_out = jax.tree.map(keep, state2, state)
        out = (state_out, jnp.where(alive, reward, 0.0), alive)
        return (keep(obs2, obs), state_out, alive & ~(term | trunc), carry, env_params), out

    @jax.jit
    def play(key, env_params):
        k_reset, k_run = jax.random.split(key)
        obs, state = env.reset(k_reset, env_params)
        state = jax.tree.map(jnp.asarray, state)  # e.g. gymnax's Python-int step counter
        init = (obs, state, jnp.asarray(True), carry, env_params)
        _, (states, rewards, alive) = jax.lax.scan(body, init, jax.random.split(k_run, max_steps))
        states = jax.tree.map(lambda first, rest: jnp.concatenate([first[None], rest]), state, states)
        return states, jnp.concatenate([jnp.ones((1,), bool), alive]), rewards

    return play


def play_episode(act: Act, carry: Any, env: Any, env_params: Any, key: Array, max_steps: int) -> tuple[Any, Array, Array]:
    """One episode of ``act`` in ``env`` (single-agent, or a multi-agent world whose players are
    all in ``act``), in one compiled scan of ``max_steps`` steps.

    Returns ``(states, alive[T + 1], rewards[T])``: ``states`` has a leading ``[T + 1]`` axis
    (the reset state first) and is frozen once the episode ended, so ``states[alive]`` is the
    episode; ``rewards`` are the step rewards (per agent for a multi-agent world), 0 after
    the end."""
    return make_player(act, carry, env, max_steps)(key, env_params)


def draw(render: Callable[[Any, Any], Array], states: Any, params: Any) -> list[np.ndarray]:
    """``uint8[H, W, 3]`` frames of time-stacked ``states``: ``render(state, params)`` per
    state (pass ``jax.jit(env.render)`` where ``env.render_jittable``)."""
    n = jax.tree.leaves(states)[0].shape[0]
    frames = []
    for i in range(n):
        frame = np.asarray(render(jax.tree.map(lambda x, i=i: x[i], states), params))
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
            raise TypeError(f"render returned {frame.dtype}{list(frame.shape)}, not uint8[H, W, 3]")
        frames.append(frame)
    return frames


def check_output(path: str) -> str:
    """The video format of ``path`` (``.gif`` or ``.mp4``), checked before anything is loaded:
    an ``.mp4`` without imageio's ffmpeg writer is a one-line error naming the extra."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise ConfigError(f"--out must end in .gif or .mp4, got {path!r}")
    if ext == ".mp4":
        require("imageio_ffmpeg", "writing .mp4")
        require("imageio", "writing .mp4")
    return ext


def write_video(frames: Sequence[np.ndarray], path: str, fps: int = 20) -> str:
    """Writes ``frames`` (``uint8[H, W, 3]`` of one shape) to ``path``: ``.gif`` (Pillow) or
    ``.mp4`` (imageio-ffmpeg, H.264; odd sizes are padded to even). Returns ``path``."""
    ext = check_output(path)
    if not frames:
        raise ValueError("write_video: no frames")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if ext == ".gif":
        from PIL import Image

        images = [Image.fromarray(np.asarray(f)) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=max(1, round(1000 / fps)), loop=0)
        return path
    import imageio.v2 as imageio

    h, w = frames[0].shape[:2]
    pad = ((0, h % 2), (0, w % 2), (0, 0))  # yuv420p needs even sizes
    with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1) as writer:
        for f in frames:
            writer.append_data(np.pad(np.asarray(f), pad, mode="edge"))
    return path


def render_run(run_dir: str, out: str, checkpoint: str | int = "latest", member: str | int | None = None,
               episodes: int = 1, seed: int = 0, max_steps: int | None = None, fps: int = 20,
               deterministic: bool = True, every: int = 1) -> dict:
    """Plays ``episodes`` episodes of one member of the run (greedy unless ``deterministic`` is
    False; every player of a self-play run), draws every ``every``-th state of each (and its
    last) and writes one video to ``out`` (the episodes one after another, the last frame of
    each held for half a second). Returns
    ``{"path", "frames", "episodes": [{"steps", "return"}], "member", "checkpoint"}``."""
    from rljax.trained import load_players

    check_output(out)
    if episodes <= 0:
        raise ConfigError(f"--episodes must be > 0, got {episodes}")
    if every <= 0:
        raise ConfigError(f"--every must be > 0, got {every}")
    if max_steps is not None and max_steps <= 0:
        raise ConfigError(f"--max-steps must be > 0, got {max_steps}")
    players = load_players(run_dir, checkpoint, member)
    env, env_params = players[0].env, players[0].env_params
    if hasattr(players[0].policy, "episode"):  # EMPO: the robot plays itself, the humans from the prior
        steps = env.horizon if max_steps is None else max_steps
        play = lambda key: players[0].policy.episode(key, steps, deterministic)  # noqa: E731
        episode_params = [None]
        picture = jax.jit(lambda ws, _: env.render(ws)) if hasattr(env, "render") else None  # worlds draw in JAX
    else:
        steps = env.max_steps(env_params) if max_steps is None else max_steps
        act, carry = joint_act(players, deterministic)
        player = make_player(act, carry, env, steps)
        info = players[0].policy.info
        # A run that draws task parameters per episode (communities) gets a fresh draw per episode.
        draw_params = info.get("param_sampler")
        params_of = (lambda k: draw_params(k, info["task"])) if draw_params else (lambda k: env_params)  # noqa: E731
        episode_params = []

        def play(key):
            k_task, k_play = jax.random.split(key)
            episode_params.append(params_of(k_task))
            return player(k_play, episode_params[-1])

        picture = jax.jit(env.render) if env.render_jittable else env.render
    frames, played = [], []
    for key in jax.random.split(jax.random.key(seed), episodes):
        states, alive, rewards = play(key)
        keep = np.asarray(alive)
        steps_played = int(keep.sum())
        picks = np.zeros_like(keep)
        picks[np.r_[0:steps_played:every, steps_played - 1]] = True  # the episode's states are a prefix
        try:
            if picture is None:
                raise NotImplementedError("its world has no render(ws)")
            drawn = draw(picture, jax.tree.map(lambda x: np.asarray(x)[picks], states), episode_params[-1])
        except NotImplementedError as e:
            raise ConfigError(f"cannot render a {players[0].policy.info['experiment']} run: {e}") from None
        frames += drawn + [drawn[-1]] * max(1, fps // 2)
        r = np.asarray(rewards).sum(0)
        played.append({"steps": steps_played - 1, "return": r.tolist() if r.ndim else float(r)})
    write_video(frames, out, fps)
    info = players[0].policy.info
    return {"path": out, "frames": len(frames), "episodes": played, "member": info["member"],
            "checkpoint": info["checkpoint"]}
