"""Projection of a photo into the latent space: crop, D features, recovery of a face G made, files, CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facegan.cli.main import main
from facegan.errors import FaceganError
from facegan.generation.project import DFeatures, dataset_crop, load_discriminator, prepare_photo, project
from facegan.generation.sample import load_generator
from facegan.utils.gif import read_gif_frames


def _mse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image MSE of uint8 images on the [−1, 1] scale."""
    diff = (a.astype(np.float64) - b.astype(np.float64)) / 127.5
    return (diff**2).reshape(len(diff), -1).mean(1) if diff.ndim == 4 else np.array([(diff**2).mean()])


@pytest.mark.slow
def test_projection_recovers_a_face_g_made_far_closer_than_random_latents(trained_run: Path) -> None:
    gen = load_generator(trained_run)
    netD = load_discriminator(gen.checkpoint, gen.device)
    assert netD is not None
    target = gen.images(gen.latents(1, seed=999))[0]
    random_faces = gen.sample(64, seed=5)
    random_mse = _mse(random_faces, target[None])
    result = project(gen, target, steps=100, restarts=2, seed=0, netD=netD)
    projected_mse = _mse(result.image[None], target[None])[0]
    assert projected_mse < 0.1 * random_mse.mean()
    assert projected_mse < 0.5 * random_mse.min()  # better than the best of 64 random faces, by far
    # The result is consistent: the latent regenerates the reported face, and the reported MSE is G(z)'s.
    np.testing.assert_array_equal(gen.images(torch.from_numpy(result.latent)[None])[0], result.image)
    assert result.pixel_mse == pytest.approx(projected_mse, abs=2e-3)  # float vs uint8 rounding
    assert len(result.restart_losses) == 2 and result.loss == min(result.restart_losses)
    assert result.snapshots[0][0] == 0 and result.snapshots[-1][0] == 100
    np.testing.assert_array_equal(result.snapshots[-1][1], result.image)


def test_discriminator_features_are_the_hidden_layers(trained_run: Path) -> None:
    gen = load_generator(trained_run)
    netD = load_discriminator(gen.checkpoint, gen.device)
    feats = DFeatures(netD)(torch.zeros(2, 3, 32, 32))
    # DCGAN's D at 32 px, ndf 8: the inputs of its 2nd, 3rd and last conv.
    assert [tuple(f.shape) for f in feats] == [(2, 8, 16, 16), (2, 16, 8, 8), (2, 32, 4, 4)]
    assert all(not f.requires_grad for f in feats)


def test_photo_gets_the_training_data_crop(tmp_path: Path) -> None:
    # A wide photo: red | green | blue thirds. The centre crop keeps only the green middle.
    wide = np.zeros((40, 120, 3), np.uint8)
    wide[:, :40, 0] = wide[:, 40:80, 1] = wide[:, 80:, 2] = 255
    centre = prepare_photo(wide, 16, 3, "center")
    assert centre.shape == (16, 16, 3)
    assert centre[:, :, 1].min() > 200 and centre[:, :, [0, 2]].max() < 40
    grey = prepare_photo(Image.fromarray(wide), 16, 1, "none")  # whole photo squeezed, one channel
    assert grey.shape == (16, 16, 1)
    path = tmp_path / "photo.png"
    Image.fromarray(wide).save(path)
    np.testing.assert_array_equal(prepare_photo(path, 16, 3, "center"), centre)
    with pytest.raises(FaceganError, match="does not exist"):
        prepare_photo(tmp_path / "missing.jpg", 16, 3)
    with pytest.raises(FaceganError, match="cannot use the photo"):
        prepare_photo(b"not an image at all", 16, 3)


def test_crop_follows_the_dataset_meta(trained_run: Path, tmp_path: Path) -> None:
    gen = load_generator(trained_run)
    assert dataset_crop(gen) == "center"  # a dataset that records no crop
    data = tmp_path / "celeba-like"
    data.mkdir()
    (data / "meta.json").write_text(json.dumps({"crop": "celeba"}))
    gen.config.data.path = str(data)
    assert dataset_crop(gen) == "celeba"


def test_project_cli_writes_every_file(trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "photo.jpg"
    gen = load_generator(trained_run)
    buffer = io.BytesIO()
    Image.fromarray(gen.sample(1, seed=11)[0]).resize((96, 80)).save(buffer, format="JPEG")  # not square
    photo.write_bytes(buffer.getvalue())
    out = tmp_path / "projected"
    assert main(["project", str(trained_run), str(photo), "--steps", "12", "--restarts", "2", "--out", str(out)]) == 0
    assert "pixel MSE" in capsys.readouterr().out
    summary = json.loads((out / "projection.json").read_text())
    assert summary["steps"] == 12 and summary["discriminator_features"] is True and summary["crop"] == "center"
    latent = np.load(out / "latent.npy")
    assert latent.shape == (16,) and latent.dtype == np.float32
    with Image.open(out / "reconstruction.png") as img:
        recon = np.asarray(img)
    assert recon.shape == (256, 256, 3)  # 32 px enlarged ×8
    np.testing.assert_array_equal(recon[::8, ::8], gen.images(torch.from_numpy(latent)[None])[0])
    with Image.open(out / "strip.png") as img:
        assert img.height >= 128 and img.width > 5 * img.height  # photo + 5 snapshots side by side
    walk = read_gif_frames(out / "walk.gif")
    assert np.abs(walk[-1].astype(float) - recon).mean() < 6  # the walk ends on the photo's face
    assert np.abs(walk[0].astype(float) - recon).mean() > np.abs(walk[-2].astype(float) - recon).mean()
    assert main(["project", str(trained_run), str(tmp_path / "nope.png"), "--out", str(out)]) == 2


@pytest.mark.parametrize(("preset", "model"), [
    ("began", {"bottleneck": 8}),  # D is an autoencoder: conv and linear layers, image out
    ("sngan", {}),  # spectrally normalised D
    ("dcgan", {"condition": ["smiling"], "condition_levels": [[0, 1]]}),  # projection discriminator
])
def test_projection_runs_for_other_families(preset: str, model: dict[str, object]) -> None:
    from facegan.generation.sample import LoadedGenerator
    from facegan.models import build_models
    from facegan.models.presets import build_config

    cfg = build_config(preset, {"model": {"resolution": 32, "nz": 16, "ngf": 8, "ndf": 8, **model}})
    netG, netD = build_models(cfg.model)
    gen = LoadedGenerator(netG=netG.eval().requires_grad_(False), config=cfg, step=0, checkpoint="(memory)",
                          device=torch.device("cpu"))
    netD.eval().requires_grad_(False)
    assert len(DFeatures(netD)(torch.zeros(1, 3, 32, 32))) >= 2
    result = project(gen, gen.sample(1, seed=2)[0], steps=4, restarts=2, netD=netD)
    assert np.isfinite(result.loss) and result.latent.shape == (16,)
