"""The seed-003 model: its exact layer list, parameter counts, shapes and a training step at 128 px."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from facegan.config import ModelConfig
from facegan.data.dataset import write_dataset
from facegan.errors import FaceganError
from facegan.models import build_models, count_parameters
from facegan.models.presets import build_config
from facegan.training.loop import train
from factories import blob_images


def layer_list(net: nn.Module) -> list[tuple]:
    """(kind, in, out, kernel, stride, padding) of every conv/linear, and the activations, in order."""
    out: list[tuple] = []
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            out.append((type(m).__name__, m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0]))
        elif isinstance(m, nn.Linear):
            out.append(("Linear", m.in_features, m.out_features))
        elif isinstance(m, nn.LeakyReLU):
            out.append(("LeakyReLU", m.negative_slope))
        elif isinstance(m, (nn.Tanh, nn.Dropout, nn.Flatten)):
            out.append((type(m).__name__, getattr(m, "p", None)))
    return out


def test_preset_is_the_seed_model_with_pinned_parameter_counts() -> None:
    cfg = build_config("dense128")
    assert (cfg.model.resolution, cfg.model.nz, cfg.model.ngf, cfg.model.ndf) == (128, 32, 256, 256)
    assert (cfg.optim.name, cfg.optim.lr_g, cfg.optim.lr_d, cfg.optim.grad_clip_value) == ("rmsprop", 1e-4, 1e-4, 1.0)
    assert cfg.train.label_noise == 0.05
    netG, netD = build_models(cfg.model)
    assert count_parameters(netG) == 14_953_987
    assert count_parameters(netD) == 4_211_713
    s = 0.3
    assert layer_list(netG) == [
        ("Linear", 32, 16 * 16 * 128), ("LeakyReLU", s),
        ("Conv2d", 128, 256, 5, 1, 2), ("LeakyReLU", s),
        ("ConvTranspose2d", 256, 256, 4, 2, 1), ("LeakyReLU", s),
        ("ConvTranspose2d", 256, 256, 4, 2, 1), ("LeakyReLU", s),
        ("ConvTranspose2d", 256, 256, 4, 2, 1), ("LeakyReLU", s),
        ("Conv2d", 256, 512, 5, 1, 2), ("LeakyReLU", s),
        ("Conv2d", 512, 512, 5, 1, 2), ("LeakyReLU", s),
        ("Conv2d", 512, 3, 7, 1, 3), ("Tanh", None),
    ]
    assert layer_list(netD) == [
        ("Conv2d", 3, 256, 3, 1, 0), ("LeakyReLU", s),
        *[("Conv2d", 256, 256, 4, 2, 0), ("LeakyReLU", s)] * 4,
        ("Flatten", None), ("Dropout", 0.4), ("Linear", 256 * 6 * 6, 1),
    ]


def test_shapes_with_tiny_widths() -> None:
    cfg = ModelConfig(family="dense128", resolution=128, channels=3, nz=32, ngf=8, ndf=8, minibatch_std=True)
    netG, netD = build_models(cfg)
    with torch.no_grad():
        images = netG(torch.randn(2, 32))
        logits, features = netD(images, with_features=True)
    assert images.shape == (2, 3, 128, 128)
    assert images.min() >= -1 and images.max() <= 1
    assert logits.shape == (2,)
    assert features.shape == (2, 9 * 6 * 6)  # 8 maps + the minibatch-stddev map, 6×6


def test_only_128_px() -> None:
    with pytest.raises(FaceganError, match="128 px only"):
        build_models(ModelConfig(family="dense128", resolution=64))


def test_two_training_steps(tmp_path: Path) -> None:
    # Most of the time is the 64-face fixed-noise grid at 128 px written at the end.
    write_dataset(tmp_path / "data", blob_images(4, 128, 3), source="test:blobs128")
    cfg = build_config("dense128", {
        "data": {"path": str(tmp_path / "data")},
        "model": {"ngf": 4, "ndf": 4},
        "train": {"batch_size": 2, "steps": 2, "log_every": 1, "sample_every": 100, "checkpoint_every": 100,
                  "device": "cpu"},
    })
    result = train(cfg, tmp_path / "run", show_progress=False)
    assert result.status == "finished" and result.step == 2
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["loss_d"] is not None and r["loss_g"] is not None for r in records)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["optim"]["name"] == "rmsprop" and saved["model"]["leaky_slope"] == 0.3
