"""Adversarial losses on D's raw outputs (logits), each a (D loss, G loss) pair, and D's regularisers.

`LOSSES` maps `--loss` names to pairs; `bce`, `hinge` and `lsgan` take D's real (and fake) targets so label
smoothing and label noise apply to them. The regularisers (WGAN-GP's gradient penalty, R1) and feature
matching are computed by the step (facegan.step) from these functions. BEGAN's loss lives with its step in
facegan.models.began because it is a reconstruction loss, not a function of logits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F


class AdversarialLoss(NamedTuple):
    """`d(real_out, fake_out, real_target, fake_target)` and `g(fake_out)`, both scalar tensors."""

    d: Callable[..., torch.Tensor]
    g: Callable[[torch.Tensor], torch.Tensor]


Target = torch.Tensor | float


def _target(value: Target, like: torch.Tensor) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):  # a number: filled on the device (as_tensor would copy from the
        return torch.full_like(like, float(value))  # host and, on CUDA, wait for the GPU every step)
    return value.to(dtype=like.dtype, device=like.device).expand_as(like)


def bce_d(
    real: torch.Tensor, fake: torch.Tensor, real_target: Target = 1.0, fake_target: Target = 0.0
) -> torch.Tensor:
    """BCE on logits: real → target (1, or smoothed/noisy labels), fake → 0; summed as in the DCGAN tutorial."""
    return F.binary_cross_entropy_with_logits(real, _target(real_target, real)) + F.binary_cross_entropy_with_logits(
        fake, _target(fake_target, fake)
    )


def bce_g(fake: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss: BCE of D(G(z)) against 1."""
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


def hinge_d(real: torch.Tensor, fake: torch.Tensor, *_targets: Target) -> torch.Tensor:
    """Hinge loss of D (Lim & Ye 2017; SN-GAN): E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_g(fake: torch.Tensor) -> torch.Tensor:
    """Hinge loss of G: -E[D(G(z))]."""
    return -fake.mean()


def lsgan_d(
    real: torch.Tensor, fake: torch.Tensor, real_target: Target = 1.0, fake_target: Target = 0.0
) -> torch.Tensor:
    """Least-squares GAN (Mao et al. 2017), a=0, b=1: ½E[(D(x) - 1)²] + ½E[D(G(z))²]."""
    real_term = ((real - _target(real_target, real)) ** 2).mean()
    return 0.5 * real_term + 0.5 * ((fake - _target(fake_target, fake)) ** 2).mean()


def lsgan_g(fake: torch.Tensor) -> torch.Tensor:
    """Least-squares G loss, c=1: ½E[(D(G(z)) - 1)²]."""
    return 0.5 * ((fake - 1.0) ** 2).mean()


def wgan_d(real: torch.Tensor, fake: torch.Tensor, *_targets: Target) -> torch.Tensor:
    """The Wasserstein critic loss E[D(G(z))] - E[D(x)]; WGAN-GP adds `gradient_penalty` to it."""
    return fake.mean() - real.mean()


def wgan_g(fake: torch.Tensor) -> torch.Tensor:
    """The Wasserstein G loss -E[D(G(z))]."""
    return -fake.mean()


LOSSES: dict[str, AdversarialLoss] = {
    "bce": AdversarialLoss(bce_d, bce_g),
    "hinge": AdversarialLoss(hinge_d, hinge_g),
    "lsgan": AdversarialLoss(lsgan_d, lsgan_g),
    "wgan-gp": AdversarialLoss(wgan_d, wgan_g),
}
# Losses whose D target is a label, so label smoothing and label noise mean something.
LABEL_LOSSES = ("bce", "lsgan")
# Every `--loss` name: the logit losses above, and BEGAN's reconstruction loss (its own step, family began).
LOSS_NAMES = (*LOSSES, "began")


def gradient_penalty(
    netD: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP's penalty E[(‖∇D(x̂)‖₂ - 1)²] at x̂ = εx + (1-ε)G(z), ε ~ U(0, 1) per image (Gulrajani et al. 2017).

    Differentiable with respect to D's weights (create_graph), computed in float32.
    """
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=generator, device=real.device, dtype=torch.float32)
    x_hat = (eps * real.detach().float() + (1 - eps) * fake.detach().float()).requires_grad_(True)
    out = netD(x_hat).float()
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


def r1_penalty(netD: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): E‖∇ₓD(x)‖² on real images (the caller multiplies by γ/2)."""
    x = real.detach().float().requires_grad_(True)
    out = netD(x).float()
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def feature_matching_loss(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """Salimans et al. 2016 §3.1: ‖E f(x) - E f(G(z))‖², f = D's last hidden features (real side detached)."""
    return (real_features.detach().float().flatten(1).mean(0) - fake_features.float().flatten(1).mean(0)).pow(2).sum()
