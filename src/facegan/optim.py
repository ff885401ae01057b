"""Optimisers of G and D by name (Adam by default, as in the DCGAN paper)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from facegan.config import OptimConfig, RunConfig
from facegan.errors import FaceganError

OptimizerBuilder = Callable[[Iterable[torch.nn.Parameter], float, OptimConfig], torch.optim.Optimizer]


def _adam(params: Iterable[torch.nn.Parameter], lr: float, cfg: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, betas=(cfg.beta1, cfg.beta2))


OPTIMIZERS: dict[str, OptimizerBuilder] = {
    "adam": _adam,
}


def build_optimizers(
    cfg: RunConfig, netG: torch.nn.Module, netD: torch.nn.Module
) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """(optimiser of G, optimiser of D) as the config asks."""
    if cfg.optim.name not in OPTIMIZERS:
        raise FaceganError(f"unknown optimiser {cfg.optim.name!r}; known: {', '.join(sorted(OPTIMIZERS))}")
    build = OPTIMIZERS[cfg.optim.name]
    return build(netG.parameters(), cfg.optim.lr_g, cfg.optim), build(netD.parameters(), cfg.optim.lr_d, cfg.optim)
