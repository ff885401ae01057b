"""Images a Jupyter notebook shows inline (`_repr_png_`): a PNG picture, and a grid of faces."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from facegan.errors import FaceganError
from facegan.utils.atomic import atomic_write_bytes
from facegan.utils.images import make_grid, png_bytes, save_png

# A grid narrower than this is enlarged (nearest, by a whole factor) when shown, so 32-px faces are not specks.
SHOW_MIN_WIDTH = 512
SHOW_MAX_SCALE = 8


class Png:
    """PNG bytes that a notebook shows as a picture (a plot of a run, say)."""

    def __init__(self, data: bytes, name: str = "image") -> None:
        self.data = data
        self.name = name

    def __repr__(self) -> str:
        return f"Png({self.name}, {len(self.data)} bytes)"

    def _repr_png_(self) -> bytes:
        return self.data

    def save(self, path: str | Path) -> Path:
        """Write the PNG file, atomically."""
        atomic_write_bytes(path, self.data)
        return Path(path)


def as_images(images: np.ndarray) -> np.ndarray:
    """uint8 faces as N×H×W×C (one H×W×C face becomes N = 1); anything else is a FaceganError."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.dtype != np.uint8 or images.shape[-1] not in (1, 3) or not len(images):
        raise FaceganError(f"faces must be uint8 n×H×W×C with C 1 or 3, not {images.dtype} {images.shape}")
    return images


class FaceGrid:
    """Faces (uint8 N×H×W×C) that a notebook shows as one grid, enlarged to be seen; `np.asarray(grid)` and
    `.images` give the faces back, `.save(path)` writes the grid at its own size."""

    def __init__(self, images: np.ndarray, nrow: int | None = None) -> None:
        self.images = as_images(images)
        self.nrow = nrow

    def __repr__(self) -> str:
        n, h, w, c = self.images.shape
        return f"FaceGrid({n} faces of {h}×{w}×{c})"

    def __len__(self) -> int:
        return len(self.images)

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        return self.images if dtype is None else self.images.astype(dtype)

    def grid(self) -> np.ndarray:
        """The faces tiled into one uint8 image (2-px padding), at their own size."""
        return make_grid(self.images, nrow=self.nrow)

    def _repr_png_(self) -> bytes:
        grid = self.grid()
        scale = min(SHOW_MAX_SCALE, max(1, math.ceil(SHOW_MIN_WIDTH / grid.shape[1])))
        return png_bytes(grid.repeat(scale, axis=0).repeat(scale, axis=1))

    def save(self, path: str | Path) -> Path:
        """Write the grid as a PNG file at the faces' own size, atomically."""
        save_png(self.grid(), path)
        return Path(path)
