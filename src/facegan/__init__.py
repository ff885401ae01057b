"""facegan: train GANs on face images and generate faces of people who do not exist.

`facegan.prepare`, `facegan.train`, `facegan.load` and `facegan.grid` are the Python API (facegan.api,
docs/api.md). They are imported lazily, so `import facegan` stays light: no torch until one is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from facegan.version import __version__

if TYPE_CHECKING:
    from pathlib import Path

    from facegan.api import FaceGAN, grid, prepare, train

__all__ = ["__version__", "grid", "load", "prepare", "train"]

_LAZY = ("grid", "prepare", "train")  # facegan.api's functions, imported on first use


def load(path: str | Path, device: str = "cpu") -> FaceGAN:
    """A trained model from a run directory (its newest checkpoint), a checkpoint file or a model folder; see
    docs/api.md.

    Imported lazily, so `import facegan` stays light (no torch until a model is loaded).
    """
    from facegan.api import load as load_model

    return load_model(path, device=device)


def __getattr__(name: str) -> Any:
    """`facegan.train`, `facegan.prepare` and `facegan.grid`: facegan.api's own functions (their signatures and
    docstrings), imported when first named."""
    if name in _LAZY:
        import facegan.api

        return getattr(facegan.api, name)
    raise AttributeError(f"module 'facegan' has no attribute {name!r}")
