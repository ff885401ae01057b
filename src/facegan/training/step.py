"""One training step of a GAN: the D update, then the G update (the DCGAN tutorial's order).

What a step receives, `StepContext`, is declared beside `Family` (facegan.models.family): a family's own step
uses it too, and the models sit below the training loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from facegan.losses import (
    LOSSES,
    Loss,
    PenaltyInputs,
    feature_matching_loss,
    lazy_gamma,
    r1_penalty,
)
from facegan.models.family import StepContext
from facegan.training.augment import d_view
from facegan.training.targets import d_targets


def gan_step(ctx: StepContext, real: torch.Tensor) -> dict[str, torch.Tensor]:
    """A standard GAN step with the configured loss and stabilisers; returns detached scalars for the log.

    D(x) and D(G(z)) are the mean sigmoid of D's outputs: z1 before D's update, z2 after it (G's step). A
    relativistic loss (RpGAN) also logs d_pair, the mean sigmoid(D(x_i) - D(G(z_i))) over the pairs of D's step:
    how surely D ranks each real above its fake. With n_critic > 1, G steps on every n_critic-th call; the other
    calls log G's loss on D's step's fakes.
    """
    t = ctx.config.train
    loss = LOSSES[t.loss]
    z = ctx.latents(real.shape[0])
    g_turn = (ctx.step + 1) % t.n_critic == 0  # G steps on every n_critic-th step

    # (1) Update D: maximise log D(x) + log(1 - D(G(z))) (or the configured loss), plus its penalties.
    ctx.optD.zero_grad(set_to_none=True)
    gamma = lazy_gamma(ctx.ramps.get("gamma", t.r1_gamma), ctx.step, t.penalty_every)
    with ctx.autocast():
        with torch.set_grad_enabled(g_turn and torch.is_grad_enabled()):  # G's graph only when G learns
            fake = ctx.netG(z)
        real_x, fake_x = real, fake.detach()
        if loss.penalty_on_inputs and gamma > 0:  # R1/R2 by the images before augmentation, in float32
            real_x, fake_x = (x.detach().float().requires_grad_(True) for x in (real_x, fake_x))
        real_in, fake_in = _d_view(ctx, real_x), _d_view(ctx, fake_x)  # augmented/noisy when configured
        real_out = ctx.netD(real_in).float()
        fake_out = ctx.netD(fake_in).float()
    loss_d = loss.d(real_out, fake_out, *d_targets(t, real.shape[0], real.device, ctx.noise))
    loss_d = loss_d + _d_penalties(ctx, loss, PenaltyInputs(ctx.netD, real_x, fake_x, real_in, fake_in,
                                                            real_out, fake_out, t, gamma, ctx.noise))
    ctx.backward_step(loss_d, ctx.optD)

    # (2) Update G: maximise log D(G(z)) (the non-saturating loss), or match D's features of real images.
    if g_turn:
        ctx.optG.zero_grad(set_to_none=True)
        real_out_g = None
        with ctx.autocast(), frozen(ctx.netD):
            if t.feature_matching:
                gen_out, gen_features = ctx.netD(_d_view(ctx, fake), with_features=True)
                with torch.no_grad():
                    _, real_features = ctx.netD(real_in, with_features=True)
            else:
                gen_out = ctx.netD(_d_view(ctx, fake))
                if loss.g_needs_real:  # relativistic: G's loss compares D(G(z)) with D(x) of the updated D
                    with torch.no_grad():
                        real_out_g = ctx.netD(real_in.detach()).float()
        gen_out = gen_out.float()
        loss_g = (feature_matching_loss(real_features, gen_features) if t.feature_matching
                  else loss.g_loss(gen_out, real_out_g))
        ctx.backward_step(loss_g, ctx.optG)
    else:
        gen_out = fake_out
        loss_g = loss.g_loss(fake_out.detach(), real_out.detach())

    values = {
        "loss_d": loss_d.detach(),
        "loss_g": loss_g.detach(),
        "d_x": torch.sigmoid(real_out.detach()).mean(),
        "d_g_z1": torch.sigmoid(fake_out.detach()).mean(),
        "d_g_z2": torch.sigmoid(gen_out.detach()).mean(),
    }
    if loss.g_needs_real:  # relativistic: only D(x) - D(G(z)) means anything (a shift of all logits is free)
        values["d_pair"] = torch.sigmoid(real_out.detach() - fake_out.detach()).mean()
    return values


@contextlib.contextmanager
def frozen(net: nn.Module) -> Iterator[None]:
    """`net`'s weights need no gradient inside (D in G's step): autograd skips their weight-gradient
    convolutions, ~8% of a DCGAN step, and DDP neither expects nor all-reduces them. The maths of G's update
    is unchanged; D's gradients are reset at its next step anyway."""
    params = [p for p in net.parameters() if p.requires_grad]
    no_sync = getattr(net, "no_sync", None)  # DistributedDataParallel (also through torch.compile's wrapper)
    for p in params:
        p.requires_grad_(False)
    try:
        with no_sync() if callable(no_sync) else contextlib.nullcontext():
            yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _d_view(ctx: StepContext, images: torch.Tensor) -> torch.Tensor:
    """Images as D sees them: DiffAugment (each image with the ramped probability aug_p, else always), then
    instance noise, when configured (else unchanged)."""
    return d_view(images, ctx.config.train, ctx.step, ctx.noise, ctx.ramps.get("aug_p", 1.0))


def _d_penalties(ctx: StepContext, loss: Loss, inputs: PenaltyInputs) -> torch.Tensor | float:
    """The loss's own penalty (WGAN-GP's gradient penalty, RpGAN's R1 + R2) and, for other losses, the R1
    penalty (γ > 0: train.r1_gamma or its ramp), in float32; 0 if none."""
    total: torch.Tensor | float = 0.0
    if loss.penalty is not None:
        total = total + loss.penalty(inputs)
    if inputs.gamma > 0 and not loss.penalty_on_inputs:
        total = total + inputs.gamma / 2 * r1_penalty(ctx.netD, inputs.real_in)
    return total
