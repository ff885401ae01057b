"""DCGAN (Radford et al. 2016) as in the PyTorch DCGAN faces tutorial, at 32, 64 or 128 px.

G: ConvTranspose2d + BatchNorm + ReLU blocks from a 1×1 latent to the image, Tanh out.
D: strided Conv2d + BatchNorm + LeakyReLU(0.2), no BatchNorm on the first layer, one logit out. The slope, the
normalisation (BatchNorm, layer norm for WGAN-GP's critic, or none) and a minibatch-stddev layer are options.
Weights N(0, 0.02); BatchNorm γ N(1, 0.02), β 0. No conv biases (BatchNorm follows every hidden conv).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from facegan.config import ModelConfig, RunConfig
from facegan.errors import FaceganError
from facegan.losses import LOSSES, get_loss
from facegan.models.family import Family
from facegan.models.layers import MinibatchStdDev

RESOLUTIONS = (32, 64, 128)


def _middle_blocks(resolution: int) -> int:
    """Stride-2 blocks between the 4×4 map and the last layer: 2 at 32 px, 3 at 64, 4 at 128."""
    if resolution not in RESOLUTIONS:
        raise FaceganError(f"DCGAN supports {', '.join(map(str, RESOLUTIONS))} px, not {resolution}")
    return int(math.log2(resolution)) - 3


class Generator(nn.Module):
    """DCGAN generator: latent N×nz(×1×1) → image N×C×H×W in [-1, 1]."""

    def __init__(self, nz: int = 100, ngf: int = 64, channels: int = 3, resolution: int = 64) -> None:
        super().__init__()
        blocks = _middle_blocks(resolution)
        width = ngf * 2**blocks
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False),  # (ngf*2^blocks) x 4 x 4
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(blocks):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),  # doubles H and W
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]  # C x res x res
        self.main = nn.Sequential(*layers)
        self.nz = nz

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.view(z.shape[0], self.nz, 1, 1))


def _norm(kind: str, width: int) -> list[nn.Module]:
    """D's normalisation after a hidden conv: BatchNorm, layer norm over C×H×W (GroupNorm with one group), none."""
    if kind in ("batch", "auto"):
        return [nn.BatchNorm2d(width)]
    if kind == "layer":
        return [nn.GroupNorm(1, width)]
    if kind == "none":
        return []
    raise FaceganError(f"unknown D normalisation {kind!r}; choose batch, layer or none")


class Discriminator(nn.Module):
    """DCGAN discriminator: image N×C×H×W → one logit per image (N,)."""

    def __init__(
        self, ndf: int = 64, channels: int = 3, resolution: int = 64, slope: float = 0.2, norm: str = "batch",
        minibatch_std: bool = False,
    ) -> None:
        super().__init__()
        blocks = _middle_blocks(resolution)
        bias = norm == "none"  # a normalisation's shift makes a conv bias redundant
        layers: list[nn.Module] = [
            nn.Conv2d(channels, ndf, 4, 2, 1, bias=False),  # ndf x res/2 x res/2, no BatchNorm here
            nn.LeakyReLU(slope, inplace=True),
        ]
        width = ndf
        for _ in range(blocks):
            layers += [
                nn.Conv2d(width, width * 2, 4, 2, 1, bias=bias),  # halves H and W
                *_norm(norm, width * 2),
                nn.LeakyReLU(slope, inplace=True),
            ]
            width *= 2
        self.head_start = len(layers)  # layers[:head_start] give the features feature matching compares
        if minibatch_std:
            layers += [MinibatchStdDev()]  # (ndf*2^blocks + 1) x 4 x 4
        layers += [nn.Conv2d(width + int(minibatch_std), 1, 4, 1, 0, bias=False)]  # 1 x 1 x 1 logit
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, with_features: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if not with_features:
            return self.main(x).view(-1)
        features = self.main[: self.head_start](x)  # (ndf*2^blocks) x 4 x 4
        return self.main[self.head_start :](features).view(-1), features


def dcgan_init(module: nn.Module) -> None:
    """The DCGAN initialisation: conv weights N(0, 0.02); BatchNorm γ N(1, 0.02), β 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def build_generator(cfg: ModelConfig) -> Generator:
    """A DCGAN generator for `cfg`, initialised."""
    net = Generator(cfg.nz, cfg.ngf, cfg.channels, cfg.resolution)
    dcgan_init(net)
    return net


def build_discriminator(cfg: ModelConfig) -> Discriminator:
    """A DCGAN discriminator for `cfg`, initialised."""
    net = Discriminator(cfg.ndf, cfg.channels, cfg.resolution, cfg.leaky_slope, cfg.d_norm, cfg.minibatch_std)
    dcgan_init(net)
    return net


def check(config: RunConfig) -> None:
    """A loss whose penalty is per image (WGAN-GP, RpGAN's R1 + R2) cannot go with BatchNorm in the critic."""
    loss = get_loss(config.train.loss)
    if loss.per_image_penalty and config.model.d_norm in ("auto", "batch"):
        raise FaceganError(f"the {loss.name} loss's gradient penalty is per image, which BatchNorm in the critic "
                           "breaks; use --d-norm layer (or none)")


def complete(config: RunConfig) -> None:
    """d_norm auto: layer norm for a loss whose penalty is per image (WGAN-GP, RpGAN), else BatchNorm."""
    if config.model.d_norm == "auto":
        loss = LOSSES.get(config.train.loss)  # an unknown loss fails where the config is checked
        config.model.d_norm = "layer" if loss is not None and loss.per_image_penalty else "batch"


# docs/models.md describes each preset; a preset that names a resolution pins it.
FAMILY = Family(
    "dcgan", build_generator, build_discriminator, check=check, complete=complete,
    presets={
        "dcgan": {},
        # The default (issue 22, BENCHMARKS.md "Time to quality"): the tutorial's recipe with a quarter of its
        # FLOPs (half the widths), four times the updates per image (batch 32), a minibatch-stddev channel in D
        # (without it the samples lost their variety after 20 minutes), G's EMA, NHWC kernels, and a lazy R1
        # penalty on D (γ 1 every 4th D step: without it D dominated and one seed of two collapsed).
        "dcgan-lite": {"model": {"ngf": 32, "ndf": 32, "minibatch_std": True},
                       "train": {"batch_size": 32, "ema_decay": 0.999, "channels_last": "on",
                                 "r1_gamma": 1.0, "penalty_every": 4}},
        "dcgan128": {"model": {"resolution": 128}},
        "wgan-gp": {"model": {"d_norm": "layer"}, "optim": {"lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.0, "beta2": 0.9},
                    "train": {"loss": "wgan-gp", "n_critic": 5}},
        "sngan": {"model": {"d_norm": "none", "spectral_norm": True},
                  "optim": {"lr_g": 1e-4, "lr_d": 4e-4, "beta1": 0.0, "beta2": 0.9},
                  "train": {"loss": "hinge", "ema_decay": 0.999}},
    },
)
