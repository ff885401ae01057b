"""Sampling, the Python API and export with a generator trained on the GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from cuda_support import CUDA, faces32, gpu_run, run_cli  # faces32, gpu_run: fixtures
from PIL import Image

import facegan

pytestmark = CUDA

# G on the GPU runs its convolutions in TF32 (cuDNN's default) or other kernels than the CPU's, so faces may
# differ by rounding: a few uint8 levels at most, well under a visible change, and under one level on average.
MAX_LEVELS, MEAN_LEVELS = 8, 1.0


def test_cli_samples_on_the_gpu(gpu_run: tuple[Path, str], tmp_path: Path) -> None:
    run, _ = gpu_run
    out = tmp_path / "grid.png"
    run_cli("sample", run, "--n", 16, "--seed", 3, "--device", "cuda", "--out", out)
    with Image.open(out) as grid:
        assert grid.size[0] >= 4 * 32


def test_api_on_the_gpu_matches_the_cpu(gpu_run: tuple[Path, str]) -> None:
    run, _ = gpu_run
    gpu, cpu = facegan.load(run, device="cuda"), facegan.load(run, device="cpu")
    assert gpu.generator.device.type == "cuda"
    a, b = gpu.sample(32, seed=5), cpu.sample(32, seed=5)
    assert a.shape == b.shape and a.dtype == np.uint8
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    assert diff.max() <= MAX_LEVELS and diff.mean() <= MEAN_LEVELS, (diff.max(), diff.mean())
    assert np.array_equal(gpu.sample(32, seed=5), a), "the same seed must give the same faces on the GPU"
    # A smaller batch may run other cuDNN kernels: the same faces, to rounding.
    assert np.abs(gpu.sample(4, seed=5).astype(np.int16) - a[:4]).max() <= 2


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")  # TorchScript is, still runs
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_of_a_gpu_run(fmt: str, gpu_run: tuple[Path, str], tmp_path: Path) -> None:
    run, _ = gpu_run
    out = tmp_path / ("g.pt" if fmt == "torchscript" else "g.onnx")
    run_cli("export", run, "--format", fmt, "--out", out)  # checked against PyTorch before it is written
    assert out.stat().st_size > 0
    if fmt == "torchscript":  # the archive also runs on the GPU
        module = torch.jit.load(str(out), map_location="cuda")
        z = torch.randn(5, facegan.load(run).nz, device="cuda")
        images = module(z)
        assert images.shape[0] == 5 and images.is_cuda and bool(torch.isfinite(images).all())
