"""The GRU variant of the FiLM policy: the same layers plus a memory, arm parity at
initialisation, the memory carried through evaluation episodes, and a recurrent communities run
trained, evaluated in training and by the eval command."""
from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rljax

from rljax.cli import experiment_main
from rljax.environments.harvest import OBS_DIM, harvest_params
from rljax.environments.harvest_view import HarvestEnv
from rljax.experiments.communities.episodes import EgoPolicy, distribution_act, play_episode
from rljax.networks.film import FiLMPolicy, RecurrentFiLMPolicy
from rljax.trained import restore
from tests.bits import same

OBS = (jax.random.uniform(jax.random.key(5), (4, OBS_DIM)) < 0.15).astype(jnp.float32)
NET = RecurrentFiLMPolicy(cell_size=16)
PARAMS = NET.init(jax.random.key(6), NET.initial_carry((1,)), OBS[:1])


def test_recurrent_film_is_the_film_policy_plus_a_gru_and_remembers():
    ff = FiLMPolicy().init(jax.random.key(6), OBS[:1])["params"]
    p = PARAMS["params"]
    assert set(p) == set(ff) | {"gru"}
    assert p["hidden"]["kernel"].shape == ff["hidden"]["kernel"].shape  # the trunk is unchanged
    assert p["game_hidden"]["kernel"].shape == (16, 128)  # the heads read the memory
    c0 = NET.initial_carry((4,))
    c1, (d1, v1) = NET.apply(PARAMS, c0, OBS)
    assert c1.shape == (4, 16) and v1.shape == (4,) and d1.entropy().shape == (4, 2)
    # the same observation after a different past gives a different output
    _, (d2, v2) = NET.apply(PARAMS, c1, OBS)
    assert not np.allclose(v1, v2) and not np.allclose(d1.heads[0].logits, d2.heads[0].logits)
    # treatment (one-hot token) and control (zeros) are the same function at initialisation
    treat, ctrl = OBS.at[:, -3:].set(jnp.asarray([0.0, 0.0, 1.0])), OBS.at[:, -3:].set(0.0)
    (ct, (dt, vt)), (cc, (dc, vc)) = NET.apply(PARAMS, c0, treat), NET.apply(PARAMS, c0, ctrl)
    assert same((ct, dt.heads[0].logits, vt), (cc, dc.heads[0].logits, vc))


def test_evaluation_episodes_carry_the_memory():
    """A policy whose memory counts its steps and zaps on odd ones: 20 presses in 40 steps only
    if the memory really goes from one step to the next (a reset memory never zaps)."""
    class Dist:
        def __init__(self, a):
            self.a = a

        def mode(self):
            return self.a

        sample = lambda self, key: self.a  # noqa: E731

    ego = EgoPolicy(lambda n, obs: (n + 1, Dist(jnp.where(n % 2 == 1, 7, 0).astype(jnp.int32))), jnp.zeros((), jnp.int32))
    p = harvest_params(episode_length=40)
    sums = jax.jit(lambda k: play_episode(HarvestEnv(), ego, k, p, 40, greedy=True))(jax.random.key(0))
    assert float(sums["ep_zap_presses"]) == 20
    with pytest.raises(ValueError, match="recurrent"):
        distribution_act(ego)


TINY = ["env.episode_length=40", "ppo.num_envs=4", "ppo.num_steps=16", "ppo.num_epochs=1", "ppo.num_minibatches=2",
        "ppo.total_timesteps=128", "network.recurrent=true", "network.cell_size=16", "runner.chunk_updates=1",
        "runner.checkpoint_every=1", "runner.eval_episodes=3", "runner.progress=false", "runner.keep_latest=5"]


def _set(items):
    return [x for kv in items for x in ("--set", kv)]


def test_recurrent_communities_run_trains_and_evaluates(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert experiment_main("communities", ["--out", out, *_set(TINY)]) == 0
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert [m["variant"] for m in summary["members"]] == ["treatment", "control"]
    for m in summary["members"]:
        assert np.isfinite(m["eval_return"])
    _, state = restore(out)
    assert state.carry.shape == (2, 4, 16) and np.any(np.asarray(state.carry) != 0)  # mid-episode (32 of 40 steps): the live memory is saved
    assert "gru" in state.params["params"]
    # rljax.load hands the recurrent ego over with its memory
    ego, _, _ = rljax.load(out, member="control_seed0")
    assert ego.recurrent
    carry = ego.initial_carry(3)
    action, carry = ego(jnp.zeros((3, OBS_DIM)), jax.random.key(0), carry, deterministic=True)
    assert action.shape == (3,) and carry.shape == (3, 16)
    capsys.readouterr()
    assert experiment_main("communities", ["eval", out, "--episodes", "1", "--episode-length", "24",
                                           "--out", str(tmp_path / "eval")]) == 0
    report = json.load(open(tmp_path / "eval" / "eval.json"))
    assert [m["arm"] for m in report["members"]] == ["treatment", "control"]
    # a bad recurrent config is one line naming the keys
    assert experiment_main("communities", ["--out", str(tmp_path / "bad"), *_set(TINY), "--set", "ppo.num_minibatches=8"]) == 2
    err = capsys.readouterr().err
    assert "network.recurrent=true" in err and "ppo.num_minibatches=8" in err
