"""One training step of a GAN: the D update, then the G update (the DCGAN tutorial's order)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from facegan.config import RunConfig
from facegan.losses import LOSSES


@dataclass
class StepContext:
    """What a step function needs: the nets, their optimisers, the config and a latent sampler.

    `state` holds tensors a family keeps between steps (BEGAN's k_t, say); it is saved in checkpoints.
    """

    netG: nn.Module
    netD: nn.Module
    optG: torch.optim.Optimizer
    optD: torch.optim.Optimizer
    config: RunConfig
    latents: Callable[[int], torch.Tensor]
    autocast: Callable[[], Any] = contextlib.nullcontext
    state: dict[str, torch.Tensor] = field(default_factory=dict)


StepFn = Callable[[StepContext, torch.Tensor], dict[str, torch.Tensor]]


def gan_step(ctx: StepContext, real: torch.Tensor) -> dict[str, torch.Tensor]:
    """A standard GAN step with the configured loss; returns detached scalars for the log.

    D(x) and D(G(z)) are the mean sigmoid of D's outputs: z1 before D's update, z2 after it (G's step).
    """
    loss = LOSSES[ctx.config.train.loss]
    z = ctx.latents(real.shape[0])

    # (1) Update D: maximise log D(x) + log(1 - D(G(z))).
    ctx.optD.zero_grad(set_to_none=True)
    with ctx.autocast():
        fake = ctx.netG(z)
        real_out = ctx.netD(real).float()
        fake_out = ctx.netD(fake.detach()).float()
    loss_d = loss.d(real_out, fake_out)
    loss_d.backward()
    ctx.optD.step()

    # (2) Update G: maximise log D(G(z)) (the non-saturating loss).
    ctx.optG.zero_grad(set_to_none=True)
    with ctx.autocast():
        gen_out = ctx.netD(fake).float()
    loss_g = loss.g(gen_out)
    loss_g.backward()
    ctx.optG.step()

    return {
        "loss_d": loss_d.detach(),
        "loss_g": loss_g.detach(),
        "d_x": torch.sigmoid(real_out.detach()).mean(),
        "d_g_z1": torch.sigmoid(fake_out.detach()).mean(),
        "d_g_z2": torch.sigmoid(gen_out.detach()).mean(),
    }
