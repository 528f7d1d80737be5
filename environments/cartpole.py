"""CartPole-v1 through the gymnax adapter (its physics, our auto-reset)."""
from rljax.envs.gymnax_adapter import GymnaxEnv


def make_cartpole() -> GymnaxEnv:
    return GymnaxEnv("CartPole-v1")
