"""A batch of environment instances with auto-reset and episode statistics.

This is the only place that batches an :class:`~rljax.envs.Environment`: ``N`` instances are
stepped with ``vmap``; finished instances are reset in place (``env.auto_reset`` from the state
the episode ended in: a fresh ``reset`` unless the environment keeps its world) and the
observation the episode ended on is kept in ``info["final_obs"]`` so GAE can bootstrap from it on truncation.

With ``reset_branch="cond"`` resets run under ``lax.cond(any(done))`` at the batch level, so
a step where no instance finished does not pay for N resets (gymnax computes a reset on every
step). Under an outer ``vmap`` (seeds, modes) a batched predicate would turn the cond into a
select that runs both branches on every step; give the vmap an ``axis_name`` and pass it as
``member_axis`` and the predicate is reduced over that axis instead (any member's reset
triggers the branch), so the cond survives. ``reset_branch="select"`` computes the reset on
every step and selects, which is faster on GPUs (see :mod:`rljax.backend`).
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from rljax.envs.environment import Environment, tree_select

Array = jax.Array
ParamSampler = Callable[[Array, Any], Any]


@struct.dataclass
class VecEnvState:
    """Batched state of ``N`` instances; every leaf has a leading ``[N]`` axis."""

    env_state: Any
    params: Any  # the task parameters of each instance's current episode
    ep_return: Array
    ep_length: Array
    ep_sums: dict[str, Array]


def any_member(pred: Array, member_axis: str | None) -> Array:
    """``any(pred)``, also over the named vmap axis ``member_axis`` when given. The result is
    then the same for every member, so a ``lax.cond`` on it stays a branch under that vmap
    instead of becoming a select that evaluates both sides. Outside such a vmap (the axis name
    unbound, e.g. a trainer taken from a Runner and vmapped by hand) it is plain ``any``."""
    out = jnp.any(pred)
    if member_axis is not None:
        try:
            out = jax.lax.pmax(out.astype(jnp.int32), member_axis) > 0
        except NameError:
            pass
    return out


class VecEnv:
    """``num_envs`` instances of ``env`` with auto-reset.

    ``param_sampler(key, base_params) -> params`` (optional) redraws an instance's task
    parameters from its own key at every reset (e.g. a community per episode); without it an
    instance keeps ``base_params``. A sampler with the attribute ``indexed = True`` is called
    ``param_sampler(key, base_params, i)`` with the instance's index ``i`` (e.g. a fixed share
    of instances at another task). ``base_params`` may be unbatched (shared by all instances)
    or batched ``[N]`` (set ``batched_params=True``).
    """

    def __init__(
        self,
        env: Environment,
        num_envs: int,
        param_sampler: ParamSampler | None = None,
        batched_params: bool = False,
        member_axis: str | None = None,
        reset_branch: str = "cond",
    ):
        if num_envs <= 0:
            raise ValueError(f"num_envs must be positive, got {num_envs}")
        if reset_branch not in ("cond", "select"):
            raise ValueError(f"reset_branch must be 'cond' or 'select', got {reset_branch!r}")
        self.reset_branch = reset_branch
        self.env = env
        self.num_envs = num_envs
        self.param_sampler = param_sampler
        self.batched_params = batched_params
        self.member_axis = member_axis
        self.ep_keys = tuple(k for k in env.info_keys() if k.startswith("ep_"))
        self.has_tag = "tag" in env.info_keys()

    # -- helpers ---------------------------------------------------------------------------
    @property
    def shared_params(self) -> bool:
        """Without a sampler or batched params every instance uses ``base_params`` as is:
        they are then not copied per instance (scalar parameters keep the env step cheaper)."""
        return self.param_sampler is None and not self.batched_params

    def _instance_params(self, keys: Array, base_params: Any) -> Any:
        in_axes = 0 if self.batched_params else None
        if self.shared_params:
            return ()
        if self.param_sampler is None:
            if self.batched_params:
                return base_params
            return jax.tree.map(lambda x: jnp.broadcast_to(x, (self.num_envs,) + jnp.shape(x)), base_params)
        if getattr(self.param_sampler, "indexed", False):  # sampler(key, base, instance index)
            return jax.vmap(self.param_sampler, in_axes=(0, in_axes, 0))(keys, base_params, jnp.arange(self.num_envs))
        return jax.vmap(self.param_sampler, in_axes=(0, in_axes))(keys, base_params)

    def _reset_all(self, key: Array, base_params: Any, ended: Any = None) -> tuple[Array, Any, Any]:
        """Resets every instance: ``env.reset``, or ``env.auto_reset`` from the states
        ``ended`` in which their episodes ended."""
        pkey, rkey = jax.random.split(key)
        params = self._instance_params(jax.random.split(pkey, self.num_envs), base_params)
        rkeys = jax.random.split(rkey, self.num_envs)
        if ended is None:
            obs, state = self._batched(self.env.reset, (rkeys,), params, base_params)
        else:
            # Duck-typed environments (not subclassing Environment) may lack auto_reset.
            auto_reset = getattr(self.env, "auto_reset", None) or (lambda k, _, p: self.env.reset(k, p))
            obs, state = self._batched(auto_reset, (rkeys, ended), params, base_params)
        return obs, state, params

    def _batched(self, fn: Callable, args: tuple, instance_params: Any, base_params: Any) -> Any:
        """``fn(*args, params)`` over instances, with shared or per-instance ``params``."""
        if self.shared_params:
            return jax.vmap(fn, in_axes=(0,) * len(args) + (None,))(*args, base_params)
        return jax.vmap(fn)(*args, instance_params)

    @property
    def num_keys(self) -> int:
        """Keys one :meth:`step` consumes: one per instance and one for resets."""
        return self.num_envs + 1

    # -- protocol --------------------------------------------------------------------------
    def reset(self, key: Array, base_params: Any) -> tuple[Array, VecEnvState]:
        """Returns ``obs[N, ...]`` and the batched state."""
        obs, state, params = self._reset_all(key, base_params)
        zeros = jnp.zeros((self.num_envs,), jnp.float32)
        return obs, VecEnvState(
            env_state=state,
            params=params,
            ep_return=zeros,
            ep_length=jnp.zeros((self.num_envs,), jnp.int32),
            ep_sums={k: zeros for k in self.ep_keys},
        )

    def step(
        self, key: Array, vstate: VecEnvState, action: Array, base_params: Any
    ) -> tuple[Array, VecEnvState, Array, Array, Array, dict[str, Array]]:
        """Steps all instances; returns ``(obs, state, reward, terminated, truncated, info)``.

        ``info`` holds ``final_obs[N, ...]`` (equal to ``obs`` where no episode ended), the
        environment's own per-step entries, and per finished episode: ``episode_done``,
        ``episode_return``, ``episode_length`` and ``episode_<k>`` for every summed ``ep_<k>``.
        """
        # ``key`` may come pre-split as ``[N + 1, 2]`` (see ``num_keys``): splitting all keys of a
        # rollout in one batched op outside the step loop saves several small kernels per step.
        typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
        keys = key if key.ndim == (1 if typed else 2) else jax.random.split(key, self.num_keys)
        rkey = keys[self.num_envs]
        obs, state, reward, terminated, truncated, env_info = self._batched(
            self.env.step, (keys[: self.num_envs], vstate.env_state, action), vstate.params, base_params
        )
        terminated = jnp.asarray(terminated, bool)
        # A step that both terminates and hits the limit is a termination: no bootstrap.
        truncated = jnp.logical_and(jnp.asarray(truncated, bool), ~terminated)
        done = terminated | truncated

        ep_return = vstate.ep_return + reward
        ep_length = vstate.ep_length + 1
        ep_sums = {k: vstate.ep_sums[k] + env_info[k].astype(jnp.float32) for k in self.ep_keys}

        def do_reset(_):
            r_obs, r_state, r_params = self._reset_all(rkey, base_params, ended=state)
            return (
                jnp.where(done.reshape((-1,) + (1,) * (obs.ndim - 1)), r_obs, obs),
                jax.vmap(tree_select)(done, r_state, state),
                r_params if self.shared_params else jax.vmap(tree_select)(done, r_params, vstate.params),
            )

        if self.reset_branch == "select":
            new_obs, new_state, new_params = do_reset(None)
        else:
            new_obs, new_state, new_params = jax.lax.cond(
                any_member(done, self.member_axis), do_reset, lambda _: (obs, state, vstate.params), None
            )
        info = dict(env_info)
        info.update(
            final_obs=obs,
            episode_done=done,
            episode_return=ep_return,
            episode_length=ep_length,
            **{"episode_" + k[3:]: v for k, v in ep_sums.items()},
        )
        not_done = ~done
        new_vstate = VecEnvState(
            env_state=new_state,
            params=new_params,
            ep_return=jnp.where(not_done, ep_return, 0.0),
            ep_length=jnp.where(not_done, ep_length, 0),
            ep_sums={k: jnp.where(not_done, v, 0.0) for k, v in ep_sums.items()},
        )
        return new_obs, new_vstate, reward.astype(jnp.float32), terminated, truncated, info
