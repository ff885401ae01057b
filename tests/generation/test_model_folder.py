"""Model folders in the Hugging Face Hub's layout: written by `facegan export --format hub`, loaded by the
safetensors library alone and by facegan (the same faces as the run, bit for bit), refused clearly when broken."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from safetensors.torch import load_file, save_file

import facegan
from facegan.cli.main import main
from facegan.errors import FaceganError
from facegan.generation.export import export_generator
from facegan.generation.hub_export import ModelFolderExport, export_model_folder
from facegan.generation.model_folder import is_model_folder
from facegan.generation.sample import default_out
from facegan.run.checkpoint import load_checkpoint
from facegan.serve import create_app

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model_folder(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny trained run exported as a model folder."""
    out = tmp_path_factory.mktemp("hub") / "tiny-dcgan"
    result = export_model_folder(trained_run, out, license="mit")
    assert isinstance(result, ModelFolderExport) and result.weights == "G"
    return out


def _copy(folder: Path, tmp_path: Path) -> Path:
    copy = tmp_path / folder.name
    shutil.copytree(folder, copy)
    return copy


def test_the_folder_has_the_hub_layout(model_folder: Path, trained_run: Path) -> None:
    assert sorted(p.name for p in model_folder.iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                             "samples.png"]
    config = json.loads((model_folder / "config.json").read_text())
    assert config["format"] == "facegan-model" and config["facegan_version"] == facegan.__version__
    assert (config["family"], config["resolution"], config["nz"], config["step"]) == ("dcgan", 32, 16, 40)
    assert config["config"]["data"]["path"] == "blobs32"  # the dataset's name, not a local path
    card = (model_folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: facegan\n") and "license: mit" in card
    for part in ("![64 faces from seed 0](samples.png)", "## Training data", "| steps | 40 |", "## Evaluation",
                 "No evaluation was recorded", "## Intended use and limitations", "impersonate", "synthetic"):
        assert part in card, part
    with Image.open(model_folder / "samples.png") as img:
        assert img.size == (8 * 34 + 2, 8 * 34 + 2)


def test_the_weights_load_with_safetensors_alone(model_folder: Path, trained_run: Path) -> None:
    state = load_file(str(model_folder / "model.safetensors"))
    expected = load_checkpoint(trained_run)["G"]
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[k], expected[k]) for k in state)


def test_the_folder_makes_the_same_faces_as_the_run(model_folder: Path, trained_run: Path) -> None:
    run, folder = facegan.load(trained_run), facegan.load(model_folder)
    assert is_model_folder(model_folder) and not is_model_folder(trained_run)
    assert (folder.step, folder.nz, folder.config.model) == (run.step, run.nz, run.config.model)
    z = run.latents(7, seed=5)
    with torch.no_grad():  # bit for bit: the float images, not only the uint8 faces
        assert torch.equal(run.generator.netG(torch.from_numpy(z)), folder.generator.netG(torch.from_numpy(z)))
    np.testing.assert_array_equal(folder.sample(9, seed=2), run.sample(9, seed=2))
    assert facegan.load(model_folder / "model.safetensors").step == 40  # the weights file names its folder
    assert folder.run_dir is None


def test_the_ema_generator_is_exported_when_the_run_keeps_one(tiny_dataset: Path, tmp_path: Path) -> None:
    gan = facegan.train(tiny_dataset, tmp_path / "run", steps=3, nz=16, ngf=8, ndf=8, batch_size=16, ema=0.9,
                        device="cpu", progress=False, report=False)
    result = gan.export(tmp_path / "ema-model", format="hub")
    assert result.weights == "G_ema" and json.loads((tmp_path / "ema-model" / "config.json").read_text())[
        "weights"] == "G_ema"
    ema = load_checkpoint(tmp_path / "run")["G_ema"]
    state = load_file(str(tmp_path / "ema-model" / "model.safetensors"))
    assert all(torch.equal(state[k], ema[k]) for k in ema)
    np.testing.assert_array_equal(facegan.load(tmp_path / "ema-model").sample(4, 1), gan.sample(4, 1))


def test_the_cli_exports_and_every_command_takes_the_folder(model_folder: Path, trained_run: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli-model"
    assert main(["export", str(trained_run), "--format", "hub", "--out", str(out)]) == 0
    assert "wrote the model folder" in capsys.readouterr().out
    assert main(["export", str(trained_run), "--format", "hub", "--out", str(out)]) == 0  # an export replaces one
    assert main(["sample", str(out), "--n", "4", "--seed", "3", "--out", str(tmp_path / "f.png")]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "f.png")),
                                  np.asarray(Image.open(_run_grid(trained_run, tmp_path))))
    assert default_out(out, 3) == tmp_path / "cli-model-sample-seed3.png"  # beside the folder, not inside it
    assert main(["export", str(out), "--format", "torchscript", "--out", str(tmp_path / "g.pt")]) == 0
    with TestClient(create_app(out, workers=1)) as client:
        info = client.get("/api/info").json()
        assert info["step"] == 40 and info["run_dir"] is None
        assert client.get("/api/face?seed=1&index=0").status_code == 200


def _run_grid(run: Path, tmp_path: Path) -> Path:
    path = tmp_path / "run.png"
    assert main(["sample", str(run), "--n", "4", "--seed", "3", "--out", str(path)]) == 0
    return path


@pytest.mark.slow
def test_onnx_export_of_the_folder(model_folder: Path, tmp_path: Path) -> None:
    result = export_generator(model_folder, tmp_path / "g.onnx")
    assert result.format == "onnx" and result.max_abs_diff <= result.tolerance


def test_a_missing_file_is_refused_clearly(model_folder: Path, tmp_path: Path) -> None:
    no_weights = _copy(model_folder, tmp_path / "a")
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(FaceganError, match=r"has no model.safetensors"):
        facegan.load(no_weights)
    no_config = _copy(model_folder, tmp_path / "b")
    (no_config / "config.json").unlink()
    with pytest.raises(FaceganError, match=r"has no config.json, so it is not a facegan model folder"):
        facegan.load(no_config)


def test_wrong_shapes_are_refused_clearly(model_folder: Path, tmp_path: Path) -> None:
    folder = _copy(model_folder, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["config"]["model"]["ngf"] = 16  # the config no longer describes these weights
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(FaceganError, match="weights do not fit the model its config describes"):
        facegan.load(folder)
    state = load_file(str(model_folder / "model.safetensors"))
    name = next(iter(state))
    state[name] = torch.zeros(3, 3)
    save_file(state, str(folder / "model.safetensors"))
    config.update(weights_sha256=None)
    config["config"]["model"]["ngf"] = 8
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(FaceganError, match="weights do not fit the model"):
        facegan.load(folder)


def test_a_pickle_renamed_to_safetensors_is_never_unpickled(model_folder: Path, tmp_path: Path) -> None:
    folder = _copy(model_folder, tmp_path)
    buffer = io.BytesIO()
    torch.save(load_file(str(model_folder / "model.safetensors")), buffer)
    (folder / "model.safetensors").write_bytes(buffer.getvalue())
    with pytest.raises(FaceganError, match=r"does not match the checksum in config\.json"):
        facegan.load(folder)
    config = json.loads((folder / "config.json").read_text())
    del config["weights_sha256"]  # with no checksum to catch it, safetensors itself refuses the pickle
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(FaceganError, match="is not a readable safetensors file"):
        facegan.load(folder)


def test_a_truncated_or_tampered_folder_is_refused_clearly(model_folder: Path, tmp_path: Path) -> None:
    folder = _copy(model_folder, tmp_path)
    data = (model_folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(FaceganError, match="truncated or was changed"):
        facegan.load(folder)
    (folder / "model.safetensors").write_bytes(data)
    for text, message in (("{not json", "is not readable JSON"), ('{"format": "other"}', "not a facegan model"),
                          ('{"format": "facegan-model", "format_version": 99}', "newer facegan")):
        (folder / "config.json").write_text(text)
        with pytest.raises(FaceganError, match=message):
            facegan.load(folder)
    config = json.loads((model_folder / "config.json").read_text())
    config["config"]["model"]["nz"] = "16"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(FaceganError, match=r"model.nz \(--nz\) must be an int"):
        facegan.load(folder)


def test_export_refuses_a_destination_it_would_spoil(trained_run: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(FaceganError, match="is not a folder"):
        export_model_folder(trained_run, tmp_path / "file")
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(FaceganError, match="belongs to something else than a facegan model"):
        export_model_folder(trained_run, other)
    with pytest.raises(FaceganError, match="is a run directory"):
        export_model_folder(trained_run, trained_run)
    with pytest.raises(FaceganError, match="ONNX and TorchScript files have none"):
        export_generator(trained_run, tmp_path / "g.pt", license="mit")
    assert not list(tmp_path.glob(".*tmp-*"))
