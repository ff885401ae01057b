"""BEGAN: the autoencoder D, G's shapes, the equilibrium k_t and M_global, checkpointed k_t."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from facegan.config import ModelConfig
from facegan.errors import FaceganError
from facegan.models import build_models, count_parameters, get_family
from facegan.models.began import began_step, reconstruction_loss, update_k
from facegan.models.presets import build_config
from facegan.run.checkpoint import load_checkpoint
from facegan.training.loop import train
from facegan.training.step import StepContext


def tiny_began(data: Path, **train_overrides: object) -> object:
    return build_config("began", {
        "data": {"path": str(data)},
        "model": {"resolution": 32, "channels": 3, "nz": 8, "ngf": 8, "ndf": 8, "options": {"bottleneck": 8}},
        "train": {"batch_size": 16, "steps": 6, "log_every": 2, "sample_every": 3, "checkpoint_every": 3,
                  "device": "cpu", **train_overrides},
    })


def test_parameter_counts_of_the_preset() -> None:
    cfg = build_config("began").model
    cfg.resolution = 64
    netG, netD = build_models(cfg)
    assert (cfg.nz, cfg.ngf, cfg.ndf, cfg.options["bottleneck"], cfg.latent) == (64, 64, 64, 64, "uniform")
    assert count_parameters(netG) == 673_987
    assert count_parameters(netD) == 4_675_395


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_shapes_and_architecture(resolution: int) -> None:
    cfg = ModelConfig(family="began", resolution=resolution, channels=3, nz=8, ngf=4, ndf=4, options={"bottleneck": 6})
    netG, netD = build_models(cfg)
    with torch.no_grad():
        images = netG(torch.rand(3, 8) * 2 - 1)
        recon = netD(images)
        code = netD.encoder(images)
    assert images.shape == recon.shape == (3, 3, resolution, resolution)
    assert code.shape == (3, 6)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in netD.modules())
    assert all(isinstance(m, nn.ELU) for m in netD.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.ELU)))
    # Filters grow linearly with each down-sampling: n, 2n, ... scales·n at 8×8.
    scales = {32: 3, 64: 4, 128: 5}[resolution]
    assert netD.encoder.fc.in_features == scales * 4 * 8 * 8
    # Skip connections: from the second scale on, each block takes the upsampled h0 as well (2n channels in).
    assert [block[0].in_channels for block in netG.blocks] == [4] + [8] * (scales - 1)


def test_unsupported_resolution_is_a_user_error() -> None:
    with pytest.raises(FaceganError, match="32, 64, 128"):
        build_models(ModelConfig(family="began", resolution=48))


def test_update_k_hand_computed() -> None:
    # k = 0.3, γ = 0.5, λ_k = 0.1, L(x) = 0.5, L(G(z)) = 0.2: 0.3 + 0.1·(0.25 - 0.2) = 0.305.
    k = update_k(torch.tensor(0.3), torch.tensor(0.5), torch.tensor(0.2), gamma=0.5, lambda_k=0.1)
    assert k.item() == pytest.approx(0.305)
    assert update_k(torch.tensor(0.999), torch.tensor(1.0), torch.tensor(0.0), 0.5, 1.0).item() == 1.0  # clipped
    assert update_k(torch.tensor(0.001), torch.tensor(0.0), torch.tensor(1.0), 0.5, 1.0).item() == 0.0


class _ConstantG(nn.Module):
    """G(z) = 0.2 everywhere (a bias it can learn)."""

    def __init__(self) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.tensor(0.2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.value.expand(z.shape[0], 1, 4, 4)


class _ScaleD(nn.Module):
    """D(v) = w·v with w = 0 at the start, so L(v) = mean |v|."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w * x


def test_one_step_follows_the_equations_by_hand() -> None:
    cfg = build_config("began", {"model": {"options": {"gamma": 0.5, "lambda_k": 0.1}}})
    netG, netD = _ConstantG(), _ScaleD()
    ctx = StepContext(netG=netG, netD=netD, optG=torch.optim.SGD(netG.parameters(), lr=0.0),
                      optD=torch.optim.SGD(netD.parameters(), lr=0.0), config=cfg,
                      latents=lambda n: torch.zeros(n, 1), state={"k_t": torch.tensor(0.3)})
    real = torch.full((2, 1, 4, 4), 0.5)
    out = began_step(ctx, real)
    # L(x) = 0.5, L(G(z)) = 0.2: L_D = 0.5 - 0.3·0.2 = 0.44, L_G = 0.2, M_global = 0.5 + |0.25 - 0.2| = 0.55.
    assert out["l_x"].item() == pytest.approx(0.5)
    assert out["l_g_z"].item() == pytest.approx(0.2)
    assert out["loss_d"].item() == pytest.approx(0.44)
    assert out["loss_g"].item() == pytest.approx(0.2)
    assert out["k_t"].item() == pytest.approx(0.3)  # the k_t this step used
    assert out["m_global"].item() == pytest.approx(0.55)
    assert ctx.state["k_t"].item() == pytest.approx(0.305)  # k_{t+1}, kept for the next step
    # With lr 0 nothing moved; the gradients are the equations': dL_D/dw = -mean|x|·sign... check G's only.
    assert netG.value.grad.item() == pytest.approx(1.0)  # d/dc mean|c - 0·c| = 1 for c > 0


def test_reconstruction_loss_is_mean_absolute_error() -> None:
    x = torch.tensor([[1.0, -1.0], [0.5, 0.0]])
    assert reconstruction_loss(x, torch.zeros_like(x)).item() == pytest.approx(0.625)


def test_training_logs_k_t_and_m_global_and_checkpoints_k_t(tiny_dataset: Path, tmp_path: Path) -> None:
    cfg = tiny_began(tiny_dataset, began_lambda_k=0.5)  # a large λ_k drives k_t to its bounds
    assert get_family("began").step is began_step
    result = train(cfg, tmp_path / "run", show_progress=False)
    assert result.status == "finished"
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 6
    for r in records:
        for key in ("loss_d", "loss_g", "l_x", "l_g_z", "k_t", "m_global"):
            assert r[key] is not None and r[key] == r[key], key
        assert 0.0 <= r["k_t"] <= 1.0
        assert r["m_global"] == pytest.approx(r["l_x"] + abs(0.4 * r["l_x"] - r["l_g_z"]), rel=1e-4)
    for before, after in itertools.pairwise(records):
        expected = min(1.0, max(0.0, before["k_t"] + 0.5 * (0.4 * before["l_x"] - before["l_g_z"])))
        assert after["k_t"] == pytest.approx(expected, abs=1e-5)
    ckpt = load_checkpoint(tmp_path / "run")
    last = records[-1]
    expected_next = min(1.0, max(0.0, last["k_t"] + 0.5 * (0.4 * last["l_x"] - last["l_g_z"])))
    assert ckpt["state"]["k_t"].item() == pytest.approx(expected_next, abs=1e-5)


def test_resume_continues_with_the_checkpointed_k_t(tiny_dataset: Path, tmp_path: Path) -> None:
    train(tiny_began(tiny_dataset, steps=6), tmp_path / "full", show_progress=False)
    train(tiny_began(tiny_dataset, steps=3), tmp_path / "half", show_progress=False)
    cfg = load_checkpoint(tmp_path / "half")["config"]
    cfg.train.steps = 6
    train(cfg, tmp_path / "half", resume=True, show_progress=False)
    full = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    half = [json.loads(x) for x in (tmp_path / "half" / "metrics.jsonl").read_text().splitlines()]
    assert [r["k_t"] for r in half] == pytest.approx([r["k_t"] for r in full], abs=1e-6)
    assert half[4]["k_t"] > 0  # resumed with k_t, not from 0


def test_began_loss_needs_the_began_model(tiny_dataset: Path, tmp_path: Path) -> None:
    cfg = build_config("dcgan", {"data": {"path": str(tiny_dataset)}, "model": {"resolution": 32},
                                 "train": {"loss": "began", "device": "cpu"}})
    with pytest.raises(FaceganError, match="began"):
        train(cfg, tmp_path / "run", show_progress=False)
    bad = tiny_began(tiny_dataset, diffaugment="color")
    with pytest.raises(FaceganError, match="BEGAN"):
        train(bad, tmp_path / "run2", show_progress=False)


@pytest.mark.parametrize(("preset", "loss"), [("began", "bce"), ("began", "rpgan"), ("dcgan", "began"),
                                              ("r3gan-cpu32", "began")])
def test_began_and_its_loss_go_together_only(preset: str, loss: str) -> None:
    from facegan.models import check_model_config

    config = build_config(preset, {"train": {"loss": loss}, "model": {"d_norm": "layer"} if preset == "dcgan" else {}})
    with pytest.raises(FaceganError, match="the began loss and the began model go together: use --model began"):
        check_model_config(config)
    check_model_config(build_config("began"))  # the pair itself is fine
