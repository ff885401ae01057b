"""Precision, layout and compile settings (facegan.training.precision), fused optimisers and a hot loop with no host
syncs; the CUDA choices are exercised with torch.cuda mocked."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from facegan.config import RunConfig
from facegan.data.dataset import BatchIterator, PreparedDataset, write_dataset
from facegan.errors import FaceganError
from facegan.models import build_models
from facegan.models.latents import draw_latents
from facegan.models.presets import build_config
from facegan.run.checkpoint import load_checkpoint
from facegan.run.metrics_log import read_metrics
from facegan.training import precision
from facegan.training.loop import train
from facegan.training.optim import build_optimizers
from facegan.training.precision import Speed, resolve_precision, resolve_speed
from facegan.training.step import StepContext, gan_step
from facegan.utils.modules import unwrap

CPU = torch.device("cpu")
CUDA = torch.device("cuda", 0)


def _config(data: Path | str = "", **train_options: Any) -> RunConfig:
    return build_config("dcgan", {
        "data": {"path": str(data)},
        "model": {"resolution": 32, "channels": 3, "nz": 16, "ngf": 8, "ndf": 8},
        "train": {"batch_size": 16, "steps": 4, "log_every": 2, "sample_every": 100, "checkpoint_every": 100,
                  "device": "cpu", **train_options},
    })


@pytest.fixture(scope="module")
def faces32(lfw_faces: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64 real LFW face crops (grey, 25 px) resized to 32 px RGB."""
    from PIL import Image

    images = np.stack([np.asarray(Image.fromarray(face[..., 0]).convert("RGB").resize((32, 32), Image.BILINEAR))
                       for face in lfw_faces[:64]])
    path = tmp_path_factory.mktemp("p") / "faces32"
    write_dataset(path, images, source="test:lfw")
    return path


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """torch.cuda answering as a GPU of the given compute capability (8.0+ has bf16 tensor cores)."""
    gpu = {"capability": (9, 0)}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: gpu["capability"])
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: gpu["capability"][0] >= 8)
    return gpu


# --- resolution of the settings --------------------------------------------------------------------------


@pytest.mark.parametrize("fast, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_precision_on_cpu_follows_native_bf16(monkeypatch: pytest.MonkeyPatch, fast: bool, expected: str) -> None:
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: fast)
    assert resolve_precision("auto", CPU) == expected


def test_auto_precision_on_gpu_is_bf16_from_ampere_on(fake_cuda: dict[str, Any]) -> None:
    assert resolve_precision("auto", CUDA) == "bf16"
    fake_cuda["capability"] = (7, 0)  # V100: no bf16 tensor cores
    assert resolve_precision("auto", CUDA) == "fp32"


def test_explicit_precisions_are_kept_and_bad_ones_refused() -> None:
    for name in ("fp32", "bf16", "fp16"):
        assert resolve_precision(name, CPU) == name
    assert resolve_precision("auto", torch.device("mps")) == "fp32"
    with pytest.raises(FaceganError, match="unknown precision"):
        resolve_precision("fp8", CPU)
    with pytest.raises(FaceganError, match="MPS"):
        resolve_precision("fp16", torch.device("mps"))


def test_cpu_bf16_detection_reads_cpuinfo_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n")
    assert "avx512_bf16" in precision.cpu_flags(info)
    assert precision.cpu_flags(tmp_path / "missing") == frozenset()
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    for flags, expected in [({"avx2", "avx512f"}, False), ({"avx512_bf16"}, True), ({"amx_bf16", "amx_tile"}, True)]:
        monkeypatch.setattr(precision, "cpu_flags", lambda flags=flags: frozenset(flags))
        precision.cpu_has_fast_bf16.cache_clear()
        assert precision.cpu_has_fast_bf16() is expected
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AMX")
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset())
    precision.cpu_has_fast_bf16.cache_clear()
    assert precision.cpu_has_fast_bf16()
    precision.cpu_has_fast_bf16.cache_clear()


def test_channels_last_and_compile_resolution(fake_cuda: dict[str, Any]) -> None:
    assert resolve_speed("fp32", "auto", "off", CUDA).channels_last
    assert resolve_speed("bf16", "auto", "off", CPU).channels_last
    assert not resolve_speed("fp32", "auto", "off", CPU).channels_last
    assert not resolve_speed("bf16", "off", "off", CPU).channels_last
    assert resolve_speed("fp32", "on", "off", CPU).memory_format == torch.channels_last
    assert resolve_speed("bf16", "auto", "reduce-overhead", CUDA).compile == "reduce-overhead"
    with pytest.raises(FaceganError, match="CUDA"):
        resolve_speed("fp32", "auto", "reduce-overhead", CPU)
    with pytest.raises(FaceganError, match="compile mode"):
        resolve_speed("fp32", "auto", "fast", CPU)
    with pytest.raises(FaceganError, match="channels_last"):
        resolve_speed("fp32", "yes", "off", CPU)


def test_tf32_and_cudnn_autotune_switched_on_for_cuda_only() -> None:
    matmul, conv, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn.conv, torch.backends.cudnn
    saved = (matmul.fp32_precision, conv.fp32_precision, cudnn.benchmark)
    try:
        matmul.fp32_precision, conv.fp32_precision, cudnn.benchmark = "ieee", "ieee", False
        precision.configure_backends(CPU)
        assert (matmul.fp32_precision, conv.fp32_precision, cudnn.benchmark) == ("ieee", "ieee", False)
        precision.configure_backends(CUDA)
        assert (matmul.fp32_precision, conv.fp32_precision, cudnn.benchmark) == ("tf32", "tf32", True)
    finally:
        matmul.fp32_precision, conv.fp32_precision, cudnn.benchmark = saved


def test_cuda_autocast_and_scaler_are_built_for_the_gpu(fake_cuda: dict[str, Any]) -> None:
    speed = resolve_speed("auto", "auto", "off", CUDA)
    assert (speed.precision, speed.dtype, speed.channels_last) == ("bf16", torch.bfloat16, True)
    context = speed.autocast()
    assert isinstance(context, torch.autocast) and context.device == "cuda"
    assert context.fast_dtype == torch.bfloat16
    assert speed.grad_scaler() is None
    fp16 = Speed(CUDA, "fp16", True, "off")
    assert fp16.autocast().fast_dtype == torch.float16


# --- the maths under autocast ------------------------------------------------------------------------------


def test_bf16_autocast_runs_convs_in_bf16_and_keeps_batchnorm_statistics_fp32() -> None:
    speed = Speed(CPU, "bf16", True, "off")
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8, momentum=1.0)  # momentum 1: running stats = batch stats
    speed.prepare_model(conv)
    x = speed.images(torch.randn(16, 3, 12, 12) * 3 + 1)
    with speed.autocast():
        y = conv(x)
        out = bn(y)
    assert y.dtype == torch.bfloat16 and out.dtype == torch.bfloat16
    assert bn.running_mean.dtype == bn.weight.dtype == torch.float32
    exact = y.double().mean(dim=(0, 2, 3))
    # fp32 accumulation of the bf16 activations: far below bf16's own step (2^-8 relative)
    torch.testing.assert_close(bn.running_mean.double(), exact, rtol=1e-5, atol=1e-6)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_gan_step_losses_are_fp32_under_bf16() -> None:
    cfg = _config()
    netG, netD = build_models(cfg.model)
    optG, optD = build_optimizers(cfg, netG, netD)
    speed = Speed(CPU, "bf16", True, "off")
    for net in (netG, netD):
        speed.prepare_model(net)
    generator = torch.Generator().manual_seed(0)
    ctx = StepContext(netG=netG, netD=netD, optG=optG, optD=optD, config=cfg, autocast=speed.autocast,
                      latents=lambda n: draw_latents(n, 16, "normal", generator))
    values = gan_step(ctx, speed.images(torch.rand(8, 3, 32, 32) * 2 - 1))
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in values.values())
    assert all(p.dtype == torch.float32 for p in netG.parameters())


def test_adam_is_fused_on_the_cpu() -> None:
    cfg = _config()
    netG, netD = build_models(cfg.model)
    for opt in build_optimizers(cfg, netG, netD):
        assert opt.param_groups[0]["fused"] is True


def test_compile_wraps_the_module_and_unwrap_finds_it() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    assert Speed(CPU, "fp32", False, "off").compiled(net) is net
    compiled = Speed(CPU, "fp32", False, "on").compiled(net, backend="eager")  # inductor is too slow for CI
    assert compiled is not net and unwrap(compiled) is net
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(compiled(x), net(x))
    assert unwrap(net) is net


# --- no host work in the hot loop ----------------------------------------------------------------------------


SYNCING_OPS = ("aten._local_scalar_dense", "aten.item", "aten.is_nonzero", "aten.equal", "aten.nonzero",
               "aten.lift_fresh", "aten.masked_select", "aten._assert_async")


class OpRecorder(TorchDispatchMode):
    """Records the aten ops run; those in SYNCING_OPS make the host wait for a GPU (or copy host data)."""

    def __init__(self) -> None:
        super().__init__()
        self.syncs: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = str(func.overloadpacket) if hasattr(func, "overloadpacket") else str(func)
        if name.startswith(SYNCING_OPS):
            self.syncs.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", ["fp32", "bf16", "fp16"])
def test_hot_loop_has_no_host_syncs(faces32: Path, name: str) -> None:
    """Batches, latents, both updates and the GradScaler: no .item(), no tensors made from host numbers."""
    cfg = _config(faces32)
    speed = resolve_speed(name, "auto", "off", CPU)
    netG, netD = build_models(cfg.model)
    for net in (netG, netD):
        speed.prepare_model(net)
    optG, optD = build_optimizers(cfg, netG, netD)
    noise = torch.Generator().manual_seed(0)
    ctx = StepContext(netG=netG, netD=netD, optG=optG, optD=optD, config=cfg, autocast=speed.autocast,
                      scaler=speed.grad_scaler(), latents=lambda n: draw_latents(n, 16, "normal", noise))
    # Flipped batches use nonzero() on the CPU only (BatchIterator.batch); on a GPU they use where().
    flipped = list(itertools.islice(BatchIterator(PreparedDataset.open(faces32), 16, CPU, flip=True).epoch(0), 3))
    plain = BatchIterator(PreparedDataset.open(faces32), 16, CPU).epoch(1)
    gan_step(ctx, speed.images(flipped[0]))  # the first step builds optimiser state
    with OpRecorder() as recorder:
        for real in flipped[1:]:
            values = gan_step(ctx, speed.images(real))
        gan_step(ctx, speed.images(next(plain)))
    assert recorder.syncs == []
    assert all(math.isfinite(v.item()) for v in values.values())


# --- training end to end --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fp32", "bf16"])
def test_training_a_few_steps_in_each_precision(faces32: Path, tmp_path: Path, name: str) -> None:
    cfg = _config(faces32, precision=name)
    initial, _ = build_models(cfg.model)
    result = train(cfg, tmp_path / name, show_progress=False)
    records = read_metrics(tmp_path / name / "metrics.jsonl")
    assert result.status == "finished" and [r["step"] for r in records] == [1, 2, 3, 4]
    for record in records:
        assert all(record[k] is not None and math.isfinite(record[k]) for k in ("loss_d", "loss_g", "d_x"))
    trained = load_checkpoint(tmp_path / name)["G"]
    changed = [not torch.equal(trained[k], v) for k, v in initial.state_dict().items() if v.is_floating_point()]
    assert all(changed), "some G weights did not change"
    assert all(v.dtype == torch.float32 for v in trained.values() if v.is_floating_point())


def test_fp16_trains_with_a_grad_scaler_that_resumes(faces32: Path, tmp_path: Path) -> None:
    cfg = _config(faces32, precision="fp16", steps=2)
    train(cfg, tmp_path / "run", show_progress=False)
    first = load_checkpoint(tmp_path / "run")
    assert first["scaler"]["scale"] > 0
    cfg.train.steps = 4
    train(cfg, tmp_path / "run", resume=True, show_progress=False)
    second = load_checkpoint(tmp_path / "run")
    assert second["step"] == 4 and "scaler" in second
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all(math.isfinite(r["loss_d"]) for r in records)


def test_auto_precision_is_recorded_as_asked_and_resolved_in_the_log(
    faces32: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    cfg = _config(faces32, precision="auto", steps=1)
    with caplog.at_level("INFO", logger="facegan"):
        train(cfg, tmp_path / "run", show_progress=False)
    assert "precision bf16, channels_last, compile off" in caplog.text
    assert RunConfig.load(tmp_path / "run" / "config.json").train.precision == "auto"


def test_batches_stay_on_the_training_device_and_gpu_memory_is_respected(
    faces32: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = PreparedDataset.open(faces32)
    batches = BatchIterator(data, 16, CPU)
    assert isinstance(batches.source, torch.Tensor) and batches.source.device == CPU
    assert next(batches.epoch(0)).device == CPU
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (data.images.nbytes * 2, 1 << 40))
    kept = BatchIterator._resident_array(data.images, CUDA, budget=1 << 30)
    assert kept is data.images  # more than a quarter of the free GPU memory: gathered from the memory map


def test_g_step_skips_d_weight_gradients_without_changing_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib

    import facegan.training.step as step_module

    cfg = _config()
    runs = []
    for freeze in (True, False):
        if not freeze:
            monkeypatch.setattr(step_module, "frozen", lambda net: contextlib.nullcontext())
        torch.manual_seed(0)
        netG, netD = build_models(cfg.model)
        optG, optD = build_optimizers(cfg, netG, netD)
        noise = torch.Generator().manual_seed(1)
        ctx = StepContext(netG=netG, netD=netD, optG=optG, optD=optD, config=cfg,
                          latents=lambda n, g=noise: draw_latents(n, 16, "normal", g))
        real = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
        for _ in range(2):
            gan_step(ctx, real)
        runs.append((netG, netD))
        assert all(p.requires_grad for p in netD.parameters())  # D trains again at its next step
    for a, b in zip(*(list(g.parameters()) + list(d.parameters()) for g, d in runs), strict=True):
        assert torch.equal(a, b)
    # Frozen, D's .grad still holds its own step's gradients; unfrozen, G's step added its own to them.
    d_frozen, d_plain = (list(d.parameters()) for _, d in runs)
    assert not any(torch.equal(a.grad, b.grad) for a, b in zip(d_frozen, d_plain, strict=True))
