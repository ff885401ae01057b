"""R3GAN (Huang, Gokaslan, Kuleshov and Tompkin, NeurIPS 2024): a modern ResNet G and D, no normalisation.

Every stage holds residual inverted-bottleneck blocks (ConvNeXt-like, their Figure 2c):

    y = x + conv1×1_{2C→C}( act( conv3×3_{2C→2C, grouped}( act( conv1×1_{C→2C}(x) ) ) ) )

with act(v) = LeakyReLU_0.2(v + b) (a learned bias, then the activation) and the last 1×1 conv zero-initialised
and bias-free, so every block is the identity at initialisation. The other two convs are drawn
N(0, (g·L^(-1/4))² / fan_in), g = √(2/(1+0.2²)) the leaky ReLU's gain and L the network's total block count: the
fix-up style variance scaling of their code (L^(-1/(2m-2)) for m = 3 linear layers per block).

Between stages a 2× interpolative resampler low-pass filters with the outer product of [1,2,1] * [1,1] =
[1,3,3,1] (a 4×4 depthwise stride-2 conv, transposed for upsampling, gain 4 up), and a 1×1 conv changes the
width where it changes (before upsampling in G, after downsampling in D, so it runs at the lower resolution).

- G: z (N×nz) → a linear layer gives one scale per channel of a learned 4×4 basis (N×C₀×4×4) → stages up to the
  image → a 1×1 conv to the image's channels. No tanh: like R3GAN, G is linear at the output and learns the
  [-1, 1] range of the data; facegan's consumers (to_uint8) clamp, as they do for BEGAN.
- D mirrors G: a 1×1 conv from the image → stages down to 4×4 → a 4×4 depthwise conv (the discriminative basis)
  → a linear head, one logit per image.

Pure PyTorch (no custom ops): exports to ONNX/TorchScript and runs under bf16 autocast and channels_last.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facegan.config import ModelConfig, RunConfig
from facegan.errors import FaceganError
from facegan.models.family import Family, option

RESOLUTIONS = (32, 64, 128)
SLOPE = 0.2
ACTIVATION_GAIN = math.sqrt(2.0 / (1.0 + SLOPE**2))  # He gain of LeakyReLU(0.2)
LINEAR_LAYERS_PER_BLOCK = 3

# G's widths from 4×4 up, as their train.py presets: CIFAR10 (32 px), FFHQ-64, and FFHQ-256's first six stages
# (128 px). 3×3 groups of 16 channels throughout (their cardinality 96 at 2·768 channels, 48 at 2·384, ...).
PAPER_WIDTHS: dict[int, tuple[int, ...]] = {
    32: (768, 768, 768, 768),
    64: (768, 768, 768, 768, 384),
    128: (768, 768, 768, 768, 384, 192),
}
PAPER_NZ = 64


@dataclass
class R3GANOptions:
    """R3GAN's architecture options (ModelConfig.options of an r3gan run; each is also a `facegan train` flag)."""

    widths: list[int] = option([], "R3GAN: G's stage widths from 4×4 up to the image, one per resolution (D "
                               "mirrors them); empty: the paper's for the resolution", minimum=1)
    blocks: list[int] = option([2], "R3GAN: residual blocks per stage, one number for all or one per stage from "
                               "4×4 up (default 2)", minimum=0)
    channels_per_group: int = option(16, "R3GAN: channels per group of each block's 3×3 conv (0: dense; "
                                     "default 16)", minimum=0)
    expansion: int = option(2, "R3GAN: inverted-bottleneck expansion of each block's 3×3 conv (default 2)",
                            minimum=1)
    resampling_filter: list[int] = option([1, 2, 1], "R3GAN: 1-D FIR taps of the 2× resamplers, convolved with "
                                          "[1, 1] (default 1,2,1)", minimum=0)

    def stage_widths(self, resolution: int) -> tuple[int, ...]:
        """G's widths from 4×4 up for `resolution` (the paper's when none are given)."""
        if resolution not in RESOLUTIONS:
            raise FaceganError(f"R3GAN supports {', '.join(map(str, RESOLUTIONS))} px, not {resolution}")
        stages = int(math.log2(resolution)) - 1
        widths = tuple(self.widths) or PAPER_WIDTHS[resolution]
        if len(widths) != stages:
            raise FaceganError(f"r3gan at {resolution} px needs {stages} stage widths (4×4 up), got {len(widths)}")
        return widths

    def stage_blocks(self, stages: int) -> tuple[int, ...]:
        """Blocks per stage from 4×4 up."""
        if len(self.blocks) == 1:
            return tuple(self.blocks) * stages
        if len(self.blocks) != stages:
            raise FaceganError(f"r3gan blocks: give one number or {stages} (one per stage), got {len(self.blocks)}")
        return tuple(self.blocks)

    def groups(self, channels: int) -> int:
        """Number of groups of the 3×3 conv over `channels` expanded channels."""
        if self.channels_per_group <= 0:
            return 1
        if channels % self.channels_per_group:
            raise FaceganError(f"r3gan: {channels} expanded channels are not a multiple of "
                               f"channels_per_group={self.channels_per_group}")
        return channels // self.channels_per_group


def msr_init_(weight: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """N(0, gain² / fan_in) in place (He/MSR init with an explicit gain; gain 0 zeroes)."""
    fan_in = weight.shape[1] * weight[0][0].numel()
    with torch.no_grad():
        return weight.normal_(0.0, gain / math.sqrt(fan_in)) if gain else weight.zero_()


def _conv(cin: int, cout: int, kernel: int = 1, groups: int = 1, gain: float = 1.0) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, kernel, padding=(kernel - 1) // 2, groups=groups, bias=False)
    msr_init_(conv.weight, gain)
    return conv


class BiasedActivation(nn.Module):
    """LeakyReLU_0.2(x + b), b per channel (zero at init), in x's dtype (bf16 stays bf16 under autocast)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.bias.to(x.dtype).view(1, -1, 1, 1), 0.2)  # SLOPE (TorchScript: a literal)


class ResidualBlock(nn.Module):
    """x + 1×1( act( grouped 3×3( act( 1×1(x) ) ) ) ); the last 1×1 is zero at init, so the block starts as x."""

    def __init__(self, width: int, options: R3GANOptions, total_blocks: int) -> None:
        super().__init__()
        expanded = width * options.expansion
        gain = ACTIVATION_GAIN * total_blocks ** (-1.0 / (2 * LINEAR_LAYERS_PER_BLOCK - 2))
        self.expand = _conv(width, expanded, 1, gain=gain)  # (expansion·C) x H x W
        self.act1 = BiasedActivation(expanded)
        self.spatial = _conv(expanded, expanded, 3, groups=options.groups(expanded), gain=gain)
        self.act2 = BiasedActivation(expanded)
        self.project = _conv(expanded, width, 1, gain=0.0)  # C x H x W, zero: identity at init

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(self.act2(self.spatial(self.act1(self.expand(x)))))


def lowpass_kernel(taps: Sequence[int]) -> torch.Tensor:
    """The 4×4 (for [1,2,1]) low-pass kernel: taps * [1, 1], outer product with itself, summing to 1."""
    one_d = torch.from_numpy(np.convolve(np.asarray(taps, np.float64), [1.0, 1.0])).float()  # [1, 3, 3, 1]
    kernel = torch.outer(one_d, one_d)
    return kernel / kernel.sum()


def in_float32(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """fn(x) computed in float32 with autocast off, returned in x's dtype."""
    with torch.autocast(x.device.type, enabled=False):
        y = fn(x.float())
    return y.to(x.dtype)


class LowPassResampler(nn.Module):
    """A fixed per-channel (depthwise) low-pass resampling: the subclass's `resample` with `self.kernel`.

    On a CPU it runs in float32 even under bf16 autocast: oneDNN's bf16 depthwise convolutions (and their
    backward) measured 4-50× slower than float32 ones on AMD Zen 5 (AVX-512 bf16, no AMX), a third of
    r3gan-cpu64's whole training step (BENCHMARKS.md). The result comes back in the input's dtype. On CUDA it
    stays in the autocast dtype; TorchScript (exported G, float32) skips the switch.
    """

    def __init__(self, channels: int, taps: Sequence[int], gain: float = 1.0) -> None:
        super().__init__()
        kernel = gain * lowpass_kernel(taps)  # the same kernel for every channel: a C×1×k×k depthwise weight of
        self.register_buffer("kernel", kernel.expand(channels, 1, *kernel.shape).contiguous(),  # fixed shape, so
                             persistent=False)  # ONNX export sees a constant kernel
        self.padding, self.channels = len(taps) // 2, channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and x.device.type == "cpu":
            return in_float32(self.resample, x)
        return self.resample(x)

    def resample(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Upsample(LowPassResampler):
    """2× interpolative upsampling: zero-insertion then the low-pass kernel (×4 keeps the mean), per channel."""

    def __init__(self, channels: int, taps: Sequence[int]) -> None:
        super().__init__(channels, taps, gain=4.0)

    def resample(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(x, self.kernel.to(x.dtype), stride=2, padding=self.padding, groups=self.channels)


class Downsample(LowPassResampler):
    """2× interpolative downsampling: the low-pass kernel at stride 2, per channel."""

    def resample(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernel.to(x.dtype), stride=2, padding=self.padding, groups=self.channels)


def _width_change(cin: int, cout: int) -> nn.Module:
    return _conv(cin, cout, 1) if cin != cout else nn.Identity()


class GenerativeBasis(nn.Module):
    """z (N×nz) → a learned 4×4 basis (C×4×4, N(0, 1)) scaled per channel by a linear map of z: N×C×4×4."""

    def __init__(self, nz: int, width: int) -> None:
        super().__init__()
        self.basis = nn.Parameter(torch.randn(width, 4, 4))
        self.linear = nn.Linear(nz, width, bias=False)
        msr_init_(self.linear.weight)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.basis.unsqueeze(0) * self.linear(z).unsqueeze(-1).unsqueeze(-1)


class DiscriminativeBasis(nn.Module):
    """N×C×4×4 → a 4×4 depthwise conv (N×C) → a linear head: one logit per image, with the N×C features."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.basis = nn.Conv2d(width, width, 4, groups=width, bias=False)
        msr_init_(self.basis.weight)
        self.linear = nn.Linear(width, 1, bias=False)
        msr_init_(self.linear.weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.basis(x).flatten(1)  # N x C
        return self.linear(features).view(-1), features


def _check_channels(channels: int) -> None:
    if channels < 1:
        raise FaceganError(f"r3gan needs at least one image channel, not {channels}")


class Generator(nn.Module):
    """R3GAN's G: latent N×nz (or N×nz×1×1) → image N×C×H×W, linear output (data range [-1, 1], unclamped)."""

    def __init__(self, options: R3GANOptions, nz: int = PAPER_NZ, channels: int = 3, resolution: int = 64) -> None:
        super().__init__()
        _check_channels(channels)
        widths = options.stage_widths(resolution)
        blocks = options.stage_blocks(len(widths))
        total = sum(blocks)
        self.nz = nz
        self.basis = GenerativeBasis(nz, widths[0])  # widths[0] x 4 x 4
        stages: list[nn.Module] = []
        for i, (width, count) in enumerate(zip(widths, blocks, strict=True)):
            layers: list[nn.Module] = []
            if i > 0:  # width change at the lower resolution, then 2× up
                layers += [_width_change(widths[i - 1], width), Upsample(width, options.resampling_filter)]
            layers += [ResidualBlock(width, options, total) for _ in range(count)]
            stages.append(nn.Sequential(*layers))  # width x 2^(i+2) x 2^(i+2)
        self.stages = nn.Sequential(*stages)
        self.to_image = _conv(widths[-1], channels, 1)  # C x res x res

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.to_image(self.stages(self.basis(z.reshape(z.shape[0], self.nz))))


class Discriminator(nn.Module):
    """R3GAN's D: image N×C×H×W → one logit per image (N,); G's stages mirrored, from the image down to 4×4."""

    def __init__(self, options: R3GANOptions, channels: int = 3, resolution: int = 64) -> None:
        super().__init__()
        _check_channels(channels)
        widths = tuple(reversed(options.stage_widths(resolution)))  # from the image down to 4x4
        blocks = tuple(reversed(options.stage_blocks(len(widths))))
        total = sum(blocks)
        self.from_image = _conv(channels, widths[0], 1)  # widths[0] x res x res
        stages: list[nn.Module] = []
        for i, (width, count) in enumerate(zip(widths, blocks, strict=True)):
            layers: list[nn.Module] = [ResidualBlock(width, options, total) for _ in range(count)]
            if i + 1 < len(widths):  # 2× down, then the width change at the lower resolution
                layers += [Downsample(width, options.resampling_filter), _width_change(width, widths[i + 1])]
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)  # widths[-1] x 4 x 4
        self.head = DiscriminativeBasis(widths[-1])

    def forward(self, x: torch.Tensor, with_features: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        logits, features = self.head(self.stages(self.from_image(x)))
        return (logits, features) if with_features else logits


def options_of(cfg: ModelConfig) -> R3GANOptions:
    """The R3GAN options of a model config (`cfg.options`, the paper's defaults filled in), checked."""
    return FAMILY.options_of(cfg)


def build_generator(cfg: ModelConfig) -> Generator:
    """R3GAN's G for `cfg` (initialised as the paper)."""
    return Generator(options_of(cfg), cfg.nz, cfg.channels, cfg.resolution)


def build_discriminator(cfg: ModelConfig) -> Discriminator:
    """R3GAN's D for `cfg` (initialised as the paper)."""
    return Discriminator(options_of(cfg), cfg.channels, cfg.resolution)


def check(config: RunConfig) -> None:
    """Refuse what R3GAN's D does not have (it has no normalisation and no minibatch-std layer)."""
    if config.model.minibatch_std:
        raise FaceganError("r3gan's D has no minibatch standard deviation layer; drop --minibatch-std")


# Presets. R3GAN's recipe (their train.py, FFHQ-64): RpGAN + γ/2·(R1 + R2), Adam with β1 = 0, cosine ramps of
# lr 2e-4 → 5e-5, β2 0.9 → 0.99, γ down 10×, G_ema's half-life 0 → 1/40 of the ramp and the augmentation
# probability 0 → 0.3, over the first part of the run (training.schedules). γ scales with the pixel count from
# FFHQ-64's 2 → 0.2 (a choice: their CIFAR-10 preset uses 0.05 → 0.005 at 32 px). Augmentation: DiffAugment's
# colour and translation (theirs is ADA's pipeline, which facegan does not have).
PAPER_BATCH = 256
AUGMENT = "color,translation"
AUG_P = 0.3
EMA_HALF_LIFE = (0.0, 1 / 40)  # of the ramp length: FFHQ-64's 0.5 M images over 20 M
CPU_PENALTY_EVERY = 4  # lazy R1 + R2 in the CPU presets (StyleGAN2's k); the paper's presets: every step


def _preset(resolution: int, options: dict[str, Any], batch: int | None = None,
            penalty_every: int = 1) -> dict[str, dict[str, Any]]:
    gamma = 2.0 * (resolution / 64) ** 2
    train: dict[str, Any] = {"loss": "rpgan", "r1_gamma": gamma / 10, "diffaugment": AUGMENT,
                             "penalty_every": penalty_every}
    if batch is not None:
        train["batch_size"] = batch
    return {
        "model": {"resolution": resolution, "nz": PAPER_NZ, "options": options},
        "optim": {"lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.0, "beta2": 0.99},
        "train": train,
        "schedule": {"lr": [1.0, 0.25], "beta2": [0.9, 0.99], "gamma": [gamma, gamma / 10],
                     "ema_half_life": list(EMA_HALF_LIFE), "aug_p": [0.0, AUG_P]},
    }


PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # The paper's widths (their FFHQ-64; CIFAR-10's at 32 px; FFHQ-256's first six stages at 128 px): GPU models.
    "r3gan": _preset(64, {"widths": list(PAPER_WIDTHS[64])}, PAPER_BATCH),
    "r3gan32": _preset(32, {"widths": list(PAPER_WIDTHS[32])}, PAPER_BATCH),
    "r3gan128": _preset(128, {"widths": list(PAPER_WIDTHS[128])}, PAPER_BATCH),
    # CPU presets (bench/r3gan_cost.py, docs/models.md): narrow high-resolution stages, no block at 64×64 (the
    # image stage is a 1×1 conv + resampling in G and D), 8 channels per group; ~0.09 GFLOP per forward of G or
    # D per image against DCGAN-64's 0.21. facegan's default batch. R1 + R2 lazily, every 4th step at 4·γ: on a
    # CPU their double backward costs more than the rest of the step (bench/quality_per_minute.py: 1.7× the
    # images in 10 minutes, no worse scores).
    "r3gan-cpu64": _preset(64, {"widths": [256, 128, 64, 32, 16], "blocks": [2, 2, 2, 1, 0],
                                "channels_per_group": 8}, penalty_every=CPU_PENALTY_EVERY),
    "r3gan-cpu32": _preset(32, {"widths": [256, 128, 64, 32], "blocks": [2, 2, 2, 1], "channels_per_group": 8},
                           penalty_every=CPU_PENALTY_EVERY),
}

FAMILY = Family("r3gan", build_generator, build_discriminator, options=R3GANOptions, presets=PRESETS, check=check)
