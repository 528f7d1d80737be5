"""The ego's single-agent view of the harvest world: player 0 learns, the scripted residents
(:mod:`rljax.environments.harvest_residents`) act for players 1-15.

:class:`HarvestEnv` is an :class:`~rljax.envs.multi_agent.AgentView` of
:class:`~rljax.environments.harvest.HarvestWorld` with learner 0. Its params are the world's
:class:`~rljax.environments.harvest.HarvestParams` (the residents read the posted colour and their
switches from the same params). With ``params.ego_is_resident=1`` (the baseline) the residents'
policy also drives slot 0 and the ego's action is ignored (the view's ``takeover``).

The residents decide from the state before the step alone, like every others-policy of the view:
their guard against mis-sanctions (``resident_guard=2``, :func:`~rljax.environments.harvest_residents.
beam_risk`) is conservative over every action anybody could take in the frame, so nothing the ego
does in a frame changes what the residents do in it. Key split: world key, then the residents'.
"""
from __future__ import annotations

import jax

from rljax.environments.harvest import EGO, HarvestParams, HarvestState, HarvestWorld, harvest_params
from rljax.environments.harvest_residents import resident_actions
from rljax.envs.multi_agent import AgentView

Array = jax.Array


def residents_policy(params: HarvestParams, key: Array, state: HarvestState, env_params: HarvestParams
                     ) -> tuple[Array, HarvestState]:
    """The others-policy: the resident policy's ``int32[16]`` actions for every slot (privileged:
    it reads the world state) and the state with the residents' memory updated."""
    return resident_actions(key, state, env_params)


def _same(params: HarvestParams) -> tuple[HarvestParams, HarvestParams]:
    return params, params


class HarvestEnv(AgentView):
    """The ego's view (see the module docstring): ``step(key, state, action, params)`` takes the
    ego's ``int32`` action and returns ``(obs[OBS_DIM], state, reward, terminated, truncated,
    info)``; ``state`` is the world's :class:`~rljax.environments.harvest.HarvestState`."""

    def __init__(self):
        super().__init__(HarvestWorld(), EGO, residents_policy, split_params=_same, default_params=harvest_params,
                         takeover=lambda p: p.ego_is_resident > 0, name="harvest")
