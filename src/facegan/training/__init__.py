"""Training: the loop (loop.py), one step, optimisers, what D sees and its targets, G's EMA, health, precision,
distributed runs (the losses are facegan.losses)."""
