"""Looping latent walks: K×F frames on a closed spherical path, written as GIF (and MP4 with imageio-ffmpeg)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from facegan.cli.main import main
from facegan.errors import FaceganError
from facegan.generation.sample import load_generator
from facegan.generation.walk import loop_latents, walk_faces, walk_latents, write_walk
from facegan.models.latents import seeded_latents
from facegan.utils.gif import read_gif_frames


def _angle(a: torch.Tensor, b: torch.Tensor) -> float:
    cos = torch.dot(a, b) / (a.norm() * b.norm())
    return float(torch.acos(cos.clamp(-1, 1)))


def test_loop_visits_every_key_once_and_closes_evenly() -> None:
    keys = seeded_latents(3, 16, seed=5)
    z = loop_latents(keys, frames=6)
    assert z.shape == (18, 16)
    for i in range(3):  # key i is frame i·F
        torch.testing.assert_close(z[i * 6], keys[i])
    # The step from the last frame back to the first is as big as the steps before it (steps change smoothly
    # along a leg; slerp of latents of unequal norm moves their direction at a slowly varying rate): no jump.
    last_leg = [_angle(z[j], z[j + 1]) for j in range(12, 17)]
    wrap = _angle(z[17], z[0])
    assert max(last_leg) < 1.25 * min(last_leg)
    assert wrap == pytest.approx(last_leg[-1], rel=0.1)
    assert wrap < 0.5 * _angle(keys[2], keys[0])


def test_walk_latents_repeat_for_a_seed_and_check_sizes() -> None:
    torch.testing.assert_close(walk_latents(16, 4, 5, seed=1), walk_latents(16, 4, 5, seed=1))
    assert not torch.equal(walk_latents(16, 4, 5, seed=1), walk_latents(16, 4, 5, seed=2))
    with pytest.raises(FaceganError, match="--walk"):
        walk_latents(16, 1, 5)
    with pytest.raises(FaceganError, match="--frames"):
        walk_latents(16, 3, 0)


def test_walk_gif_has_k_times_f_frames_and_its_last_frame_leads_back_to_the_first(
    trained_run: Path, tmp_path: Path
) -> None:
    gen = load_generator(trained_run)
    keys, frames = 3, 4
    result = write_walk(gen, tmp_path / "walk.gif", keys=keys, frames=frames, seed=3, size=64)
    assert result.frames == keys * frames
    gif = read_gif_frames(result.path)
    assert len(gif) == keys * frames
    assert gif[0].shape == (64, 64, 3)  # 32-px faces enlarged ×2

    faces = walk_faces(gen, keys, frames, seed=3).astype(float)
    # The GIF holds the faces in order (up to its 256-colour palette).
    for i in (0, 5, 11):
        assert np.abs(gif[i][::2, ::2].astype(float) - faces[i]).mean() < 6
    # The frame after the last is the first: G(slerp(z_last_key, z_first_key, 1)) = frame 0, and the jump from
    # the last frame to the first is no bigger than the steps of the last leg.
    steps = [np.abs(faces[j + 1] - faces[j]).mean() for j in range(8, 11)]
    wrap = np.abs(faces[0] - faces[-1]).mean()
    assert wrap > 0
    assert wrap < 1.5 * max(steps)
    assert np.abs(faces[0] - faces[-1]).mean() < np.abs(faces[0] - faces[6]).mean()


def test_walk_mp4_and_the_cli(trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "walk.mp4"
    assert main(["sample", str(trained_run), "--walk", "2", "--frames", "3", "--size", "64", "--out", str(out)]) == 0
    assert "6 frames" in capsys.readouterr().out
    data = out.read_bytes()
    assert data[4:8] == b"ftyp" and len(data) > 500
    import imageio_ffmpeg

    meta = next(imageio_ffmpeg.read_frames(str(out)))
    assert meta["size"] == (64, 64)
    gif = tmp_path / "walk.gif"
    assert main(["sample", str(trained_run), "--walk", "2", "--frames", "3", "--out", str(gif)]) == 0
    assert len(read_gif_frames(gif)) == 6


def test_walk_errors_are_one_line(trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", str(trained_run), "--walk", "3", "--out", str(tmp_path / "walk.png")]) == 2
    assert "a walk is written as a .gif or an .mp4" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if the `video` extra were not installed
    assert main(["sample", str(trained_run), "--walk", "3", "--frames", "2", "--out", str(tmp_path / "w.mp4")]) == 2
    assert "pip install 'facegan[video]'" in capsys.readouterr().err
    assert not (tmp_path / "w.mp4").exists()
