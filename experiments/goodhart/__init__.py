"""Goodhart foraging: food/poison gridworld, ground-truth vs proxy observations."""
