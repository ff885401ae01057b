"""BEGAN (Berthelot et al. 2017): an autoencoder D, an equilibrium-balanced L1 loss, and its own step.

D(x) is x's reconstruction by an autoencoder; L(v) = mean |v - D(v)| is its L1 reconstruction loss, and
    L_D = L(x) - k_t·L(G(z)),    L_G = L(G(z)),
    k_{t+1} = clip(k_t + λ_k·(γ·L(x) - L(G(z))), 0, 1),
    M_global = L(x) + |γ·L(x) - L(G(z))|   (the convergence measure, logged as `m_global`).
γ (option `gamma`, `--began-gamma`, seed 002: 0.4) sets how much D attends to fakes versus reals
(diversity); λ_k (option `lambda_k`, `--began-lambda-k`, seed 002: 0.005) is the learning rate of k_t, which
starts at 0 and is kept in the step state, so it is checkpointed and a resumed run continues with the same k_t.

Networks (the paper's Figure 1, n filters, code size h, ELU everywhere, no BatchNorm):
- encoder: conv 3×3 n; per scale l = 1..S: two conv 3×3 of l·n, then (below 8×8) a stride-2 conv 3×3 to
  (l+1)·n; flatten; fully connected to h (no activation). S = log2(resolution/8) + 1 scales.
- decoder (D's second half) and G (same layers, own weights): fully connected h → n×8×8 (= h0); per scale two
  conv 3×3 of n with ELU, then ×2 nearest upsampling; after each upsampling the upsampled h0 is concatenated
  (the skip connections of the paper's §3.5, which seed 002 shows); a last conv 3×3 to the image (no Tanh).
Seed 002's listing referred to an undefined `nsdf` and fed G latents of the wrong shape; here G takes N×nz.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from facegan.config import ModelConfig, RunConfig
from facegan.errors import FaceganError
from facegan.models.family import Family, StepContext, option

RESOLUTIONS = (32, 64, 128)


@dataclass
class BeganOptions:
    """BEGAN's own hyperparameters (ModelConfig.options of a began run)."""

    bottleneck: int = option(64, "BEGAN: code size h of D's autoencoder (default 64)", minimum=1)
    gamma: float = option(0.4, "BEGAN's diversity ratio γ (default 0.4)", flag="--began-gamma")
    lambda_k: float = option(0.005, "BEGAN's learning rate λ_k of k_t (default 0.005)", flag="--began-lambda-k")


def _scales(resolution: int) -> int:
    """Number of scales from 8×8 to the image: 3 at 32 px, 4 at 64, 5 at 128."""
    if resolution not in RESOLUTIONS:
        raise FaceganError(f"BEGAN supports {', '.join(map(str, RESOLUTIONS))} px, not {resolution}")
    return int(math.log2(resolution)) - 2


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1)


class Decoder(nn.Module):
    """A code N×h → image N×C×H×W; BEGAN's generator and the second half of its discriminator."""

    def __init__(self, h: int, n: int, channels: int, resolution: int) -> None:
        super().__init__()
        self.h, self.n = h, n
        self.fc = nn.Linear(h, n * 8 * 8)  # h0: n x 8 x 8
        blocks = []
        for scale in range(_scales(resolution)):
            cin = n if scale == 0 else 2 * n  # from the second scale on, the upsampled h0 is concatenated
            blocks.append(nn.Sequential(_conv(cin, n), nn.ELU(), _conv(n, n), nn.ELU()))
        self.blocks = nn.ModuleList(blocks)
        self.to_image = _conv(n, channels)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        h0 = self.fc(code.view(code.shape[0], self.h)).view(-1, self.n, 8, 8)
        x = h0
        for scale, block in enumerate(self.blocks):
            if scale > 0:
                x = F.interpolate(x, scale_factor=2, mode="nearest")  # n x 2^(scale+3) x 2^(scale+3)
                skip = F.interpolate(h0, scale_factor=2**scale, mode="nearest")
                x = torch.cat([x, skip], dim=1)  # 2n x ...
            x = block(x)
        return self.to_image(x)


class Encoder(nn.Module):
    """Image N×C×H×W → code N×h."""

    def __init__(self, h: int, n: int, channels: int, resolution: int) -> None:
        super().__init__()
        scales = _scales(resolution)
        layers: list[nn.Module] = [_conv(channels, n), nn.ELU()]
        for level in range(1, scales + 1):
            width = level * n
            layers += [_conv(width, width), nn.ELU(), _conv(width, width), nn.ELU()]
            if level < scales:
                layers += [_conv(width, width + n, stride=2), nn.ELU()]  # halves H and W, adds n filters
        self.main = nn.Sequential(*layers)  # (scales·n) x 8 x 8
        self.fc = nn.Linear(scales * n * 8 * 8, h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.main(x).flatten(1))


class Discriminator(nn.Module):
    """BEGAN's D: an autoencoder, image → code of size h → reconstructed image (same shape)."""

    def __init__(self, h: int, n: int, channels: int, resolution: int) -> None:
        super().__init__()
        self.encoder = Encoder(h, n, channels, resolution)
        self.decoder = Decoder(h, n, channels, resolution)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def build_generator(cfg: ModelConfig) -> Decoder:
    """BEGAN's G: a decoder from the latent (nz) with ngf filters."""
    return Decoder(cfg.nz, cfg.ngf, cfg.channels, cfg.resolution)


def build_discriminator(cfg: ModelConfig) -> Discriminator:
    """BEGAN's D: an autoencoder with ndf filters and a code of `bottleneck` numbers."""
    return Discriminator(FAMILY.options_of(cfg).bottleneck, cfg.ndf, cfg.channels, cfg.resolution)


def reconstruction_loss(x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """L(v) = mean |v - D(v)|, the pixel-wise L1 loss, in float32."""
    return (x.float() - reconstruction.float()).abs().mean()


def update_k(k: torch.Tensor, loss_real: torch.Tensor, loss_fake: torch.Tensor, gamma: float,
             lambda_k: float) -> torch.Tensor:
    """k_{t+1} = clip(k_t + λ_k·(γ·L(x) - L(G(z))), 0, 1)."""
    return (k + lambda_k * (gamma * loss_real - loss_fake)).clamp(0.0, 1.0)


def began_step(ctx: StepContext, real: torch.Tensor) -> dict[str, torch.Tensor]:
    """One BEGAN step: D on L(x) - k_t·L(G(z)), then G on L(G(z)), then the k_t update.

    L(x) and L(G(z)) in the k_t update and M_global are the ones D's step measured (same D, same z), as in the
    paper, where both updates are computed from the same forward pass.
    """
    opts: BeganOptions = FAMILY.options_of(ctx.config.model)
    k = ctx.state.get("k_t")
    if k is None:
        k = torch.zeros((), device=real.device)
    z = ctx.latents(real.shape[0])

    # (1) Update D: minimise L(x) - k_t·L(G(z)).
    ctx.optD.zero_grad(set_to_none=True)
    with ctx.autocast():
        fake = ctx.netG(z)
        loss_real = reconstruction_loss(real, ctx.netD(real))
        loss_fake = reconstruction_loss(fake.detach(), ctx.netD(fake.detach()))
    loss_d = loss_real - k * loss_fake
    ctx.backward_step(loss_d, ctx.optD)

    # (2) Update G: minimise L(G(z)).
    ctx.optG.zero_grad(set_to_none=True)
    with ctx.autocast():
        loss_g = reconstruction_loss(fake, ctx.netD(fake))
    ctx.backward_step(loss_g, ctx.optG)

    # (3) Equilibrium: move k_t toward γ·L(x) = L(G(z)).
    loss_real, loss_fake = loss_real.detach(), loss_fake.detach()
    balance = opts.gamma * loss_real - loss_fake
    ctx.state["k_t"] = update_k(k, loss_real, loss_fake, opts.gamma, opts.lambda_k)
    return {
        "loss_d": loss_d.detach(),
        "loss_g": loss_g.detach(),
        "l_x": loss_real,
        "l_g_z": loss_fake,
        "k_t": k.detach().clone(),
        "m_global": loss_real + balance.abs(),
    }


# What BEGAN's autoencoder D cannot use: it has no logit to smooth, and k_t balances G and D instead.
_NOT_FOR_BEGAN = ("label_smoothing", "label_noise", "instance_noise", "r1_gamma", "feature_matching", "diffaugment")


def check(config: RunConfig) -> None:
    """Refuse the stabilisers BEGAN's autoencoder D does not take."""
    t, m = config.train, config.model
    used = [name for name in _NOT_FOR_BEGAN if getattr(t, name)]
    if used or t.n_critic != 1 or m.minibatch_std:
        names = used + (["n_critic"] if t.n_critic != 1 else []) + (["minibatch_std"] if m.minibatch_std else [])
        raise FaceganError(f"BEGAN's autoencoder D does not take {', '.join(names)} (k_t balances G and D)")


FAMILY = Family(
    "began", build_generator, build_discriminator, began_step, options=BeganOptions, loss="began", check=check,
    presets={"began": {"model": {"nz": 64, "latent": "uniform"}, "optim": {"lr_g": 1e-4, "lr_d": 1e-4},
                       "train": {"loss": "began"}}},
)
