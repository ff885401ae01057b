"""A run's live state (`TrainingRun`), the hooks that see it, and what its checkpoints hold.

The training loop (facegan.training.loop) fills a `TrainingRun` and calls every `Hook` with it after each step;
`checkpoint_payload` is everything a step checkpoint holds (also RUN/checkpoints/best.pt) and `restore` puts
a checkpoint back into a freshly built run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facegan.config import RunConfig
from facegan.data.dataset import PreparedDataset
from facegan.run.checkpoint import checkpoint_path, prune_checkpoints, save_checkpoint
from facegan.run.layout import images_seen, sample_path, samples_dir
from facegan.utils.dist_env import SINGLE, DistEnv
from facegan.utils.images import make_grid, save_png, to_uint8
from facegan.utils.modules import unwrap


@dataclass
class TrainingRun:
    """The live state of a run; hooks receive it after every step."""

    config: RunConfig
    run_dir: Path
    device: torch.device
    netG: nn.Module
    netD: nn.Module
    optG: torch.optim.Optimizer
    optD: torch.optim.Optimizer
    noise: torch.Generator
    fixed_latents: torch.Tensor
    dataset: PreparedDataset
    state: dict[str, torch.Tensor] = field(default_factory=dict)
    step: int = 0
    epoch: int = 0
    elapsed_s: float = 0.0
    last_record: dict[str, Any] | None = None
    scaler: torch.amp.GradScaler | None = None  # fp16's loss scale (checkpointed)
    dist: DistEnv = SINGLE  # this process's place in a torchrun job
    netG_ema: nn.Module | None = None  # EMA of G's weights when train.ema_decay > 0 (checkpointed as "G_ema")

    @property
    def images_seen(self) -> int:
        """Real images D has seen so far (the global batch × steps)."""
        return images_seen(self.step, self.config.train.batch_size)


# Hooks run on rank 0 only under torchrun; `run.netG`/`run.netD` are the plain modules (no DDP/compile wrapper).
Hook = Callable[[TrainingRun], None]


@dataclass
class TrainResult:
    """How a call to `train` ended."""

    run_dir: Path
    step: int
    status: str  # "finished" or "interrupted"
    checkpoint: Path | None
    rank: int = 0  # the process's rank under torchrun (only rank 0 writes files)


def write_fixed_samples(run: TrainingRun, name: str | None = None) -> Path:
    """G's output on the run's fixed latents as an 8×8 grid in RUN/samples/ (G, or G_ema when kept, in eval mode)."""
    netG = run.netG_ema if run.netG_ema is not None else unwrap(run.netG)
    was_training = netG.training
    netG.eval()
    with torch.no_grad():
        images = netG(run.fixed_latents.to(run.device))
    netG.train(was_training)
    path = samples_dir(run.run_dir) / name if name else sample_path(run.run_dir, run.step)
    save_png(make_grid(to_uint8(images), nrow=8), path)
    return path


def rng_state(run: TrainingRun) -> dict[str, torch.Tensor]:
    """Every random state the loop draws from, for exact resume."""
    states = {"torch": torch.get_rng_state(), "noise": run.noise.get_state()}
    if run.device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(run.device)
    return states


def save_run_checkpoint(run: TrainingRun, keep: int) -> Path:
    """Checkpoint G, D, both optimisers, step, epoch, RNG states and the config; keep the newest `keep`."""
    path = checkpoint_path(run.run_dir, run.step)
    save_checkpoint(path, checkpoint_payload(run))
    prune_checkpoints(run.run_dir, keep)
    return path


def checkpoint_payload(run: TrainingRun) -> dict[str, Any]:
    """Everything a step checkpoint holds (also used for RUN/checkpoints/best.pt)."""
    return {
        "family": run.config.model.family,
        "config": run.config.to_dict(),
        "step": run.step,
        "images_seen": run.images_seen,
        "epoch": run.epoch,
        "elapsed_s": run.elapsed_s,
        "G": unwrap(run.netG).state_dict(),
        "D": unwrap(run.netD).state_dict(),
        "optG": run.optG.state_dict(),
        "optD": run.optD.state_dict(),
        "rng": rng_state(run),
        "state": dict(run.state),
        "fixed_latents": run.fixed_latents,
        **({"scaler": run.scaler.state_dict()} if run.scaler is not None else {}),
        **({"G_ema": run.netG_ema.state_dict()} if run.netG_ema is not None else {}),
    }


def restore(run: TrainingRun, ckpt: dict[str, Any]) -> None:
    """Put a checkpoint's weights, optimiser and RNG states, step and step state into a freshly built run."""
    run.netG.load_state_dict(ckpt["G"])
    run.netD.load_state_dict(ckpt["D"])
    run.optG.load_state_dict(ckpt["optG"])
    run.optD.load_state_dict(ckpt["optD"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    run.noise.set_state(ckpt["rng"]["noise"])
    if "cuda" in ckpt["rng"] and run.device.type == "cuda":
        torch.cuda.set_rng_state(ckpt["rng"]["cuda"], run.device)
    run.state.update({k: v.to(run.device) for k, v in ckpt["state"].items()})
    run.fixed_latents = ckpt["fixed_latents"]
    if run.scaler is not None and ckpt.get("scaler"):
        run.scaler.load_state_dict(ckpt["scaler"])
    if run.netG_ema is not None:  # a run that turns EMA on at resume starts it from G
        run.netG_ema.load_state_dict(ckpt.get("G_ema") or ckpt["G"])
    run.step, run.epoch, run.elapsed_s = ckpt["step"], ckpt["epoch"], ckpt["elapsed_s"]


