"""Animated GIFs: the one encoder (Pillow) the report, latent walks, projection and the web page use."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from facegan.utils.atomic import atomic_write_bytes
from facegan.utils.images import to_pil


def frame_ms(fps: float) -> int:
    """The frame time of `fps` as GIF stores it: whole hundredths of a second, at least 20 ms."""
    return max(20, round(1000 / fps / 10) * 10)


def gif_bytes(frames: Sequence[np.ndarray], duration_ms: int | Sequence[int] = 100, loop: int = 0) -> bytes:
    """Encode uint8 H×W×C frames (C = 1 or 3, all one size) as an animated GIF that loops forever."""
    if not frames:
        raise ValueError("a GIF needs at least one frame")
    images = [to_pil(frame) for frame in frames]
    durations = list(duration_ms) if not isinstance(duration_ms, int) else duration_ms
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=durations,
                   loop=loop, optimize=False, disposal=1)
    return buffer.getvalue()


def save_gif(frames: Sequence[np.ndarray], path: str | Path, duration_ms: int | Sequence[int] = 100) -> Path:
    """Write frames as a looping GIF, atomically. Identical neighbouring frames are merged by the encoder."""
    path = Path(path)
    atomic_write_bytes(path, gif_bytes(frames, duration_ms))
    return path


def read_gif_frames(path: str | Path) -> list[np.ndarray]:
    """Every frame of a GIF as uint8 H×W×3 (for checks and tests)."""
    frames = []
    with Image.open(path) as img:
        for index in range(getattr(img, "n_frames", 1)):
            img.seek(index)
            frames.append(np.asarray(img.convert("RGB")))
    return frames
