"""Export of G to ONNX and TorchScript: the files run in their own runtimes and match PyTorch at any batch."""

from __future__ import annotations

import io
import json
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from facegan.cli.main import main
from facegan.errors import FaceganError
from facegan.generation.export import (
    TOLERANCE,
    OnnxModule,
    choose_runtime,
    export_generator,
    format_for,
    load_exported,
)
from facegan.generation.sample import LoadedGenerator, load_generator
from facegan.models import build_models
from facegan.models.presets import build_config


def _torch_images(gen, z: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return gen.netG(z).numpy()


@pytest.mark.slow
def test_onnx_file_matches_pytorch_at_two_batch_sizes(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.onnx"
    result = export_generator(trained_run, out, "onnx")
    assert out.is_file() and result.bytes == out.stat().st_size
    assert result.max_abs_diff <= TOLERANCE
    gen = load_generator(trained_run)
    # Run the file with onnxruntime directly, at batch sizes the graph was not traced with.
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["z"]
    for batch in (3, 7):
        z = torch.randn(batch, 16, generator=torch.Generator().manual_seed(batch))
        got = session.run(None, {"z": z.numpy()})[0]
        assert got.shape == (batch, 3, 32, 32)
        assert np.abs(got - _torch_images(gen, z)).max() < TOLERANCE
    meta = json.loads(session.get_modelmeta().custom_metadata_map["facegan"])
    assert (meta["nz"], meta["resolution"], meta["channels"], meta["step"]) == (16, 32, 3, gen.step)


def test_torchscript_file_matches_pytorch_at_two_batch_sizes(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.pt"
    result = export_generator(trained_run, out)  # format from the suffix
    assert result.format == "torchscript" and result.max_abs_diff <= TOLERANCE
    gen = load_generator(trained_run)
    extra = {"facegan.json": ""}
    with warnings.catch_warnings():  # torch.jit is deprecated from PyTorch 2.9 on; loading it is the point here
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(out), _extra_files=extra)
    for batch in (2, 9):
        z = torch.randn(batch, 16, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            got = module(z).numpy()
        assert got.shape == (batch, 3, 32, 32)
        assert np.abs(got - _torch_images(gen, z)).max() < TOLERANCE
    assert json.loads(extra["facegan.json"])["nz"] == 16
    assert load_exported(out).run(np.zeros((4, 16), np.float32)).shape == (4, 3, 32, 32)


def test_a_mismatching_export_is_not_written(trained_run: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("facegan.generation.export.compare_with_torch", lambda *a, **k: 0.5)
    with pytest.raises(FaceganError, match=r"differs from PyTorch by 0\.5"):
        export_generator(trained_run, tmp_path / "g.pt", "torchscript")
    assert not (tmp_path / "g.pt").exists()


def test_format_comes_from_the_option_or_the_suffix() -> None:
    assert format_for("a.onnx", None) == "onnx"
    assert format_for("a.ts", None) == "torchscript"
    assert format_for("a.bin", "onnx") == "onnx"
    with pytest.raises(FaceganError, match="cannot tell the format"):
        format_for("a.bin", None)
    with pytest.raises(FaceganError, match="unknown export format"):
        format_for("a.onnx", "tflite")


@pytest.mark.slow
def test_onnx_runtime_for_serving_gives_the_same_faces(trained_run: Path) -> None:
    gen = load_generator(trained_run)
    assert choose_runtime(gen, "torch") is gen
    fast = choose_runtime(gen, "onnx")
    assert isinstance(fast, LoadedGenerator) and isinstance(fast.netG, OnnxModule)
    # The state dict names both the weights and the runtime (servers fingerprint it to key their caches).
    assert "onnx_runtime" in fast.netG.state_dict() and "reference.main.0.weight" in fast.netG.state_dict()
    # Its pool threads sleep between calls rather than spin (a server needs the cores between faces).
    options = fast.netG.exported._session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    ref, got = gen.sample(6, seed=4).astype(int), fast.sample(6, seed=4).astype(int)
    assert np.abs(ref - got).max() <= 1  # within one uint8 level
    with pytest.raises(FaceganError, match="unknown runtime"):
        choose_runtime(gen, "tensorrt")
    auto = choose_runtime(gen, "auto")  # whichever measured faster; both make the same faces
    assert np.abs(auto.sample(2, seed=1).astype(int) - gen.sample(2, seed=1).astype(int)).max() <= 1


def test_runtime_auto_falls_back_to_pytorch(trained_run: Path, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    from facegan.cli.main import build_parser
    from facegan.generation import export

    assert build_parser().parse_args(["serve", "RUN"]).runtime == "auto"  # facegan serve's default
    caplog.set_level(logging.INFO, logger="facegan")
    gen = load_generator(trained_run)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the onnx extra were not installed
    assert not export.onnx_runtime_installed()
    assert choose_runtime(gen, "auto") is gen and export.runtime_name(gen) == "torch"
    assert "ONNX Runtime is not installed" in caplog.text
    with pytest.raises(FaceganError, match="facegan\\[onnx\\]"):
        choose_runtime(gen, "onnx")
    monkeypatch.delitem(sys.modules, "onnxruntime")

    def broken(_: LoadedGenerator) -> LoadedGenerator:
        raise RuntimeError("this family does not export")

    monkeypatch.setattr(export, "onnx_generator", broken)
    assert choose_runtime(gen, "auto") is gen  # an export failure under auto is a warning, not an error
    assert "could not run in ONNX Runtime (RuntimeError: this family does not export)" in caplog.text


def test_export_cli(trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "g.ts"
    assert main(["export", str(trained_run), "--format", "torchscript", "--out", str(out)]) == 0
    assert "matches PyTorch at batch sizes 1, 5" in capsys.readouterr().out
    assert main(["export", str(trained_run), "--out", str(tmp_path / "g.zip")]) == 2
    assert "give --format onnx, torchscript or hub" in capsys.readouterr().err


def _untrained(preset: str, **model: object) -> LoadedGenerator:
    """An untrained G of a preset at 32 px with small widths, as a LoadedGenerator."""
    cfg = build_config(preset, {"model": {"resolution": 32, "nz": 16, "ngf": 8, "ndf": 8, **model}})
    netG, _ = build_models(cfg.model)
    netG.eval().requires_grad_(False)
    return LoadedGenerator(netG=netG, config=cfg, step=0, checkpoint="(memory)", device=torch.device("cpu"))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_other_families_and_conditional_models_export(fmt: str, tmp_path: Path) -> None:
    # BEGAN's G names its input `code`; a conditional G takes (z, labels) and is not scriptable (it is traced).
    began = _untrained("began", bottleneck=8)
    result = export_generator(began, tmp_path / f"began.{fmt}", fmt)
    assert result.max_abs_diff <= TOLERANCE
    cond = _untrained("dcgan", condition=["smiling", "hair"], condition_levels=[[0, 1], [0, 1, 2]])
    path = tmp_path / f"cond.{fmt}"
    assert export_generator(cond, path, fmt).max_abs_diff <= TOLERANCE
    exported = load_exported(path, fmt)
    assert exported.meta["inputs"] == ["z", "labels"]
    z = torch.randn(4, 16, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([[0, 0], [1, 2], [2, 3], [1, 0]])  # level indices; 2 and 3 are "unknown"
    with torch.no_grad():
        ref = cond.netG(z, labels).numpy()
        unknown = cond.netG(z).numpy()
    assert np.abs(exported.run(z, labels) - ref).max() < TOLERANCE
    assert np.abs(exported.run(z) - unknown).max() < TOLERANCE  # no labels: every attribute unknown
    with pytest.raises(FaceganError, match="not conditional"):
        load_exported(tmp_path / f"began.{fmt}", fmt).run(z, labels)


@pytest.mark.slow
def test_serve_with_onnx_runtime_gives_the_same_faces(trained_run: Path) -> None:
    from fastapi.testclient import TestClient
    from PIL import Image

    from facegan.serve import create_app

    faces = []
    for runtime in ("torch", "onnx"):
        app = create_app(trained_run, workers=1, runtime=runtime)
        assert isinstance(app.state.generator.netG, OnnxModule) == (runtime == "onnx")
        with TestClient(app) as client:
            response = client.get("/api/face", params={"seed": 3, "index": 5})
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        faces.append(np.asarray(Image.open(io.BytesIO(response.content))).astype(int))
    assert faces[0].shape == (32, 32, 3)
    assert np.abs(faces[0] - faces[1]).max() <= 1
