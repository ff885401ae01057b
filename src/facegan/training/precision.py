"""Speed settings of the training loop: precision (autocast + GradScaler), memory layout, torch.compile, TF32.

`--precision auto` picks bf16 autocast where the hardware runs bf16 matrix maths natively (CPUs with AVX-512
BF16 or AMX, GPUs from Ampere on) and fp32 elsewhere. Under autocast the convolutions run in bf16/fp16 while
parameters, optimiser state, BatchNorm running statistics (accumulated in fp32 by the BN kernels on CPU and
CUDA) and the losses (computed on `.float()` outputs outside autocast) stay fp32. fp16 adds a GradScaler.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facegan.config import CHANNELS_LAST, COMPILE_MODES, PRECISIONS
from facegan.errors import FaceganError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# /proc/cpuinfo flags of CPUs whose bf16 dot products run natively (Intel AMX, AVX-512 BF16 on Intel and AMD Zen 4+).
CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags listed in /proc/cpuinfo (empty where the file does not exist, e.g. macOS)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True where this CPU computes bf16 products natively (AVX-512 BF16 or AMX), so bf16 autocast pays."""
    capability = torch.backends.cpu.get_cpu_capability().upper()
    if "AMX" in capability or "BF16" in capability:
        return True
    return bool(CPU_BF16_FLAGS & cpu_flags())


def cuda_has_fast_bf16(device: torch.device) -> bool:
    """True on GPUs with bf16 tensor cores (compute capability 8.0+, i.e. Ampere, Hopper and later)."""
    if not torch.cuda.is_available():
        return False
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8 and torch.cuda.is_bf16_supported()


def resolve_precision(name: str, device: torch.device) -> str:
    """`auto` → "bf16" where `device` runs bf16 fast, else "fp32"; other names are checked and returned."""
    if name not in PRECISIONS:
        raise FaceganError(f"unknown precision {name!r}; choose from {', '.join(PRECISIONS)}")
    if name != "auto":
        if name == "fp16" and device.type == "mps":
            raise FaceganError("fp16 with a GradScaler is not supported on MPS; use --precision fp32 or bf16")
        return name
    if device.type == "cuda":
        return "bf16" if cuda_has_fast_bf16(device) else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return "fp32"


def resolve_channels_last(setting: str, device: torch.device, precision: str) -> bool:
    """`auto` → channels_last on CUDA, and on CPU with bf16/fp16 (oneDNN's fast low-precision kernels are NHWC)."""
    if setting not in CHANNELS_LAST:
        raise FaceganError(f"unknown channels_last setting {setting!r}; choose from {', '.join(CHANNELS_LAST)}")
    if setting != "auto":
        return setting == "on"
    return device.type == "cuda" or (device.type == "cpu" and precision != "fp32")


def resolve_compile(setting: str, device: torch.device) -> str:
    """The torch.compile mode to use, or "off". The default is off: on the 2-core CPUs it did not pay
    (BENCHMARKS.md, issue 10), and on GPUs it has not been measured yet."""
    if setting not in COMPILE_MODES:
        raise FaceganError(f"unknown compile mode {setting!r}; choose from {', '.join(COMPILE_MODES)}")
    if setting == "reduce-overhead" and device.type != "cuda":
        raise FaceganError("--compile reduce-overhead uses CUDA graphs and needs a CUDA device")
    return setting


def configure_backends(device: torch.device) -> None:
    """Process-wide maths switches for a CUDA run: TF32 matmuls/convolutions and cuDNN autotuning.

    TF32 keeps fp32's range with a 10-bit mantissa on Ampere+ tensor cores; fp32 runs use it (bf16 runs
    are already below its precision). cuDNN's benchmark mode picks the fastest kernels for the fixed shapes.
    """
    if device.type != "cuda":
        return
    conv = getattr(torch.backends.cudnn, "conv", None)
    if hasattr(torch.backends.cuda.matmul, "fp32_precision") and conv is not None:  # torch ≥ 2.9's API
        torch.backends.cuda.matmul.fp32_precision = "tf32"
        conv.fp32_precision = "tf32"
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True


@dataclass(frozen=True)
class Speed:
    """The resolved speed settings of one run."""

    device: torch.device
    precision: str  # "fp32", "bf16" or "fp16" (never "auto")
    channels_last: bool
    compile: str  # a COMPILE_MODES entry

    @property
    def dtype(self) -> torch.dtype:
        """The autocast dtype (float32 when autocast is off)."""
        return DTYPES.get(self.precision, torch.float32)

    @property
    def memory_format(self) -> torch.memory_format:
        """The layout of images and conv weights."""
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """A fresh autocast context for the forward passes (a no-op context for fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """A GradScaler for fp16 (whose gradients would underflow unscaled); None otherwise."""
        if self.precision != "fp16":
            return None
        return torch.amp.GradScaler(self.device.type)

    def prepare_model(self, net: nn.Module) -> nn.Module:
        """Put a module's weights into the run's memory layout (in place); returns it."""
        if self.channels_last:
            net.to(memory_format=torch.channels_last)
        return net

    def compiled(self, net: nn.Module, backend: str | Callable[..., Any] | None = None) -> nn.Module:
        """`net` under torch.compile in the run's mode (the module itself when compile is off)."""
        if self.compile == "off":
            return net
        mode = None if self.compile == "on" else self.compile
        return torch.compile(net, mode=mode, backend=backend or "inductor")  # type: ignore[return-value]

    def images(self, batch: torch.Tensor) -> torch.Tensor:
        """A batch of images in the run's layout (a no-op when it already is)."""
        return batch.contiguous(memory_format=self.memory_format)

    def describe(self) -> str:
        """One line for the log."""
        tf32 = " (TF32 matmuls and convolutions)" if self.precision == "fp32" and self.device.type == "cuda" else ""
        return (f"precision {self.precision}{tf32}, {'channels_last' if self.channels_last else 'NCHW'}, "
                f"compile {self.compile}")


def resolve_speed(precision: str, channels_last: str, compile_mode: str, device: torch.device) -> Speed:
    """The run's speed settings from its config values, resolved for `device`."""
    resolved = resolve_precision(precision, device)
    return Speed(
        device=device,
        precision=resolved,
        channels_last=resolve_channels_last(channels_last, device, resolved),
        compile=resolve_compile(compile_mode, device),
    )
