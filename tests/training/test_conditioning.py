"""Conditional generation: labels from the dataset into training, `--attr` into sampling, and a model that
honours the asked attribute."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from facegan.cli.main import main
from facegan.config import ModelConfig
from facegan.data.dataset import BatchIterator, PreparedDataset, write_dataset
from facegan.data.labels import attribute_levels, check_condition, level_indices
from facegan.errors import FaceganError
from facegan.generation.attributes import attribute_grid, labels_for, parse_attr
from facegan.generation.sample import load_generator
from facegan.models.presets import build_config
from facegan.training.conditioning import drop_labels
from facegan.training.loop import train
from factories import blob_images, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="session")
def labelled_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """256 blobs at 32 px with labels: `shade` 0-2 (the blob's brightness) and a CelebA-style ±1 `flag` (0: none)."""
    images = blob_images(256, 32, 3, seed=1)
    shade = np.arange(256) % 3
    images = (images.astype(np.float32) * (0.4 + 0.3 * shade)[:, None, None, None]).astype(np.uint8)
    flag = np.where(np.arange(256) % 2 == 0, 1, -1)
    flag[::17] = 0
    labels = np.stack([shade, flag], axis=1).astype(np.int16)
    path = tmp_path_factory.mktemp("data") / "labelled"
    write_dataset(path, images, source="test:labelled", labels=labels, label_names=["Shade", "flag"])
    return path


def test_attribute_levels() -> None:
    assert attribute_levels(np.array([3, 0, 7, 3])) == [0, 3, 7]
    assert attribute_levels(np.array([-1, 1, 0, 1])) == [-1, 1]  # CelebA: 0 is "no row"
    assert attribute_levels(np.array([0, 1])) == [0, 1]


def test_level_indices_map_values_and_unknowns() -> None:
    cfg = ModelConfig(condition=["flag", "shade"], condition_levels=[[-1, 1], [0, 1, 2]])
    labels = np.array([[2, 1], [0, -1], [1, 0]])  # columns: shade, flag
    assert level_indices(cfg, labels, ["Shade", "flag"]).tolist() == [[1, 2], [0, 0], [2, 1]]  # flag 0 → unknown 2


def test_check_condition_fills_levels_and_the_dataset_spelling(labelled_dataset: Path) -> None:
    cfg = tiny_config(labelled_dataset)
    cfg.model.condition = ["shade", "FLAG"]
    check_condition(cfg, PreparedDataset.open(labelled_dataset))
    assert cfg.model.condition == ["Shade", "flag"]
    assert cfg.model.condition_levels == [[0, 1, 2], [-1, 1]]


def test_check_condition_errors(labelled_dataset: Path, tiny_dataset: Path) -> None:
    cfg = tiny_config(labelled_dataset)
    cfg.model.condition = ["smiling"]
    with pytest.raises(FaceganError, match=r"has no label 'smiling'; its labels: Shade, flag"):
        check_condition(cfg, PreparedDataset.open(labelled_dataset))
    cfg.model.condition = ["shade"]
    with pytest.raises(FaceganError, match=r"--condition needs labels, but .* has none"):
        check_condition(cfg, PreparedDataset.open(tiny_dataset))
    cfg.model.condition = ["shade", "Shade"]
    with pytest.raises(FaceganError, match="names an attribute twice"):
        check_condition(cfg, PreparedDataset.open(labelled_dataset))


def test_parse_attr() -> None:
    assert parse_attr("smiling=1, eyeglasses=0") == {"smiling": 1, "eyeglasses": 0}
    assert parse_attr("Smiling=yes,bangs=No,digit=-1") == {"Smiling": 1, "bangs": 0, "digit": -1}
    assert parse_attr(None) == {} and parse_attr("") == {}
    for bad in ("smiling", "smiling=", "=1", "smiling=maybe"):
        with pytest.raises(FaceganError, match="--attr"):
            parse_attr(bad)


def test_labels_for() -> None:
    cfg = ModelConfig(condition=["Smiling", "hair"], condition_levels=[[-1, 1], [0, 3, 5]])
    assert labels_for(cfg, {}, 2) is None
    assert labels_for(cfg, {"smiling": 1}, 2).tolist() == [[1, 3], [1, 3]]  # hair unknown (index 3)
    assert labels_for(cfg, {"smiling": 0, "hair": 5}, 1).tolist() == [[0, 2]]  # ±1 attribute: 0 means -1
    with pytest.raises(FaceganError, match="conditioned on Smiling, hair, not 'eyeglasses'"):
        labels_for(cfg, {"eyeglasses": 1}, 1)
    with pytest.raises(FaceganError, match="hair takes the values 0, 3, 5, not 4"):
        labels_for(cfg, {"hair": 4}, 1)
    with pytest.raises(FaceganError, match="trained without --condition"):
        labels_for(ModelConfig(), {"smiling": 1}, 1)


def test_drop_labels() -> None:
    labels = torch.zeros(4000, 2, dtype=torch.long)
    dropped = drop_labels(labels, [3, 2], 0.1, torch.Generator().manual_seed(0))
    unknown = dropped == torch.tensor([3, 2])
    assert set(dropped[:, 0].tolist()) == {0, 3} and set(dropped[:, 1].tolist()) == {0, 2}
    assert 0.16 < unknown[:, 0].float().mean() < 0.22  # 1 - 0.9² of entries: the row's or its own draw
    assert 0.07 < unknown.all(1).float().mean() < 0.13  # whole rows: 0.1 + 0.1·0.01
    assert torch.equal(drop_labels(labels, [3, 2], 0.0), labels)


@pytest.mark.parametrize("resident", [True, False])
def test_batches_carry_the_labels_of_their_images(labelled_dataset: Path, resident: bool) -> None:
    dataset = PreparedDataset.open(labelled_dataset)
    batches = BatchIterator(dataset, 16, torch.device("cpu"), seed=3, flip=True,
                            resident_bytes=1 << 30 if resident else 0)
    shade = torch.from_numpy(np.asarray(dataset.labels[:, 0], dtype=np.int64))
    batches.set_labels(torch.stack([shade, torch.arange(len(dataset))], 1))
    means = torch.from_numpy(np.asarray(dataset.images, dtype=np.float32).mean((1, 2, 3)))
    for images in batches.epoch(0):
        index = batches.batch_labels[:, 1]
        assert torch.equal(batches.batch_labels[:, 0], shade[index])
        got = ((images + 1) * 127.5).mean((1, 2, 3))  # flips keep the mean brightness
        assert torch.allclose(got, means[index], atol=1e-3)


def test_train_and_sample_a_conditional_model_from_the_cli(labelled_dataset: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    code = main(["train", "--data", str(labelled_dataset), "--out", str(run), "--condition", "shade,flag",
                 "--nz", "16", "--ngf", "8", "--ndf", "8", "--batch-size", "16", "--steps", "4", "--device", "cpu",
                 "--no-progress", "--no-report"])
    assert code == 0, capsys.readouterr().err
    gen = load_generator(run)
    assert gen.attributes == [{"name": "Shade", "values": [0, 1, 2]}, {"name": "flag", "values": [-1, 1]}]
    a = gen.sample(6, seed=1, attr={"shade": 2, "flag": 0})
    assert np.array_equal(a, gen.sample(6, seed=1, attr={"Shade": 2, "flag": -1}))  # same asks, same faces
    assert not np.array_equal(a, gen.sample(6, seed=1, attr={"shade": 0, "flag": -1}))
    assert not np.array_equal(a, gen.sample(6, seed=1))  # no attributes: sampled as in the data

    assert main(["sample", str(run), "--attr", "shade=2,flag=0", "--n", "6", "--seed", "1",
                 "--out", str(tmp_path / "a.png")]) == 0
    with Image.open(tmp_path / "a.png") as grid:
        assert grid.size == (3 * 34 + 2, 2 * 34 + 2)
    assert main(["sample", str(run), "--vary", "shade", "--attr", "flag=1", "--n", "5",
                 "--out", str(tmp_path / "v.png")]) == 0
    with Image.open(tmp_path / "v.png") as grid:
        assert grid.size == (5 * 34 + 2, 3 * 34 + 2)  # one row per shade
    grid, values = attribute_grid(gen, "SHADE", 5, attr={"flag": 1})
    assert values == [0, 1, 2] and np.array_equal(grid, np.asarray(Image.open(tmp_path / "v.png")))

    capsys.readouterr()
    assert main(["sample", str(run), "--attr", "smiling=1", "--out", str(tmp_path / "x.png")]) == 2
    assert "conditioned on Shade, flag, not 'smiling'" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--condition", "shade", "--steps", "6"]) == 2
    assert "--condition cannot change when resuming" in capsys.readouterr().err


def test_cli_condition_errors(labelled_dataset: Path, tiny_dataset: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", str(labelled_dataset), "--out", str(tmp_path / "a"),
                 "--condition", "smiling"]) == 2
    assert "has no label 'smiling'; its labels: Shade, flag" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()  # refused before the run directory is made
    train(tiny_config(tiny_dataset, steps=2), tmp_path / "plain", show_progress=False)
    assert main(["sample", str(tmp_path / "plain"), "--attr", "smiling=1", "--out", str(tmp_path / "x.png")]) == 2
    assert "trained without --condition" in capsys.readouterr().err


# The acceptance test: a briefly trained conditional model yields the asked attribute ---------------------------


def _pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 N×H×W×C → N×(8·8·C+1): 8×8 box-filtered pixels and a bias, the classifier's features."""
    x = torch.from_numpy(np.asarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return torch.cat([F.adaptive_avg_pool2d(x, 8).flatten(1), torch.ones(len(x), 1)], 1)


@pytest.mark.slow
def test_a_conditional_model_yields_the_asked_hair_colour(tmp_path: Path) -> None:
    from facegan.data.prepare import prepare
    from facegan.data.synthetic import HAIR_COLORS

    data = tmp_path / "faces"
    prepare("builtin:synthetic-faces", data, resolution=32, count=800, seed=1, show_progress=False)
    dataset = PreparedDataset.open(data)
    hair = np.asarray(dataset.labels[:, dataset.meta["label_names"].index("hair_color")])
    black, blond = HAIR_COLORS.index("black"), HAIR_COLORS.index("blond")

    # A linear classifier (ridge regression on 8×8 pixels) of black vs blond hair, trained on the labelled faces.
    chosen = (hair == black) | (hair == blond)
    features = _pixels(dataset.images[chosen])
    target = torch.from_numpy(np.where(hair[chosen] == black, 1.0, -1.0).astype(np.float32))
    w = torch.linalg.solve(features.T @ features + torch.eye(features.shape[1]), features.T @ target)
    assert ((features @ w > 0) == (target > 0)).float().mean() > 0.95

    # Conditioned on hair colour and eyeglasses; the test asks only for hair, eyeglasses stay free.
    cfg = build_config("dcgan", {
        "data": {"path": str(data)},
        "model": {"resolution": 32, "nz": 32, "ngf": 16, "ndf": 16, "condition": ["hair_color", "eyeglasses"]},
        "optim": {"lr_g": 5e-4, "lr_d": 5e-4},
        "train": {"batch_size": 32, "steps": 300, "device": "cpu", "sample_every": 1000, "checkpoint_every": 1000},
    })
    train(cfg, tmp_path / "run", show_progress=False)
    gen = load_generator(tmp_path / "run")
    score_black = _pixels(gen.sample(200, seed=5, attr={"hair_color": black})) @ w
    score_blond = _pixels(gen.sample(200, seed=5, attr={"hair_color": blond})) @ w
    black_when_black = (score_black > 0).float().mean().item()
    black_when_blond = (score_blond > 0).float().mean().item()
    # The classifier leans to "black" on these blurrier generated faces, hence a margin rather than 0.5 / 0.5.
    assert black_when_black > black_when_blond + 0.2, (black_when_black, black_when_blond)
    # Threshold-free: a face asked black looks blacker-haired than its blond twin (same latent), nearly always.
    assert (score_black > score_blond).float().mean() > 0.9
