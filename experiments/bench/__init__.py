"""Engine benchmarks (not experiments)."""
