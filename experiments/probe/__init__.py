"""PPO probe tasks (diagnostics)."""
