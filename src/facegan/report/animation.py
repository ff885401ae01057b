"""Animations: GIFs of image sequences, and the run's fixed-noise grids as a training-progress GIF (and MP4).

The MP4 is written only when the optional `imageio-ffmpeg` package is installed (`pip install facegan[video]`);
it ships its own ffmpeg binary, so nothing is downloaded at run time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from facegan.run.layout import samples_dir
from facegan.utils.gif import save_gif
from facegan.utils.images import to_pil
from facegan.utils.video import ffmpeg_available, save_mp4

log = logging.getLogger("facegan.report")

_STEP_GRID = re.compile(r"^step-(\d+)\.png$")
MAX_FRAMES = 120  # progress GIFs of long runs keep this many grids, evenly spaced (first and last always)
MIN_WIDTH = 512  # progress frames are enlarged (nearest, integer factor) to at least this width
CAPTION_PX = 26


def sample_grids(run_dir: str | Path) -> list[tuple[int, Path]]:
    """The run's fixed-noise grids RUN/samples/step-*.png as (step, path), in step order."""
    folder = samples_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_GRID.match(p.name))]
    return sorted(found)


def evenly_spaced(items: Sequence, limit: int) -> list:
    """At most `limit` items, evenly spaced, always keeping the first and the last."""
    if len(items) <= limit:
        return list(items)
    if limit < 2:
        return [items[-1]]
    picks = np.unique(np.round(np.linspace(0, len(items) - 1, limit)).astype(int))
    return [items[i] for i in picks]


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed-size bitmap font
        return ImageFont.load_default()


def captioned(image: np.ndarray, caption: str, min_width: int = MIN_WIDTH) -> np.ndarray:
    """`image` enlarged (nearest, integer factor) to at least `min_width` px, with a caption strip below."""
    scale = max(1, -(-min_width // image.shape[1]))
    big = image.repeat(scale, axis=0).repeat(scale, axis=1)
    height, width, channels = big.shape
    canvas = Image.new("L" if channels == 1 else "RGB", (width, height + CAPTION_PX), "white")
    canvas.paste(to_pil(big), (0, 0))
    draw = ImageDraw.Draw(canvas)
    draw.text((width // 2, height + CAPTION_PX // 2), caption, fill="black", font=_font(16), anchor="mm")
    array = np.asarray(canvas)
    return array[:, :, None] if array.ndim == 2 else array


def progress_frames(run_dir: str | Path, batch_size: int | None = None, limit: int = MAX_FRAMES) -> list[np.ndarray]:
    """The fixed-noise grids of a run in step order, each captioned with its step (and images seen)."""
    frames = []
    for step, path in evenly_spaced(sample_grids(run_dir), limit):
        with Image.open(path) as img:
            array = np.asarray(img.convert("L" if img.mode in ("L", "LA", "I", "1") else "RGB"))
        array = array[:, :, None] if array.ndim == 2 else array
        caption = f"step {step:,}" + (f"  ·  {step * batch_size / 1000:,.1f}k images seen" if batch_size else "")
        frames.append(captioned(array, caption))
    if frames and len({f.shape for f in frames}) > 1:
        # Grids from an older, different-sized model (say, a resumed run with a new size) cannot share a GIF.
        last = frames[-1].shape
        frames = [f for f in frames if f.shape == last]
    return frames


def write_progress_animation(
    run_dir: str | Path, out_dir: str | Path, batch_size: int | None = None, frame_ms: int = 250,
    mp4: bool | None = None,
) -> tuple[Path | None, Path | None, int]:
    """progress.gif (and progress.mp4 with imageio-ffmpeg) of the fixed-noise grids; returns (gif, mp4, frames)."""
    frames = progress_frames(run_dir, batch_size)
    if not frames:
        return None, None, 0
    out_dir = Path(out_dir)
    durations = [frame_ms] * len(frames)
    durations[-1] = max(frame_ms, 1500)  # hold the newest grid before the loop restarts
    gif = save_gif(frames, out_dir / "progress.gif", durations)
    video = None
    if (ffmpeg_available() if mp4 is None else mp4) and len(frames) > 1:
        try:
            video = save_mp4(frames + [frames[-1]] * 4, out_dir / "progress.mp4", fps=1000 / frame_ms)
        except Exception as exc:  # the MP4 is optional: a broken ffmpeg must not cost the report
            log.warning("could not write progress.mp4: %s", exc)
    return gif, video, len(frames)
