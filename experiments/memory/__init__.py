"""The memory task for recurrent PPO."""
