"""Adversarial losses on D's raw outputs (logits), each a (D loss, G loss) pair, and D's regularisers.

`LOSSES` maps `--loss` names to pairs; `bce`, `hinge` and `lsgan` take D's real (and fake) targets so label
smoothing and label noise apply to them. The regularisers (WGAN-GP's gradient penalty, R1, R2) and feature
matching are computed by the step (facegan.training.step) from these functions. A loss with no functions here
(`began`) is a family's own, computed by that family's step (its `Family.loss` names it): BEGAN's is a
reconstruction loss, not a function of logits. This module sits below the models and the training loop: it
imports only torch and facegan.errors.

RpGAN (Huang et al. 2024, R3GAN), with f = softplus and reals paired one to one with fakes:
    L_D = mean_i f(D(G(z_i)) - D(x_i)) + γ/2 · (R1 + R2),    L_G = mean_i f(D(x_i) - D(G(z_i))),
R1 = mean_i ‖∇_x D(x_i)‖² on reals and R2 the same on fakes (zero-centred; R1 alone diverged in their study).
The gradients are taken with respect to the images before D's augmentation, through the same forward pass as
the loss (the step makes them require grad before augmenting), squared and summed in float32.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from facegan.errors import FaceganError

Target = torch.Tensor | float


@dataclass(frozen=True)
class PenaltyInputs:
    """What a loss's penalty may use: D as the step calls it, the images before (`real`, `fake`) and after
    (`real_in`, `fake_in`) D's augmentation, D's float32 logits of the latter, the train config, the current γ
    (train.r1_gamma, or its ramp) and the run's noise generator. For a loss with `penalty_on_inputs`, `real`
    and `fake` require grad and the logits were computed from them."""

    netD: Callable[[torch.Tensor], torch.Tensor]
    real: torch.Tensor
    fake: torch.Tensor
    real_in: torch.Tensor
    fake_in: torch.Tensor
    real_out: torch.Tensor
    fake_out: torch.Tensor
    train: Any
    gamma: float
    generator: torch.Generator | None = None


Penalty = Callable[[PenaltyInputs], "torch.Tensor | float"]


@dataclass(frozen=True)
class Loss:
    """A `--loss`: D's loss `d(real_out, fake_out, real_target, fake_target)` and G's loss `g(fake_out)` (or
    `g(fake_out, real_out)` when `g_needs_real`), scalar tensors, plus what else it brings or needs."""

    name: str
    d: Callable[..., torch.Tensor] | None  # None (with g): a family's own loss, computed by its step
    g: Callable[..., torch.Tensor] | None
    takes_labels: bool = False  # D's targets are labels: label smoothing and label noise apply
    g_needs_real: bool = False  # G's loss also needs D(x) (relativistic losses such as RpGAN's)
    penalty: Penalty | None = None  # penalty(PenaltyInputs) added to D's loss
    per_image_penalty: bool = False  # the penalty is per image, which BatchNorm in D breaks (auto d_norm: layer)
    penalty_on_inputs: bool = False  # the penalty differentiates D's logits by its un-augmented images, and
    # it is γ-weighted R1 (+ R2): the step makes the images require grad and adds no R1 of its own

    def g_loss(self, fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
        """G's loss on D(G(z)) (and D(x) when the loss needs it)."""
        assert self.g is not None, f"the {self.name} loss is computed by its family's step"
        return self.g(fake_out, real_out) if self.g_needs_real else self.g(fake_out)


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


def zero_centred_penalty(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """E‖∇ₓD(x)‖², per image summed over pixels, averaged over the batch, in float32, differentiable with
    respect to D's weights (create_graph). `x` requires grad and `out` (N,) came from it: R1 on reals, R2 on
    fakes (Mescheder et al. 2018; the caller multiplies by γ/2)."""
    (grad,) = torch.autograd.grad(out.float().sum(), x, create_graph=True)
    return grad.float().pow(2).flatten(1).sum(1).mean()


def r1_penalty(netD: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): E‖∇ₓD(x)‖² on real images, from its own pass of D (the caller multiplies
    by γ/2)."""
    x = real.detach().float().requires_grad_(True)
    return zero_centred_penalty(netD(x), x)


def lazy_gamma(gamma: float, step: int, every: int) -> float:
    """γ of this D step under lazy regularisation (Karras et al. 2020, StyleGAN2 §B): the zero-centred
    penalties only on every `every`-th step (step 0, k, 2k, ...), weighted k·γ so their mean weight is γ; 0
    on the other steps, which then skip the penalties' double backward. `every` 1: γ on every step."""
    if every <= 1:
        return gamma
    return gamma * every if step % every == 0 else 0.0


def rpgan_d(real: torch.Tensor, fake: torch.Tensor, *_targets: Target) -> torch.Tensor:
    """RpGAN's D loss: mean_i softplus(D(G(z_i)) - D(x_i)), in float32."""
    return F.softplus(fake.float() - real.float()).mean()


def rpgan_g(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """RpGAN's G loss: mean_i softplus(D(x_i) - D(G(z_i))), in float32."""
    return F.softplus(real.float() - fake.float()).mean()


def rpgan_penalty(p: PenaltyInputs) -> torch.Tensor | float:
    """γ/2·(R1 + R2) on the un-augmented reals and fakes, from the loss's own forward pass (γ 0: none)."""
    if p.gamma <= 0:
        return 0.0
    return p.gamma / 2 * (zero_centred_penalty(p.real_out, p.real) + zero_centred_penalty(p.fake_out, p.fake))


def feature_matching_loss(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """Salimans et al. 2016 §3.1: ‖E f(x) - E f(G(z))‖², f = D's last hidden features (real side detached)."""
    return (real_features.detach().float().flatten(1).mean(0) - fake_features.float().flatten(1).mean(0)).pow(2).sum()


def wgan_gp_penalty(p: PenaltyInputs) -> torch.Tensor | float:
    """λ·`gradient_penalty` at D's view of the images, with λ = train.gp_weight (0: none)."""
    if p.train.gp_weight <= 0:
        return 0.0
    return p.train.gp_weight * gradient_penalty(p.netD, p.real_in, p.fake_in, p.generator)


def _registry(*losses: Loss) -> dict[str, Loss]:
    return {loss.name: loss for loss in losses}


LOSSES: dict[str, Loss] = _registry(
    Loss("bce", bce_d, bce_g, takes_labels=True),
    Loss("hinge", hinge_d, hinge_g),
    Loss("lsgan", lsgan_d, lsgan_g, takes_labels=True),
    Loss("wgan-gp", wgan_d, wgan_g, penalty=wgan_gp_penalty, per_image_penalty=True),
    Loss("rpgan", rpgan_d, rpgan_g, g_needs_real=True, penalty=rpgan_penalty, per_image_penalty=True,
         penalty_on_inputs=True),
    Loss("began", None, None),  # L1 reconstruction: facegan.models.began's step (its Family.loss)
)
# Every `--loss` name.
LOSS_NAMES = tuple(LOSSES)


def get_loss(name: str) -> Loss:
    """The registered loss called `name`, or one clear error."""
    if name not in LOSSES:
        raise FaceganError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
    return LOSSES[name]
