"""Sampling: determinism, output files, loading from nothing but a checkpoint."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegan.cli.main import main
from facegan.errors import FaceganError
from facegan.generation.sample import load_generator, write_samples
from facegan.models.latents import seeded_latents, slerp
from facegan.training.loop import train
from factories import tiny_config


@pytest.fixture(scope="module")
def checkpoint(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("run") / "r"
    result = train(tiny_config(tiny_dataset, steps=4), run, show_progress=False)
    # Copy the checkpoint alone elsewhere: it must load with no other file.
    lonely = tmp_path_factory.mktemp("alone") / "model.pt"
    shutil.copy(result.checkpoint, lonely)
    return lonely


def test_same_seed_same_faces(checkpoint: Path) -> None:
    gen = load_generator(checkpoint)
    a, b, c = gen.sample(8, seed=7), gen.sample(8, seed=7), gen.sample(8, seed=8)
    assert a.shape == (8, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # face i of a batch is the same face asked for alone (eval-mode BatchNorm: no batch dependence)
    assert np.array_equal(gen.sample(3, seed=7), a[:3])


def test_truncation_zero_gives_the_mean_face(checkpoint: Path) -> None:
    gen = load_generator(checkpoint)
    faces = gen.sample(4, seed=1, truncation=0.0)
    assert all(np.array_equal(faces[0], f) for f in faces)


def test_write_grid_and_folder(checkpoint: Path, tmp_path: Path) -> None:
    faces = load_generator(checkpoint).sample(5, seed=0)
    [grid] = write_samples(faces, tmp_path / "g.png")
    with Image.open(grid) as image:
        assert image.size == (3 * 34 + 2, 2 * 34 + 2)
    files = write_samples(faces, tmp_path / "faces")
    assert len(files) == 5
    with Image.open(files[0]) as image:
        assert image.size == (32, 32)


def test_bad_checkpoint_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(FaceganError, match="not a readable facegan checkpoint"):
        load_generator(tmp_path / "junk.pt")
    with pytest.raises(FaceganError, match="holds no checkpoints"):
        load_generator(tmp_path)


def test_seeded_latents_and_slerp() -> None:
    z = seeded_latents(4, 10, seed=5)
    assert np.array_equal(z.numpy(), seeded_latents(4, 10, seed=5).numpy())
    u = seeded_latents(1000, 10, seed=5, distribution="uniform")
    assert u.min() >= -1 and u.max() <= 1 and u.mean().abs() < 0.05
    a, b = z[0], z[1]
    assert np.allclose(slerp(a, b, 0.0).numpy(), a.numpy(), atol=1e-5)
    assert np.allclose(slerp(a, b, 1.0).numpy(), b.numpy(), atol=1e-5)
    mid = slerp(a, b, 0.5)
    assert abs(mid.norm().item() - (a.norm().item() + b.norm().item()) / 2) < 0.5 * a.norm().item()


def test_sample_without_out_writes_into_the_run(checkpoint: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"  # a run directory with only its checkpoint: samples/ is made
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(checkpoint, run / "checkpoints" / "step-00000004.pt")
    assert main(["sample", str(run), "--n", "4", "--seed", "3"]) == 0
    grid = run / "samples" / "sample-seed3.png"
    assert f"to {grid}" in capsys.readouterr().out
    with Image.open(grid) as default, Image.open(_grid(checkpoint, tmp_path, 4, 3)) as explicit:
        assert np.array_equal(np.asarray(default), np.asarray(explicit))
    assert main(["sample", str(run), "--interpolate", "2", "--steps", "3"]) == 0
    assert f"to {run / 'samples' / 'interpolate-seed0.png'}" in capsys.readouterr().out
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["interpolate-seed0.png", "sample-seed3.png"]


def _grid(checkpoint: Path, folder: Path, n: int, seed: int) -> Path:
    out = folder / "explicit.png"
    assert main(["sample", str(checkpoint), "--n", str(n), "--seed", str(seed), "--out", str(out)]) == 0
    return out


def test_sample_without_out_beside_a_checkpoint_file(checkpoint: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "faces.pt"
    shutil.copy(checkpoint, model)
    assert main(["sample", str(model), "--n", "4"]) == 0
    assert (tmp_path / "faces-sample-seed0.png").is_file()
    assert f"to {tmp_path / 'faces-sample-seed0.png'}" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    assert "RUN/samples/sample-seed<S>.png" in capsys.readouterr().out

