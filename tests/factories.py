"""Small things tests build: structured images and DCGAN/r3gan configs that train a step in milliseconds.

Imported by test modules (`from factories import tiny_config`) and by conftest.py's fixtures.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from facegan.config import RunConfig
from facegan.models.presets import DEFAULT_PRESET, build_config


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


def tiny_config(data: Path, **train: object) -> RunConfig:
    """A DCGAN config small enough to train a step in milliseconds."""
    overrides = {
        "data": {"path": str(data)},
        "model": {"resolution": 32, "channels": 3, "nz": 16, "ngf": 8, "ndf": 8},
        "train": {"batch_size": 16, "steps": 6, "log_every": 2, "sample_every": 3, "checkpoint_every": 3,
                  "device": "cpu", **train},
    }
    return build_config("dcgan", overrides)


def tiny_r3gan_config(data: Path, **train: object) -> RunConfig:
    """An r3gan config (the CPU preset's recipe: RpGAN + R1 + R2, ramps, augmentation) on a tiny 32-px net."""
    overrides = {
        "data": {"path": str(data)},
        "model": {"resolution": 32, "channels": 3, "nz": 16,
                  "options": {"widths": [32, 16, 8, 8], "blocks": [1], "channels_per_group": 8}},
        "train": {"batch_size": 16, "steps": 6, "log_every": 2, "sample_every": 3, "checkpoint_every": 3,
                  "device": "cpu", **train},
    }
    return build_config("r3gan-cpu32", overrides)


def killed_while_writing(target: Path) -> Path:
    """Start a process that dies by SIGKILL inside atomic_open(target); returns the temporary file it left."""
    code = ("import os, signal, sys\nfrom facegan.utils.atomic import atomic_open\n"
            "with atomic_open(sys.argv[1]) as f:\n    f.write(b'half a checkpoint')\n    f.flush()\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    done = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL
    (left,) = [p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}.")]
    return left


def get_when_up(url: str, timeout_s: float, request_timeout_s: float = 10) -> httpx.Response:
    """GET `url` from a server that has just printed its address: retried until it accepts connections (a
    server prints its URL just before uvicorn starts accepting), for at most `timeout_s` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return httpx.get(url, timeout=request_timeout_s)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def tiny_default_config(data: Path, **train: object) -> RunConfig:
    """The default preset (`--model` not given) shrunk as tiny_config shrinks dcgan (32 px, nz 16, ngf/ndf 8,
    batch 16, a few steps on the CPU); the rest of its recipe (loss, optimiser, EMA, channels_last, ...) is kept."""
    overrides = {
        "data": {"path": str(data)},
        "model": {"resolution": 32, "channels": 3, "nz": 16, "ngf": 8, "ndf": 8},
        "train": {"batch_size": 16, "steps": 6, "log_every": 2, "sample_every": 3, "checkpoint_every": 3,
                  "device": "cpu", **train},
    }
    return build_config(DEFAULT_PRESET, overrides)
