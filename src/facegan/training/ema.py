"""An exponential moving average of G's weights (Karras et al. 2018; Yazıcı et al. 2019).

G_ema = d_t·G_ema + (1 - d_t)·G after every step, with d_t = min(decay, (1 + t)/(10 + t)) after t earlier
updates (TensorFlow's ExponentialMovingAverage with num_updates): early on the average forgets G's random
initial weights quickly instead of keeping them for ~1/(1 - decay) steps. R3GAN's runs give a half-life in
images instead (schedule.ema_half_life): the loop then passes d = 0.5^(batch / half-life) (training.schedules)
and no warm-up, the half-life itself ramping up from 0. Buffers (BatchNorm statistics) are
copied from G. When on, the fixed-noise grids use G_ema, checkpoints store it as "G_ema", and
`facegan.generation.sample.load_generator` (so `facegan sample`, eval and serving) prefers it.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from facegan.utils.modules import unwrap


def make_ema(netG: nn.Module) -> nn.Module:
    """A frozen copy of G (eval mode, no gradients) to average into."""
    return copy.deepcopy(unwrap(netG)).eval().requires_grad_(False)


def ema_decay_at(decay: float, updates: int | None) -> float:
    """The decay of the update after `updates` earlier ones: min(decay, (1 + t)/(10 + t)); `decay` if None."""
    return decay if updates is None else min(decay, (1.0 + updates) / (10.0 + updates))


@torch.no_grad()
def update_ema(ema: nn.Module, netG: nn.Module, decay: float, updates: int | None = None) -> None:
    """One EMA update of `ema` toward G's current weights (warmed up by `updates`); buffers are copied."""
    source = unwrap(netG)
    weight = 1.0 - ema_decay_at(decay, updates)
    for p_ema, p in zip(ema.parameters(), source.parameters(), strict=True):
        p_ema.lerp_(p.detach(), weight)
    for b_ema, b in zip(ema.buffers(), source.buffers(), strict=True):
        b_ema.copy_(b)
