"""Image sets for the metric tests: synthetic faces, real LFW crops and noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

LFW = Path(__file__).resolve().parents[3] / "shared" / "data" / "lfw-subset"  # ../shared beside the repo


def load_pngs(folder: Path) -> np.ndarray:
    """All PNGs of a folder as uint8 N×H×W×C (grey files keep one channel)."""
    arrays = [np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))]
    return np.stack([a[:, :, None] if a.ndim == 2 else a for a in arrays])


def lfw_subset(kind: str) -> np.ndarray:
    """skimage's lfw_subset (first 100: faces, last 100: non-faces) from the shared copy, else from skimage."""
    if (LFW / kind).is_dir():
        return load_pngs(LFW / kind)
    from skimage.data import lfw_subset as load  # the same 200 crops, installable offline (scikit-image)

    images = (load() * 255).round().astype(np.uint8)[:, :, :, None]
    return images[:100] if kind == "faces" else images[100:]


@pytest.fixture(scope="session")
def lfw_faces() -> np.ndarray:
    """The 100 real 25×25 grey LFW face crops."""
    return lfw_subset("faces")


@pytest.fixture(scope="session")
def lfw_nonfaces() -> np.ndarray:
    """The 100 25×25 grey non-face crops of the same set."""
    return lfw_subset("nonfaces")


@pytest.fixture(scope="session")
def synthetic_faces() -> np.ndarray:
    """300 procedural 32-px RGB faces."""
    from facegan.data.synthetic import render_faces

    return render_faces(300, 32, seed=3)[0]
