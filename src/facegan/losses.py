"""Adversarial losses on D's raw outputs (logits). Each entry: (D loss, G loss)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F


class AdversarialLoss(NamedTuple):
    """`d(real_out, fake_out, real_target)` and `g(fake_out)`, both scalar tensors."""

    d: Callable[..., torch.Tensor]
    g: Callable[[torch.Tensor], torch.Tensor]


def bce_d(real: torch.Tensor, fake: torch.Tensor, real_target: torch.Tensor | float = 1.0) -> torch.Tensor:
    """BCE on logits: real → target (1, or smoothed/noisy labels), fake → 0; summed as in the DCGAN tutorial."""
    target = torch.as_tensor(real_target, dtype=real.dtype, device=real.device).expand_as(real)
    return F.binary_cross_entropy_with_logits(real, target) + F.binary_cross_entropy_with_logits(
        fake, torch.zeros_like(fake)
    )


def bce_g(fake: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss: BCE of D(G(z)) against 1."""
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


LOSSES: dict[str, AdversarialLoss] = {
    "bce": AdversarialLoss(bce_d, bce_g),
}
