"""RpGAN, R1/R2, the cosine ramps and the EMA of R3GAN, on cases worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from facegan import r3gan_training as rt


class Quadratic(nn.Module):
    """D(x) = a · Σ x² per image, so ∇_x D = 2a·x and ‖∇_x D‖² = 4a²·Σ x²."""

    def __init__(self, a: float = 1.0) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a * x.square().sum(dim=(1, 2, 3))


class Double(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * x


def _images(*values: float) -> torch.Tensor:
    """One 1×2×2 image per value, every pixel equal to it."""
    return torch.tensor(values).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone()


def test_rpgan_losses_pair_reals_with_fakes() -> None:
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    # D: (softplus(-1) + softplus(2)) / 2;  G: (softplus(1) + softplus(-2)) / 2
    d = (math.log1p(math.exp(-1)) + math.log1p(math.exp(2))) / 2
    g = (math.log1p(math.exp(1)) + math.log1p(math.exp(-2))) / 2
    assert rt.rpgan_d_loss(real, fake).item() == pytest.approx(d, rel=1e-6)
    assert rt.rpgan_g_loss(real, fake).item() == pytest.approx(g, rel=1e-6)
    assert d == pytest.approx(1.2200948, rel=1e-6) and g == pytest.approx(0.7200948, rel=1e-6)


def test_gradient_penalty_of_a_quadratic_d() -> None:
    netD = Quadratic(1.0)
    x = _images(1.0, 0.5).requires_grad_(True)
    penalty = rt.gradient_penalty(netD(x), x)
    # ‖2x‖² summed over 4 pixels: 4·4·1 = 16 and 4·4·0.25 = 4; mean 10.
    assert penalty.item() == pytest.approx(10.0)
    assert penalty.dtype == torch.float32
    (grad_a,) = torch.autograd.grad(penalty, netD.a)  # penalty = 4a²·mean Σx², d/da = 8a·mean Σx² = 20
    assert grad_a.item() == pytest.approx(20.0)


def test_discriminator_terms_rpgan_plus_half_gamma_r1_r2() -> None:
    netD = Quadratic(1.0)
    real, fake = _images(1.0, 0.5), _images(0.0, 1.0)
    terms = rt.discriminator_terms(netD, real, fake, gamma=0.5)
    # D(real) = [4, 1], D(fake) = [0, 4]; R1 = mean(16, 4) = 10, R2 = mean(0, 16) = 8.
    adversarial = (math.log1p(math.exp(0 - 4)) + math.log1p(math.exp(4 - 1))) / 2
    assert terms.r1.item() == pytest.approx(10.0) and terms.r2.item() == pytest.approx(8.0)
    assert terms.adversarial.item() == pytest.approx(adversarial, rel=1e-6)
    assert terms.loss.item() == pytest.approx(adversarial + 0.25 * 18.0, rel=1e-6)
    terms.loss.backward()  # the double backward reaches D's parameters
    assert netD.a.grad is not None and torch.isfinite(netD.a.grad)
    assert not real.requires_grad  # the caller's tensors are left alone


def test_penalties_are_on_the_unaugmented_images_and_lazy_ones_scale_by_k() -> None:
    netD = Quadratic(1.0)
    real, fake = _images(1.0), _images(0.5)
    # An "augmentation" x → 2x: D sees 2x, so ∇_x D(2x) = 8x and ‖·‖² = 64·Σx² on the un-augmented x.
    terms = rt.discriminator_terms(netD, real, fake, gamma=1.0, preprocess=Double(), penalty_every=4)
    assert terms.r1.item() == pytest.approx(64 * 4.0) and terms.r2.item() == pytest.approx(64 * 1.0)
    assert terms.loss.item() == pytest.approx(terms.adversarial.item() + 0.5 * 4 * (256 + 64), rel=1e-6)
    skipped = rt.discriminator_terms(netD, real, fake, gamma=1.0, with_penalty=False)
    assert skipped.r1.item() == 0 and skipped.loss.item() == pytest.approx(skipped.adversarial.item())


def test_penalty_under_bf16_autocast_is_fp32_and_close_to_fp32() -> None:
    torch.manual_seed(0)
    netD = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(8, 1, 8), nn.Flatten(0))
    real, fake = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    reference = rt.discriminator_terms(netD, real, fake, gamma=1.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = rt.discriminator_terms(netD, real, fake, gamma=1.0)
    assert mixed.r1.dtype == torch.float32 and mixed.loss.dtype == torch.float32
    assert mixed.r1.item() == pytest.approx(reference.r1.item(), rel=0.05)
    assert mixed.r2.item() == pytest.approx(reference.r2.item(), rel=0.05)
    mixed.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in netD.parameters())


@pytest.mark.parametrize(("images_seen", "expected"), [
    (-10, 2.0), (0, 2.0), (25, 2.0 - 0.9 * (1 - math.cos(math.pi / 4))), (50, 1.1), (100, 0.2), (150, 0.2),
])
def test_cosine_ramp_values(images_seen: float, expected: float) -> None:
    assert rt.cosine_ramp(2.0, 0.2, images_seen, 100) == pytest.approx(expected)


def test_a_zero_length_ramp_is_its_end_value() -> None:
    assert rt.cosine_ramp(0.0, 0.3, 0, 0) == 0.3


def test_schedule_follows_their_ffhq64_preset() -> None:
    schedule = rt.R3GANSchedule()
    assert schedule.at(0) == pytest.approx(
        {"lr": 2e-4, "gamma": 2.0, "beta2": 0.9, "ema_half_life_images": 0.0, "aug_p": 0.0})
    assert schedule.at(10_000_000) == pytest.approx(
        {"lr": 1.25e-4, "gamma": 1.1, "beta2": 0.945, "ema_half_life_images": 250_000, "aug_p": 0.15})
    assert schedule.at(30_000_000) == pytest.approx(
        {"lr": 5e-5, "gamma": 0.2, "beta2": 0.99, "ema_half_life_images": 500_000, "aug_p": 0.3})


def test_schedule_scaled_to_a_run() -> None:
    schedule = rt.R3GANSchedule.for_run(60_000, resolution=32, ramp_fraction=0.5)
    assert schedule.ramp_images == 30_000
    assert schedule.ema_half_life_images.end == pytest.approx(750)  # 1/40 of the ramp, as 0.5 M / 20 M
    assert (schedule.gamma.start, schedule.gamma.end) == pytest.approx((0.5, 0.05))  # 2 → 0.2 × (32/64)²
    assert schedule.at(60_000)["lr"] == pytest.approx(5e-5)


def test_ema_beta_from_half_life() -> None:
    assert rt.ema_beta(64, 64) == pytest.approx(0.5)
    assert rt.ema_beta(64, 6400) ** 100 == pytest.approx(0.5)  # half the weight after half_life images
    assert rt.ema_beta(64, 0) == 0.0  # at the start of the ramp G_ema copies G


def test_ema_update_and_adam_hyperparameters() -> None:
    netG, netG_ema = nn.Linear(1, 1, bias=False), nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        netG.weight.fill_(1.0)
        netG_ema.weight.fill_(0.0)
    rt.ema_update(netG_ema, netG, beta=0.25)
    assert netG_ema.weight.item() == pytest.approx(0.75)
    opt = torch.optim.Adam(netG.parameters())
    rt.set_adam_hyperparameters(opt, 1e-4, 0.95)
    assert opt.param_groups[0]["lr"] == 1e-4 and opt.param_groups[0]["betas"] == (0.0, 0.95)
