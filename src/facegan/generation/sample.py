"""Load a trained generator from a checkpoint (or a run's newest one) and make faces with it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facegan.config import RunConfig
from facegan.errors import FaceganError
from facegan.generation.attributes import describe_condition, labels_for
from facegan.generation.model_folder import folder_of, is_model_folder, read_model_folder
from facegan.models import build_generator
from facegan.models.latents import seeded_latents
from facegan.run.checkpoint import load_checkpoint
from facegan.run.layout import images_seen
from facegan.utils.device import resolve_device
from facegan.utils.images import make_grid, save_png, to_uint8

BATCH = 256  # latents per forward pass of G when generating many faces


def in_batches(fn: Callable[[torch.Tensor], np.ndarray], z: torch.Tensor, batch_size: int = BATCH,
               on_progress: Callable[[int], object] | None = None) -> np.ndarray:
    """`fn` (G(z) as uint8 N×H×W×C) over `z` in chunks of `batch_size`, concatenated: many faces, bounded memory."""
    parts = []
    for chunk in z.split(batch_size):
        parts.append(fn(chunk))
        if on_progress is not None:
            on_progress(len(parts[-1]))
    return np.concatenate(parts)


@dataclass
class LoadedGenerator:
    """A generator in eval mode with the config and checkpoint facts it came from."""

    netG: nn.Module
    config: RunConfig
    step: int
    checkpoint: str
    device: torch.device
    images_seen: int = 0  # real images D had seen at the checkpoint
    weights: str = "G"  # which weights G holds: "G_ema" (the run's EMA copy) or "G"
    elapsed_s: float | None = None  # training time up to the checkpoint, when recorded

    def latents(self, n: int, seed: int, truncation: float = 1.0) -> torch.Tensor:
        """The seeded latents (the same on every machine), scaled toward the mean by `truncation`."""
        return seeded_latents(n, self.config.model.nz, seed, self.config.model.latent, truncation)

    @property
    def attributes(self) -> list[dict[str, Any]]:
        """The labels a conditional model takes, [{"name", "values"}, ...]; empty for an unconditional one."""
        return describe_condition(self.config.model)

    def labels(self, n: int, attr: dict[str, int] | None) -> torch.Tensor | None:
        """N×A level indices asking for `attr` ({"smiling": 1}); None when `attr` is empty (no condition)."""
        return labels_for(self.config.model, attr, n, self.device)

    @torch.no_grad()
    def images(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> np.ndarray:
        """G(z) as uint8 N×H×W×C; a conditional G takes `labels` (from `labels()`), else samples them."""
        if labels is None:
            return to_uint8(self.netG(z.to(self.device)))
        return to_uint8(self.netG(z.to(self.device), labels.to(self.device)))

    def generate(self, z: torch.Tensor, attr: dict[str, int] | None = None, batch_size: int = BATCH,
                 on_progress: Callable[[int], object] | None = None) -> np.ndarray:
        """G(z) for any number of latents, in batches, as uint8 N×H×W×C; `attr` as in `sample`."""
        return in_batches(lambda chunk: self.images(chunk, self.labels(len(chunk), attr)), z, batch_size,
                          on_progress)

    def sample(self, n: int, seed: int = 0, truncation: float = 1.0, attr: dict[str, int] | None = None) -> np.ndarray:
        """n faces for `seed` as uint8 N×H×W×C; the same seed gives the same faces.

        `attr` ({"smiling": 1, "eyeglasses": 0}) asks a conditional model for those attribute values; the
        attributes it does not name vary as in the training data.
        """
        return self.images(self.latents(n, seed, truncation), self.labels(n, attr))


def load_generator(path: str | Path, device: str = "cpu") -> LoadedGenerator:
    """G from a checkpoint file, a run directory (its newest checkpoint) or a model folder
    (facegan.generation.model_folder), with nothing else needed."""
    ckpt = read_model_folder(path) if is_model_folder(path) else load_checkpoint(path)
    config: RunConfig = ckpt["config"]
    netG = build_generator(config.model)  # the family's G, wrapped to take labels for a conditional model
    weights = ckpt.get("weights") or ("G_ema" if ckpt.get("G_ema") else "G")
    try:
        netG.load_state_dict(ckpt[weights])
    except RuntimeError as exc:
        raise FaceganError(f"{ckpt['path']}: weights do not fit the model its config describes ({exc})") from None
    target = resolve_device(device)
    netG.to(target).eval().requires_grad_(False)
    step = int(ckpt["step"])
    seen = int(ckpt.get("images_seen", images_seen(step, config.train.batch_size)))  # 0.1.0 checkpoints: derived
    elapsed = ckpt.get("elapsed_s")
    return LoadedGenerator(netG=netG, config=config, step=step, checkpoint=ckpt["path"], device=target,
                           images_seen=seen, weights=weights,
                           elapsed_s=float(elapsed) if isinstance(elapsed, (int, float)) else None)


def default_out(model: str | Path, seed: int, kind: str = "sample", suffix: str = ".png") -> Path:
    """Where `facegan sample` writes when given no --out: RUN/samples/<kind>-seed<S><suffix> for a run
    directory, <name>-<kind>-seed<S><suffix> beside a checkpoint file <name>.pt or a model folder <name>."""
    model = Path(model)
    name = f"{kind}-seed{seed}{suffix}"
    if is_model_folder(model):  # a model folder stays as published
        folder = folder_of(model)
        return folder.with_name(f"{folder.name}-{name}")
    return model / "samples" / name if model.is_dir() else model.with_name(f"{model.stem}-{name}")


def write_samples(images: np.ndarray, out: str | Path, nrow: int | None = None) -> list[Path]:
    """A grid PNG when `out` ends in .png, else one PNG per face in the folder `out`; returns the files."""
    out = Path(out)
    if out.suffix.lower() == ".png":
        save_png(make_grid(images, nrow=nrow), out)
        return [out]
    if out.exists() and not out.is_dir():
        raise FaceganError(f"{out} exists and is not a folder; give a .png file or a folder")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = out / f"face-{i:04d}.png"
        save_png(image, path)
        paths.append(path)
    return paths
