"""Helpers and fixtures of the CUDA tests (`pytest -m cuda`), the GPU paths of facegan.

Every test module here sets `pytestmark = CUDA`: marked `cuda`, and skipped with the reason shown where
`torch.cuda.is_available()` is False, so the CPU suite reports them as skipped rather than failed;
`bench/gpu_check.sh` runs them on a GPU machine. They drive facegan through its stable surfaces only: the
`facegan` command line (`python -m facegan ...` in a subprocess, which also keeps CUDA state and warnings of one
run out of the others) and `facegan.load`. The data is made in the test with `facegan prepare
builtin:synthetic-faces`. (No conftest.py here: a second `conftest` module would shadow the one tests/ imports
from, and an `__init__.py` would make this folder a package named `cuda`, shadowing NVIDIA's `cuda` package.)
The modules import the fixtures they use from here.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

NO_CUDA = "needs a CUDA GPU (torch.cuda.is_available() is False); bench/gpu_check.sh runs these on one"
CUDA = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)]
CLI_TIMEOUT_S = 240  # one `facegan` command; compile runs take the longest

def run_cli(*args: object, timeout: float = CLI_TIMEOUT_S, check: bool = True) -> subprocess.CompletedProcess:
    """`python -m facegan ARGS` in a subprocess; its stdout and stderr as text (checked for exit status 0)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "facegan", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"facegan {' '.join(map(str, args))} exited {proc.returncode}:\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


# A DCGAN small enough that a CLI run is mostly start-up: 32 px, ngf = ndf = 32, batch 64 (8 steps per epoch).
SMALL = ("--ngf", 32, "--ndf", 32, "--batch-size", 64, "--no-progress", "--no-report", "--log-every", 1,
         "--sample-every", 1000, "--health-every", 0)


def train_args(data: Path, out: Path, steps: int, *extra: object) -> list[object]:
    """`facegan train` arguments for a short GPU run that checkpoints every `steps // 2` steps."""
    return ["train", "--data", data, "--out", out, "--device", "cuda", "--steps", steps,
            "--checkpoint-every", max(1, steps // 2), *SMALL, *extra]


def checkpoint(run: Path, step: int) -> dict:
    """The run's checkpoint of `step`, loaded on the CPU (a file facegan wrote, so not weights-only)."""
    return torch.load(run / "checkpoints" / f"step-{step:08d}.pt", map_location="cpu", weights_only=False)


def float_tensors(ckpt: dict) -> dict[str, torch.Tensor]:
    """G's and D's floating-point weights and buffers, as float64 on the CPU, by "G.name"/"D.name"."""
    return {f"{net}.{name}": t.double() for net in ("G", "D") for name, t in ckpt[net].items()
            if t.is_floating_point()}


def distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The Euclidean distance between two sets of the same weights, all tensors together."""
    return math.sqrt(sum(float((a[k] - b[k]).pow(2).sum()) for k in a))


@pytest.fixture(scope="session")
def faces32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """512 synthetic 32-px faces, prepared."""
    path = tmp_path_factory.mktemp("cuda-data") / "faces32"
    run_cli("prepare", "builtin:synthetic-faces", "--n", 512, "--res", 32, "--out", path, "--no-progress")
    return path


@pytest.fixture(scope="session")
def gpu_run(faces32: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 16-step DCGAN-32 run trained on the GPU with the defaults: (run directory, its log on stderr)."""
    out = tmp_path_factory.mktemp("cuda-runs") / "default"
    proc = run_cli(*train_args(faces32, out, 16))
    return out, proc.stderr
