"""Experiments over runs: sweeps of hyperparameter grids and side-by-side comparison."""
