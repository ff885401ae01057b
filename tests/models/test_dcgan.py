"""DCGAN as the paper and the PyTorch tutorial define it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from facegan.config import ModelConfig
from facegan.errors import FaceganError
from facegan.models import build_models, count_parameters


def test_parameter_counts_match_the_tutorial() -> None:
    netG, netD = build_models(ModelConfig())
    assert count_parameters(netG) == 3_576_704
    assert count_parameters(netD) == 2_765_568


@pytest.mark.parametrize("resolution", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_ranges(resolution: int, channels: int) -> None:
    cfg = ModelConfig(resolution=resolution, channels=channels, nz=20, ngf=8, ndf=8)
    netG, netD = build_models(cfg)
    z = torch.randn(5, 20)
    with torch.no_grad():
        images = netG(z)
        logits = netD(images)
    assert images.shape == (5, channels, resolution, resolution)
    assert images.min() >= -1 and images.max() <= 1
    assert images.std() > 0
    assert logits.shape == (5,)


def test_architecture_follows_the_paper() -> None:
    netG, netD = build_models(ModelConfig())
    g_layers = list(netG.main)
    assert isinstance(g_layers[-1], nn.Tanh)
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in g_layers) == 5
    assert all(isinstance(m, nn.ReLU) for m in g_layers if isinstance(m, (nn.ReLU, nn.LeakyReLU)))
    d_layers = list(netD.main)
    assert isinstance(d_layers[0], nn.Conv2d) and isinstance(d_layers[1], nn.LeakyReLU)  # no BN first
    assert all(m.negative_slope == 0.2 for m in d_layers if isinstance(m, nn.LeakyReLU))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d_layers) == 3
    assert all(m.bias is None for m in netG.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))


def test_initialisation_statistics() -> None:
    torch.manual_seed(0)
    netG, netD = build_models(ModelConfig())
    conv_weights = torch.cat([m.weight.flatten() for net in (netG, netD) for m in net.modules()
                              if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert abs(conv_weights.mean().item()) < 1e-3
    assert conv_weights.std().item() == pytest.approx(0.02, rel=0.02)
    gammas = torch.cat([m.weight for net in (netG, netD) for m in net.modules() if isinstance(m, nn.BatchNorm2d)])
    betas = torch.cat([m.bias for net in (netG, netD) for m in net.modules() if isinstance(m, nn.BatchNorm2d)])
    assert gammas.mean().item() == pytest.approx(1.0, abs=3e-3)
    assert gammas.std().item() == pytest.approx(0.02, rel=0.1)
    assert torch.all(betas == 0)


def test_unsupported_resolution_is_a_user_error() -> None:
    with pytest.raises(FaceganError, match="32, 64, 128"):
        build_models(ModelConfig(resolution=48))
