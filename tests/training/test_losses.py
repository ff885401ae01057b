"""Adversarial losses and D's regularisers against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from facegan.training.losses import (
    LOSS_NAMES,
    LOSSES,
    bce_d,
    feature_matching_loss,
    gradient_penalty,
    hinge_d,
    hinge_g,
    lsgan_d,
    lsgan_g,
    r1_penalty,
    wgan_d,
    wgan_g,
)


def test_registry() -> None:
    assert set(LOSSES) == set(LOSS_NAMES) == {"bce", "hinge", "lsgan", "wgan-gp", "began"}
    assert {n for n, loss in LOSSES.items() if loss.takes_labels} == {"bce", "lsgan"}
    assert [n for n, loss in LOSSES.items() if loss.family] == ["began"]
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
