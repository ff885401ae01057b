"""Class/attribute-conditional wrappers around any family's G and D (`facegan train --condition ATTR,...`).

The wrappers work for every entry of `facegan.models.FAMILIES` because they only change what goes in and out
of the family's own networks:

- G (Mirza & Osindero 2014, with learned embeddings): G_c(z, y) = G([z ; Σ_k E_k[y_k]]), where the family's G
  is built with a latent of nz + `condition_embed` numbers and E_k is a table of one learned vector per level
  of attribute k. Summing embedding rows is the same as a linear map of the concatenated one-hot labels, so
  this is the classic one-hot concatenation with the first layer's work shared.
- D, when the family's D exposes its last hidden features φ(x) (`forward(x, with_features=True)`, as DCGAN's,
  dense128's and r3gan's do): the projection discriminator of Miyato & Koyama (2018),
  D_c(x, y) = D(x) + Σ_k ⟨P_k[y_k], pool(φ(x))⟩, with pool the spatial sum of a C×H×W map (a flat N×F
  feature vector, as dense128's and r3gan's are, is used as it is). P starts at zero, so a conditional D
  starts as the unconditional one.
- D otherwise (BEGAN's autoencoder, whose output is an image, not a logit): the label embedding enters as
  `condition_embed` constant planes appended to the image (the cGAN/pix2pix input concatenation); an image
  output is cut back to the image's channels, so a reconstruction loss compares images only.

Every attribute also has an "unknown" level (index L_k, after its L_k real levels). Training drops labels
to it now and then (`train.condition_dropout`), so G(z) with no labels, or with only some attributes given,
samples the others from the data's distribution: `netG(z)` stays a valid unconditional call for all the code
(samples, metrics, health checks) that knows nothing of conditions.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence

import torch
from torch import nn

from facegan.config import ModelConfig


def level_counts(cfg: ModelConfig) -> list[int]:
    """Number of real levels of each conditioned attribute (the unknown level comes on top)."""
    return [len(levels) for levels in cfg.condition_levels]


def unknown_labels(cfg: ModelConfig, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """N×A level indices that say "unknown" for every attribute (G then samples from the data's mix)."""
    return torch.tensor(level_counts(cfg), dtype=torch.long, device=device).expand(n, -1).clone()


class LabelEmbedding(nn.Module):
    """Σ_k E_k[y_k]: one table per attribute with L_k + 1 rows (the last: unknown), summed to `dim` numbers."""

    def __init__(self, counts: Sequence[int], dim: int) -> None:
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(count + 1, dim) for count in counts)
        self.dim = dim

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        """labels N×A (level indices) → N×dim."""
        total = self.tables[0](labels[:, 0])
        for k in range(1, len(self.tables)):
            total = total + self.tables[k](labels[:, k])
        return total


def _match_batch(labels: torch.Tensor, n: int) -> torch.Tensor:
    """Labels for a batch of n: as given, or repeated when a step stacks several batches (real ; fake)."""
    if labels.shape[0] == n:
        return labels
    if n % labels.shape[0] == 0:
        return labels.repeat(n // labels.shape[0], 1)
    raise ValueError(f"a batch of {n} images does not match {labels.shape[0]} label rows")


class ConditionalGenerator(nn.Module):
    """G_c(z, y) = G([z ; Σ_k E_k[y_k]]); y None means every attribute unknown."""

    def __init__(self, base: nn.Module, cfg: ModelConfig) -> None:
        super().__init__()
        self.base = base
        self.embed = LabelEmbedding(level_counts(cfg), cfg.condition_embed)
        for table in self.embed.tables:  # the unknown level starts as "no information": a zero vector
            nn.init.zeros_(table.weight[-1:])
        self.nz = cfg.nz
        self.counts = level_counts(cfg)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        z = z.reshape(z.shape[0], self.nz)
        if labels is None:
            labels = torch.tensor(self.counts, dtype=torch.long, device=z.device).expand(z.shape[0], -1)
        labels = _match_batch(labels, z.shape[0])
        return self.base(torch.cat([z, self.embed(labels).to(z.dtype)], dim=1))


def has_feature_hook(net: nn.Module) -> bool:
    """True if `net.forward` can also return its last hidden features (`with_features=True`)."""
    return "with_features" in inspect.signature(net.forward).parameters


class ProjectionDiscriminator(nn.Module):
    """D_c(x, y) = D(x) + Σ_k ⟨P_k[y_k], pool(φ(x))⟩ (Miyato & Koyama 2018) around a D with a feature hook."""

    def __init__(self, base: nn.Module, cfg: ModelConfig) -> None:
        super().__init__()
        self.base = base
        width = self._feature_width(base, cfg)
        self.project = LabelEmbedding(level_counts(cfg), width)
        for table in self.project.tables:
            nn.init.zeros_(table.weight)
        self.counts = level_counts(cfg)

    @staticmethod
    def _feature_width(base: nn.Module, cfg: ModelConfig) -> int:
        """Size of pool(φ(x)), found with one forward pass in eval mode (no BatchNorm statistics change)."""
        was_training = base.training
        base.eval()
        with torch.no_grad():
            probe = torch.zeros(2, cfg.channels, cfg.resolution, cfg.resolution)
            _, features = base(probe, with_features=True)
        base.train(was_training)
        return int(_pool(features).shape[1])

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, with_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        out, features = self.base(x, with_features=True)
        if labels is None:
            labels = torch.tensor(self.counts, dtype=torch.long, device=x.device).expand(x.shape[0], -1)
        labels = _match_batch(labels, x.shape[0])
        pooled = _pool(features)
        out = out + (self.project(labels).to(pooled.dtype) * pooled).sum(1)
        return (out, features) if with_features else out


def _pool(features: torch.Tensor) -> torch.Tensor:
    """φ(x) as N×F: a C×H×W map summed over H and W (SN-GAN's projection D), a flat vector as it is."""
    return features.sum(dim=(2, 3)) if features.dim() == 4 else features.flatten(1)


class InputConditionalDiscriminator(nn.Module):
    """D_c(x, y) = D([x ; planes(Σ_k E_k[y_k])]) for a D without a feature hook; image outputs lose the planes."""

    def __init__(self, base: nn.Module, cfg: ModelConfig) -> None:
        super().__init__()
        self.base = base
        self.embed = LabelEmbedding(level_counts(cfg), cfg.condition_embed)
        self.channels = cfg.channels
        self.counts = level_counts(cfg)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            labels = torch.tensor(self.counts, dtype=torch.long, device=x.device).expand(x.shape[0], -1)
        labels = _match_batch(labels, x.shape[0])
        n, _, height, width = x.shape
        planes = self.embed(labels).to(x.dtype)[:, :, None, None].expand(n, -1, height, width)
        out = self.base(torch.cat([x, planes], dim=1))
        if out.dim() == 4 and out.shape[1] == self.channels + self.embed.dim:
            return out[:, : self.channels]  # an autoencoder D (BEGAN) reconstructs the image channels only
        return out


def build_conditional_generator(build: Callable[[ModelConfig], nn.Module], cfg: ModelConfig) -> nn.Module:
    """The family's G (built by `build`) for a latent of nz + condition_embed, wrapped to take labels."""
    return ConditionalGenerator(build(dataclasses.replace(cfg, nz=cfg.nz + cfg.condition_embed)), cfg)


def build_conditional_discriminator(build: Callable[[ModelConfig], nn.Module], cfg: ModelConfig) -> nn.Module:
    """The family's D wrapped to take labels: projection when it has a feature hook, else input planes."""
    base = build(cfg)
    if has_feature_hook(base):
        return ProjectionDiscriminator(base, cfg)
    wide = build(dataclasses.replace(cfg, channels=cfg.channels + cfg.condition_embed))
    return InputConditionalDiscriminator(wide, cfg)
