"""facegan: train GANs on face images and generate faces of people who do not exist."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facegan.version import __version__

if TYPE_CHECKING:
    from pathlib import Path

    from facegan.api import FaceGAN

__all__ = ["__version__", "load"]


def load(path: str | Path, device: str = "cpu") -> FaceGAN:
    """A trained model from a run directory (its newest checkpoint) or a checkpoint file; see docs/api.md.

    Imported lazily, so `import facegan` stays light (no torch until a model is loaded).
    """
    from facegan.api import load as load_model

    return load_model(path, device=device)
