"""D's targets: one-sided label smoothing (Salimans et al. 2016 §3.4) and label noise (seed 003)."""

from __future__ import annotations

import torch

from facegan.config import TrainConfig
from facegan.losses import Target


def d_targets(
    cfg: TrainConfig, n: int, device: torch.device, generator: torch.Generator | None = None
) -> tuple[Target, Target]:
    """(real target, fake target) for a batch of n: 1 and 0, smoothed and/or noisy as the config asks.

    One-sided smoothing lowers only the real target (1 - s), as Salimans et al. advise. Label noise moves each
    target toward the other class by U(0, a): real 1 - U(0, a), fake U(0, a). Seed 003's Keras listing adds
    0.05·U(0, 1) to both labels in its real=0/fake=1 convention, which also pushes fake labels past 1; that half
    is dropped here because BCE with a target outside [0, 1] no longer has its minimum at the target.
    """
    real: Target = 1.0 - cfg.label_smoothing
    fake: Target = 0.0
    if cfg.label_noise > 0:
        noise = torch.rand(2, n, generator=generator, device=device) * cfg.label_noise
        real, fake = real - noise[0], fake + noise[1]
    return real, fake
