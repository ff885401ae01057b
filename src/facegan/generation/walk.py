"""Latent walks that loop: K seeded latents visited in turn by spherical interpolation and back to the first.

Frame j of segment i is slerp(z_i, z_{i+1 mod K}, j/F) for j = 0…F−1, so a walk has K×F frames, every key
latent appears exactly once (frame i·F), and the frame that would follow the last one is the first: played on
repeat it never jumps. Written as a GIF (Pillow, always) or an MP4 (the optional `imageio-ffmpeg`, extra `video`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from facegan.errors import FaceganError
from facegan.generation.sample import LoadedGenerator
from facegan.models.latents import seeded_latents, slerp
from facegan.utils.gif import frame_ms, save_gif
from facegan.utils.video import save_mp4

MAX_KEYS = 64
MAX_FRAMES = 600  # frames per segment
FORMATS = (".gif", ".mp4")


@dataclass
class WalkResult:
    """What `write_walk` wrote: the file, its frame count (K×F) and frame size in pixels."""

    path: Path
    frames: int
    size: int


def check_walk(keys: int, frames: int) -> None:
    """Walk sizes a user may ask for: 2-64 key latents, 1-600 frames between neighbouring keys."""
    if not 2 <= keys <= MAX_KEYS:
        raise FaceganError(f"--walk must be between 2 and {MAX_KEYS} latents")
    if not 1 <= frames <= MAX_FRAMES:
        raise FaceganError(f"--frames must be between 1 and {MAX_FRAMES}")


def loop_latents(keys: torch.Tensor, frames: int) -> torch.Tensor:
    """The closed spherical path through `keys` (K×nz) with `frames` points per segment, as (K·F)×nz."""
    count, nz = keys.shape
    t = torch.arange(frames, dtype=keys.dtype).div(frames).view(1, frames, 1)  # 0, 1/F, …, (F−1)/F
    nxt = keys.roll(-1, dims=0)  # segment i ends at key i+1; the last one ends at key 0
    return slerp(keys[:, None, :], nxt[:, None, :], t).reshape(count * frames, nz)


def walk_latents(
    nz: int, keys: int, frames: int, seed: int = 0, distribution: str = "normal", truncation: float = 1.0,
) -> torch.Tensor:
    """(K·F)×nz latents of the looping walk through K latents seeded by `seed`."""
    check_walk(keys, frames)
    return loop_latents(seeded_latents(keys, nz, seed, distribution, truncation), frames)


def walk_faces(gen: LoadedGenerator, keys: int = 4, frames: int = 24, seed: int = 0,
               truncation: float = 1.0) -> np.ndarray:
    """The K×F faces of a looping walk, uint8 (K·F)×H×W×C."""
    model = gen.config.model
    return gen.generate(walk_latents(model.nz, keys, frames, seed, model.latent, truncation))


def enlarge(images: np.ndarray, size: int) -> np.ndarray:
    """Frames N×H×W×C scaled up by the smallest integer factor that makes them at least `size` px (nearest)."""
    factor = max(1, -(-size // images.shape[1]))
    return images.repeat(factor, axis=1).repeat(factor, axis=2) if factor > 1 else images


def save_animation(frames: Sequence[np.ndarray], path: str | Path, fps: float = 24.0) -> Path:
    """Frames to a .gif or .mp4 file, chosen by the suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise FaceganError(f"{path}: a walk is written as a .gif or an .mp4")
    if not 0.5 <= fps <= 100:
        raise FaceganError("--fps must be between 0.5 and 100")
    return save_gif(frames, path, frame_ms(fps)) if suffix == ".gif" else save_mp4(frames, path, fps)


def write_walk(
    gen: LoadedGenerator, out: str | Path, keys: int = 4, frames: int = 24, seed: int = 0,
    truncation: float = 1.0, fps: float = 24.0, size: int = 256,
) -> WalkResult:
    """A looping walk through `keys` seeded latents, `frames` per segment, to a .gif or .mp4 file."""
    if Path(out).suffix.lower() not in FORMATS:
        raise FaceganError(f"{out}: a walk is written as a .gif or an .mp4")
    if not 8 <= size <= 2048:
        raise FaceganError("--size must be between 8 and 2048 pixels")
    faces = enlarge(walk_faces(gen, keys, frames, seed, truncation), size)
    path = save_animation(list(faces), out, fps)
    return WalkResult(path=path, frames=len(faces), size=int(faces.shape[1]))


