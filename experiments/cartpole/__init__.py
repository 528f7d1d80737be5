"""CartPole PPO."""
