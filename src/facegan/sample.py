"""Load a trained generator from a checkpoint (or a run's newest one) and make faces with it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facegan.checkpoint import load_checkpoint
from facegan.conditional import describe_condition, labels_for
from facegan.config import RunConfig
from facegan.errors import FaceganError
from facegan.latents import seeded_latents
from facegan.models import build_generator
from facegan.utils.device import resolve_device
from facegan.utils.images import make_grid, save_png, to_uint8


@dataclass
class LoadedGenerator:
    """A generator in eval mode with the config and checkpoint facts it came from."""

    netG: nn.Module
    config: RunConfig
    step: int
    checkpoint: str
    device: torch.device

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

    def sample(self, n: int, seed: int = 0, truncation: float = 1.0, attr: dict[str, int] | None = None) -> np.ndarray:
        """n faces for `seed` as uint8 N×H×W×C; the same seed gives the same faces.

        `attr` ({"smiling": 1, "eyeglasses": 0}) asks a conditional model for those attribute values; the
        attributes it does not name vary as in the training data.
        """
        return self.images(self.latents(n, seed, truncation), self.labels(n, attr))


def load_generator(path: str | Path, device: str = "cpu") -> LoadedGenerator:
    """G from a checkpoint file or a run directory, with nothing else needed."""
    ckpt = load_checkpoint(path)
    config: RunConfig = ckpt["config"]
    netG = build_generator(config.model)  # the family's G, wrapped to take labels for a conditional model
    try:
        netG.load_state_dict(_generator_weights(ckpt))
    except RuntimeError as exc:
        raise FaceganError(f"{ckpt['path']}: weights do not fit the model its config describes ({exc})") from None
    target = resolve_device(device)
    netG.to(target).eval().requires_grad_(False)
    return LoadedGenerator(netG=netG, config=config, step=int(ckpt["step"]), checkpoint=ckpt["path"], device=target)


def _generator_weights(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The weights used for sampling: G's EMA copy when the run kept one, else G."""
    return ckpt.get("G_ema") or ckpt["G"]


def default_out(model: str | Path, seed: int, kind: str = "sample", suffix: str = ".png") -> Path:
    """Where `facegan sample` writes when given no --out: RUN/samples/<kind>-seed<S><suffix> for a run
    directory, <name>-<kind>-seed<S><suffix> beside a checkpoint file <name>.pt."""
    model = Path(model)
    name = f"{kind}-seed{seed}{suffix}"
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
