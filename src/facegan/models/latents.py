"""Latent vectors: the prior, seeded draws, truncation and spherical interpolation."""

from __future__ import annotations

import torch

from facegan.config import LATENTS
from facegan.errors import FaceganError


def draw_latents(
    n: int, nz: int, distribution: str = "normal", generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """n latents of size nz from the prior (N(0,1) or U(-1,1)), drawn with `generator` on its device."""
    device = device if device is not None else (generator.device if generator is not None else "cpu")
    if distribution == "normal":
        return torch.randn(n, nz, generator=generator, device=device)
    if distribution == "uniform":
        return torch.rand(n, nz, generator=generator, device=device).mul_(2).sub_(1)
    raise FaceganError(f"unknown latent distribution {distribution!r}; choose {' or '.join(LATENTS)}")


def seeded_latents(n: int, nz: int, seed: int, distribution: str = "normal", truncation: float = 1.0) -> torch.Tensor:
    """The same n latents for the same seed on any machine (drawn on the CPU), scaled toward the mean 0."""
    generator = torch.Generator().manual_seed(seed)
    return draw_latents(n, nz, distribution, generator) * truncation


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical interpolation between latents `a` and `b` (…×nz) at fraction t; linear when nearly parallel."""
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    a_n = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    b_n = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    sin_omega = torch.sin(omega)
    linear = (1 - t) * a + t * b
    spherical = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / sin_omega.clamp_min(1e-8)
    return torch.where(sin_omega.abs() < 1e-4, linear, spherical)
