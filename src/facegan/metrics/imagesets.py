"""Image sets for evaluation: a prepared dataset or a folder of image files, as uint8 N×H×W×C arrays."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from facegan.data.dataset import PreparedDataset, is_dataset_dir
from facegan.errors import FaceganError

log = logging.getLogger("facegan.metrics")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")


def sample_indices(count: int, n: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random subset of n of `count` items (all when n is None or ≥ count)."""
    if n is None or n >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, n, replace=False))


def image_files(folder: Path) -> list[Path]:
    """Image files under `folder` (recursively), in a stable order."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _square(image: Image.Image, size: int) -> Image.Image:
    """Centre-crop to a square and resize to size×size (Lanczos)."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    return image if image.size == (size, size) else image.resize((size, size), Image.LANCZOS)


def load_folder(folder: str | Path, n: int | None = None, seed: int = 0, resolution: int | None = None
                ) -> np.ndarray:
    """Decode up to n images of a folder (seeded subset) into uint8 N×R×R×3 (centre-cropped squares).

    R is `resolution`, or else the smaller side of the first image. Grey files become RGB. Files that do not
    decode are skipped with a warning.
    """
    folder = Path(folder)
    files = image_files(folder)
    if not files:
        raise FaceganError(f"{folder} holds no image files ({', '.join(IMAGE_SUFFIXES)}) and no prepared dataset")
    files = [files[i] for i in sample_indices(len(files), n, seed)]
    images, skipped = [], 0
    for path in files:
        try:
            with Image.open(path) as im:
                rgb = im.convert("RGB")
        except (OSError, UnidentifiedImageError, ValueError):
            skipped += 1
            continue
        resolution = resolution or min(rgb.size)
        images.append(np.asarray(_square(rgb, resolution)))
    if skipped:
        log.warning("skipped %d of %d files in %s that could not be decoded", skipped, len(files), folder)
    if not images:
        raise FaceganError(f"none of the {len(files)} image files in {folder} could be decoded")
    return np.stack(images)


def load_image_set(path: str | Path, n: int | None = None, seed: int = 0) -> np.ndarray:
    """Up to n images (seeded random subset) of a prepared dataset or an image folder, uint8 N×H×W×C."""
    path = Path(path)
    if not path.exists():
        raise FaceganError(f"{path} does not exist")
    if is_dataset_dir(path):
        dataset = PreparedDataset.open(path)
        return np.asarray(dataset.images[sample_indices(len(dataset), n, seed)])
    if not path.is_dir():
        raise FaceganError(f"{path} is neither a folder of images nor a prepared dataset")
    return load_folder(path, n, seed)


def resize_set(images: np.ndarray, resolution: int) -> np.ndarray:
    """Resize a uint8 N×H×W×C set to resolution² (Lanczos); unchanged when it already has that size."""
    if images.shape[1] == images.shape[2] == resolution:
        return images
    out = []
    for image in images:
        pil = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
        array = np.asarray(_square(pil, resolution))
        out.append(array[:, :, None] if array.ndim == 2 else array)
    return np.stack(out)


def match_sets(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bring two sets to one shape: the smaller resolution, and RGB if either set is RGB."""
    if a.shape[3] != b.shape[3]:
        a, b = (np.repeat(x, 3, axis=3) if x.shape[3] == 1 else x for x in (a, b))
    resolution = min(a.shape[1], a.shape[2], b.shape[1], b.shape[2])
    return resize_set(a, resolution), resize_set(b, resolution)
