"""The stabilisers: labels, instance noise, DiffAugment, minibatch stddev, spectral norm, EMA, n_critic, clipping."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from facegan.cli.main import build_parser
from facegan.cli.train import overrides_from_args
from facegan.config import BUDGET_ONLY_STEPS, ModelConfig, RunConfig, TrainConfig
from facegan.errors import FaceganError
from facegan.generation.sample import load_generator
from facegan.models import build_models
from facegan.models.layers import MinibatchStdDev, apply_spectral_norm
from facegan.models.presets import build_config
from facegan.run.checkpoint import load_checkpoint
from facegan.training.augment import (
    add_instance_noise,
    diff_augment,
    instance_noise_sigma,
    rand_cutout,
    rand_translation,
)
from facegan.training.configure import check_config
from facegan.training.ema import ema_decay_at, make_ema, update_ema
from facegan.training.loop import train
from facegan.training.optim import build_optimizers
from facegan.training.step import StepContext, gan_step
from facegan.training.targets import d_targets
from facegan.utils.images import make_grid, to_uint8
from factories import tiny_config


def test_label_targets() -> None:
    assert d_targets(TrainConfig(), 4, torch.device("cpu")) == (1.0, 0.0)
    real, fake = d_targets(TrainConfig(label_smoothing=0.1), 4, torch.device("cpu"))
    assert real == pytest.approx(0.9) and fake == 0.0  # one-sided: fake stays 0
    cfg = TrainConfig(label_noise=0.05)
    real, fake = d_targets(cfg, 1000, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert real.shape == fake.shape == (1000,)
    assert real.min() >= 0.95 and real.max() <= 1.0
    assert fake.min() >= 0.0 and fake.max() <= 0.05
    assert real.mean().item() == pytest.approx(0.975, abs=0.005)
    again, _ = d_targets(cfg, 1000, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert torch.equal(real, again)


def test_instance_noise_schedule_and_size() -> None:
    cfg = TrainConfig(instance_noise=0.1, instance_noise_steps=100)
    assert [instance_noise_sigma(cfg, s) for s in (0, 50, 100, 500)] == pytest.approx([0.1, 0.05, 0.0, 0.0])
    assert instance_noise_sigma(TrainConfig(instance_noise=0.1), 10**6) == 0.1  # no horizon: constant
    x = torch.zeros(64, 3, 16, 16)
    assert add_instance_noise(x, 0.0) is x
    assert add_instance_noise(x, 0.1, torch.Generator().manual_seed(0)).std().item() == pytest.approx(0.1, rel=0.03)


def test_translation_moves_content_by_at_most_an_eighth() -> None:
    x = torch.zeros(32, 1, 32, 32)
    x[:, :, 16, 16] = 1.0
    out = rand_translation(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape
    assert torch.all(out.flatten(1).sum(1) == 1)  # the dot stays on the image (max shift 4 px)
    ys, xs = (out[:, 0] == 1).nonzero()[:, 1], (out[:, 0] == 1).nonzero()[:, 2]
    assert (ys - 16).abs().max() <= 4 and (xs - 16).abs().max() <= 4
    assert len({(int(a), int(b)) for a, b in zip(ys, xs, strict=True)}) > 5  # shifts differ per image


def test_cutout_zeros_one_square_of_half_size() -> None:
    x = torch.ones(16, 3, 32, 32)
    out = rand_cutout(x, torch.Generator().manual_seed(2))
    for image in out:
        zeros = (image[0] == 0).nonzero()
        assert 0 < len(zeros) <= 16 * 16
        rows, cols = zeros[:, 0], zeros[:, 1]
        assert len(zeros) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # one rectangle
        assert torch.equal(image[0] == 0, image[2] == 0)  # all channels


def test_diffaugment_is_differentiable_and_reproducible() -> None:
    x = (torch.rand(8, 3, 16, 16) * 2 - 1).requires_grad_(True)
    out = diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(3))
    again = diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(3))
    assert out.shape == x.shape and torch.equal(out, again)
    assert not torch.allclose(out, x)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_minibatch_stddev_by_hand() -> None:
    x = torch.tensor([0.0, 0.0, 2.0, 2.0]).view(4, 1, 1, 1).expand(4, 1, 2, 2)
    out = MinibatchStdDev(group_size=4)(x)
    assert out.shape == (4, 2, 2, 2)
    assert torch.allclose(out[:, 1], torch.ones(4, 2, 2), atol=1e-6)  # population std of (0, 0, 2, 2) is 1
    same = MinibatchStdDev()(torch.ones(6, 3, 4, 4))  # groups of 3 (6 is not a multiple of 4)
    assert same.shape == (6, 4, 4, 4) and same[:, 3].max() < 1e-3


def test_spectral_norm_bounds_the_largest_singular_value() -> None:
    torch.manual_seed(0)
    net = apply_spectral_norm(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Linear(8, 4)))
    for _ in range(30):  # power iterations happen in training-mode forwards
        net[1](torch.randn(2, 8))
        net[0](torch.randn(2, 3, 5, 5))
    for layer in net:
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2).item()
        assert sigma == pytest.approx(1.0, abs=0.02)
    netD = build_models(ModelConfig(resolution=32, ngf=8, ndf=8, spectral_norm=True, d_norm="none"))[1]
    assert all(hasattr(m, "parametrizations") for m in netD.modules() if isinstance(m, nn.Conv2d))


def test_ema_update_by_hand() -> None:
    net = nn.Sequential(nn.Linear(1, 1), nn.BatchNorm1d(1))
    ema = make_ema(net)
    assert not any(p.requires_grad for p in ema.parameters()) and not ema.training
    with torch.no_grad():
        ema[0].weight.fill_(0.0)
        net[0].weight.fill_(1.0)
        net[1].running_mean.fill_(3.0)
    update_ema(ema, net, 0.9)
    assert ema[0].weight.item() == pytest.approx(0.1)
    update_ema(ema, net, 0.9)
    assert ema[0].weight.item() == pytest.approx(0.19)
    assert ema[1].running_mean.item() == 3.0  # buffers are copied
    # Warm-up: after t updates the decay is min(d, (1 + t)/(10 + t)): 0.1 at first, d once t ≥ 80 for d = 0.9.
    assert [ema_decay_at(0.999, t) for t in (0, 1, 8, 10**6)] == pytest.approx([0.1, 2 / 11, 0.5, 0.999])
    assert ema_decay_at(0.9, 100) == 0.9 and ema_decay_at(0.9, None) == 0.9
    update_ema(ema, net, 0.999, updates=0)  # 0.19 → 0.1·0.19 + 0.9·1
    assert ema[0].weight.item() == pytest.approx(0.919)


def test_ema_in_training_differs_from_g_tracks_it_and_is_used(tiny_dataset: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_dataset, ema_decay=0.5)
    torch.manual_seed(cfg.train.seed)  # train() builds G from the same seed: its initial weights
    expected = {k: v.clone().float() for k, v in build_models(cfg.model)[0].state_dict().items()}

    def follow(run: object) -> None:  # e ← d·e + (1 - d)·G after every step, d = min(½, (1 + t)/(10 + t))
        d = min(0.5, run.step / (9.0 + run.step))  # t = run.step - 1 updates came before this one
        for k, v in run.netG.state_dict().items():
            expected[k] = d * expected[k] + (1 - d) * v.float() if v.is_floating_point() and "running" not in k \
                else v.clone().float()

    train(cfg, tmp_path / "run", hooks=[follow], show_progress=False)
    ckpt = load_checkpoint(tmp_path / "run")
    ema, raw = ckpt["G_ema"], ckpt["G"]
    for k in ema:
        assert torch.allclose(ema[k].float(), expected[k], atol=1e-6), k
    assert any(not torch.allclose(ema[k], raw[k]) for k in ema if ema[k].is_floating_point())  # differs from G
    # Sampling and the fixed-noise grid use G_ema.
    gen = load_generator(tmp_path / "run")
    assert all(torch.equal(gen.netG.state_dict()[k], ema[k]) for k in ema)
    netG = build_models(cfg.model)[0]
    netG.load_state_dict(ema)
    with torch.no_grad():
        grid = make_grid(to_uint8(netG.eval()(ckpt["fixed_latents"])), nrow=8)
    with Image.open(tmp_path / "run" / "samples" / "latest.png") as png:
        assert np.array_equal(np.asarray(png.convert("RGB")), grid)


def test_ema_survives_resume(tiny_dataset: Path, tmp_path: Path) -> None:
    train(tiny_config(tiny_dataset, ema_decay=0.9), tmp_path / "full", show_progress=False)
    train(tiny_config(tiny_dataset, ema_decay=0.9, steps=3), tmp_path / "half", show_progress=False)
    cfg = load_checkpoint(tmp_path / "half")["config"]
    cfg.train.steps = 6
    train(cfg, tmp_path / "half", resume=True, show_progress=False)
    full, half = load_checkpoint(tmp_path / "full")["G_ema"], load_checkpoint(tmp_path / "half")["G_ema"]
    assert all(torch.allclose(full[k], half[k], atol=1e-6) for k in full)


def _ctx(cfg: RunConfig) -> StepContext:
    torch.manual_seed(0)
    netG, netD = build_models(cfg.model)
    optG, optD = build_optimizers(cfg, netG, netD)
    noise = torch.Generator().manual_seed(1)
    return StepContext(netG=netG, netD=netD, optG=optG, optD=optD, config=cfg, noise=noise,
                       latents=lambda n: torch.randn(n, cfg.model.nz, generator=noise))


def test_n_critic_steps_g_every_nth_step() -> None:
    cfg = build_config("wgan-gp", {"model": {"resolution": 32, "nz": 8, "ngf": 8, "ndf": 8}})
    assert cfg.train.n_critic == 5
    ctx = _ctx(cfg)
    real = torch.rand(4, 3, 32, 32) * 2 - 1
    g_changed = []
    for step in range(10):
        before = [p.clone() for p in ctx.netG.parameters()]
        ctx.step = step
        out = gan_step(ctx, real)
        assert torch.isfinite(out["loss_d"]) and torch.isfinite(out["loss_g"])
        g_changed.append(any(not torch.equal(a, b) for a, b in zip(before, ctx.netG.parameters(), strict=True)))
    assert g_changed == [False, False, False, False, True] * 2


def test_every_stabiliser_at_once_gives_finite_losses_and_g_gradients() -> None:
    cfg = build_config("dcgan", {
        "model": {"resolution": 32, "nz": 8, "ngf": 8, "ndf": 8, "minibatch_std": True, "spectral_norm": True},
        "train": {"label_smoothing": 0.1, "label_noise": 0.05, "instance_noise": 0.1, "r1_gamma": 1.0,
                  "feature_matching": True, "diffaugment": "color,translation,cutout"},
    })
    check_config(cfg)
    ctx = _ctx(cfg)
    out = gan_step(ctx, torch.rand(4, 3, 32, 32) * 2 - 1)
    assert all(torch.isfinite(v) for v in out.values())
    assert all(p.grad is not None for p in ctx.netG.parameters())


def test_gradient_value_clipping_and_rmsprop() -> None:
    cfg = build_config("dense128", {"model": {"ngf": 4, "ndf": 4}, "optim": {"grad_clip_value": 0.01}})
    netG, netD = build_models(cfg.model)
    optG, _ = build_optimizers(cfg, netG, netD)
    assert isinstance(optG, torch.optim.RMSprop)
    assert optG.defaults["alpha"] == 0.9 and optG.defaults["eps"] == 1e-7 and optG.defaults["lr"] == 1e-4
    for p in netG.parameters():
        p.grad = torch.full_like(p, 5.0)
    optG.step()
    assert all(p.grad.abs().max().item() == pytest.approx(0.01) for p in netG.parameters())


@pytest.mark.parametrize(("overrides", "message"), [
    ({"train": {"loss": "hinge", "label_smoothing": 0.1}}, "needs a loss with labels"),
    ({"train": {"loss": "wgan-gp"}, "model": {"d_norm": "batch"}}, "BatchNorm"),
    ({"train": {"diffaugment": "color,zoom"}}, "unknown DiffAugment zoom"),
    ({"train": {"ema_decay": 1.0}}, "ema_decay"),
    ({"train": {"n_critic": 0}}, "n_critic"),
    ({"train": {"loss": "nope"}}, "unknown loss"),
])
def test_impossible_combinations_are_user_errors(overrides: dict, message: str) -> None:
    with pytest.raises(FaceganError, match=message):
        check_config(build_config("dcgan", overrides))


def test_time_budget_ends_a_run_as_finished(tiny_dataset: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_dataset, steps=10_000, time_budget_s=1e-6)
    result = train(cfg, tmp_path / "run", show_progress=False)
    assert result.status == "finished" and result.step == 1


def test_cli_options_reach_the_config() -> None:
    args = build_parser().parse_args([
        "train", "--data", "d", "--out", "o", "--loss", "hinge", "--ttur", "--ema", "0.999", "--spectral-norm",
        "--d-norm", "none", "--diffaugment", "color,cutout", "--n-critic", "2", "--leaky-slope", "0.1",
        "--optimizer", "rmsprop", "--grad-clip-value", "1", "--time-budget-minutes", "2", "--penalty-every", "4",
    ])
    o = overrides_from_args(args)
    assert (o["optim"]["lr_g"], o["optim"]["lr_d"], o["optim"]["name"]) == (1e-4, 4e-4, "rmsprop")
    assert o["train"]["loss"] == "hinge" and o["train"]["ema_decay"] == 0.999 and o["train"]["n_critic"] == 2
    assert o["train"]["time_budget_s"] == 120.0 and o["train"]["diffaugment"] == "color,cutout"
    assert o["train"]["penalty_every"] == 4
    assert o["train"]["steps"] == BUDGET_ONLY_STEPS  # a budget alone sets the length
    capped = overrides_from_args(build_parser().parse_args(["train", "--time-budget-minutes", "1", "--steps", "5"]))
    assert capped["train"]["steps"] == 5 and capped["train"]["time_budget_s"] == 60.0
    assert o["model"]["spectral_norm"] is True and o["model"]["d_norm"] == "none" and o["model"]["leaky_slope"] == 0.1
    explicit = overrides_from_args(build_parser().parse_args(["train", "--ttur", "--lr-d", "3e-4"]))
    assert (explicit["optim"]["lr_g"], explicit["optim"]["lr_d"]) == (1e-4, 3e-4)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--loss", "nope"])
    assert json.dumps(o)  # plain values only



@pytest.mark.parametrize(("family", "resolution"), [("dcgan", 32), ("dense128", 128), ("began", 32)])
def test_spectral_norm_on_every_family(family: str, resolution: int) -> None:
    cfg = ModelConfig(family=family, resolution=resolution, nz=8, ngf=4, ndf=4, spectral_norm=True,
                      options={"bottleneck": 4} if family == "began" else {})
    netD = build_models(cfg)[1]
    layers = [m for m in netD.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers and all(hasattr(m, "parametrizations") for m in layers)


def test_diffaugment_with_a_per_image_probability() -> None:
    """p = 1 is the plain DiffAugment (same draws); p < 1 keeps some images as they are, drawn from the
    generator after the augmentation's own draws; p = 0 draws nothing."""
    from facegan.training.augment import diff_augment

    x = torch.rand(64, 3, 8, 8)
    always = diff_augment(x, "color,translation", torch.Generator().manual_seed(1))
    assert torch.equal(diff_augment(x, "color,translation", torch.Generator().manual_seed(1), p=1.0), always)
    gen = torch.Generator().manual_seed(1)
    assert torch.equal(diff_augment(x, "color,translation", gen, p=0.0), x)
    assert torch.equal(gen.get_state(), torch.Generator().manual_seed(1).get_state())
    mixed = diff_augment(x, "color,translation", torch.Generator().manual_seed(1), p=0.3)
    kept = [torch.equal(mixed[i], x[i]) for i in range(64)]
    augmented = [torch.equal(mixed[i], always[i]) for i in range(64)]
    assert all(k or a for k, a in zip(kept, augmented, strict=True))
    assert 5 <= sum(augmented) <= 35  # ~0.3 × 64
    again = diff_augment(x, "color,translation", torch.Generator().manual_seed(1), p=0.3)
    assert torch.equal(mixed, again)


def test_lazy_penalties_weight_every_kth_step_and_skip_the_others() -> None:
    def d_loss(step: int, gamma: float, every: int) -> float:
        cfg = build_config("r3gan-cpu32", {
            "model": {"nz": 8, "options": {"widths": [16, 16, 8, 8], "blocks": [1], "channels_per_group": 8}},
            "train": {"r1_gamma": gamma, "penalty_every": every}})
        ctx = _ctx(cfg)
        ctx.step = step
        return gan_step(ctx, torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1)[
            "loss_d"].item()

    # Step 0 of every 3rd: the penalties weighted 3γ; step 1: none at all (as with γ = 0).
    assert d_loss(0, 0.5, 3) == pytest.approx(d_loss(0, 1.5, 1), rel=1e-5)
    assert d_loss(0, 0.5, 3) > d_loss(0, 0.0, 1) + 1e-4
    assert d_loss(1, 0.5, 3) == pytest.approx(d_loss(1, 0.0, 1), rel=1e-6)
    with pytest.raises(FaceganError, match="penalty_every"):
        check_config(build_config("r3gan-cpu32", {"train": {"penalty_every": 0}}))
