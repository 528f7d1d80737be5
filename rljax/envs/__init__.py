from rljax.envs.environment import Environment, tree_select
from rljax.envs.spaces import Box, Discrete, MultiDiscrete

__all__ = ["Environment", "tree_select", "Box", "Discrete", "MultiDiscrete"]
