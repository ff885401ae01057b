"""A trained model in Python: `facegan.load(RUN | CHECKPOINT | MODEL_FOLDER)` → a `FaceGAN` that samples,
interpolates, walks, projects photos, evaluates, saves grids and animations, exports itself, and shows its faces
and its run's plots in a notebook. See docs/api.md.

Images come back as uint8 numpy arrays N×H×W×C (C = 1 or 3), the format PIL, imageio and matplotlib take.
Latents are float32 numpy arrays N×nz. Every random choice takes a seed, so the same call gives the same faces.
`show`, `grid` and `plot` return objects a notebook draws inline (`_repr_png_`); a `FaceGAN` draws as its faces.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegan.config import RunConfig
from facegan.errors import FaceganError
from facegan.generation.sample import LoadedGenerator, load_generator
from facegan.models.latents import slerp
from facegan.run.layout import run_dir_of
from facegan.utils.display import FaceGrid, Png
from facegan.utils.images import make_grid, save_png

Latent = int | np.ndarray | torch.Tensor  # a seed, or a latent (nz,) / (1, nz)
Attr = Mapping[str, int] | str | None  # {"smiling": 1, "eyeglasses": 0} or "smiling=1,eyeglasses=0"
REPR_FACES = 32  # faces a notebook shows for a FaceGAN (seed 0)


class FaceGAN:
    """A trained generator (and, for projection, its discriminator) behind a small numpy-in, numpy-out API."""

    def __init__(self, gen: LoadedGenerator) -> None:
        self._gen = gen
        self._netD: Any = None
        self._netD_loaded = False

    def __repr__(self) -> str:
        m = self.config.model
        return (f"FaceGAN({m.family}, {m.resolution} px × {m.channels} ch, nz={m.nz}, step {self.step}, "
                f"{self.checkpoint})")

    def _repr_png_(self) -> bytes:
        """What a notebook shows for a `FaceGAN`: 32 faces of seed 0."""
        return self.show(REPR_FACES, seed=0, nrow=8)._repr_png_()

    def _repr_html_(self) -> str:
        """The faces with the model's description under them (Jupyter prefers this to the bare picture)."""
        data = base64.b64encode(self._repr_png_()).decode()
        return (f'<figure style="margin:0"><img src="data:image/png;base64,{data}" alt="faces"/>'
                f"<figcaption><code>{html.escape(repr(self))}</code></figcaption></figure>")

    # -- facts ---------------------------------------------------------------------------------------------
    @property
    def config(self) -> RunConfig:
        """The run's full config."""
        return self._gen.config

    @property
    def step(self) -> int:
        """The training step of the checkpoint."""
        return self._gen.step

    @property
    def checkpoint(self) -> str:
        """Path of the checkpoint file."""
        return self._gen.checkpoint

    @property
    def resolution(self) -> int:
        """Side of the generated faces in pixels."""
        return self.config.model.resolution

    @property
    def channels(self) -> int:
        """1 (grey) or 3 (RGB)."""
        return self.config.model.channels

    @property
    def nz(self) -> int:
        """Latent size."""
        return self.config.model.nz

    @property
    def run_dir(self) -> Path | None:
        """The run directory the model comes from; None for a lone checkpoint file or a model folder."""
        return run_dir_of(self.checkpoint)

    @property
    def generator(self) -> LoadedGenerator:
        """The underlying `facegan.generation.sample.LoadedGenerator` (G is `.netG`, a torch module)."""
        return self._gen

    # -- latents and faces ---------------------------------------------------------------------------------
    def latents(self, n: int = 1, seed: int = 0, truncation: float = 1.0) -> np.ndarray:
        """n seeded latents as float32 n×nz (the ones `sample(n, seed, truncation)` uses)."""
        _check_count(n)
        return self._gen.latents(n, seed, _check_truncation(truncation)).numpy()

    @property
    def attributes(self) -> list[dict[str, Any]]:
        """The attributes a conditional model takes, [{"name", "values"}, ...]; empty for an unconditional one."""
        return self._gen.attributes

    def generate(self, z: np.ndarray | torch.Tensor, attr: Attr = None) -> np.ndarray:
        """Faces for given latents (n×nz, or one nz vector) as uint8 n×H×W×C."""
        return self._images(self._as_latents(z), attr)

    def sample(self, n: int = 1, seed: int = 0, truncation: float = 1.0, attr: Attr = None) -> np.ndarray:
        """n faces for `seed` as uint8 n×H×W×C; `attr` ({"smiling": 1} or "smiling=1") asks a conditional
        model for attribute values (an unconditional model raises FaceganError rather than ignore it)."""
        _check_count(n)
        return self._images(self._gen.latents(n, seed, _check_truncation(truncation)), attr)

    def show(self, n: int = 16, seed: int = 0, truncation: float = 1.0, attr: Attr = None,
             nrow: int | None = None) -> FaceGrid:
        """`sample(n, seed, truncation, attr)` as a `FaceGrid`, which a notebook shows as one picture."""
        return FaceGrid(self.sample(n, seed, truncation, attr), nrow=nrow)

    def interpolate(self, start: Latent = 0, end: Latent = 1, steps: int = 8, attr: Attr = None) -> np.ndarray:
        """Faces along the spherical path from `start` to `end` (seeds or latents), both ends included,
        as uint8 steps×H×W×C."""
        if not 2 <= steps <= 10_000:
            raise FaceganError("steps must be between 2 and 10000")
        a, b = self._latent(start), self._latent(end)
        t = torch.linspace(0, 1, steps).view(steps, 1)
        return self._images(slerp(a, b, t), attr)

    def walk(self, keys: int | Sequence[Latent] = 4, frames: int = 24, seed: int = 0,
             truncation: float = 1.0, attr: Attr = None) -> np.ndarray:
        """A looping walk (uint8 K·F×H×W×C): `keys` seeded latents (or a list of seeds/latents) visited in
        turn with `frames` faces per leg; the face after the last frame is the first."""
        from facegan.generation.walk import check_walk, loop_latents, walk_latents

        if isinstance(keys, int):
            z = walk_latents(self.nz, keys, frames, seed, self.config.model.latent, _check_truncation(truncation))
        else:
            check_walk(len(keys), frames)
            z = loop_latents(torch.cat([self._latent(k) for k in keys]), frames)
        return self._images(z, attr)

    # -- projection ----------------------------------------------------------------------------------------
    def project(self, image: Any, steps: int = 300, restarts: int = 4, seed: int = 0,
                crop: str | None = None) -> Any:
        """Find the latent whose face is closest to `image` (a path, bytes, uint8 array or PIL image);
        returns a `facegan.generation.project.ProjectionResult` (.latent, .image, .target, .pixel_mse, ...)."""
        from facegan.generation.project import load_discriminator, project

        if not self._netD_loaded:  # D is the feature network of the projection loss; load it once
            self._netD, self._netD_loaded = load_discriminator(self.checkpoint, self._gen.device), True
        return project(self._gen, image, steps=steps, restarts=restarts, seed=seed, netD=self._netD, crop=crop)

    # -- judging -------------------------------------------------------------------------------------------
    def evaluate(self, n: int = 10_000, metrics: str | Sequence[str] | None = None, real: str | Path | None = None,
                 seed: int = 0, progress: bool = True) -> dict[str, Any]:
        """Score n faces against the training data (or `real`), as `facegan eval` does, and write
        RUN/eval/<step>.json; returns the result (`["results"]`: the headline numbers, e.g. swd_10k)."""
        from facegan.metrics.evaluation import evaluate

        return evaluate(self._gen, n=n, metrics=metrics, real_dataset=real, seed=seed, show_progress=progress)

    def plot(self, kind: str = "losses") -> Png:
        """The training report's plot `kind` (losses, losses-log, scores or speed) of the model's run, drawn now
        from its metrics.jsonl; a notebook shows it inline."""
        from facegan.report.figures import plot_png

        if self.run_dir is None:
            raise FaceganError(f"{self.checkpoint} is not part of a run directory, so it has no training metrics")
        return Png(plot_png(self.run_dir, kind), name=kind)

    # -- files ---------------------------------------------------------------------------------------------
    def save_grid(self, images: np.ndarray, path: str | Path, nrow: int | None = None) -> Path:
        """Write faces (uint8 n×H×W×C) as one grid PNG."""
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or images.dtype != np.uint8:
            raise FaceganError("save_grid takes uint8 images n×H×W×C")
        save_png(make_grid(images, nrow=nrow), path)
        return Path(path)

    def save_animation(self, frames: np.ndarray, path: str | Path, fps: float = 24.0, size: int = 256) -> Path:
        """Write frames (uint8 n×H×W×C) as a looping .gif or an .mp4, enlarged to at least `size` px."""
        from facegan.generation.walk import enlarge, save_animation

        return save_animation(list(enlarge(np.asarray(frames), size)), path, fps)

    def export(self, path: str | Path, format: str | None = None, license: str | None = None) -> Any:
        """Export G, checked against this model: `format` hub (or a path without a suffix) writes a model folder
        in the Hugging Face Hub's layout (model.safetensors, config.json, README.md model card with `license`,
        samples.png); onnx or torchscript (or the suffix .onnx/.pt) one file."""
        from facegan.generation.export import export_generator

        return export_generator(self._gen, path, format, license=license)

    # -- helpers -------------------------------------------------------------------------------------------
    def _images(self, z: torch.Tensor, attr: Attr) -> np.ndarray:
        """G(z) in batches, with labels asking for `attr` on a conditional model."""
        if isinstance(attr, str):
            from facegan.generation.attributes import parse_attr

            attr = parse_attr(attr)
        return self._gen.generate(z, dict(attr) if attr else None)

    def _as_latents(self, z: np.ndarray | torch.Tensor) -> torch.Tensor:
        z = torch.as_tensor(np.asarray(z) if not isinstance(z, torch.Tensor) else z, dtype=torch.float32)
        if z.ndim == 1:
            z = z[None]
        if z.ndim != 2 or z.shape[1] != self.nz:
            raise FaceganError(f"latents must be n×{self.nz} (or one vector of {self.nz}), got {tuple(z.shape)}")
        return z

    def _latent(self, value: Latent) -> torch.Tensor:
        """A seed or a latent as a 1×nz tensor."""
        if isinstance(value, (int, np.integer)):
            return self._gen.latents(1, int(value))
        z = self._as_latents(value)
        if len(z) != 1:
            raise FaceganError("give one latent (or a seed) for each end")
        return z


def grid(images: np.ndarray | FaceGrid, nrow: int | None = None) -> FaceGrid:
    """Faces (uint8 n×H×W×C, e.g. from `interpolate`) as a `FaceGrid` that a notebook shows; `nrow` per row."""
    return FaceGrid(np.asarray(images), nrow=nrow)


def _check_count(n: int) -> None:
    if not 1 <= n <= 100_000:
        raise FaceganError("n must be between 1 and 100000")


def _check_truncation(truncation: float) -> float:
    if not 0.0 <= truncation <= 1.0:
        raise FaceganError("truncation must be between 0 and 1")
    return truncation


def load(path: str | Path, device: str = "cpu") -> FaceGAN:
    """A run directory (its newest checkpoint), a checkpoint file or a model folder (`export(..., format="hub")`)
    as a `FaceGAN`."""
    return FaceGAN(load_generator(path, device=device))
