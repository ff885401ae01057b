"""facegan.report.animation: grids in step order, the progress GIF, GIF encoding and the optional MP4."""

from __future__ import annotations

import contextlib
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegan.report import animation
from facegan.utils.images import make_grid, save_png

from .helpers import image_info


def _write_grids(run: Path, steps: list[int], channels: int = 3, face: int = 16) -> None:
    rng = np.random.default_rng(0)
    for step in steps:
        faces = rng.integers(0, 256, (64, face, face, channels), dtype=np.uint8)
        save_png(make_grid(faces, nrow=8), run / "samples" / f"step-{step:08d}.png")


def test_sample_grids_are_in_numeric_step_order_and_ignore_other_files(tmp_path: Path) -> None:
    (tmp_path / "samples").mkdir()
    _write_grids(tmp_path, [100, 20, 3000])
    for name in ("latest.png", "step-12.txt", "notes.png"):
        (tmp_path / "samples" / name).write_bytes(b"x")
    assert [s for s, _ in animation.sample_grids(tmp_path)] == [20, 100, 3000]
    assert animation.sample_grids(tmp_path / "missing") == []


def test_evenly_spaced_keeps_first_and_last() -> None:
    items = list(range(500))
    picked = animation.evenly_spaced(items, 120)
    assert len(picked) == 120 and picked[0] == 0 and picked[-1] == 499
    assert picked == sorted(set(picked))
    assert animation.evenly_spaced(items[:5], 120) == items[:5]


@pytest.mark.parametrize("channels", [1, 3])
def test_progress_gif_has_one_captioned_frame_per_grid(tmp_path: Path, channels: int) -> None:
    (tmp_path / "samples").mkdir()
    _write_grids(tmp_path, [10, 20, 30, 40], channels)
    gif, mp4, frames = animation.write_progress_animation(tmp_path, tmp_path / "out", batch_size=16, mp4=False)
    assert (frames, mp4) == (4, None)
    fmt, (width, height), n = image_info(gif)
    assert (fmt, n) == ("GIF", 4)
    grid_width = 8 * 18 + 2  # 146 px: enlarged ×4 to reach 512 px, plus a caption strip
    assert (width, height) == (grid_width * 4, grid_width * 4 + animation.CAPTION_PX)
    with Image.open(gif) as img:
        durations = []
        for i in range(n):
            img.seek(i)
            durations.append(img.info["duration"])
    assert durations[:3] == [250, 250, 250] and durations[-1] == 1500  # the newest grid lingers


def test_progress_gif_of_a_long_run_is_thinned(tmp_path: Path) -> None:
    (tmp_path / "samples").mkdir()
    _write_grids(tmp_path, list(range(1, 8)), face=4)
    _, _, frames = animation.write_progress_animation(tmp_path, tmp_path, mp4=False)
    assert frames == 7
    assert len(animation.progress_frames(tmp_path, limit=3)) == 3


def test_no_grids_means_no_animation(tmp_path: Path) -> None:
    assert animation.write_progress_animation(tmp_path, tmp_path) == (None, None, 0)


def test_mp4_goes_through_imageio_ffmpeg_with_frames_padded_to_16(tmp_path: Path, monkeypatch) -> None:
    sent: list[np.ndarray] = []
    opened: dict[str, object] = {}

    def write_frames(path, size, **kwargs):  # the generator protocol of imageio_ffmpeg.write_frames
        opened.update(path=path, size=size, **kwargs)
        frame = yield
        while frame is not None:
            sent.append(frame)
            frame = yield
        Path(path).write_bytes(b"fake mp4")

    class Writer:
        def __init__(self, *args, **kwargs) -> None:
            self.gen = write_frames(*args, **kwargs)

        def send(self, value):
            return self.gen.send(value)

        def close(self) -> None:
            with contextlib.suppress(StopIteration):
                self.gen.send(None)

    fake = types.SimpleNamespace(write_frames=lambda *a, **k: Writer(*a, **k), get_ffmpeg_exe=lambda: "/bin/true")
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", fake)
    assert animation.ffmpeg_available()
    frames = [np.full((30, 40, 1), i * 50, dtype=np.uint8) for i in range(3)]
    out = animation.save_mp4(frames, tmp_path / "p.mp4", fps=4)
    assert out.read_bytes() == b"fake mp4"
    assert opened["size"] == (48, 32) and opened["fps"] == 4
    assert [f.shape for f in sent] == [(32, 48, 3)] * 3  # grey → RGB, padded to multiples of 16
    assert list(tmp_path.iterdir()) == [out]  # the temporary file was renamed into place


def test_ffmpeg_absent_means_no_mp4(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import fails
    assert not animation.ffmpeg_available()
