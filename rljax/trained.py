"""A trained run in a user's hands: ``rljax.load(RUN_DIR)`` -> a policy, its environment and
the environment's parameters, with no training code in sight.

    policy, env, env_params = rljax.load("runs/cartpole", checkpoint="best")
    obs, state = env.reset(jax.random.key(0), env_params)
    action = policy(obs[None], jax.random.key(1), deterministic=True)[0]

The restore goes through the run's verified checkpoint path (integrity records, damaged steps
skipped with one line on stderr; :meth:`rljax.checkpoint.Checkpointer.restore_verified`). The
returned :class:`LoadedPolicy` holds only the network, its parameters, the observation
statistics it was trained with and the action space.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rljax.errors import ConfigError

Array = jax.Array


@dataclass(frozen=True, eq=False)  # hashed by identity, so jax.jit(policy) caches per policy
class LoadedPolicy:
    """One member's trained policy. Batched: ``obs[B, *obs_shape]`` (any leading batch shape,
    also ``()`` for one observation) -> ``action[B, ...]``; pure, so it can be jitted, vmapped
    and scanned.

    Feedforward: ``policy(obs, key, deterministic=False) -> action``.
    Recurrent (:attr:`recurrent`): ``policy(obs, key, carry=c, deterministic=False) ->
    (action, carry)`` with ``c = policy.initial_carry(batch_shape)`` at an episode start (and
    :meth:`reset` where an episode ended), as in training (:mod:`rljax.ppo.policy`).

    ``deterministic``: the distribution's mode (what ``rljax eval`` scores) instead of a sample;
    a Python bool or a traced boolean. Observations are normalised with the run's statistics
    when the run trained with ``ppo.normalize_obs``.
    """

    network: Any  # flax module, as trained
    params: Any
    action_space: Any
    obs_stats: Any = None  # RunningMeanStd, or None when the run did not normalise observations
    info: dict = field(default_factory=dict)  # experiment, member, checkpoint {"which", "step"}, update

    @property
    def recurrent(self) -> bool:
        from rljax.ppo.policy import is_recurrent

        return is_recurrent(self.network)

    def initial_carry(self, batch_shape: tuple[int, ...] | int = ()) -> Any:
        """The recurrent state at an episode start for ``batch_shape`` (``()`` when feedforward)."""
        from rljax.ppo.policy import Policy

        shape = (batch_shape,) if isinstance(batch_shape, int) else tuple(batch_shape)
        return Policy(self.network).initial_carry(shape)

    def reset(self, carry: Any, done: Array) -> Any:
        """``carry`` with the entries where ``done[B]`` back at the initial carry."""
        from rljax.ppo.policy import Policy

        return Policy(self.network).reset(carry, jnp.asarray(done))

    def distribution(self, obs: Array, carry: Any = ()) -> tuple[Any, Any]:
        """``(action distribution, carry)`` for ``obs``; the distribution has ``sample(key)``,
        ``mode()`` and ``log_prob(action)``."""
        from rljax.distributions import make_distribution
        from rljax.ppo.policy import Policy

        x = jnp.asarray(obs)
        x = self.obs_stats.normalize(x.astype(jnp.float32)) if self.obs_stats is not None else x
        carry, pi_out, _ = Policy(self.network).apply(self.params, carry, x)
        return make_distribution(self.action_space, pi_out), carry

    def __call__(self, obs: Array, key: Array, carry: Any = None, deterministic: Any = False) -> Any:
        if self.recurrent and carry is None:
            raise ConfigError("this policy is recurrent: call policy(obs, key, carry=policy.initial_carry(batch_shape)) "
                              "-> (action, carry)")
        dist, new_carry = self.distribution(obs, carry if self.recurrent else ())
        if isinstance(deterministic, bool):
            action = dist.mode() if deterministic else dist.sample(key)
        else:  # traced: both, selected
            action = jax.tree.map(lambda m, s: jnp.where(deterministic, m, s), dist.mode(), dist.sample(key))
        return (action, new_carry) if self.recurrent else action


class Loaded(NamedTuple):
    """What :func:`load` returns; unpacks as ``policy, env, env_params``."""

    policy: Any  # LoadedPolicy; an EMPO run's rljax.empo.robot_policy.EmpoRobotPolicy
    env: Any  # rljax.envs.environment.Environment (an EMPO run: its world)
    env_params: Any  # this member's task parameters, as in its checkpointed state (EMPO: its EmpoHParams)


def load(run_dir: str, checkpoint: str | int = "latest", member: str | int | None = None,
         role: str | None = None) -> Loaded:
    """The policy of one member of the run in ``run_dir`` (or a path inside it), with its
    environment and task parameters.

    ``checkpoint``: ``"latest"`` (newest intact step, falling back to best), ``"best"`` (best
    intact step, falling back to latest) or a step number (that step, verified; a missing or
    damaged step raises :class:`~rljax.errors.ConfigError`, one line). ``member``: a member
    name (e.g. ``"seed1"``) or index; may be left out when the run has one member.

    Supports runs trained by PPO (feedforward or recurrent), which covers cartpole, memory,
    probe, goodhart and communities (the ego). Experiments whose environment draws task
    parameters per episode (communities) return one draw (key 0) as ``env_params``; the
    member's task and the sampler are ``policy.info["task"]`` and ``policy.info
    ["param_sampler"]`` (``param_sampler(key, task) -> env_params``) for other draws.
    Self-play runs (pursuit) need ``role="pursuer"|"evader"``: the policy is that learner's, the
    environment is the two-player game (``obs[..., role_index, :]`` is the role's observation,
    ``policy.info["role_index"]``; actions are stacked ``[..., 2, A]``) and ``env_params`` is
    the task at the curriculum's current level. EMPO runs give the trained robot
    (:class:`rljax.empo.robot_policy.EmpoRobotPolicy`: ``policy(ws, key) -> a_r`` on situations
    of the run's world), the world (:mod:`rljax.empo.world`: ``reset(u)``, ``step(u, ws, a_r,
    a_h)``, the humans' ``prior(ws)``) and the member's theory parameters (``EmpoHParams``).
    """
    runner, state = restore(run_dir, checkpoint)
    selfplay = _is_selfplay(runner)
    if selfplay and role not in ROLES:
        raise ConfigError(f"{runner.experiment.name} is a self-play run: pass role='pursuer' or role='evader'"
                          + (f", not {role!r}" if role is not None else ""))
    if not selfplay and role is not None:
        raise ConfigError(f"role={role!r} is for self-play runs; {runner.experiment.name} trains one policy")
    return _build(runner, state, member, role)


def load_players(run_dir: str, checkpoint: str | int = "latest", member: str | int | None = None) -> tuple[Loaded, ...]:
    """Every trained player of one member, from one restore: ``(load(...),)`` for a run with one
    policy, ``(pursuer, evader)`` (:data:`ROLES` order) for a self-play run, all sharing the
    environment and its params. What ``rljax render`` plays."""
    runner, state = restore(run_dir, checkpoint)
    if _is_selfplay(runner):
        return tuple(_build(runner, state, member, role) for role in ROLES)
    return (_build(runner, state, member, None),)


def restore(run_dir: str, checkpoint: str | int = "latest", **runner_overrides: Any) -> tuple[Any, Any]:
    """``(runner, member-batched state)`` of the run at the checkpoint ``"latest"``, ``"best"`` or a
    step number (:func:`rljax.runner.load_run`), validating ``checkpoint`` with one line."""
    from rljax.runner import load_run

    if isinstance(checkpoint, bool) or not (checkpoint in ("latest", "best") or isinstance(checkpoint, int)):
        raise ConfigError(f"checkpoint must be 'latest', 'best' or a step number, got {checkpoint!r}")
    step = checkpoint if isinstance(checkpoint, int) else None
    return load_run(run_dir, best=checkpoint == "best", step=step, **runner_overrides)


def restore_members(run_dir: str, checkpoint: str | int = "latest", member: str | int | None = None,
                    **runner_overrides: Any) -> tuple[Any, Any]:
    """:func:`restore`, cut to one member when ``member`` is given: the runner's ``members``
    list and the state's leading member axis then hold that member alone (a one-member view for
    the evaluations that loop over members; the runner is for reading, not for training on)."""
    runner, state = restore(run_dir, checkpoint, **runner_overrides)
    if member is None:
        return runner, state
    i = member_index(runner, member)
    runner.members = [runner.members[i]]
    runner.num_members = 1
    return runner, jax.tree.map(lambda x: x[i:i + 1], state)


def parse_checkpoint(text: str) -> str | int:
    """``--checkpoint`` on a command line: ``latest``, ``best`` or a step number."""
    if text in ("latest", "best"):
        return text
    try:
        step = int(text)
    except ValueError:
        raise ConfigError(f"--checkpoint must be latest, best or a step number, got {text!r}") from None
    if step < 0:
        raise ConfigError(f"--checkpoint must be latest, best or a step number >= 0, got {text!r}")
    return step


def member_index(runner: Any, member: str | int | None) -> int:
    """The index of ``member`` (a name, an index, or None for a run of one member) among the
    run's members; a one-line :class:`~rljax.errors.ConfigError` otherwise."""
    return _member_index(member, [m.name for m in runner.members])


def _is_selfplay(runner: Any) -> bool:
    return type(runner.algorithm).__name__ == "SelfPlayTrainer"  # by name: no self-play import for a PPO run


def _build(runner: Any, state: Any, member: str | int | None, role: str | None) -> Loaded:
    from rljax.ppo.ppo import PPO

    alg = runner.algorithm
    selfplay = _is_selfplay(runner)
    empo = type(alg).__name__ == "EmpoTrainer"  # by name, as self-play
    if not (isinstance(alg, PPO) or selfplay or empo):
        raise ConfigError(f"rljax.load supports PPO, self-play and EMPO runs; {runner.experiment.name} is trained "
                          f"by {type(alg).__name__} (not supported)")
    names = [m.name for m in runner.members]
    index = _member_index(member, names)
    ts = jax.tree.map(lambda x: jax.device_get(x[index]), state)
    info = {"experiment": runner.experiment.name, "member": names[index],
            "checkpoint": {k: runner.restored_from[k] for k in ("which", "step")},
            "update": int(alg.update_count(ts)), "run_dir": runner.out_dir}
    if empo:
        from rljax.empo.robot_policy import EmpoRobotPolicy

        return Loaded(EmpoRobotPolicy(alg, ts.params, ts.hparams, info), alg.world, ts.hparams)
    if selfplay:
        r = ROLES.index(role)
        env_params = alg.task_params(ts.task, ts.curriculum)
        info.update(role=role, role_index=r)
        policy = LoadedPolicy(network=alg.network, params=jax.tree.map(lambda x: x[r], ts.params),
                              action_space=alg.env.action_space(env_params, r), info=info)
        return Loaded(policy, alg.env, env_params)
    env_params = ts.env_params
    if alg.param_sampler is not None:  # the member's task: every episode draws its own params from it
        info.update(task=ts.env_params, param_sampler=alg.param_sampler)
        env_params = alg.param_sampler(jax.random.key(0), ts.env_params)
    policy = LoadedPolicy(network=alg.network, params=ts.params, action_space=alg.env.action_space(env_params),
                          obs_stats=ts.obs_stats if alg.cfg.normalize_obs else None, info=info)
    return Loaded(policy, alg.env, env_params)


ROLES = ("pursuer", "evader")  # the rows of a self-play state (rljax.selfplay.protocol.PURSUER, EVADER)


def _member_index(member: str | int | None, names: list[str]) -> int:
    if member is None:
        if len(names) == 1:
            return 0
        raise ConfigError(f"the run has {len(names)} members; pass member= one of: {_listed(names)}")
    if isinstance(member, int) and not isinstance(member, bool):
        if not 0 <= member < len(names):
            raise ConfigError(f"member={member} is out of range: the run has {len(names)} members")
        return member
    if member in names:
        return names.index(member)
    raise ConfigError(f"member={member!r} is not in the run; members: {_listed(names)}")


def _listed(names: list[str], limit: int = 8) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")
