"""What D sees: instance noise (Sønderby et al. 2017) and DiffAugment (Zhao et al. 2020).

Both apply to every image D is shown, real or fake, in D's step and in G's step, so D can never tell the two
apart by the augmentation. DiffAugment is differentiable, so G learns through it; the functions follow the
authors' PyTorch code (DiffAugment_pytorch.py), drawing from an explicit generator so runs repeat.

With a probability p < 1 (R3GAN's ramped augmentation probability, ADA-style), each image is augmented with
probability p and shown as it is otherwise: the whole batch's augmentation is drawn, then one U(0, 1) per image
picks, all from the run's noise generator so a resumed run draws the same. p = 1 (the default) draws nothing
more, so runs without a ramp are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from facegan.config import TrainConfig

Augment = Callable[[torch.Tensor, "torch.Generator | None"], torch.Tensor]


def instance_noise_sigma(cfg: TrainConfig, step: int) -> float:
    """σ of the instance noise at `step`: the configured σ, falling linearly to 0 over instance_noise_steps."""
    if cfg.instance_noise <= 0:
        return 0.0
    if cfg.instance_noise_steps <= 0:
        return cfg.instance_noise
    return cfg.instance_noise * max(0.0, 1.0 - step / cfg.instance_noise_steps)


def add_instance_noise(x: torch.Tensor, sigma: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """x + N(0, σ²) per pixel (x unchanged when σ is 0)."""
    if sigma <= 0:
        return x
    return x + sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def _uniform(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=x.device, dtype=x.dtype)


def rand_brightness(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add U(-0.5, 0.5) to every pixel of each image."""
    return x + (_uniform(x, generator) - 0.5)


def rand_saturation(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Scale each image's distance from its grey (channel mean) by U(0, 2)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x, generator) * 2) + mean


def rand_contrast(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Scale each image's distance from its mean by U(0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, generator) + 0.5) + mean


def rand_color(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """DiffAugment's `color`: brightness, then saturation, then contrast."""
    return rand_contrast(rand_saturation(rand_brightness(x, generator), generator), generator)


def rand_translation(x: torch.Tensor, generator: torch.Generator | None = None, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to 1/8 of its size in x and y, filling with zeros."""
    n, _, h, w = x.shape
    shift_h, shift_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-shift_h, shift_h + 1, (n, 1, 1), generator=generator, device=x.device)
    dx = torch.randint(-shift_w, shift_w + 1, (n, 1, 1), generator=generator, device=x.device)
    grid_b, grid_y, grid_x = torch.meshgrid(
        torch.arange(n, device=x.device), torch.arange(h, device=x.device), torch.arange(w, device=x.device),
        indexing="ij",
    )
    # Index into a 1-px zero border: positions shifted off the image read that border.
    grid_y = torch.clamp(grid_y + dy + 1, 0, h + 1)
    grid_x = torch.clamp(grid_x + dx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # N x (H+2) x (W+2) x C
    return padded[grid_b, grid_y, grid_x].permute(0, 3, 1, 2).contiguous()


def rand_cutout(x: torch.Tensor, generator: torch.Generator | None = None, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of half the image size at a random place in each image."""
    n, _, h, w = x.shape
    size_h, size_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    off_y = torch.randint(0, h + (1 - size_h % 2), (n, 1, 1), generator=generator, device=x.device)
    off_x = torch.randint(0, w + (1 - size_w % 2), (n, 1, 1), generator=generator, device=x.device)
    grid_b, grid_y, grid_x = torch.meshgrid(
        torch.arange(n, device=x.device), torch.arange(size_h, device=x.device),
        torch.arange(size_w, device=x.device), indexing="ij",
    )
    grid_y = torch.clamp(grid_y + off_y - size_h // 2, min=0, max=h - 1)
    grid_x = torch.clamp(grid_x + off_x - size_w // 2, min=0, max=w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[grid_b, grid_y, grid_x] = 0
    return x * mask.unsqueeze(1)


DIFFAUGMENT: dict[str, Augment] = {
    "color": rand_color,
    "translation": rand_translation,
    "cutout": rand_cutout,
}


def parse_policy(policy: str) -> list[str]:
    """The DiffAugment policy "color,translation,cutout" as a list of names (empty string: none)."""
    return [name.strip() for name in policy.split(",") if name.strip()]


def diff_augment(x: torch.Tensor, policy: str, generator: torch.Generator | None = None,
                 p: float = 1.0) -> torch.Tensor:
    """Apply the policy's augmentations in order (each with fresh random draws per image); with p < 1, each
    image is augmented with probability p (p ≤ 0: unchanged, nothing drawn)."""
    if p <= 0:
        return x
    augmented = x
    for name in parse_policy(policy):
        augmented = DIFFAUGMENT[name](augmented, generator)
    if p >= 1:
        return augmented
    chosen = torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=x.device) < p
    return torch.where(chosen, augmented, x)


def d_view(x: torch.Tensor, cfg: TrainConfig, step: int, generator: torch.Generator | None = None,
           p: float = 1.0) -> torch.Tensor:
    """An image batch as D sees it: DiffAugment (if any; each image with probability p), then instance noise."""
    if cfg.diffaugment:
        x = diff_augment(x, cfg.diffaugment, generator, p)
    return add_instance_noise(x, instance_noise_sigma(cfg, step), generator)
