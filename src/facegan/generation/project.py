"""Projection: find the latent z whose face G(z) is closest to a photo (GAN inversion by optimisation).

The photo is cropped and resized exactly as the training data was (the crop recorded in the dataset's
meta.json, via `facegan.data.decode`). Then Adam runs on z from several starts at once ("restarts", each the
best of a pool of random latents), minimising

    loss = ‖G(z) − x‖² (per pixel, images in [−1, 1])
         + λ_D · mean over D's hidden layers ℓ of ‖D_ℓ(G(z)) − D_ℓ(x)‖² / mean(D_ℓ(x)²)

The feature term uses the run's own discriminator as the perceptual network (nothing is downloaded): the
inputs of D's conv/linear layers after the first are captured by forward pre-hooks, so it works for any family
whose D is built from such layers. Each layer's error is divided by its target's energy so no layer dominates.
After every step z is put back into the prior's typical set, so the result stays a plausible latent: for
N(0, I) latents ‖z‖/√nz is kept within `norm_band` standard deviations (1/√(2·nz)) of 1, the shell where the
prior has its mass; U(−1, 1) latents are clamped to [−1, 1].
"""

from __future__ import annotations

import io
import json
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from facegan.errors import FaceganError
from facegan.generation.model_folder import is_model_folder
from facegan.generation.sample import LoadedGenerator, load_generator
from facegan.models import build_models
from facegan.models.latents import seeded_latents, slerp
from facegan.run.checkpoint import load_checkpoint
from facegan.utils.atomic import atomic_write_bytes, atomic_write_text
from facegan.utils.images import make_grid, save_png, to_uint8
from facegan.utils.progress import progress_bar

log = logging.getLogger("facegan.project")

Photo = str | Path | bytes | np.ndarray | Image.Image
CANDIDATES_PER_RESTART = 16  # each restart starts from the best of this many random latents
SNAPSHOTS = 5  # faces of the winning restart kept along the way for the strip


@dataclass
class ProjectionResult:
    """The best latent found for a photo, its face, and how well it matches."""

    latent: np.ndarray  # float32 (nz,)
    image: np.ndarray  # uint8 H×W×C, G(latent)
    target: np.ndarray  # uint8 H×W×C, the photo as prepared
    loss: float
    pixel_mse: float  # on images in [−1, 1]
    restart_losses: list[float]
    crop: str
    steps: int
    snapshots: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (step, uint8 H×W×C)
    seconds: float = 0.0


def dataset_crop(gen: LoadedGenerator) -> str:
    """The crop the training data was prepared with (meta.json's `crop`), or `center` when unknown."""
    path = Path(gen.config.data.path) / "meta.json" if gen.config.data.path else None
    try:
        crop = json.loads(path.read_text()).get("crop") if path is not None else None
    except (OSError, json.JSONDecodeError):
        crop = None
    return crop if isinstance(crop, str) and crop else "center"


def prepare_photo(photo: Photo, resolution: int, channels: int, crop: str = "center") -> np.ndarray:
    """A photo (file, bytes, uint8 array or PIL image) as uint8 resolution×resolution×channels, with the
    training data's crop and resampling (facegan.data.decode)."""
    from facegan.data.decode import BadImageError, DecodeOptions, decode_array, decode_image

    opts = DecodeOptions(resolution=resolution, channels=channels, crop=crop)
    try:
        if isinstance(photo, Image.Image):
            buffer = io.BytesIO()
            photo.save(buffer, format="PNG")
            return decode_image(buffer.getvalue(), opts)
        if isinstance(photo, np.ndarray):
            if photo.dtype != np.uint8:
                raise FaceganError("a photo given as an array must be uint8 H×W, H×W×1, H×W×3 or H×W×4")
            return decode_array(photo, opts)
        if isinstance(photo, (str, Path)):
            path = Path(photo)
            if not path.is_file():
                raise FaceganError(f"photo {path} does not exist")
            photo = path.read_bytes()
        return decode_image(photo, opts)
    except BadImageError as bad:
        raise FaceganError(f"cannot use the photo: {bad.detail} ({bad.category})") from None


def load_discriminator(checkpoint: str | Path, device: torch.device) -> nn.Module | None:
    """D of a checkpoint in eval mode without gradients, or None when the checkpoint has no usable D (a model
    folder holds G only)."""
    if is_model_folder(checkpoint):
        return None
    ckpt = load_checkpoint(checkpoint)
    if "D" not in ckpt:
        return None
    _, netD = build_models(ckpt["config"].model)  # D exactly as training built it (conditional, spectral norm)
    try:
        netD.load_state_dict(ckpt["D"])
    except RuntimeError:
        log.warning("%s: D's weights do not fit its config; projecting with the pixel loss only", checkpoint)
        return None
    return netD.to(device).eval().requires_grad_(False)


class DFeatures:
    """D's hidden features: the inputs of every conv/linear layer after the first, captured by pre-hooks."""

    def __init__(self, netD: nn.Module) -> None:
        self.netD = netD
        layers = [m for m in netD.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d))]
        self.layers = layers[1:]  # the first layer's input is the image itself, already in the pixel loss
        self._found: list[torch.Tensor] = []

    @contextmanager
    def _hooked(self) -> Iterator[None]:
        handles = [m.register_forward_pre_hook(lambda _m, inputs: self._found.append(inputs[0]))
                   for m in self.layers]
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def __call__(self, images: torch.Tensor) -> list[torch.Tensor]:
        """D's hidden features of `images` (N×C×H×W), one tensor per layer."""
        self._found = []
        with self._hooked():
            self.netD(images)
        found, self._found = self._found, []
        return found


def _feature_loss(features: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
    """Per image: the mean over layers of the squared error divided by the target's energy."""
    terms = []
    for f, t in zip(features, targets, strict=True):
        err = (f - t).pow(2).flatten(1).mean(1)
        terms.append(err / t.pow(2).flatten(1).mean(1).clamp_min(1e-8))
    return torch.stack(terms).mean(0)


def project(
    gen: LoadedGenerator, photo: Photo, steps: int = 300, restarts: int = 4, seed: int = 0, lr: float = 0.05,
    feature_weight: float = 0.5, norm_band: float = 3.0, netD: nn.Module | None = None,
    crop: str | None = None, show_progress: bool = False,
) -> ProjectionResult:
    """Find the latent whose generated face is closest to `photo` (see the module docstring for the loss)."""
    if not 1 <= steps <= 100_000:
        raise FaceganError("--steps must be between 1 and 100000")
    if not 1 <= restarts <= 64:
        raise FaceganError("--restarts must be between 1 and 64")
    started = time.perf_counter()
    model = gen.config.model
    crop = crop or dataset_crop(gen)
    target_u8 = prepare_photo(photo, model.resolution, model.channels, crop)
    device = gen.device
    target = torch.from_numpy(target_u8.copy()).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(device)
    features = DFeatures(netD) if netD is not None and feature_weight > 0 else None
    target_features = [t.detach() for t in features(target)] if features is not None else []
    uniform = model.latent == "uniform"

    def losses(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(total, pixel) loss per latent in z (R×nz)."""
        images = gen.netG(z)
        pixel = (images - target).pow(2).flatten(1).mean(1)
        total = pixel
        if features is not None:
            expanded = [t.expand(len(z), *t.shape[1:]) for t in target_features]
            total = total + feature_weight * _feature_loss(features(images), expanded)
        return total, pixel

    # Starts: the best `restarts` of a pool of seeded random latents.
    pool = seeded_latents(restarts * CANDIDATES_PER_RESTART, model.nz, seed, model.latent).to(device)
    with torch.no_grad():
        pool_loss = torch.cat([losses(chunk)[0] for chunk in pool.split(64)])
    z = pool[pool_loss.argsort()[:restarts]].clone().requires_grad_(True)

    opt = torch.optim.Adam([z], lr=lr, betas=(0.9, 0.999))
    # Constant rate, then a cosine ramp down over the last half (as StyleGAN's projector ramps its rate).
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 1.0 if s < steps / 2 else 0.5 * (1 + math.cos(math.pi * (s - steps / 2) / (steps / 2))))
    snap_at = sorted({0, *np.unique(np.round(np.geomspace(1, steps, SNAPSHOTS - 1)).astype(int)).tolist()})
    snaps: list[tuple[int, np.ndarray]] = []
    with progress_bar(steps, "project", unit="step", enabled=show_progress) as bar:
        for step in range(steps + 1):
            if step in snap_at:
                with torch.no_grad():
                    snaps.append((step, to_uint8(gen.netG(z.detach()))))
            if step == steps:
                break
            total, _ = losses(z)
            opt.zero_grad(set_to_none=True)
            total.sum().backward()  # a sum keeps every restart's gradient its own
            opt.step()
            schedule.step()
            if uniform:
                with torch.no_grad():
                    z.clamp_(-1, 1)
            elif math.isfinite(norm_band):
                with torch.no_grad():
                    _clamp_norm(z, model.nz, norm_band)
            bar.update(1)
            if step % 20 == 0:
                bar.set_postfix({"loss": f"{float(total.detach().min()):.4f}"}, refresh=False)

    with torch.no_grad():
        total, pixel = losses(z)
        best = int(total.argmin())
        image = to_uint8(gen.netG(z[best : best + 1]))[0]
    return ProjectionResult(
        latent=z[best].detach().cpu().float().numpy(), image=image, target=target_u8, loss=float(total[best]),
        pixel_mse=float(pixel[best]), restart_losses=[float(v) for v in total], crop=crop, steps=steps,
        snapshots=[(s, frames[best]) for s, frames in snaps], seconds=time.perf_counter() - started,
    )


def _clamp_norm(z: torch.Tensor, nz: int, band: float) -> None:
    """Rescale, in place, rows of z whose ‖z‖/√nz is more than `band` standard deviations from 1 (for
    z ~ N(0, I) that ratio has mean ≈ 1 and standard deviation ≈ 1/√(2·nz)) back to the edge of that band."""
    sigma = 1 / math.sqrt(2 * nz)
    ratio = z.norm(dim=1, keepdim=True) / math.sqrt(nz)
    z.mul_(ratio.clamp(max(1 - band * sigma, 1e-3), 1 + band * sigma) / ratio.clamp_min(1e-8))


def strip_image(result: ProjectionResult, min_height: int = 128) -> np.ndarray:
    """Before/after strip: the photo as prepared, then G(z) along the way (the random start first), then the
    final reconstruction; enlarged (nearest) to at least `min_height` px."""
    faces = np.stack([result.target] + [image for _, image in result.snapshots])
    strip = make_grid(faces, nrow=len(faces), padding=2, pad_value=255)
    factor = max(1, -(-min_height // strip.shape[0]))
    return strip.repeat(factor, axis=0).repeat(factor, axis=1)


def walk_to_photo(gen: LoadedGenerator, latent: np.ndarray, frames: int = 24, seed: int = 0) -> np.ndarray:
    """Faces along the spherical path from a random latent (seeded) to the projected one, uint8 F×H×W×C."""
    start = gen.latents(1, seed)[0]
    end = torch.from_numpy(latent).to(start.dtype)
    t = torch.linspace(0, 1, frames).view(frames, 1)
    return gen.images(slerp(start[None], end[None], t))


@dataclass
class ProjectionFiles:
    """The files `write_projection` wrote, and the result they came from."""

    out_dir: Path
    files: dict[str, Path]
    result: ProjectionResult


def write_projection(
    model: str | Path | LoadedGenerator, photo: Photo, out_dir: str | Path, steps: int = 300, restarts: int = 4,
    seed: int = 0, device: str = "cpu", crop: str | None = None, show_progress: bool = False,
    walk_frames: int = 24, size: int = 256,
) -> ProjectionFiles:
    """Project `photo` into the run's latent space and write target.png, reconstruction.png, latent.npy,
    strip.png (before/after), walk.gif (a random face to the photo's) and projection.json into `out_dir`."""
    from facegan.generation.walk import enlarge
    from facegan.utils.gif import frame_ms, save_gif

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FaceganError(f"{out_dir} exists and is not a folder")
    gen = model if isinstance(model, LoadedGenerator) else load_generator(model, device=device)
    netD = load_discriminator(gen.checkpoint, gen.device)
    if netD is None:
        log.warning("%s has no discriminator: projecting with the pixel loss only", gen.checkpoint)
    result = project(gen, photo, steps=steps, restarts=restarts, seed=seed, netD=netD, crop=crop,
                     show_progress=show_progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {name: out_dir / name for name in
             ("target.png", "reconstruction.png", "latent.npy", "strip.png", "walk.gif", "projection.json")}
    save_png(enlarge(result.target[None], size)[0], files["target.png"])
    save_png(enlarge(result.image[None], size)[0], files["reconstruction.png"])
    buffer = io.BytesIO()
    np.save(buffer, result.latent.astype(np.float32))
    atomic_write_bytes(files["latent.npy"], buffer.getvalue())
    save_png(strip_image(result), files["strip.png"])
    walk = enlarge(walk_to_photo(gen, result.latent, walk_frames, seed + 1), size)
    save_gif(list(walk) + [walk[-1]] * (walk_frames // 2), files["walk.gif"], frame_ms(12))  # hold on the photo's face
    summary: dict[str, Any] = {
        "checkpoint": gen.checkpoint, "step": gen.step, "photo": str(photo) if isinstance(photo, (str, Path)) else
        "(in memory)", "crop": result.crop, "steps": steps, "restarts": restarts, "seed": seed,
        "loss": result.loss, "pixel_mse": result.pixel_mse, "restart_losses": result.restart_losses,
        "discriminator_features": netD is not None, "seconds": round(result.seconds, 3),
        "strip": ["photo"] + [f"step {s}" for s, _ in result.snapshots],
    }
    atomic_write_text(files["projection.json"], json.dumps(summary, indent=2) + "\n")
    return ProjectionFiles(out_dir=out_dir, files=files, result=result)
