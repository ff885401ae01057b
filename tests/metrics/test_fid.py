"""FID plumbing with a randomly initialised Inception (the real weights cannot be downloaded here)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from facegan.errors import FaceganError
from facegan.metrics import inception
from facegan.metrics.evaluation import evaluate
from facegan.metrics.fid import inception_features
from facegan.metrics.inception import FIDInceptionV3, load_inception, resolve_weights_path


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state dict with the FID network's layout and random weights, saved like pytorch-fid's file."""
    torch.manual_seed(0)
    net = FIDInceptionV3()
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):  # He init keeps activations O(1) through the 94 ReLU layers
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = tmp_path_factory.mktemp("inception") / "random_inception.pth"
    torch.save(net.state_dict(), path)
    return path


def test_network_layout_matches_pytorch_fid() -> None:
    net = FIDInceptionV3()
    keys = net.state_dict().keys()
    # Names as in pytorch-fid's state dict (torchvision's Inception3 attribute names, no AuxLogits).
    for key in ("Conv2d_1a_3x3.conv.weight", "Conv2d_1a_3x3.bn.running_var", "Mixed_5b.branch_pool.conv.weight",
                "Mixed_6e.branch7x7dbl_5.bn.bias", "Mixed_7c.branch3x3dbl_3b.conv.weight", "fc.weight", "fc.bias"):
        assert key in keys
    assert not any(k.startswith("AuxLogits") for k in keys)
    assert net.fc.weight.shape == (1008, 2048)
    assert net.Mixed_7b.pool == "avg" and net.Mixed_7c.pool == "max"
    with torch.no_grad():
        x = torch.rand(1, 3, 299, 299) * 2 - 1
        x = net.Conv2d_2b_3x3(net.Conv2d_2a_3x3(net.Conv2d_1a_3x3(x)))
        assert x.shape[1:] == (64, 147, 147)


@pytest.mark.slow
def test_fid_runs_end_to_end_with_random_weights(random_weights: Path, trained_run: Path, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    with caplog.at_level(logging.WARNING, logger="facegan.metrics"):
        result = evaluate(run, n=2, metrics="fid", inception_weights=random_weights, device="cpu",
                          show_progress=False)
    assert "not the published file" in caplog.text  # random weights: values not comparable, and it says so
    assert np.isfinite(result["fid"]) and result["fid"] > 0
    assert np.isfinite(result["kid"])
    saved = json.loads(Path(result["path"]).read_text())
    assert saved["fid"] == result["fid"] and saved["metrics"] == ["fid"] and saved["n"] == 2


@pytest.mark.slow
def test_features_of_grey_and_rgb_images_agree(random_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(inception.WEIGHTS_ENV, str(random_weights))
    net = load_inception()  # from the environment variable
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, size=(2, 16, 16, 1), dtype=np.uint8)
    features = inception_features(grey, net, batch_size=1)
    assert features.shape == (2, 2048) and np.isfinite(features).all() and features.std() > 1e-3
    assert not np.allclose(features[0], features[1])
    rgb = inception_features(np.repeat(grey[:1], 3, axis=3), net)
    np.testing.assert_allclose(rgb[0], features[0], rtol=1e-4, atol=1e-5 * np.abs(features).max())


def test_missing_weights_say_how_to_get_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)
    with pytest.raises(FaceganError, match=r"pt_inception-2015-12-05-6726825d\.pth.*--inception-weights"):
        resolve_weights_path(None)
    with pytest.raises(FaceganError, match="do not exist"):
        resolve_weights_path(tmp_path / "nope.pth")


def test_wrong_weights_files_are_refused_clearly(tmp_path: Path) -> None:
    text = tmp_path / "notes.pth"
    text.write_text("not weights")
    with pytest.raises(FaceganError, match=r"is not the FID Inception weights.*cannot read"):
        load_inception(text)
    other = tmp_path / "other.pth"
    torch.save(torch.nn.Linear(3, 2).state_dict(), other)
    with pytest.raises(FaceganError, match=r"missing Conv2d_1a_3x3.*unexpected bias, weight"):
        load_inception(other)
    state = FIDInceptionV3().state_dict()
    state["fc.weight"] = torch.zeros(1000, 2048)  # torchvision's ImageNet head, not the FID graph's 1008
    wrong_shape = tmp_path / "torchvision.pth"
    torch.save(state, wrong_shape)
    with pytest.raises(FaceganError, match=r"wrong shape fc\.weight"):
        load_inception(wrong_shape)
    pickled = tmp_path / "pickled.pth"
    torch.save({"net": FIDInceptionV3.__name__, "weights": [1, 2]}, pickled)
    with pytest.raises(FaceganError, match="no state dict of tensors"):
        load_inception(pickled)
