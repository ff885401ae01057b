"""Request parameters → face images: seeded latents, G in batch-invariant chunks, grids, strips, PNG and GIF bytes.

Face `index` of seed `s` is always row `index` of `seeded_latents(64, nz, s)`, the latents of
`facegan sample --n 64 --seed s`, whatever the grid size: torch draws a different sequence for a different count,
so a grid of n faces takes the first n of the 64 rather than drawing n.

G is run in chunks whose sizes were checked, when the renderer was built, to give bit-for-bit the same output per
face as running each face alone (CPU convolution kernels pick their blocking by batch size, and some sizes round
differently). So a face is the same bytes in a grid, alone, or batched with other people's requests.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence

import numpy as np
import torch

from facegan.generation.attributes import labels_for
from facegan.generation.sample import LoadedGenerator
from facegan.models.conditional import unknown_labels
from facegan.models.latents import seeded_latents, slerp
from facegan.utils.gif import gif_bytes
from facegan.utils.images import make_grid, png_bytes, resize_nearest, to_uint8

log = logging.getLogger("facegan.serve")

MAX_FACES = 64  # faces in one grid; also the latents drawn per seed
GRID_PADDING = 2  # pixels of black between faces of a grid (none in an interpolation strip)
GIF_FRAME_MS = 80
_CHUNK_CANDIDATES = (64, 32, 16, 8, 4, 2)
_PROBE_SEED = 20240229


class FaceRenderer:
    """Turns (seed, index, size, truncation, …) into images and encoded bytes with one loaded generator."""

    def __init__(self, gen: LoadedGenerator, chunk_sizes: Sequence[int] | None = None) -> None:
        self.gen = gen
        self.nz = gen.config.model.nz
        self.resolution = gen.config.model.resolution
        self.channels = gen.config.model.channels
        # Largest first; 1 is always allowed (one face alone is the reference every other size is held to).
        sizes = batch_invariant_sizes(gen) if chunk_sizes is None else chunk_sizes
        self.chunk_sizes = tuple(sorted({1, *sizes}, reverse=True))
        self.model_id = model_fingerprint(gen)

    @property
    def max_batch(self) -> int:
        """The largest number of faces G runs on at once."""
        return self.chunk_sizes[0]

    # Latents -----------------------------------------------------------------------------------------------
    def seed_latents(self, seed: int, truncation: float = 1.0) -> torch.Tensor:
        """The 64 latents of `seed` (64×nz), scaled toward the mean by `truncation`."""
        return seeded_latents(MAX_FACES, self.nz, seed, self.gen.config.model.latent, truncation)

    def face_latent(self, seed: int, index: int, truncation: float = 1.0) -> torch.Tensor:
        """The latent of face `index` of `seed` (1×nz)."""
        return self.seed_latents(seed, truncation)[index : index + 1]

    def path_latents(
        self, seed_a: int, index_a: int, seed_b: int, index_b: int, steps: int, truncation: float = 1.0,
    ) -> torch.Tensor:
        """`steps` latents on the great-circle path from face A to face B, both ends included (steps×nz)."""
        a = self.face_latent(seed_a, index_a, truncation)
        b = self.face_latent(seed_b, index_b, truncation)
        t = torch.linspace(0.0, 1.0, steps).unsqueeze(1)  # steps x 1
        path = slerp(a, b, t)
        path[0], path[-1] = a[0], b[0]  # the ends are exactly the two faces, not a rounding of them
        return path

    def with_attr(self, z: torch.Tensor, attr: dict[str, int] | None) -> torch.Tensor:
        """A conditional model's latents carry their labels as extra columns (N×(nz+A), level indices; unknown
        where `attr` names nothing), so they batch with other requests' latents; an unconditional model's
        latents stay N×nz (and `attr` must be empty: FaceganError otherwise)."""
        labels = labels_for(self.gen.config.model, attr, len(z))
        if not self.gen.config.model.condition:
            return z
        if labels is None:
            labels = unknown_labels(self.gen.config.model, len(z))
        return torch.cat([z, labels.to(z.dtype)], dim=1)

    # G -----------------------------------------------------------------------------------------------------
    def _g(self, z: torch.Tensor) -> torch.Tensor:
        z = z.to(self.gen.device)
        if z.shape[1] == self.nz:
            return self.gen.netG(z)
        return self.gen.netG(z[:, : self.nz], z[:, self.nz :].round().long())  # labels from `with_attr`

    def generate(self, z: torch.Tensor) -> np.ndarray:
        """G(z) as uint8 N×H×W×C, run in chunks that give each face the bytes it has alone."""
        out = []
        start = 0
        with torch.inference_mode():
            while start < len(z):
                size = next(s for s in self.chunk_sizes if s <= len(z) - start)
                out.append(to_uint8(self._g(z[start : start + size])))
                start += size
        return np.concatenate(out) if out else np.zeros((0, self.resolution, self.resolution, self.channels), np.uint8)

    # Images ------------------------------------------------------------------------------------------------
    def scale(self, image: np.ndarray, size: int, smooth: bool = False) -> np.ndarray:
        """One H×W×C face at `size` px (nearest-neighbour, or Lanczos when `smooth`)."""
        return image if size == image.shape[0] else resize_nearest(image, size, smooth=smooth)

    def face_png(self, image: np.ndarray, size: int, smooth: bool = False) -> bytes:
        """One face as PNG bytes at `size` px."""
        return png_bytes(self.scale(image, size, smooth))

    def grid_png(self, images: np.ndarray, size: int, smooth: bool = False) -> bytes:
        """Faces tiled in a square-ish grid (ceil(√n) per row, 2-px black gaps) as PNG bytes."""
        return png_bytes(make_grid(np.stack([self.scale(f, size, smooth) for f in images]), padding=GRID_PADDING))

    def strip_png(self, images: np.ndarray, size: int, smooth: bool = False) -> bytes:
        """Frames side by side with no gaps (frame k at x = k·size) as PNG bytes."""
        frames = np.stack([self.scale(f, size, smooth) for f in images])
        return png_bytes(make_grid(frames, nrow=len(frames), padding=0))

    def gif(self, images: np.ndarray, size: int, smooth: bool = False) -> bytes:
        """Frames as a looping GIF that walks A→B and back, as GIF bytes."""
        frames = [self.scale(f, size, smooth) for f in images]
        return gif_bytes(frames + frames[-2:0:-1], GIF_FRAME_MS)  # ping-pong, so the loop has no jump


def batch_invariant_sizes(gen: LoadedGenerator, candidates: Sequence[int] = _CHUNK_CANDIDATES) -> tuple[int, ...]:
    """The batch sizes at which G gives every face exactly the floats it gives that face alone."""
    nz, latent = gen.config.model.nz, gen.config.model.latent
    z = seeded_latents(max(candidates), nz, _PROBE_SEED, latent).to(gen.device)
    with torch.inference_mode():
        alone = torch.cat([gen.netG(z[i : i + 1]) for i in range(len(z))])
        sizes = tuple(k for k in candidates if torch.equal(gen.netG(z[:k]), alone[:k]))
    log.info("G runs batches of %s faces bit-identically to one face at a time",
             ", ".join(map(str, sizes)) or "no more than 1")
    return sizes


def model_fingerprint(gen: LoadedGenerator) -> str:
    """A short hash of G's weights and config: the same model gives the same id, so cached images stay right."""
    digest = hashlib.sha256(json.dumps(gen.config.model.__dict__, sort_keys=True).encode())
    for name, tensor in gen.netG.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
