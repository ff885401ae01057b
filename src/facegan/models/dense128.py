"""The seed-003 model: a Keras-style dense-to-conv GAN at 128 px (after Chollet's "Deep Learning with Python").

G: Dense(nz → 16×16×(ngf/2)) + LeakyReLU, Conv 5×5 ngf, three stride-2 ConvTranspose 4×4 ngf (16 → 128 px),
   two Conv 5×5 2·ngf, Conv 7×7 to the image with Tanh; LeakyReLU after every hidden layer.
D: Conv 3×3 ndf, then four stride-2 Conv 4×4 ndf, all unpadded as in Keras ('valid') and each followed by
   LeakyReLU (128 → 126 → 62 → 30 → 14 → 6 px), Flatten, Dropout 0.4, Dense 1 (a logit; the seed's sigmoid
   lives in the BCE loss).
With the preset's ngf = ndf = 256 and nz = 32 these are exactly the seed's layers: G has 14,953,987
parameters and D 4,211,713. Keras' initialisation is kept: Glorot-uniform weights, zero biases.
"""

from __future__ import annotations

import torch
from torch import nn

from facegan.config import ModelConfig
from facegan.errors import FaceganError
from facegan.models.family import Family
from facegan.models.layers import MinibatchStdDev

RESOLUTION = 128
_D_FINAL = 6  # D's last feature map is 6×6 after one 3×3 and four strided 4×4 unpadded convs


class Generator(nn.Module):
    """Latent N×nz → image N×C×128×128 in [-1, 1]."""

    def __init__(self, nz: int = 32, ngf: int = 256, channels: int = 3, slope: float = 0.3) -> None:
        super().__init__()
        self.base = max(1, ngf // 2)
        self.fc = nn.Sequential(nn.Linear(nz, self.base * 16 * 16), nn.LeakyReLU(slope))  # (ngf/2) x 16 x 16
        self.main = nn.Sequential(
            nn.Conv2d(self.base, ngf, 5, padding=2), nn.LeakyReLU(slope),  # ngf x 16 x 16
            nn.ConvTranspose2d(ngf, ngf, 4, 2, 1), nn.LeakyReLU(slope),  # ngf x 32 x 32
            nn.ConvTranspose2d(ngf, ngf, 4, 2, 1), nn.LeakyReLU(slope),  # ngf x 64 x 64
            nn.ConvTranspose2d(ngf, ngf, 4, 2, 1), nn.LeakyReLU(slope),  # ngf x 128 x 128
            nn.Conv2d(ngf, 2 * ngf, 5, padding=2), nn.LeakyReLU(slope),  # 2ngf x 128 x 128
            nn.Conv2d(2 * ngf, 2 * ngf, 5, padding=2), nn.LeakyReLU(slope),
            nn.Conv2d(2 * ngf, channels, 7, padding=3), nn.Tanh(),  # C x 128 x 128
        )
        self.nz = nz

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(self.fc(z.view(z.shape[0], self.nz)).view(-1, self.base, 16, 16))


class Discriminator(nn.Module):
    """Image N×C×128×128 → one logit per image (N,)."""

    def __init__(self, ndf: int = 256, channels: int = 3, slope: float = 0.3, minibatch_std: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 3), nn.LeakyReLU(slope)]  # ndf x 126 x 126
        for _ in range(4):
            layers += [nn.Conv2d(ndf, ndf, 4, stride=2), nn.LeakyReLU(slope)]  # 62, 30, 14, 6
        if minibatch_std:
            layers += [MinibatchStdDev()]  # (ndf + 1) x 6 x 6
        layers += [nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(0.4), nn.Linear((ndf + int(minibatch_std)) * _D_FINAL**2, 1))

    def forward(self, x: torch.Tensor, with_features: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        features = self.features(x)  # N x ((ndf [+1]) * 6 * 6)
        logits = self.head(features).view(-1)
        return (logits, features) if with_features else logits


def keras_init(module: nn.Module) -> None:
    """Keras' defaults: Glorot-uniform kernels, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def _check(cfg: ModelConfig) -> None:
    if cfg.resolution != RESOLUTION:
        raise FaceganError(f"the dense128 model is {RESOLUTION} px only, not {cfg.resolution}; prepare the data "
                           f"with --res {RESOLUTION}")


def build_generator(cfg: ModelConfig) -> Generator:
    """The seed-003 generator for `cfg`, initialised as Keras would."""
    _check(cfg)
    net = Generator(cfg.nz, cfg.ngf, cfg.channels, cfg.leaky_slope)
    keras_init(net)
    return net


def build_discriminator(cfg: ModelConfig) -> Discriminator:
    """The seed-003 discriminator for `cfg`, initialised as Keras would."""
    _check(cfg)
    net = Discriminator(cfg.ndf, cfg.channels, cfg.leaky_slope, cfg.minibatch_std)
    keras_init(net)
    return net


FAMILY = Family(
    "dense128", build_generator, build_discriminator,
    presets={"dense128": {"model": {"resolution": 128, "nz": 32, "ngf": 256, "ndf": 256, "leaky_slope": 0.3},
                          "optim": {"name": "rmsprop", "lr_g": 1e-4, "lr_d": 1e-4, "grad_clip_value": 1.0},
                          "train": {"label_noise": 0.05}}},
)
