"""A run: its live state and checkpoints, and the RUN/ folder layout every other part reads."""
