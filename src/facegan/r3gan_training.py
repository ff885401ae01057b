"""R3GAN's training objective and schedules: RpGAN + R1 + R2, cosine ramps in images seen, EMA by half-life.

Loss (Huang et al. 2024, eq. for RpGAN; their R3GAN/Trainer.py), with f = softplus and logits D(·):
    L_D = mean_i f(D(G(z_i)) - D(x_i)) + γ/2 · mean_i (‖∇_x D(x_i)‖² + ‖∇_x D(G(z_i))‖²)
    L_G = mean_i f(D(x_i) - D(G(z_i)))
Reals and fakes are paired one to one (real i with fake i). R1 is the zero-centred gradient penalty on real
images, R2 the same on fakes; the gradient is taken with respect to the images D is given before any
augmentation (the caller augments inside the graph), and the squared norm is summed per image and averaged
over the batch; the caller weighs R1 + R2 by γ/2, as their code does.

Precision: the penalties are taken through D's forward pass as it ran (under bf16 autocast when the caller uses
it), but the gradient is returned in the images' dtype (fp32) and squared, summed and averaged in fp32, so the
sum over C·H·W pixels and the γ/2 weighting do not round in bf16.

Schedules (their training/training_loop.py `cosine_decay_with_warmup`, applied once per step at the images seen
before the step): value = start + (end - start)·(1 - cos(π·n/N))/2 for n ≤ N images, `end` after. Their presets
(train.py) ramp lr 2e-4 → 5e-5, Adam β2 0.9 → 0.99 (β1 = 0), γ down by 10× (FFHQ-64: 2 → 0.2), the EMA
half-life 0 → 0.5 M images (FFHQ-64) and the augmentation probability 0 → 0.3 (FFHQ-64), all over N = 20 M images.
G_ema follows G with β = 0.5^(batch / half_life_images).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


def rpgan_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D's RpGAN loss: mean_i softplus(D(G(z_i)) - D(x_i)), in fp32."""
    return F.softplus(fake_logits.float() - real_logits.float()).mean()


def rpgan_g_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """G's RpGAN loss: mean_i softplus(D(x_i) - D(G(z_i))), in fp32."""
    return F.softplus(real_logits.float() - fake_logits.float()).mean()


def gradient_penalty(logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Zero-centred gradient penalty mean_i ‖∇_{x_i} D(x_i)‖², in fp32, differentiable (create_graph).

    `images` must require grad and `logits` (N,) must come from them; R1 when they are reals, R2 when fakes.
    """
    (grad,) = torch.autograd.grad(logits.float().sum(), images, create_graph=True)
    return grad.float().square().sum(dim=tuple(range(1, grad.dim()))).mean()


@dataclass(frozen=True)
class DiscriminatorTerms:
    """The parts of D's R3GAN loss for one batch (all fp32 scalars; `loss` is the one to backpropagate)."""

    loss: torch.Tensor
    adversarial: torch.Tensor
    r1: torch.Tensor
    r2: torch.Tensor
    real_logits: torch.Tensor
    fake_logits: torch.Tensor


def discriminator_terms(
    netD: nn.Module, real: torch.Tensor, fake: torch.Tensor, gamma: float, penalty_every: int = 1,
    with_penalty: bool = True, preprocess: nn.Module | None = None,
) -> DiscriminatorTerms:
    """L_D = RpGAN + (γ/2)(R1 + R2), from one forward pass of D on reals and fakes (as their trainer does).

    Run it inside the caller's autocast context. `preprocess` (augmentation) is applied inside the graph, so the
    penalties are on the un-augmented images. Lazy penalties: call with `with_penalty` every `penalty_every`
    steps and the penalty is scaled by `penalty_every`, so its mean weight stays γ/2.
    """
    real = real.detach().requires_grad_(with_penalty)
    fake = fake.detach().requires_grad_(with_penalty)
    view = preprocess if preprocess is not None else nn.Identity()
    real_logits = netD(view(real)).float()
    fake_logits = netD(view(fake)).float()
    adversarial = rpgan_d_loss(real_logits, fake_logits)
    zero = adversarial.new_zeros(())
    r1 = gradient_penalty(real_logits, real) if with_penalty else zero
    r2 = gradient_penalty(fake_logits, fake) if with_penalty else zero
    loss = adversarial + (gamma / 2) * penalty_every * (r1 + r2) if with_penalty else adversarial
    return DiscriminatorTerms(loss, adversarial, r1, r2, real_logits.detach(), fake_logits.detach())


def cosine_ramp(start: float, end: float, images_seen: float, ramp_images: float) -> float:
    """start → end along half a cosine over the first `ramp_images` images seen; `end` from then on."""
    if ramp_images <= 0 or images_seen >= ramp_images:
        return float(end)
    progress = max(float(images_seen), 0.0) / float(ramp_images)
    return float(start) + (float(end) - float(start)) * (1.0 - math.cos(math.pi * progress)) / 2.0


def ema_beta(batch: int, half_life_images: float) -> float:
    """G_ema's decay for one step of `batch` images: 0.5 ** (batch / half_life) (0: G_ema copies G)."""
    return 0.5 ** (batch / max(float(half_life_images), 1e-8))


@torch.no_grad()
def ema_update(netG_ema: nn.Module, netG: nn.Module, beta: float) -> None:
    """G_ema ← β·G_ema + (1 - β)·G for parameters; buffers are copied."""
    for p_ema, p in zip(netG_ema.parameters(), netG.parameters(), strict=True):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(netG_ema.buffers(), netG.buffers(), strict=True):
        b_ema.copy_(b)


@dataclass(frozen=True)
class Ramp:
    """A cosine ramp from `start` to `end`."""

    start: float
    end: float


# Their train.py presets (ramps over decay_nimg = 2e7 images; 2e8 for ImageNet).
PAPER_RAMP_IMAGES = 20_000_000
PAPER_GAMMA = {"CIFAR10": Ramp(0.05, 0.005), "FFHQ-64": Ramp(2.0, 0.2), "FFHQ-256": Ramp(150.0, 15.0),
               "ImageNet-32": Ramp(0.5, 0.05), "ImageNet-64": Ramp(1.0, 0.1)}
PAPER_AUG_P = {"CIFAR10": 0.55, "FFHQ-64": 0.3, "FFHQ-256": 0.3, "ImageNet-32": 0.5, "ImageNet-64": 0.4}
PAPER_EMA_HALF_LIFE = {"CIFAR10": 5_000_000, "FFHQ-64": 500_000, "FFHQ-256": 500_000,
                       "ImageNet-32": 50_000_000, "ImageNet-64": 50_000_000}


@dataclass(frozen=True)
class R3GANSchedule:
    """The ramped quantities of an R3GAN run, counted in images seen (defaults: their FFHQ-64 preset)."""

    ramp_images: float = PAPER_RAMP_IMAGES
    lr: Ramp = field(default_factory=lambda: Ramp(2e-4, 5e-5))
    gamma: Ramp = field(default_factory=lambda: PAPER_GAMMA["FFHQ-64"])
    beta2: Ramp = field(default_factory=lambda: Ramp(0.9, 0.99))
    ema_half_life_images: Ramp = field(default_factory=lambda: Ramp(0.0, PAPER_EMA_HALF_LIFE["FFHQ-64"]))
    aug_p: Ramp = field(default_factory=lambda: Ramp(0.0, PAPER_AUG_P["FFHQ-64"]))

    def at(self, images_seen: float) -> dict[str, float]:
        """lr, gamma, beta2, ema_half_life_images and aug_p after `images_seen` images (for metrics.jsonl)."""
        names = ("lr", "gamma", "beta2", "ema_half_life_images", "aug_p")
        return {name: cosine_ramp(getattr(self, name).start, getattr(self, name).end, images_seen,
                                  self.ramp_images) for name in names}

    @classmethod
    def for_run(cls, total_images: float, resolution: int = 64, ramp_fraction: float = 0.5) -> R3GANSchedule:
        """Their FFHQ-64 ramps scaled to a run of `total_images`: ramp over `ramp_fraction` of it.

        The EMA's final half-life keeps its ratio to the ramp (0.5 M / 20 M = 1/40). γ scales with the pixel
        count from FFHQ-64's 2 → 0.2 ((resolution/64)²; a choice: their FFHQ-256 uses 150 → 15, not 32 → 3.2).
        ramp_fraction is our choice too: their runs train past the ramp for as long as FID improves.
        """
        ramp = max(float(total_images) * ramp_fraction, 1.0)
        scale = (resolution / 64) ** 2
        paper_gamma = PAPER_GAMMA["FFHQ-64"]
        half_life = PAPER_EMA_HALF_LIFE["FFHQ-64"] / PAPER_RAMP_IMAGES * ramp
        return cls(ramp_images=ramp, gamma=Ramp(paper_gamma.start * scale, paper_gamma.end * scale),
                   ema_half_life_images=Ramp(0.0, half_life))


def set_adam_hyperparameters(optimizer: torch.optim.Optimizer, lr: float, beta2: float) -> None:
    """Put the ramped lr and β2 into an Adam optimizer (β1 = 0, as R3GAN trains both nets)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
        group["betas"] = (0.0, beta2)
