"""The tiny learning test of the pursuit arena: a PPO pursuer trained against the uniformly random
evader captures far more often than a uniformly random pursuer, on the same evaluation episodes.

The set-up (``rljax.experiments.pursuit.learning``'s ``shaped`` variant): the engine's PPO on the
single-agent view of the arena, full observation, no obstacles, 1-3 m starts, 200-step episodes,
actions in ``[-1, 1]`` rescaled to the unicycle box (``unit_actions``), the closing distance x100
plus +10 at capture as the reward, 40,960 steps. With the spec's reward or learning rate the same
budget stays near the random pursuer (docs/pursuit.md has the measurements).
"""
from __future__ import annotations

from rljax.experiments.pursuit.learning import VARIANTS, train_pursuer


def test_ppo_pursuer_beats_the_random_pursuer_against_a_random_evader():
    r = train_pursuer(VARIANTS["shaped"], seed=0, episodes=200)
    assert r["same_episodes"], "the random pursuer must play the trained policy's evaluation episodes"
    assert 0.02 < r["random"] < 0.3, r  # the task is not trivial for a random pursuer
    assert r["untrained"] < 0.3, r  # ...nor for the untrained policy's mean action
    assert r["trained"] > 0.6 and r["trained"] > 3 * r["random"], r
