"""The PyTorch DCGAN faces tutorial's nets, initialisation and training iteration, kept as written (the benches'
reference; pytorch/examples dcgan/main.py and the "DCGAN Tutorial" page share them).

The tutorial's nets are for 64 px; `nc` (its own variable) sets the image channels. At 32 px (Fashion-MNIST,
MNIST) the one block a 32-px image has no room for is left out of each net, as a tutorial reader adapting it does
and as facegan's `dcgan` preset does at 32 px; the layer indices then match facegan's DCGAN, so a snapshot of these
nets loads into `facegan.models.dcgan.Generator` unchanged. torchvision cannot be installed beside this torch
(TOOLCHAIN.md), so nothing here uses it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

NZ, NGF, NDF = 100, 64, 64
LR, BETA1 = 0.0002, 0.5


def _g_blocks(resolution: int) -> int:
    if resolution not in (32, 64):
        raise ValueError(f"the tutorial's nets are for 64 px (or 32 with one block fewer), not {resolution}")
    return 3 if resolution == 64 else 2


class RefGenerator(nn.Module):
    """The tutorial's netG (at 32 px: its first block left out, ngf × 4 at 4×4)."""

    def __init__(self, nc: int = 3, resolution: int = 64) -> None:
        super().__init__()
        blocks = _g_blocks(resolution)
        width = NGF * 2**blocks
        layers: list[nn.Module] = [nn.ConvTranspose2d(NZ, width, 4, 1, 0, bias=False), nn.BatchNorm2d(width),
                                   nn.ReLU(True)]
        for _ in range(blocks):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2),
                       nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(NGF, nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class RefDiscriminator(nn.Module):
    """The tutorial's netD, Sigmoid output for BCELoss (at 32 px: its last block left out)."""

    def __init__(self, nc: int = 3, resolution: int = 64) -> None:
        super().__init__()
        blocks = _g_blocks(resolution)
        layers: list[nn.Module] = [nn.Conv2d(nc, NDF, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        width = NDF
        for _ in range(blocks):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2),
                       nn.LeakyReLU(0.2, inplace=True)]
            width *= 2
        layers += [nn.Conv2d(width, 1, 4, 1, 0, bias=False), nn.Sigmoid()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1, 1).squeeze(1)


def weights_init(m: nn.Module) -> None:
    """The tutorial's custom initialisation."""
    name = m.__class__.__name__
    if name.find("Conv") != -1:
        torch.nn.init.normal_(m.weight, 0.0, 0.02)
    elif name.find("BatchNorm") != -1:
        torch.nn.init.normal_(m.weight, 1.0, 0.02)
        torch.nn.init.zeros_(m.bias)


class Reference:
    """The tutorial's nets, optimisers and training iteration."""

    def __init__(self, device: torch.device, seed: int = 0, nc: int = 3, resolution: int = 64) -> None:
        torch.manual_seed(seed)
        self.device = device
        self.netG = RefGenerator(nc, resolution).to(device)
        self.netG.apply(weights_init)
        self.netD = RefDiscriminator(nc, resolution).to(device)
        self.netD.apply(weights_init)
        self.criterion = nn.BCELoss()
        self.optimizerD = torch.optim.Adam(self.netD.parameters(), lr=LR, betas=(BETA1, 0.999))
        self.optimizerG = torch.optim.Adam(self.netG.parameters(), lr=LR, betas=(BETA1, 0.999))
        self.log_line = ""

    def step(self, data: tuple[torch.Tensor, Any]) -> None:
        """One iteration of the tutorial's loop, line for line (its print becomes a string it keeps)."""
        real_label, fake_label = 1, 0
        device = self.device
        netD, netG, criterion = self.netD, self.netG, self.criterion
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        real_cpu = data[0].to(device)
        batch_size = real_cpu.size(0)
        label = torch.full((batch_size,), real_label, dtype=real_cpu.dtype, device=device)
        output = netD(real_cpu)
        errD_real = criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()
        noise = torch.randn(batch_size, NZ, 1, 1, device=device)
        fake = netG(noise)
        label.fill_(fake_label)
        output = netD(fake.detach())
        errD_fake = criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean().item()
        errD = errD_real + errD_fake
        self.optimizerD.step()
        # (2) Update G network: maximize log(D(G(z)))
        netG.zero_grad()
        label.fill_(real_label)
        output = netD(fake)
        errG = criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean().item()
        self.optimizerG.step()
        self.log_line = (f"Loss_D: {errD.item():.4f} Loss_G: {errG.item():.4f} D(x): {D_x:.4f} "
                         f"D(G(z)): {D_G_z1:.4f} / {D_G_z2:.4f}")
