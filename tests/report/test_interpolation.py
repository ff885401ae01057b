"""facegan.report.interpolation and `facegan sample --interpolate K --steps S`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facegan.cli.main import main
from facegan.errors import FaceganError
from facegan.generation.sample import load_generator
from facegan.models.latents import seeded_latents
from facegan.report import interpolation

from .helpers import image_info


def test_walks_start_and_end_at_seeded_latents_and_stay_on_the_shell() -> None:
    z = interpolation.interpolation_latents(nz=64, rows=3, steps=7, seed=5)
    assert z.shape == (3, 7, 64)
    ends = seeded_latents(6, 64, 5).view(3, 2, 64)
    assert torch.allclose(z[:, 0], ends[:, 0], atol=1e-5)
    assert torch.allclose(z[:, -1], ends[:, 1], atol=1e-5)
    # slerp keeps the norm between the end points' norms (lerp would dip toward the origin mid-way)
    norms = z.norm(dim=-1)
    low = torch.minimum(norms[:, :1], norms[:, -1:]) - 1e-4
    high = torch.maximum(norms[:, :1], norms[:, -1:]) + 1e-4
    assert ((norms >= low) & (norms <= high)).all()
    assert torch.equal(z, interpolation.interpolation_latents(64, 3, 7, seed=5))  # seeded


def test_walk_png_and_gif(tiny_run: Path, tmp_path: Path) -> None:
    gen = load_generator(tiny_run)
    res = gen.config.model.resolution
    png = interpolation.write_interpolation(gen, tmp_path / "walk.png", rows=3, steps=5)
    fmt, size, frames = image_info(png)
    assert (fmt, frames) == ("PNG", 1)
    assert size == (5 * (res + 2) + 2, 3 * (res + 2) + 2)  # one walk per row
    gif = interpolation.write_interpolation(gen, tmp_path / "walk.gif", rows=4, steps=5)
    fmt, size, frames = image_info(gif)
    assert (fmt, frames) == ("GIF", 2 * 5 - 2)  # forward and back
    assert size == (2 * (res + 2) + 2, 2 * (res + 2) + 2)  # 4 walks in a 2 × 2 grid


def test_walk_faces_change_smoothly_from_end_to_end(tiny_run: Path) -> None:
    faces = interpolation.interpolate(load_generator(tiny_run), rows=2, steps=6, seed=1).astype(float)
    assert faces.shape[:2] == (2, 6)
    step_change = abs(faces[:, 1:] - faces[:, :-1]).mean()
    end_to_end = abs(faces[:, -1] - faces[:, 0]).mean()
    assert 0 < step_change < end_to_end


def test_bad_walk_requests_are_user_errors(tiny_run: Path, tmp_path: Path) -> None:
    gen = load_generator(tiny_run)
    with pytest.raises(FaceganError, match=r"\.png strip or a \.gif"):
        interpolation.write_interpolation(gen, tmp_path / "walk.jpg")
    for rows, steps in ((0, 5), (65, 5), (2, 1), (2, 257)):
        with pytest.raises(FaceganError):
            interpolation.check_interpolation(rows, steps)


def test_sample_cli_interpolates(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "walk.gif"
    assert main(["sample", str(tiny_run), "--interpolate", "3", "--steps", "4", "--out", str(out)]) == 0
    assert image_info(out)[0::2] == ("GIF", 6)
    assert "3 latent walks of 4 faces" in capsys.readouterr().out
    assert main(["sample", str(tiny_run), "--interpolate", "2", "--steps", "4", "--out", str(tmp_path / "w.png")]) == 0
    assert image_info(tmp_path / "w.png")[0] == "PNG"
    assert main(["sample", str(tiny_run), "--interpolate", "2", "--steps", "1", "--out", str(out)]) == 2
    assert "--steps must be between 2" in capsys.readouterr().err
