"""Model families: a name → how to build G and D, and which training step drives them.

Adding a family is one module plus one line in `FAMILIES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from torch import nn

from facegan.config import ModelConfig
from facegan.errors import FaceganError
from facegan.models import began, conditional, dcgan, dense128
from facegan.stabilisers.layers import apply_spectral_norm
from facegan.step import StepFn, gan_step


class ModelFamily(NamedTuple):
    """Builders of G and D for a `ModelConfig`, and the step function that trains them."""

    build_generator: Callable[[ModelConfig], nn.Module]
    build_discriminator: Callable[[ModelConfig], nn.Module]
    step: StepFn = gan_step


FAMILIES: dict[str, ModelFamily] = {
    "dcgan": ModelFamily(dcgan.build_generator, dcgan.build_discriminator),
    "began": ModelFamily(began.build_generator, began.build_discriminator, began.began_step),
    "dense128": ModelFamily(dense128.build_generator, dense128.build_discriminator),
}


def get_family(name: str) -> ModelFamily:
    """The registered family called `name`."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise FaceganError(f"unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}") from None


def build_generator(cfg: ModelConfig) -> nn.Module:
    """The family's G for `cfg`, wrapped to take labels when `cfg.condition` names some (models.conditional)."""
    build = get_family(cfg.family).build_generator
    return conditional.build_conditional_generator(build, cfg) if cfg.condition else build(cfg)


def build_discriminator(cfg: ModelConfig) -> nn.Module:
    """The family's D for `cfg` (conditional when `cfg.condition` names labels), before spectral norm."""
    build = get_family(cfg.family).build_discriminator
    return conditional.build_conditional_discriminator(build, cfg) if cfg.condition else build(cfg)


def build_models(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """(G, D) for `cfg`, freshly initialised (D spectrally normalised when `cfg.spectral_norm`)."""
    netG, netD = build_generator(cfg), build_discriminator(cfg)  # G first: the seed's draws
    return netG, apply_spectral_norm(netD) if cfg.spectral_norm else netD


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
