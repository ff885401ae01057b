"""`facegan prepare`: turn a source of images into a prepared dataset (see `facegan.data.dataset`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from facegan.data.dataset import write_dataset
from facegan.errors import FaceganError
from facegan.utils.progress import progress_bar

log = logging.getLogger("facegan.prepare")

BUILTIN_PREFIX = "builtin:"
BUILTIN_SOURCES = ("synthetic-faces",)


def rgb_to_gray(images: np.ndarray) -> np.ndarray:
    """uint8 N×H×W×3 → N×H×W×1 with ITU-R 601 luma weights (as Pillow's convert('L'))."""
    luma = images[..., 0] * 0.299 + images[..., 1] * 0.587 + images[..., 2] * 0.114
    return np.clip(np.round(luma), 0, 255).astype(np.uint8)[..., None]


def prepare_builtin(
    name: str, out: str | Path, resolution: int, channels: int = 3, count: int = 20000, seed: int = 0,
    workers: int = 1, force: bool = False, show_progress: bool = True,
) -> dict[str, Any]:
    """Render a built-in dataset (`synthetic-faces`) into a prepared dataset; returns its meta."""
    if name != "synthetic-faces":
        raise FaceganError(f"unknown built-in dataset {name!r}; known: {', '.join(BUILTIN_SOURCES)}")
    from facegan.data import synthetic

    if count < 1:
        raise FaceganError("--n must be at least 1")
    with progress_bar(count, "render", unit="img", enabled=show_progress) as bar:
        images, labels = synthetic.render_faces(count, resolution, seed=seed, workers=workers, on_progress=bar.update)
    if channels == 1:
        images = rgb_to_gray(images)
    meta = write_dataset(
        out, images, source=f"{BUILTIN_PREFIX}{name}", labels=labels,
        label_names=list(synthetic.ATTRIBUTE_NAMES), force=force, extra={"seed": seed},
    )
    log.info("wrote %d synthetic faces (%d px, %d ch) to %s", meta["count"], resolution, channels, out)
    return meta


def prepare(
    source: str, out: str | Path, resolution: int = 64, channels: int = 3, count: int | None = None,
    seed: int = 0, workers: int = 1, force: bool = False, show_progress: bool = True,
) -> dict[str, Any]:
    """Prepare `source` into the dataset directory `out`; returns the dataset's meta."""
    if channels not in (1, 3):
        raise FaceganError("--channels must be 1 or 3")
    if resolution < 8 or resolution > 1024:
        raise FaceganError("--res must be between 8 and 1024")
    if source.startswith(BUILTIN_PREFIX):
        return prepare_builtin(source[len(BUILTIN_PREFIX):], out, resolution, channels, count or 20000, seed,
                               workers, force, show_progress)
    raise FaceganError(f"unsupported source {source!r}: use builtin:synthetic-faces")
