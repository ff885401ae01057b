"""Stabilisers that are part of D's architecture: the minibatch standard deviation layer and spectral norm."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class MinibatchStdDev(nn.Module):
    """Karras et al. 2018 §3: append one feature map holding the batch's average standard deviation.

    Images are split into groups of `group_size` (the largest size ≤ it that divides the batch); each group
    gets the mean over features and positions of the per-feature standard deviation across its members.
    Input N×C×H×W → N×(C+1)×H×W. A D that sees it can tell a collapsed batch of fakes from a varied one.
    """

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        g = max(d for d in range(1, min(self.group_size, n) + 1) if n % d == 0)
        y = x.float().reshape(g, -1, *x.shape[1:])  # G x M x C x H x W, member i of group m is image i*M + m
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt()  # M x C x H x W
        y = y.mean(dim=(1, 2, 3)).to(x.dtype)  # M
        y = y.view(1, -1, 1, 1, 1).expand(g, -1, 1, h, w).reshape(n, 1, h, w)
        return torch.cat([x, y], dim=1)


def apply_spectral_norm(net: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on the weight of every conv and linear layer of `net`."""
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    for layer in layers:
        spectral_norm(layer)
    return net


def has_batch_norm(net: nn.Module) -> bool:
    """True if any BatchNorm layer is in `net` (which WGAN-GP's per-image gradient penalty cannot have)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
