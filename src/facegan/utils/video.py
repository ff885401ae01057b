"""MP4 output through the optional imageio-ffmpeg package (the `video` extra)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facegan.errors import FaceganError


def ffmpeg_available() -> bool:
    """True if the optional imageio-ffmpeg package (and its bundled ffmpeg) can be used."""
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # ImportError, or a broken install without its binary
        return False
    return True


def save_mp4(frames: Sequence[np.ndarray], path: str | Path, fps: float = 24.0) -> Path:
    """Write uint8 H×W×C frames as an H.264 MP4 with imageio-ffmpeg's own ffmpeg, atomically."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise FaceganError("MP4 needs the optional video extra: pip install 'facegan[video]' "
                           "(or write a .gif)") from None
    path = Path(path)
    rgb = [np.repeat(f, 3, axis=2) if f.shape[2] == 1 else f for f in frames]
    height, width = rgb[0].shape[:2]
    pad_h, pad_w = -height % 16, -width % 16  # H.264 in yuv420p wants sizes in whole macroblocks
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp.mp4")
    os.close(fd)  # ffmpeg writes the temporary file itself, by name
    try:
        writer = imageio_ffmpeg.write_frames(tmp, (width + pad_w, height + pad_h), fps=fps, codec="libx264",
                                             pix_fmt_out="yuv420p", macro_block_size=1, quality=8,
                                             output_params=["-f", "mp4"])
        writer.send(None)
        for frame in rgb:
            writer.send(np.ascontiguousarray(np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")))
        writer.close()
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path
