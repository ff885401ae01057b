"""Training: the loop (loop.py), one step, losses, optimisers, stabilisers, health, precision, distributed runs."""
