"""Pursuit-evasion self-play (AMS-DRL)."""
