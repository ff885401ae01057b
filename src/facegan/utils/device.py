"""Choosing the torch device."""

from __future__ import annotations

import torch

from facegan.errors import FaceganError


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` → CUDA if available, else MPS, else CPU; otherwise the named device, checked to exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise FaceganError(f"unknown device {name!r} (try auto, cpu, cuda, cuda:1, mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FaceganError(f"device {name!r} asked for, but CUDA is not available on this machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise FaceganError(f"device {name!r} asked for, but MPS is not available on this machine")
    return device
