"""Conditional wrappers around every registered family: shapes, labels that matter, one training step each."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from facegan.models import FAMILIES, build_models, get_family
from facegan.models.conditional import (
    ConditionalGenerator,
    InputConditionalDiscriminator,
    ProjectionDiscriminator,
    unknown_labels,
)
from facegan.models.presets import build_config
from facegan.training.conditioning import conditional_step
from facegan.training.optim import build_optimizers
from facegan.training.step import StepContext, gan_step

pytestmark = pytest.mark.usefixtures("one_thread")

LEVELS = [[0, 1, 2], [-1, 1]]
SIZES = {"dcgan": 32, "began": 32, "dense128": 128, "r3gan": 32}
PRESETS = {"began": "began", "dense128": "dense128", "r3gan": "r3gan-cpu32"}  # else dcgan
OPTIONS = {"began": {"bottleneck": 8}, "r3gan": {"options": {"widths": [16, 16, 8, 8], "blocks": [1],
                                                             "channels_per_group": 8}}}


def _config(family: str):
    overrides = {
        "model": {"family": family, "resolution": SIZES[family], "channels": 3, "nz": 8, "ngf": 8, "ndf": 8,
                  **OPTIONS.get(family, {}), "condition": ["shade", "flag"], "condition_levels": LEVELS,
                  "condition_embed": 4},
        "train": {"batch_size": 4, "device": "cpu"},
    }
    return build_config(PRESETS.get(family, "dcgan"), overrides)


def test_every_family_has_a_size_here() -> None:
    assert set(SIZES) == set(FAMILIES), "a new family needs a resolution in this test"


@pytest.mark.parametrize("family", sorted(SIZES))
def test_conditional_models_of_every_family(family: str) -> None:
    torch.manual_seed(0)
    cfg = _config(family)
    netG, netD = build_models(cfg.model)
    assert isinstance(netG, ConditionalGenerator)
    expected_d = InputConditionalDiscriminator if family == "began" else ProjectionDiscriminator
    assert isinstance(netD, expected_d)
    res = SIZES[family]
    z = torch.randn(4, cfg.model.nz)
    a = torch.tensor([[0, 0], [1, 1], [2, 0], [3, 2]])  # the last row: both unknown
    netG.eval()
    with torch.no_grad():
        fake = netG(z, a)
        assert fake.shape == (4, 3, res, res)
        assert not torch.allclose(fake, netG(z, (a + 1) % 3))  # the labels change the faces
        assert torch.equal(netG(z), netG(z, unknown_labels(cfg.model, 4)))  # no labels: all unknown
        assert netD(fake, a).shape == netD(fake).shape
    netG.train()

    # One step of the family's own step function, fed the labels of a batch.
    optG, optD = build_optimizers(cfg, netG, netD)
    ctx = StepContext(netG=netG, netD=netD, optG=optG, optD=optD, config=cfg,
                      latents=lambda n: torch.randn(n, cfg.model.nz))
    batches = SimpleNamespace(batch_labels=a)
    step = conditional_step(get_family(family).step or gan_step, batches, [3, 2], dropout=0.0)
    before = [t.detach().clone() for t in netD.parameters()]
    values = step(ctx, torch.rand(4, 3, res, res) * 2 - 1)
    assert values and all(bool(torch.isfinite(v)) for v in values.values())
    assert any(not torch.equal(b, p) for b, p in zip(before, netD.parameters(), strict=True))
    if family != "began":  # the projection starts at zero and learns from the first step
        assert any(t.weight.abs().sum() > 0 for t in netD.project.tables)


def test_weights_round_trip_into_a_fresh_build() -> None:
    cfg = _config("dcgan")
    netG, netD = build_models(cfg.model)
    again_G, again_D = build_models(cfg.model)
    again_G.load_state_dict(netG.state_dict())
    again_D.load_state_dict(netD.state_dict())
    embed = {k for k in netG.state_dict() if k.startswith("embed.")}
    assert embed == {"embed.tables.0.weight", "embed.tables.1.weight"}


def test_projection_feature_size_probe_leaves_batchnorm_alone() -> None:
    cfg = _config("dcgan")
    _, netD = build_models(cfg.model)
    stats = [m.running_mean for m in netD.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert stats and all(bool((s == 0).all()) for s in stats)
    assert netD.training
