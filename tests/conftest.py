"""Shared fixtures: tiny prepared datasets, a tiny trained run, one torch thread for tiny models, and the real
LFW crops shipped in tests/data/fixtures (the tests read nothing outside the repository)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facegan.data.dataset import write_dataset
from factories import blob_images, tiny_config

LFW = Path(__file__).resolve().parent / "data" / "fixtures" / "lfw-subset"  # see tests/data/README.md


def load_pngs(folder: Path) -> np.ndarray:
    """All PNGs of a folder as uint8 N×H×W×C (grey files keep one channel)."""
    arrays = [np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))]
    if not arrays:
        raise FileNotFoundError(f"no PNG files in {folder}")
    return np.stack([a[:, :, None] if a.ndim == 2 else a for a in arrays])


@pytest.fixture(scope="session")
def lfw_faces() -> np.ndarray:
    """The 100 real 25×25 grey LFW face crops (scikit-image's lfw_subset, first 100)."""
    return load_pngs(LFW / "faces")


@pytest.fixture(scope="session")
def lfw_nonfaces() -> np.ndarray:
    """The 100 25×25 grey non-face crops of the same set (its last 100)."""
    return load_pngs(LFW / "nonfaces")


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread: tiny models gain nothing from two, and the test machine's cores are shared.

    Opt in with `pytestmark = pytest.mark.usefixtures("one_thread")` (or as a fixture argument)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32-px RGB prepared dataset of 256 images."""
    path = tmp_path_factory.mktemp("data") / "blobs32"
    write_dataset(path, blob_images(256, 32, 3), source="test:blobs")
    return path


@pytest.fixture(scope="session")
def trained_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of a tiny DCGAN (32 px, nz 16, ngf/ndf 8) trained 40 steps, so G's faces depend on z."""
    from facegan.training.loop import train

    config = tiny_config(tiny_dataset, steps=40, log_every=10, sample_every=1000, checkpoint_every=1000)
    config.optim.lr_g = config.optim.lr_d = 1e-3
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    train(config, run_dir, show_progress=False)
    return run_dir
