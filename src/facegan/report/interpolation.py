"""Latent walks: rows of faces moving between random latents by spherical interpolation, as a PNG or a GIF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from facegan.errors import FaceganError
from facegan.generation.sample import LoadedGenerator
from facegan.models.latents import seeded_latents, slerp
from facegan.utils.gif import save_gif
from facegan.utils.images import make_grid, save_png

MAX_ROWS = 64
MAX_STEPS = 256


def interpolation_latents(
    nz: int, rows: int, steps: int, seed: int = 0, distribution: str = "normal", truncation: float = 1.0,
) -> torch.Tensor:
    """Latents rows × steps × nz: row k walks from latent a_k to b_k by slerp (a_k, b_k seeded by `seed`)."""
    ends = seeded_latents(2 * rows, nz, seed, distribution, truncation).view(rows, 2, nz)
    t = torch.linspace(0.0, 1.0, steps).view(1, steps, 1)
    return slerp(ends[:, :1, :], ends[:, 1:, :], t)  # (rows, 1, nz) against (1, steps, 1) → (rows, steps, nz)


def interpolate(gen: LoadedGenerator, rows: int, steps: int, seed: int = 0, truncation: float = 1.0) -> np.ndarray:
    """The faces of `rows` latent walks of `steps` faces each, as uint8 rows × steps × H × W × C."""
    check_interpolation(rows, steps)
    model = gen.config.model
    z = interpolation_latents(model.nz, rows, steps, seed, model.latent, truncation).reshape(rows * steps, model.nz)
    faces = gen.generate(z)
    return faces.reshape(rows, steps, *faces.shape[1:])


def check_interpolation(rows: int, steps: int) -> None:
    """Interpolation sizes a user may ask for (`--interpolate`): 1-64 rows of 2-256 steps."""
    if not 1 <= rows <= MAX_ROWS:
        raise FaceganError(f"--interpolate must be between 1 and {MAX_ROWS} walks")
    if not 2 <= steps <= MAX_STEPS:
        raise FaceganError(f"--steps must be between 2 and {MAX_STEPS}")


def walk_strip(faces: np.ndarray) -> np.ndarray:
    """rows × steps faces as one image: one walk per row, left (a_k) to right (b_k)."""
    rows, steps = faces.shape[:2]
    return make_grid(faces.reshape(rows * steps, *faces.shape[2:]), nrow=steps)


def walk_frames(faces: np.ndarray) -> list[np.ndarray]:
    """GIF frames of the walks: frame t shows every walk at step t, forward then back (2·steps − 2 frames)."""
    rows, steps = faces.shape[:2]
    nrow = int(np.ceil(np.sqrt(rows)))  # a near-square grid of walks
    order = list(range(steps)) + list(range(steps - 2, 0, -1))
    return [make_grid(faces[:, t], nrow=nrow) for t in order]


def write_interpolation(
    gen: LoadedGenerator, out: str | Path, rows: int = 6, steps: int = 10, seed: int = 0,
    truncation: float = 1.0, frame_ms: int = 100,
) -> Path:
    """Latent walks to `out`: a .png strip (one walk per row) or a looping .gif (all walks moving at once)."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".png", ".gif"):
        raise FaceganError(f"{out}: an interpolation is written as a .png strip or a .gif animation")
    faces = interpolate(gen, rows, steps, seed, truncation)
    if suffix == ".png":
        save_png(walk_strip(faces), out)
    else:
        save_gif(walk_frames(faces), out, frame_ms)
    return out
