"""`unwrap`: the plain module under the wrappers training puts around G and D (DDP, torch.compile)."""

from __future__ import annotations

from torch import nn


def unwrap(net: nn.Module) -> nn.Module:
    """The plain module under DistributedDataParallel's (`.module`) and torch.compile's (`._orig_mod`) wrappers."""
    from torch.nn.parallel import DistributedDataParallel

    while True:
        if isinstance(net, DistributedDataParallel):
            net = net.module
        elif isinstance(getattr(net, "_orig_mod", None), nn.Module):  # torch.compile's OptimizedModule
            net = net._orig_mod
        else:
            return net
