"""Shared fixtures: tiny prepared datasets and configs that train in well under a second per step, and the real
LFW crops shipped in tests/data/fixtures (the tests read nothing outside the repository)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegan.config import RunConfig, build_config
from facegan.data.dataset import write_dataset

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


def blob_images(count: int, resolution: int, channels: int, seed: int = 0) -> np.ndarray:
    """Simple structured images (a bright disc on a dark background) so a GAN has something to learn."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:resolution, 0:resolution] / resolution
    images = np.empty((count, resolution, resolution, channels), dtype=np.uint8)
    for i in range(count):
        cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.3)
        disc = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r).astype(np.float32)
        colour = rng.uniform(120, 255, size=channels)
        images[i] = (disc[..., None] * colour + rng.uniform(0, 30)).clip(0, 255).astype(np.uint8)
    return images


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32-px RGB prepared dataset of 256 images."""
    path = tmp_path_factory.mktemp("data") / "blobs32"
    write_dataset(path, blob_images(256, 32, 3), source="test:blobs")
    return path


def tiny_config(data: Path, **train: object) -> RunConfig:
    """A DCGAN config small enough to train a step in milliseconds."""
    overrides = {
        "data": {"path": str(data)},
        "model": {"resolution": 32, "channels": 3, "nz": 16, "ngf": 8, "ndf": 8},
        "train": {"batch_size": 16, "steps": 6, "log_every": 2, "sample_every": 3, "checkpoint_every": 3,
                  "device": "cpu", **train},
    }
    return build_config("dcgan", overrides)


@pytest.fixture(scope="session")
def trained_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of a tiny DCGAN (32 px, nz 16, ngf/ndf 8) trained 40 steps, so G's faces depend on z."""
    from facegan.train import train

    config = tiny_config(tiny_dataset, steps=40, log_every=10, sample_every=1000, checkpoint_every=1000)
    config.optim.lr_g = config.optim.lr_d = 1e-3
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    train(config, run_dir, show_progress=False)
    return run_dir


def killed_while_writing(target: Path) -> Path:
    """Start a process that dies by SIGKILL inside atomic_open(target); returns the temporary file it left."""
    code = ("import os, signal, sys\nfrom facegan.utils.atomic import atomic_open\n"
            "with atomic_open(sys.argv[1]) as f:\n    f.write(b'half a checkpoint')\n    f.flush()\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    done = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL
    (left,) = [p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}.")]
    return left
