"""Model families: a name → how to build G and D, and which training step drives them.

Adding a family is one module plus one line in `FAMILIES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from torch import nn

from facegan.config import ModelConfig
from facegan.errors import FaceganError
from facegan.models import dcgan
from facegan.step import StepFn, gan_step


class ModelFamily(NamedTuple):
    """Builders of G and D for a `ModelConfig`, and the step function that trains them."""

    build_generator: Callable[[ModelConfig], nn.Module]
    build_discriminator: Callable[[ModelConfig], nn.Module]
    step: StepFn = gan_step


FAMILIES: dict[str, ModelFamily] = {
    "dcgan": ModelFamily(dcgan.build_generator, dcgan.build_discriminator),
}


def get_family(name: str) -> ModelFamily:
    """The registered family called `name`."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise FaceganError(f"unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}") from None


def build_models(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """(G, D) for `cfg`, freshly initialised."""
    family = get_family(cfg.family)
    return family.build_generator(cfg), family.build_discriminator(cfg)


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
