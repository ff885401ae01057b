"""Model families: the registry of `Family` declarations, and building G and D for a `ModelConfig`.

Adding a family is one module (which ends with `FAMILY = Family(...)`, see models/family.py) plus one line in
`FAMILIES`; its presets then appear in `--model`, its options as `--flags` and in `model.options`
(docs/models.md, "Adding a family").
"""

from __future__ import annotations

from torch import nn

from facegan.config import ModelConfig, RunConfig
from facegan.errors import FaceganError
from facegan.losses import get_loss
from facegan.models import began, conditional, dcgan, dense128, r3gan
from facegan.models.family import Family
from facegan.models.layers import apply_spectral_norm

FAMILIES: dict[str, Family] = {
    dcgan.FAMILY.name: dcgan.FAMILY,
    began.FAMILY.name: began.FAMILY,
    dense128.FAMILY.name: dense128.FAMILY,
    r3gan.FAMILY.name: r3gan.FAMILY,
}


def get_family(name: str) -> Family:
    """The registered family called `name`."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise FaceganError(f"unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}") from None


def check_model_config(config: RunConfig) -> None:
    """The family's checks of a config: its options, its loss (a family's own loss goes with that family only),
    and its own `check`."""
    family = get_family(config.model.family)
    family.options_of(config.model)
    loss = get_loss(config.train.loss)
    if family.loss is not None and family.loss != loss.name:
        owner: Family | None = family  # a family with a loss of its own trains with nothing else
    else:  # and no other family trains with that loss
        owner = next((f for f in FAMILIES.values() if f.loss == loss.name and f is not family), None)
    if owner is not None:
        raise FaceganError(f"the {owner.loss} loss and the {owner.name} model go together: "
                           f"use --model {owner.name} for both")
    if family.check is not None:
        family.check(config)


def complete_config(config: RunConfig) -> None:
    """Fill the config's "auto" values that its family decides (so config.json records the concrete choice)."""
    family = FAMILIES.get(config.model.family)  # an unknown family fails where its config is checked
    if family is not None and family.complete is not None:
        family.complete(config)


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
