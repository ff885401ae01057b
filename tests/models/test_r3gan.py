"""R3GAN's networks as the paper and its code build them."""

from __future__ import annotations

import io
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from facegan.errors import FaceganError
from facegan.models import r3gan

TINY = {"widths": [32, 32, 16, 16, 8, 8], "channels_per_group": 8}  # sliced to the stage count below


def _cfg(resolution: int = 64, channels: int = 3, nz: int = 16, **options: object) -> SimpleNamespace:
    return SimpleNamespace(resolution=resolution, channels=channels, nz=nz, options=options)


def _tiny(resolution: int, channels: int = 3) -> SimpleNamespace:
    stages = int(math.log2(resolution)) - 1
    return _cfg(resolution, channels, widths=TINY["widths"][:stages], channels_per_group=8)


def _count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


@pytest.mark.parametrize("resolution", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(resolution: int, channels: int) -> None:
    cfg = _tiny(resolution, channels)
    netG, netD = r3gan.build_generator(cfg), r3gan.build_discriminator(cfg)
    z = torch.randn(3, cfg.nz)
    with torch.no_grad():
        images = netG(z)
        logits, features = netD(images, with_features=True)
    assert images.shape == (3, channels, resolution, resolution)
    assert images.std() > 0
    assert netG(z.view(3, cfg.nz, 1, 1)).shape == images.shape  # DCGAN-style N×nz×1×1 latents too
    assert logits.shape == (3,) and netD(images).shape == (3,)
    assert features.shape == (3, cfg.options["widths"][0])  # the 4×4 stage width, after the depthwise basis


def _preset_cfg(name: str) -> SimpleNamespace:
    model = r3gan.FAMILY.presets[name]["model"]
    return _cfg(model["resolution"], 3, model["nz"], **model["options"])


@pytest.mark.parametrize(("name", "g_params", "d_params"), [
    ("r3gan32", 20_732_160, 20_683_776), ("r3gan", 22_429_824, 22_381_440), ("r3gan128", 22_910_016, 22_861_632),
])
def test_paper_preset_parameter_counts(name: str, g_params: int, d_params: int) -> None:
    cfg = _preset_cfg(name)
    assert _count(r3gan.build_generator(cfg)) == g_params
    assert _count(r3gan.build_discriminator(cfg)) == d_params


@pytest.mark.parametrize(("name", "g_params", "d_params"), [
    ("r3gan-cpu64", 893_616, 877_488), ("r3gan-cpu32", 893_152, 877_024),
])
def test_cpu_preset_parameter_counts_and_shapes(name: str, g_params: int, d_params: int) -> None:
    cfg = _preset_cfg(name)
    netG, netD = r3gan.build_generator(cfg), r3gan.build_discriminator(cfg)
    assert (_count(netG), _count(netD)) == (g_params, d_params)
    with torch.no_grad():
        images = netG(torch.randn(2, cfg.nz))
    assert images.shape == (2, 3, cfg.resolution, cfg.resolution) and netD(images).shape == (2,)


def test_paper_ffhq64_widths_and_groups() -> None:
    """FFHQ-64 in their train.py: widths 3/4·[1024]*4 + [384], 2 blocks each, cardinality 96 (48) at 2C."""
    options = r3gan.R3GANOptions()
    assert options.stage_widths(64) == (768, 768, 768, 768, 384)
    assert options.stage_blocks(5) == (2, 2, 2, 2, 2)
    assert options.groups(2 * 768) == 96 and options.groups(2 * 384) == 48


def test_blocks_are_the_identity_at_initialisation() -> None:
    torch.manual_seed(0)
    netG = r3gan.build_generator(_tiny(32))
    blocks = [m for m in netG.modules() if isinstance(m, r3gan.ResidualBlock)]
    assert blocks and all(torch.all(b.project.weight == 0) and b.project.bias is None for b in blocks)
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(blocks[-1](x), x)


def test_fixup_initialisation_scales_by_the_block_count() -> None:
    torch.manual_seed(0)
    netD = r3gan.build_discriminator(_cfg(64, widths=[256] * 5, blocks=[2]))  # L = 10 blocks
    block = next(m for m in netD.modules() if isinstance(m, r3gan.ResidualBlock))
    gain = math.sqrt(2 / (1 + 0.2**2)) * 10 ** (-1 / 4)
    assert block.expand.weight.std().item() == pytest.approx(gain / math.sqrt(256), rel=0.02)
    assert block.spatial.groups == 512 // 16
    assert block.spatial.weight.std().item() == pytest.approx(gain / math.sqrt(16 * 9), rel=0.02)
    assert torch.all(block.act1.bias == 0)


def test_no_normalisation_layers() -> None:
    cfg = _tiny(64)
    for net in (r3gan.build_generator(cfg), r3gan.build_discriminator(cfg)):
        assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d))
                       for m in net.modules())


def test_lowpass_resampling() -> None:
    kernel = r3gan.lowpass_kernel((1, 2, 1))
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    assert torch.allclose(kernel, torch.outer(taps, taps) / 64)
    flat = torch.ones(1, 2, 8, 8)
    up, down = r3gan.Upsample(2, (1, 2, 1))(flat), r3gan.Downsample(2, (1, 2, 1))(flat)
    assert up.shape == (1, 2, 16, 16) and down.shape == (1, 2, 4, 4)
    assert torch.allclose(up[..., 1:-1, 1:-1], torch.ones(1)) and torch.allclose(down[..., 1:-1, 1:-1], torch.ones(1))


def test_width_changes_use_a_1x1_conv_at_the_lower_resolution() -> None:
    netG = r3gan.build_generator(_cfg(32, widths=[32, 32, 16, 8], channels_per_group=8))
    stage = netG.stages[2]
    assert isinstance(stage[0], nn.Conv2d) and stage[0].kernel_size == (1, 1) and isinstance(stage[1], r3gan.Upsample)
    assert isinstance(netG.stages[1][0], nn.Identity)


def test_bf16_autocast_and_channels_last_train() -> None:
    cfg = _tiny(64)
    netG = r3gan.build_generator(cfg).to(memory_format=torch.channels_last)
    netD = r3gan.build_discriminator(cfg).to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fake = netG(torch.randn(4, cfg.nz))
        logits = netD(fake)
    assert fake.dtype == torch.bfloat16 and logits.shape == (4,)
    logits.float().mean().backward()
    grads = [p.grad for p in netG.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_unknown_or_inconsistent_options_are_user_errors() -> None:
    with pytest.raises(FaceganError, match="r3gan model has no option width"):
        r3gan.build_generator(_cfg(64, width=[1]))
    with pytest.raises(FaceganError, match="5 stage widths"):
        r3gan.build_generator(_cfg(64, widths=[64, 32]))
    with pytest.raises(FaceganError, match="multiple of"):
        r3gan.build_generator(_cfg(32, widths=[12, 12, 12, 12], channels_per_group=16))
    with pytest.raises(FaceganError, match="a list of int"):
        r3gan.build_generator(_cfg(32, widths=(64, 64, 32, 16)))
    with pytest.raises(FaceganError, match="32, 64, 128"):
        r3gan.build_generator(_cfg(48))


def test_options_from_json_lists_and_defaults_without_options() -> None:
    options = r3gan.options_of(_cfg(32, widths=[64, 64, 32, 16], blocks=[1]))
    assert options.stage_widths(32) == (64, 64, 32, 16) and options.stage_blocks(4) == (1, 1, 1, 1)
    bare = _cfg(32)  # no options: the paper's widths
    assert r3gan.options_of(bare) == r3gan.R3GANOptions()
    assert r3gan.options_of(bare).stage_widths(32) == r3gan.PAPER_WIDTHS[32]


def test_resampling_runs_in_float32_under_bf16_autocast_on_cpu() -> None:
    # oneDNN's bf16 depthwise convolutions are many times slower than float32 ones on CPUs: the resamplers
    # compute in float32 (autocast off) and hand back the autocast dtype, so the result is float32's, rounded once.
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8).bfloat16()
    for layer, size in ((r3gan.Upsample(4, (1, 2, 1)), 16), (r3gan.Downsample(4, (1, 2, 1)), 4)):
        exact = layer(x.float())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = layer(x)
        assert mixed.dtype == torch.bfloat16 and mixed.shape[-1] == size
        assert torch.equal(mixed, exact.bfloat16())  # one rounding of the float32 result, no bf16 arithmetic
        x_grad = x.float().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            layer(x_grad).float().square().sum().backward()
        assert x_grad.grad is not None and torch.isfinite(x_grad.grad).all()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit and the TorchScript ONNX exporter
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_torchscript_and_onnx_export_of_g() -> None:
    cfg = _tiny(32)
    netG = r3gan.build_generator(cfg).eval()
    z = torch.randn(2, cfg.nz)
    scripted = torch.jit.script(netG)
    with torch.no_grad():
        assert torch.allclose(scripted(z), netG(z), atol=1e-5)
    onnx = pytest.importorskip("onnx")
    buffer = io.BytesIO()
    torch.onnx.export(netG, (z,), buffer, dynamo=False, input_names=["z"], output_names=["images"],
                      dynamic_axes={"z": {0: "n"}, "images": {0: "n"}})
    onnx.checker.check_model(onnx.load_from_string(buffer.getvalue()))
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    z5 = torch.randn(5, cfg.nz)
    (out,) = session.run(None, {"z": z5.numpy()})
    with torch.no_grad():
        assert torch.allclose(torch.from_numpy(out), netG(z5), atol=1e-4)


def test_registered_family_presets_and_flags() -> None:
    from facegan.cli.model_options import family_option_specs
    from facegan.models import FAMILIES
    from facegan.models.presets import build_config

    assert FAMILIES["r3gan"] is r3gan.FAMILY
    flags = family_option_specs()
    assert {"--widths", "--blocks", "--channels-per-group", "--expansion", "--resampling-filter"} <= set(flags)
    for name, resolution in (("r3gan", 64), ("r3gan32", 32), ("r3gan128", 128), ("r3gan-cpu64", 64),
                             ("r3gan-cpu32", 32)):
        config = build_config(name)
        assert (config.model.family, config.model.resolution, config.train.loss) == ("r3gan", resolution, "rpgan")
        assert (config.optim.beta1, config.schedule.beta2, config.schedule.lr) == (0.0, [0.9, 0.99], [1.0, 0.25])
        assert config.schedule.gamma == pytest.approx([2.0 * (resolution / 64) ** 2, 0.2 * (resolution / 64) ** 2])
        assert config.train.diffaugment == "color,translation" and config.schedule.aug_p == [0.0, 0.3]
    assert build_config("r3gan").train.batch_size == 256 and build_config("r3gan-cpu32").train.batch_size == 128
    assert [build_config(name).train.penalty_every for name in ("r3gan", "r3gan32", "r3gan-cpu64", "r3gan-cpu32")] == [
        1, 1, 4, 4]  # the paper's R1 + R2 every step; lazily on a CPU
    with pytest.raises(FaceganError, match="minibatch"):
        from facegan.training.configure import check_config

        config = build_config("r3gan-cpu32")
        config.model.minibatch_std = True
        check_config(config)
