"""Adversarial losses and D's regularisers against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from facegan.losses import (
    LOSS_NAMES,
    LOSSES,
    PenaltyInputs,
    bce_d,
    feature_matching_loss,
    gradient_penalty,
    hinge_d,
    hinge_g,
    lazy_gamma,
    lsgan_d,
    lsgan_g,
    r1_penalty,
    rpgan_d,
    rpgan_g,
    rpgan_penalty,
    wgan_d,
    wgan_g,
    zero_centred_penalty,
)


def test_registry() -> None:
    assert set(LOSSES) == set(LOSS_NAMES) == {"bce", "hinge", "lsgan", "wgan-gp", "rpgan", "began"}
    assert {n for n, loss in LOSSES.items() if loss.takes_labels} == {"bce", "lsgan"}
    assert [n for n, loss in LOSSES.items() if loss.d is None] == ["began"]  # a family's own loss
    assert LOSSES["wgan-gp"].per_image_penalty and LOSSES["wgan-gp"].penalty is not None


def test_hinge_by_hand() -> None:
    # mean(relu(1 - [2, 0])) + mean(relu(1 + [-2, 0])) = 0.5 + 0.5
    assert hinge_d(torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.0])).item() == pytest.approx(1.0)
    assert hinge_g(torch.tensor([1.0, 3.0])).item() == pytest.approx(-2.0)


def test_lsgan_by_hand() -> None:
    # ½·mean([0, 1]) + ½·mean([0, 1]) = 0.5; G: ½·mean([0, 4]) = 1
    assert lsgan_d(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])).item() == pytest.approx(0.5)
    assert lsgan_g(torch.tensor([1.0, 3.0])).item() == pytest.approx(1.0)
    # A smoothed real target of 0.9: ½·mean([0.01, 0.81]) + 0
    assert lsgan_d(torch.tensor([1.0, 0.0]), torch.zeros(2), 0.9).item() == pytest.approx(0.205)


def test_wasserstein_by_hand() -> None:
    assert wgan_d(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0])).item() == pytest.approx(-1.0)
    assert wgan_g(torch.tensor([0.0, 2.0])).item() == pytest.approx(-1.0)


def test_bce_targets() -> None:
    real, fake = torch.tensor([0.3, -1.2]), torch.tensor([0.5, 2.0])
    expected = (-(0.9 * F.logsigmoid(real) + 0.1 * F.logsigmoid(-real)).mean()
                - (0.05 * F.logsigmoid(fake) + 0.95 * F.logsigmoid(-fake)).mean())
    assert bce_d(real, fake, 0.9, 0.05).item() == pytest.approx(expected.item(), rel=1e-6)
    per_image = torch.tensor([0.9, 0.95])
    assert bce_d(real, fake, per_image).shape == ()


class Linear(nn.Module):
    """D(x) = Σ w·x + b: its input gradient is w everywhere."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)
        self.b = nn.Parameter(torch.tensor(0.7))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.w * x).flatten(1).sum(1) + self.b


def test_gradient_penalty_of_a_linear_critic() -> None:
    # ∇D = w = (3, 4) at every x̂, so ‖∇D‖ = 5 and the penalty is (5 - 1)² = 16 whatever ε is.
    netD = Linear(torch.tensor([3.0, 4.0]).view(1, 1, 1, 2))
    real, fake = torch.randn(6, 1, 1, 2), torch.randn(6, 1, 1, 2)
    gp = gradient_penalty(netD, real, fake)
    assert gp.item() == pytest.approx(16.0)
    # It is differentiable in D's weights: d/dw (‖w‖ - 1)² = 2(‖w‖ - 1)·w/‖w‖ = 8·(0.6, 0.8).
    gp.backward()
    assert netD.w.grad.flatten().tolist() == pytest.approx([4.8, 6.4])


def test_gradient_penalty_of_a_quadratic_critic_by_hand() -> None:
    # D(x) = Σx²: ∇D(x̂) = 2x̂. With x = 1 and G(z) = 0 over d = 4 pixels, x̂ = ε·1 and ‖∇D‖ = 2ε·√4 = 4ε.
    class Square(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.pow(2).flatten(1).sum(1)

    real, fake = torch.ones(3, 1, 2, 2), torch.zeros(3, 1, 2, 2)
    gp = gradient_penalty(Square(), real, fake, torch.Generator().manual_seed(5))
    eps = torch.rand(3, 1, 1, 1, generator=torch.Generator().manual_seed(5)).flatten().tolist()
    assert gp.item() == pytest.approx(sum((4 * e - 1) ** 2 for e in eps) / 3, rel=1e-6)


def test_r1_penalty_by_hand() -> None:
    netD = Linear(torch.tensor([3.0, 4.0]).view(1, 1, 1, 2))
    assert r1_penalty(netD, torch.randn(5, 1, 1, 2)).item() == pytest.approx(25.0)  # ‖w‖²


def test_feature_matching_by_hand() -> None:
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # mean (2, 3)
    fake = torch.tensor([[0.0, 0.0], [2.0, 2.0]], requires_grad=True)  # mean (1, 1)
    loss = feature_matching_loss(real, fake)
    assert loss.item() == pytest.approx(1.0 + 4.0)
    loss.backward()
    assert fake.grad.flatten().tolist() == pytest.approx([-1.0, -2.0, -1.0, -2.0])  # 2(mean_f - mean_r)/2
    assert not math.isnan(loss.item())


# RpGAN and its R1 + R2 (R3GAN), by hand.


class Quadratic(nn.Module):
    """D(x) = a · Σ x² per image, so ∇_x D = 2a·x and ‖∇_x D‖² = 4a²·Σ x²."""

    def __init__(self, a: float = 1.0) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a * x.square().sum(dim=(1, 2, 3))


def _images(*values: float) -> torch.Tensor:
    """One 1×2×2 image per value, every pixel equal to it."""
    return torch.tensor(values).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone()


def _penalty_inputs(netD: nn.Module, real: torch.Tensor, fake: torch.Tensor, gamma: float,
                    view: float = 1.0) -> PenaltyInputs:
    """What the step hands the penalty: images requiring grad, D's logits of `view`·images (its "augmentation")."""
    real, fake = real.requires_grad_(True), fake.requires_grad_(True)
    real_in, fake_in = view * real, view * fake
    return PenaltyInputs(netD, real, fake, real_in, fake_in, netD(real_in).float(), netD(fake_in).float(),
                         None, gamma)


def test_rpgan_losses_pair_reals_with_fakes() -> None:
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    # D: (softplus(-1) + softplus(2)) / 2;  G: (softplus(1) + softplus(-2)) / 2
    d = (math.log1p(math.exp(-1)) + math.log1p(math.exp(2))) / 2
    g = (math.log1p(math.exp(1)) + math.log1p(math.exp(-2))) / 2
    assert rpgan_d(real, fake).item() == pytest.approx(d, rel=1e-6)
    assert rpgan_g(fake, real).item() == pytest.approx(g, rel=1e-6)
    assert d == pytest.approx(1.2200948, rel=1e-6) and g == pytest.approx(0.7200948, rel=1e-6)
    loss = LOSSES["rpgan"]
    assert loss.g_needs_real and loss.penalty_on_inputs and loss.g_loss(fake, real).item() == pytest.approx(g)


def test_zero_centred_penalty_of_a_quadratic_d() -> None:
    netD = Quadratic(1.0)
    x = _images(1.0, 0.5).requires_grad_(True)
    penalty = zero_centred_penalty(netD(x), x)
    # ‖2x‖² summed over 4 pixels: 4·4·1 = 16 and 4·4·0.25 = 4; mean 10.
    assert penalty.item() == pytest.approx(10.0) and penalty.dtype == torch.float32
    (grad_a,) = torch.autograd.grad(penalty, netD.a)  # penalty = 4a²·mean Σx², d/da = 8a·mean Σx² = 20
    assert grad_a.item() == pytest.approx(20.0)
    assert r1_penalty(netD, _images(1.0, 0.5)).item() == pytest.approx(10.0)  # R1: the same, its own pass


def test_rpgan_penalty_is_half_gamma_r1_plus_r2() -> None:
    netD = Quadratic(1.0)
    inputs = _penalty_inputs(netD, _images(1.0, 0.5), _images(0.0, 1.0), gamma=0.5)
    # R1 = mean(16, 4) = 10, R2 = mean(0, 16) = 8: γ/2·18 = 4.5.
    penalty = rpgan_penalty(inputs)
    assert isinstance(penalty, torch.Tensor) and penalty.item() == pytest.approx(4.5)
    penalty.backward()  # the double backward reaches D's parameters
    assert netD.a.grad is not None and torch.isfinite(netD.a.grad)
    assert rpgan_penalty(_penalty_inputs(netD, _images(1.0), _images(0.0), gamma=0.0)) == 0.0


def test_rpgan_penalty_is_on_the_unaugmented_images() -> None:
    # An "augmentation" x → 2x: D sees 2x, so ∇_x D(2x) = 8x and ‖·‖² = 64·Σx² on the un-augmented x.
    inputs = _penalty_inputs(Quadratic(1.0), _images(1.0), _images(0.5), gamma=1.0, view=2.0)
    assert rpgan_penalty(inputs).item() == pytest.approx(0.5 * (64 * 4.0 + 64 * 1.0))


def test_rpgan_penalty_under_bf16_autocast_is_fp32_and_close_to_fp32() -> None:
    torch.manual_seed(0)
    netD = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(8, 1, 8), nn.Flatten(0))
    real, fake = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    reference = rpgan_penalty(_penalty_inputs(netD, real.clone(), fake.clone(), gamma=1.0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = rpgan_penalty(_penalty_inputs(netD, real.clone(), fake.clone(), gamma=1.0))
    assert isinstance(mixed, torch.Tensor) and mixed.dtype == torch.float32
    assert isinstance(reference, torch.Tensor) and mixed.item() == pytest.approx(reference.item(), rel=0.05)
    mixed.backward()  # (the last bias does not change ∇ₓD: it gets no gradient)
    grads = [p.grad for p in netD.parameters() if p.grad is not None]
    assert len(grads) == 3 and all(torch.isfinite(g).all() for g in grads)


def test_lazy_gamma_weights_every_kth_step() -> None:
    assert [lazy_gamma(0.5, step, 4) for step in range(8)] == [2.0, 0, 0, 0, 2.0, 0, 0, 0]
    assert [lazy_gamma(0.5, step, 1) for step in range(3)] == [0.5, 0.5, 0.5]
    assert sum(lazy_gamma(0.3, step, 3) for step in range(30)) == pytest.approx(0.3 * 30)  # the same mean weight
