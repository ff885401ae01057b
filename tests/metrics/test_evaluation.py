"""The runner: evaluate a run into RUN/eval/<step>.json, compare two image folders, load image sets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegan.data.dataset import write_dataset
from facegan.errors import FaceganError
from facegan.generation.sample import load_generator
from facegan.metrics.evaluation import compare_sets, evaluate, summary_lines
from facegan.metrics.imagesets import load_image_set, match_sets, sample_indices
from facegan.metrics.metric import metric_label
from facegan.metrics.registry import METRICS, parse_metrics
from facegan.run.evals import eval_path, load_evals
from facegan.run.layout import run_dir_of


@pytest.fixture
def run_copy(trained_run: Path, tmp_path: Path) -> Path:
    """A private copy of the shared tiny run (evaluations write into it)."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    return run


def _write_folder(folder: Path, images: np.ndarray, suffix: str = ".png") -> Path:
    folder.mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(folder / f"{i:04d}{suffix}")
    return folder


def test_parse_metrics() -> None:
    assert parse_metrics("swd, FACES,swd") == ("swd", "faces")
    assert parse_metrics(["memo"]) == ("memo",)
    default = parse_metrics(None)
    assert default[:2] == ("swd", "faces") and default[-1] == "memo" and set(default) <= set(METRICS)
    with pytest.raises(FaceganError, match=r"unknown metric.*is"):
        parse_metrics("swd,is")
    with pytest.raises(FaceganError, match="none given"):
        parse_metrics(",")
    assert metric_label("swd", 10_000) == "swd_10k" and metric_label("fid", 2500) == "fid_2500"


@pytest.mark.slow
def test_evaluate_writes_the_step_file(run_copy: Path) -> None:
    result = evaluate(run_copy, n=48, metrics="swd,faces,memo", device="cpu", show_progress=False)
    gen = load_generator(run_copy)
    path = eval_path(run_copy, gen.step)
    assert Path(result["path"]) == path and path.name == f"{gen.step:08d}.json"
    saved = json.loads(path.read_text())
    assert saved["step"] == gen.step and saved["n"] == 48 and saved["n_real"] == 48
    assert saved["format"] == "facegan-eval" and saved["metrics"] == ["swd", "faces", "memo"]
    assert saved["swd"] > 0 and set(saved["swd_levels"]) == {"32", "16"}
    assert 0 <= saved["faces_fake"] <= 1 and 0 <= saved["faces_real"] <= 1
    assert 0 <= saved["memo_share"] <= 1 and saved["memo_reference"] > 0
    assert (path.parent / saved["memo_strip"]).is_file()
    assert {"generate", "swd", "faces", "memo"} <= set(saved["elapsed_s"])
    assert "fid" not in saved and "facefd" not in saved
    assert load_evals(run_copy) == [saved]
    assert any(line.startswith("swd_48:") for line in summary_lines(saved))
    # The same seed gives the same fakes and reals, so the same numbers.
    again = evaluate(run_copy, n=48, metrics="swd", device="cpu", write=False, show_progress=False)
    assert again["swd"] == pytest.approx(saved["swd"])


def test_evaluate_checks_requirements_before_working(run_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACEGAN_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(FaceganError, match="--inception-weights"):
        evaluate(run_copy, n=8, metrics="fid", show_progress=False)
    assert not (run_copy / "eval").exists()
    with pytest.raises(FaceganError, match="at least 2"):
        evaluate(run_copy, n=1, metrics="swd", show_progress=False)
    assert run_dir_of(run_copy / "checkpoints" / "x.pt") == run_copy and run_dir_of(run_copy) == run_copy
    with pytest.raises(FaceganError, match="nothing-here does not exist"):
        evaluate(run_copy, n=8, metrics="swd", real_dataset=run_copy / "nothing-here", show_progress=False)
    moved = load_generator(run_copy)
    moved.config.data.path = str(run_copy / "moved-away")
    with pytest.raises(FaceganError, match="moved-away is missing; point --real"):
        evaluate(moved, n=8, metrics="swd", show_progress=False)


def test_compare_sets_on_folders_and_datasets(tmp_path: Path, synthetic_faces: np.ndarray) -> None:
    real_dir = _write_folder(tmp_path / "real", synthetic_faces[:40])
    copies = np.concatenate([synthetic_faces[:3], synthetic_faces[100:121]])
    fake_dir = _write_folder(tmp_path / "fake", copies)
    (fake_dir / "notes.txt").write_text("not an image")
    (fake_dir / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "cmp" / "result.json"
    result = compare_sets(real_dir, fake_dir, n=None, metrics="swd,faces,memo", out=out, show_progress=False)
    assert result["n"] == 24 and result["n_real"] == 40  # the broken file is skipped
    assert json.loads(out.read_text())["swd"] == result["swd"]
    assert out.with_suffix(".memo.png").is_file()
    assert result["memo_copies"] >= 1  # copies of real images (some of the 3 may be held out)
    # A prepared dataset works as either side.
    data = tmp_path / "data"
    write_dataset(data, synthetic_faces[40:80], source="test")
    again = compare_sets(data, real_dir, n=20, metrics="swd", show_progress=False)
    assert again["n"] == again["n_real"] == 20 and again["swd"] > 0
    (tmp_path / "empty").mkdir()
    with pytest.raises(FaceganError, match="holds no image files"):
        compare_sets(real_dir, tmp_path / "empty", metrics="swd")


def test_image_sets_load_and_match(tmp_path: Path, synthetic_faces: np.ndarray, lfw_faces: np.ndarray) -> None:
    wide = np.zeros((2, 40, 60, 3), dtype=np.uint8)
    wide[:, :, 10:50] = 200  # the centre square survives the crop
    folder = _write_folder(tmp_path / "wide", wide)
    loaded = load_image_set(folder)
    assert loaded.shape == (2, 40, 40, 3) and loaded.min() == 200
    subset = load_image_set(_write_folder(tmp_path / "faces", synthetic_faces[:10], ".jpg"), n=4, seed=1)
    assert subset.shape == (4, 32, 32, 3)
    expected = synthetic_faces[:10][sample_indices(10, 4, 1)]
    assert np.abs(subset.astype(int) - expected).mean() < 12  # the seeded subset, through JPEG
    a, b = match_sets(synthetic_faces[:3], lfw_faces[:2])
    assert a.shape == (3, 25, 25, 3) and b.shape == (2, 25, 25, 3)
    with pytest.raises(FaceganError, match="does not exist"):
        load_image_set(tmp_path / "missing")
