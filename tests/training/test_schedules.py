"""The cosine ramps in images seen (R3GAN's): values by hand, how a run applies and logs them, exact resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from facegan.config import BUDGET_ONLY_STEPS
from facegan.errors import FaceganError
from facegan.models.presets import build_config
from facegan.run.checkpoint import load_checkpoint
from facegan.training.configure import check_config, resume_config
from facegan.training.loop import train
from facegan.training.schedules import (
    BUDGET_RAMP_KIMG,
    apply_to_optimizers,
    check_schedule,
    cosine_ramp,
    ema_beta,
    resolve_ramp,
    values_at,
)
from factories import tiny_config, tiny_r3gan_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(("images_seen", "expected"), [
    (-10, 2.0), (0, 2.0), (25, 2.0 - 0.9 * (1 - math.cos(math.pi / 4))), (50, 1.1), (100, 0.2), (150, 0.2),
])
def test_cosine_ramp_values(images_seen: float, expected: float) -> None:
    assert cosine_ramp(2.0, 0.2, images_seen, 100) == pytest.approx(expected)


def test_a_zero_length_ramp_is_its_end_value() -> None:
    assert cosine_ramp(0.0, 0.3, 0, 0) == 0.3


def test_ema_beta_from_half_life() -> None:
    assert ema_beta(64, 64) == pytest.approx(0.5)
    assert ema_beta(64, 6400) ** 100 == pytest.approx(0.5)  # half the weight after half_life images
    assert ema_beta(64, 0) == 0.0  # at the start of the ramp G_ema copies G


def test_r3gan_preset_values_at_given_images_seen() -> None:
    """r3gan (64 px) over a 40 kimg ramp: their FFHQ-64 ramps, the EMA half-life 1/40 of the ramp."""
    config = build_config("r3gan", {"schedule": {"ramp_kimg": 40}, "train": {"batch_size": 64}})
    assert values_at(config, 0) == pytest.approx({"lr_g": 2e-4, "lr_d": 2e-4, "beta2": 0.9, "gamma": 2.0,
                                                  "ema_half_life_kimg": 0.0, "ema_beta": 0.0, "aug_p": 0.0})
    half = values_at(config, 20_000)  # half-way: the mean of start and end
    assert half == pytest.approx({"lr_g": 1.25e-4, "lr_d": 1.25e-4, "beta2": 0.945, "gamma": 1.1,
                                  "ema_half_life_kimg": 0.5, "ema_beta": 0.5 ** (64 / 500), "aug_p": 0.15})
    quarter = values_at(config, 10_000)  # (1 - cos(π/4))/2 of the way
    w = (1 - math.cos(math.pi / 4)) / 2
    assert quarter["gamma"] == pytest.approx(2.0 - 1.8 * w) and quarter["beta2"] == pytest.approx(0.9 + 0.09 * w)
    end = values_at(config, 60_000)
    assert end == pytest.approx({"lr_g": 5e-5, "lr_d": 5e-5, "beta2": 0.99, "gamma": 0.2,
                                 "ema_half_life_kimg": 1.0, "ema_beta": 0.5 ** (64 / 1000), "aug_p": 0.3})


def test_other_families_ramp_nothing(tiny_dataset: Path) -> None:
    config = tiny_config(tiny_dataset)
    assert values_at(config, 1000) == {} and not resolve_ramp(config, 100)
    assert config.schedule.ramp_kimg == 0


def test_ramp_length_from_the_run_or_the_budget(tiny_dataset: Path) -> None:
    config = tiny_r3gan_config(tiny_dataset, steps=100)
    assert resolve_ramp(config, 100) and config.schedule.ramp_kimg == pytest.approx(0.8)  # half of 100 × 16
    assert not resolve_ramp(config, 400)  # resolved once: a longer resumed run keeps it
    budget = tiny_r3gan_config(tiny_dataset, steps=BUDGET_ONLY_STEPS, time_budget_s=60.0)
    assert resolve_ramp(budget, BUDGET_ONLY_STEPS) and budget.schedule.ramp_kimg == BUDGET_RAMP_KIMG


def test_lr_and_beta2_reach_the_optimisers() -> None:
    net = nn.Linear(1, 1)
    optG, optD = torch.optim.Adam(net.parameters(), betas=(0.0, 0.999)), torch.optim.Adam(net.parameters())
    apply_to_optimizers({"lr_g": 1e-4, "lr_d": 3e-4, "beta2": 0.95}, optG, optD)
    assert optG.param_groups[0]["lr"] == 1e-4 and optG.param_groups[0]["betas"] == (0.0, 0.95)
    assert optD.param_groups[0]["lr"] == 3e-4 and optD.param_groups[0]["betas"] == (0.9, 0.95)


def test_bad_ramps_are_user_errors(tiny_dataset: Path) -> None:
    config = tiny_r3gan_config(tiny_dataset)
    config.schedule.aug_p = [0.0, 1.5]
    with pytest.raises(FaceganError, match="aug_p"):
        check_schedule(config.schedule)
    config = tiny_r3gan_config(tiny_dataset)
    config.train.diffaugment = ""
    with pytest.raises(FaceganError, match="--diffaugment"):
        check_config(config)


def test_a_run_applies_and_logs_the_ramps(tiny_dataset: Path, tmp_path: Path) -> None:
    train(tiny_r3gan_config(tiny_dataset, steps=4, log_every=4), tmp_path / "run", show_progress=False)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["schedule"]["ramp_kimg"] == pytest.approx(0.032)  # half of 4 × 16 images, written at the start
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    config = tiny_r3gan_config(tiny_dataset)
    config.schedule.ramp_kimg = 0.032
    for line in lines:  # every line: the values its step used, at the images seen before it
        expected = values_at(config, line["images_seen"] - 16)
        assert {k: line[k] for k in expected} == pytest.approx(expected)
    assert lines[0]["aug_p"] == 0.0 and lines[-1]["gamma"] == pytest.approx(0.05)
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["optG"]["param_groups"][0]["betas"][0] == 0.0 and "G_ema" in ckpt


def test_resume_mid_ramp_is_exact(tiny_dataset: Path, tmp_path: Path) -> None:
    """4 steps straight = 2 steps, resume, 2 steps, with every ramp half-way through at the resume point."""
    ramp = {"ramp_kimg": 0.064}  # 4 steps of 16 images: the ramps span the resume at step 2
    straight = tiny_r3gan_config(tiny_dataset, steps=4, checkpoint_every=2, seed=5)
    straight.schedule.ramp_kimg = ramp["ramp_kimg"]
    train(straight, tmp_path / "straight", show_progress=False)
    half = tiny_r3gan_config(tiny_dataset, steps=2, checkpoint_every=2, seed=5)
    half.schedule.ramp_kimg = ramp["ramp_kimg"]
    train(half, tmp_path / "resumed", show_progress=False)
    train(resume_config(tmp_path / "resumed", steps=4), tmp_path / "resumed", resume=True, show_progress=False)
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    assert a["step"] == b["step"] == 4
    for net in ("G", "D", "G_ema"):
        for name, tensor in a[net].items():
            assert torch.equal(tensor, b[net][name]), f"{net}.{name} differs after resume"
    assert a["optD"]["param_groups"][0]["lr"] == b["optD"]["param_groups"][0]["lr"]
    lines = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert 0 < lines[2]["aug_p"] < 0.3  # the resumed step is mid-ramp
