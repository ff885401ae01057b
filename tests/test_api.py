"""The Python API: facegan.load(...) and FaceGAN; the runnable example in docs/api.md is executed here."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import facegan
from facegan.api import FaceGAN
from facegan.errors import FaceganError
from facegan.generation.sample import load_generator

DOCS = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_import_facegan_stays_light() -> None:
    code = "import sys, facegan; assert callable(facegan.load); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_load_sample_interpolate_walk(trained_run: Path, tmp_path: Path) -> None:
    gan = facegan.load(trained_run)
    assert isinstance(gan, FaceGAN)
    assert (gan.resolution, gan.channels, gan.nz) == (32, 3, 16) and gan.step == 40
    assert "32 px" in repr(gan)
    faces = gan.sample(5, seed=3)
    assert faces.shape == (5, 32, 32, 3) and faces.dtype == np.uint8
    np.testing.assert_array_equal(faces, load_generator(trained_run).sample(5, 3))  # same faces as the CLI
    np.testing.assert_array_equal(gan.generate(gan.latents(5, seed=3)), faces)
    path = gan.interpolate(3, 8, steps=6)
    assert path.shape == (6, 32, 32, 3)
    np.testing.assert_array_equal(path[0], gan.sample(1, seed=3)[0])
    np.testing.assert_array_equal(path[-1], gan.sample(1, seed=8)[0])
    loop = gan.walk(keys=[3, 8, 5], frames=4)
    assert loop.shape == (12, 32, 32, 3)
    np.testing.assert_array_equal(loop[4], path[-1])  # key 2 (seed 8) is frame 1·F
    assert gan.save_grid(faces, tmp_path / "g.png").is_file()
    with Image.open(tmp_path / "g.png") as img:
        assert img.size == (3 * 34 + 2, 2 * 34 + 2)  # 5 faces in a 3-wide grid with 2-px padding


def test_api_mistakes_raise_one_clear_error(trained_run: Path) -> None:
    gan = facegan.load(trained_run)
    with pytest.raises(FaceganError, match="without --condition"):
        gan.sample(2, attr={"smiling": 1})  # an unconditional model must not silently ignore attr
    with pytest.raises(FaceganError, match="latents must be n×16"):
        gan.generate(np.zeros((2, 10), np.float32))
    with pytest.raises(FaceganError, match="truncation"):
        gan.sample(2, truncation=1.5)
    with pytest.raises(FaceganError, match="does not exist"):
        facegan.load(trained_run / "nope.pt")


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


@pytest.mark.slow
def test_the_docs_example_runs(trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = _python_blocks(DOCS.read_text())[0]
    assert 'facegan.load("runs/demo")' in example
    (tmp_path / "runs").mkdir()
    os.symlink(trained_run, tmp_path / "runs" / "demo")
    Image.fromarray(facegan.load(trained_run).sample(1, seed=21)[0]).resize((64, 64)).save(tmp_path / "photo.png")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(example, str(DOCS), "exec"), namespace)
    for name in ("faces.png", "morph.png", "walk.gif", "projection.png", "generator.onnx"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert namespace["result"].pixel_mse < 0.05
    assert namespace["to_photo"].shape == (8, 32, 32, 3)
    # The second block reads the exported file with onnxruntime alone.
    reader = next(b for b in _python_blocks(DOCS.read_text()) if "onnxruntime" in b).replace("(8, 100)", "(8, 16)")
    exec(compile(reader, str(DOCS), "exec"), namespace)
    assert namespace["faces"].shape == (8, 3, 32, 32)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as img:
        return img.size


def test_a_notebook_shows_the_model_its_faces_and_its_plots(trained_run: Path) -> None:
    gan = facegan.load(trained_run)
    shown = gan.show(6, seed=4, nrow=3)
    np.testing.assert_array_equal(np.asarray(shown), gan.sample(6, seed=4))
    assert _png_size(shown._repr_png_()) == (5 * (3 * 34 + 2), 5 * (2 * 34 + 2))  # enlarged to be seen
    assert _png_size(gan._repr_png_()) == (2 * (8 * 34 + 2), 2 * (4 * 34 + 2))  # 32 faces of seed 0
    assert "<img src=\"data:image/png;base64," in gan._repr_html_() and "FaceGAN(dcgan" in gan._repr_html_()
    strip = facegan.grid(gan.interpolate(0, 1, steps=5), nrow=5)
    assert len(strip) == 5 and _png_size(strip._repr_png_())[0] >= 512
    for kind in ("losses", "losses-log", "scores", "speed"):
        assert _png_size(gan.plot(kind)._repr_png_())[0] > 300, kind
    with pytest.raises(FaceganError, match="unknown plot 'loss'; choose from losses"):
        gan.plot("loss")
    with pytest.raises(FaceganError, match="faces must be uint8"):
        facegan.grid(np.zeros((2, 8, 8, 3), np.float32))


@pytest.mark.slow
def test_evaluate_from_python_writes_the_run_evaluation(trained_run: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    result = facegan.load(run).evaluate(n=64, metrics="swd", progress=False)
    assert set(result["results"]) == {"swd_64"} and (run / "eval" / "00000040.json").is_file()


@pytest.mark.slow
def test_the_docs_training_and_model_folder_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _python_blocks(DOCS.read_text())
    training = next(b for b in blocks if "facegan.train(" in b)
    tiny = {'n=5000)': 'n=48, progress=False)',
            'minutes=2, sample_every=250)': 'steps=2, nz=16, ngf=8, ndf=8, batch_size=16, '
                                                          'device="cpu", progress=False, report=False)'}
    for real, small in tiny.items():
        assert real in training
        training = training.replace(real, small)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(training, str(DOCS), "exec"), namespace)
    assert namespace["gan"].step == 2 and (tmp_path / "faces32-model" / "model.safetensors").is_file()
    trained = namespace["gan"]
    folder = next(b for b in blocks if "load_file(" in b)
    exec(compile(folder, str(DOCS), "exec"), namespace)
    np.testing.assert_array_equal(namespace["faces"], trained.sample(16, seed=7))  # the folder's G is the run's
    assert set(namespace["state"]) == set(trained.generator.netG.state_dict())
