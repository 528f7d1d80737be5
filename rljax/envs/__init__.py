from rljax.envs.environment import Environment, tree_select
from rljax.envs.multi_agent import AgentView, AgentViewParams, MultiAgentEnvironment
from rljax.envs.spaces import Box, Discrete, MultiDiscrete

__all__ = ["Environment", "tree_select", "MultiAgentEnvironment", "AgentView", "AgentViewParams", "Box", "Discrete",
           "MultiDiscrete"]
