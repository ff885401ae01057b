"""Image tensors to uint8 arrays, grids and PNG files."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facegan.utils.atomic import atomic_write_bytes


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Float images in [-1, 1], N×C×H×W, to uint8 N×H×W×C on the CPU."""
    scaled = ((images.detach().float() + 1.0) * 127.5).round().clamp(0, 255)
    return scaled.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def make_grid(images: np.ndarray, nrow: int | None = None, padding: int = 2, pad_value: int = 0) -> np.ndarray:
    """Tile uint8 N×H×W×C images into one H'×W'×C image, `nrow` per row (default: a square)."""
    count, height, width, channels = images.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(count)))
    rows = math.ceil(count / nrow)
    grid = np.full(
        (rows * (height + padding) + padding, nrow * (width + padding) + padding, channels),
        pad_value,
        dtype=np.uint8,
    )
    for i in range(count):
        top = padding + (i // nrow) * (height + padding)
        left = padding + (i % nrow) * (width + padding)
        grid[top : top + height, left : left + width] = images[i]
    return grid


def to_pil(image: np.ndarray) -> Image.Image:
    """A uint8 H×W×C array (C = 1 or 3) as a PIL image."""
    if image.ndim == 3 and image.shape[2] == 1:
        return Image.fromarray(image[:, :, 0], mode="L")
    return Image.fromarray(image)


def resize_nearest(image: np.ndarray, size: int, smooth: bool = False) -> np.ndarray:
    """Scale a uint8 H×W×C image so its longer side is `size` (nearest or Lanczos)."""
    pil = to_pil(image)
    scale = size / max(pil.size)
    new = (max(1, round(pil.width * scale)), max(1, round(pil.height * scale)))
    resized = pil.resize(new, Image.LANCZOS if smooth else Image.NEAREST)
    array = np.asarray(resized)
    return array[:, :, None] if array.ndim == 2 else array


def png_bytes(image: np.ndarray) -> bytes:
    """Encode a uint8 H×W×C array as PNG bytes (deterministic for the same pixels)."""
    buffer = io.BytesIO()
    to_pil(image).save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(image: np.ndarray, path: str | Path) -> None:
    """Write a uint8 H×W×C array as a PNG file, atomically."""
    atomic_write_bytes(path, png_bytes(image))
