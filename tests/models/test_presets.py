"""Every preset: builds, has pinned sizes, round-trips its config, and trains a few steps with finite losses."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from facegan.config import RunConfig
from facegan.losses import LOSSES
from facegan.models import build_models, count_parameters
from facegan.models.presets import PRESETS, build_config
from facegan.training.configure import config_for_data
from facegan.training.loop import train

# (preset, resolution it is measured at, G parameters, D parameters) at the preset's own widths.
PINNED = [
    ("dcgan", 64, 3_576_704, 2_765_568),
    ("dcgan-lite", 64, 1_100_224, 694_672),
    ("dcgan128", 128, 12_786_560, 11_164_416),
    ("began", 64, 673_987, 4_675_395),
    ("dense128", 128, 14_953_987, 4_211_713),
    ("wgan-gp", 64, 3_576_704, 2_765_568),
    ("sngan", 64, 3_576_704, 2_764_672),
    ("r3gan", 64, 22_429_824, 22_381_440),
    ("r3gan32", 32, 20_732_160, 20_683_776),
    ("r3gan128", 128, 22_910_016, 22_861_632),
    ("r3gan-cpu64", 64, 893_616, 877_488),
    ("r3gan-cpu32", 32, 893_152, 877_024),
]
TINY_32 = {"resolution": 32, "channels": 3, "nz": 8, "ngf": 8, "ndf": 8, "bottleneck": 8}


def test_every_preset_is_pinned() -> None:
    assert sorted(p for p, *_ in PINNED) == sorted(PRESETS)


def test_the_default_is_dcgan_lite_and_dcgan_stays_the_tutorials() -> None:
    """The default (issue 22) differs from the tutorial's recipe in exactly eight settings; dcgan keeps it all."""
    from facegan.config import flat_fields
    from facegan.models.presets import DEFAULT_PRESET

    assert DEFAULT_PRESET == "dcgan-lite"
    dcgan, lite = flat_fields(build_config("dcgan")), flat_fields(build_config("dcgan-lite"))
    assert {k: (dcgan[k], lite[k]) for k in dcgan if dcgan[k] != lite[k]} == {
        "model.ngf": (64, 32), "model.ndf": (64, 32), "model.minibatch_std": (False, True),
        "train.batch_size": (128, 32),
        "train.ema_decay": (0.0, 0.999), "train.channels_last": ("auto", "on"),
        "train.r1_gamma": (0.0, 1.0), "train.penalty_every": (1, 4)}
    tutorial = {"model.ngf": 64, "model.ndf": 64, "model.nz": 100, "model.leaky_slope": 0.2, "model.d_norm": "batch",
                "optim.name": "adam", "optim.lr_g": 2e-4, "optim.lr_d": 2e-4, "optim.beta1": 0.5,
                "optim.beta2": 0.999, "train.loss": "bce", "train.batch_size": 128, "train.ema_decay": 0.0,
                "train.diffaugment": "", "train.n_critic": 1, "model.minibatch_std": False,
                "train.r1_gamma": 0.0}
    assert {k: dcgan[k] for k in tutorial} == tutorial


@pytest.mark.parametrize(("preset", "resolution", "g_params", "d_params"), PINNED)
def test_parameter_counts(preset: str, resolution: int, g_params: int, d_params: int) -> None:
    cfg = build_config(preset, {"model": {"resolution": resolution}})
    netG, netD = build_models(cfg.model)
    assert (count_parameters(netG), count_parameters(netD)) == (g_params, d_params)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_config_round_trip(preset: str, tmp_path: Path) -> None:
    cfg = build_config(preset)
    cfg.save(tmp_path / "config.json")
    again = RunConfig.load(tmp_path / "config.json")
    assert again == cfg
    assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    for section, values in PRESETS[preset].items():  # the preset's settings are in the saved file
        for key, value in values.items():
            saved = json.loads((tmp_path / "config.json").read_text())[section][key]
            if key == "options":  # the family's defaults fill the options the preset does not set
                saved = {k: v for k, v in saved.items() if k in value}
            assert saved == value


def test_old_configs_without_the_new_fields_still_load() -> None:
    data = build_config("dcgan").to_dict()
    for section, name in [("model", "leaky_slope"), ("model", "d_norm"), ("train", "ema_decay"),
                          ("train", "n_critic"), ("optim", "grad_clip_value")]:
        del data[section][name]
    cfg = RunConfig.from_dict(data)
    assert cfg.model.leaky_slope == 0.2 and cfg.train.ema_decay == 0 and cfg.train.n_critic == 1


def test_d_norm_auto_is_resolved_into_the_config() -> None:
    assert build_config("dcgan").model.d_norm == "batch"
    assert build_config("dcgan", {"train": {"loss": "wgan-gp"}}).model.d_norm == "layer"
    assert build_config("dcgan", {"train": {"loss": "wgan-gp"}, "model": {"d_norm": "none"}}).model.d_norm == "none"
    netD = build_models(build_config("wgan-gp").model)[1]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in netD.modules())
    assert any(isinstance(m, nn.GroupNorm) and m.num_groups == 1 for m in netD.modules())


def test_leaky_slope_reaches_dcgan_d() -> None:
    netD = build_models(build_config("dcgan", {"model": {"leaky_slope": 0.06}}).model)[1]
    assert {m.negative_slope for m in netD.modules() if isinstance(m, nn.LeakyReLU)} == {0.06}


def test_pinned_resolution_must_match_the_data(tiny_dataset: Path) -> None:
    from facegan.errors import FaceganError

    with pytest.raises(FaceganError, match="128 px"):
        config_for_data("dcgan128", tiny_dataset)


@pytest.mark.parametrize("preset", ["dcgan", "began", "wgan-gp", "sngan"])
def test_a_few_steps_with_finite_losses(preset: str, tiny_dataset: Path, tmp_path: Path) -> None:
    cfg = build_config(preset, {"data": {"path": str(tiny_dataset)}, "model": TINY_32,
                                "train": {"batch_size": 8, "steps": 5, "log_every": 5, "sample_every": 100,
                                          "checkpoint_every": 100, "device": "cpu"}})
    assert train(cfg, tmp_path / "run", show_progress=False).step == 5
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 5
    assert all(math.isfinite(r["loss_d"]) and math.isfinite(r["loss_g"]) for r in records)


def test_dcgan128_forward_shapes() -> None:
    netG, netD = build_models(build_config("dcgan128", {"model": {"ngf": 4, "ndf": 4, "nz": 8}}).model)
    with torch.no_grad():
        images = netG(torch.randn(2, 8))
        assert images.shape == (2, 3, 128, 128)
        assert netD(images).shape == (2,)


@pytest.mark.parametrize("loss", sorted(n for n, loss in LOSSES.items() if loss.d is not None))
def test_every_loss_trains_dcgan(loss: str, tiny_dataset: Path, tmp_path: Path) -> None:
    cfg = build_config("dcgan", {"data": {"path": str(tiny_dataset)}, "model": TINY_32,
                                 "train": {"loss": loss, "batch_size": 8, "steps": 3, "log_every": 3,
                                           "sample_every": 100, "checkpoint_every": 100, "device": "cpu"}})
    train(cfg, tmp_path / "run", show_progress=False)
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["loss_d"]) and math.isfinite(r["loss_g"]) for r in records)
