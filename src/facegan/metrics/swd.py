"""Multi-scale sliced Wasserstein distance (SWD) of Karras et al. 2018, as in their released code.

Progressive Growing of GANs (§5, appendix D) and its `metrics/sliced_wasserstein.py` define it:
1. each image (uint8 values 0..255 as float32) is split into a Laplacian pyramid whose coarsest level is 16 px
   (a 32-px image has levels 32 and 16; a 64-px one 64, 32 and 16): every level but the coarsest is a band,
   G_k − pyr_up(G_k+1) with G_k the image reduced k times, and the coarsest is the low-pass residual; pyrDown/pyrUp
   use the 5×5 binomial filter with mirror borders, exactly like OpenCV's cv2.pyrDown/cv2.pyrUp;
2. from every level of every image, 128 neighbourhoods of 7×7 pixels are taken at random positions
   (all channels: 7·7·3 = 147 numbers per descriptor);
3. the descriptors of one set at one level are normalised per channel by that set's own mean and standard
   deviation (over all neighbourhoods and all 7×7 positions);
4. the sliced Wasserstein distance between the two sets of descriptors is averaged over 4 repeats of 128 random
   unit directions (512 projections in all): project, sort, mean absolute difference of the sorted projections;
5. each level's distance is multiplied by 1e3, and the average over levels is the headline number.
Both sets must hold the same number of images (the reference asserts equal shapes); `swd` uses the first
min(len(a), len(b)) of each. Grey images work too (descriptors of 7·7·1 numbers); the paper used RGB only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from facegan.errors import FaceganError
from facegan.metrics.metric import Metric, ScoreContext

NHOOD_SIZE = 7
NHOODS_PER_IMAGE = 128
DIR_REPEATS = 4
DIRS_PER_REPEAT = 128
MIN_RESOLUTION = 16
_BATCH_IMAGES = 256  # images per pyramid/descriptor batch: bounds the index tensors to ~40 MB
_DIR_CHUNK = 32  # directions projected and sorted at once: bounds memory at 10k images to ~160 MB per set

# The 5×5 binomial filter ([1 4 6 4 1] ⊗ [1 4 6 4 1] / 256) that cv2.pyrDown uses.
_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
GAUSSIAN_FILTER = torch.outer(_BINOMIAL, _BINOMIAL) / 256.0


@dataclass
class SWDResult:
    """SWD ×1e3 at each pyramid level (keyed by its resolution) and their average."""

    levels: dict[int, float]
    avg: float

    def as_dict(self) -> dict[str, object]:
        """The JSON form used in eval files: `swd` and `swd_levels`."""
        return {"swd": self.avg, "swd_levels": {str(res): value for res, value in self.levels.items()}}


def pyramid_resolutions(resolution: int) -> list[int]:
    """The pyramid's level sizes: the image size halved while it is at least 16 px."""
    levels = []
    res = resolution
    while res >= MIN_RESOLUTION:
        levels.append(res)
        res //= 2
    return levels


def _filter2d(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve each channel of N×C×H×W with a 5×5 kernel, borders mirrored (scipy 'mirror' = torch 'reflect')."""
    channels = x.shape[1]
    weight = kernel.to(x).expand(channels, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), weight, groups=channels)


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Blur and keep every second pixel: N×C×H×W → N×C×⌈H/2⌉×⌈W/2⌉ (matches cv2.pyrDown)."""
    return _filter2d(x, GAUSSIAN_FILTER)[:, :, ::2, ::2]


def pyr_up(x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Insert zeros between pixels and blur with 4× the filter: N×C×H×W → N×C×2H×2W (matches cv2.pyrUp)."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    out = _filter2d(up, GAUSSIAN_FILTER * 4.0)
    return out if size is None else out[:, :, : size[0], : size[1]]


def laplacian_pyramid(x: torch.Tensor, num_levels: int) -> list[torch.Tensor]:
    """Band-pass levels (finest first) and the low-pass residual last; sums back to `x` via pyr_up."""
    levels = [x.float()]
    for _ in range(1, num_levels):
        levels.append(pyr_down(levels[-1]))
        levels[-2] = levels[-2] - pyr_up(levels[-1], levels[-2].shape[2:])
    return levels


def _to_nchw_float(images: np.ndarray) -> torch.Tensor:
    """uint8 N×H×W×C → float32 N×C×H×W with values 0..255 (the reference works on raw pixel values)."""
    # np.array copies: the input may be a read-only memory map, which torch.from_numpy warns about.
    return torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float()


def _random_nhoods(level: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """128 random 7×7 neighbourhoods per image: N×C×H×W → (N·128)×C×7×7."""
    n, c, h, w = level.shape
    half = NHOOD_SIZE // 2
    count = n * NHOODS_PER_IMAGE
    # Centres lie in [half, size - half) as in the reference (numpy's randint excludes its upper bound).
    y = torch.randint(half, h - half, (count, 1, 1, 1), generator=generator)
    x = torch.randint(half, w - half, (count, 1, 1, 1), generator=generator)
    img = (torch.arange(count) // NHOODS_PER_IMAGE).view(count, 1, 1, 1)
    chan = torch.arange(c).view(1, c, 1, 1)
    offsets = torch.arange(-half, half + 1)
    dy, dx = offsets.view(1, 1, -1, 1), offsets.view(1, 1, 1, -1)
    index = ((img * c + chan) * h + (y + dy)) * w + (x + dx)
    return level.reshape(-1)[index]


def _normalise(desc: torch.Tensor) -> torch.Tensor:
    """Per-channel standardisation over one whole set, then flatten: M×C×7×7 → M×(C·49)."""
    mean = desc.mean(dim=(0, 2, 3), keepdim=True)
    std = desc.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
    # A constant channel (std 0) would give NaN; leaving it centred at 0 keeps the distance defined.
    desc.sub_(mean).div_(torch.where(std > 0, std, torch.ones_like(std)))  # in place: ~750 MB per set at 10k
    return desc.reshape(desc.shape[0], -1)


def level_descriptors(images: np.ndarray, level: int, generator: torch.Generator) -> torch.Tensor:
    """Normalised descriptors of one level of the set's full Laplacian pyramid: (N·128)×(C·49) float32.

    Level `level` is the band image − pyr_up(pyr_down(image)) at that scale, or the low-pass residual when it is
    the coarsest level of `pyramid_resolutions(H)`.
    """
    total = len(pyramid_resolutions(images.shape[1]))
    if not 0 <= level < total:
        raise ValueError(f"level {level} outside the {total}-level pyramid of {images.shape[1]}-px images")
    # A band needs only the next coarser Gaussian level, so the pyramid stops one level below `level`; the bands
    # it returns are those of the full pyramid (only its last entry is a low-pass residual).
    num_levels = min(level + 2, total)
    out = torch.empty(len(images) * NHOODS_PER_IMAGE, images.shape[3], NHOOD_SIZE, NHOOD_SIZE)
    for start in range(0, len(images), _BATCH_IMAGES):
        batch = _to_nchw_float(images[start : start + _BATCH_IMAGES])
        nhoods = _random_nhoods(laplacian_pyramid(batch, num_levels)[level], generator)
        out[start * NHOODS_PER_IMAGE : start * NHOODS_PER_IMAGE + len(nhoods)] = nhoods
    return _normalise(out)


def descriptor_pyramid(images: np.ndarray, seed: int = 0) -> list[torch.Tensor]:
    """Normalised descriptors of every level of a set (keep them to compare many sets against one)."""
    _check_images(images)
    return [level_descriptors(images, lvl, _generator(seed, lvl)) for lvl in
            range(len(pyramid_resolutions(images.shape[1])))]


def sliced_wasserstein(
    a: torch.Tensor, b: torch.Tensor, generator: torch.Generator,
    dir_repeats: int = DIR_REPEATS, dirs_per_repeat: int = DIRS_PER_REPEAT,
) -> float:
    """Mean over repeats of the 1-D Wasserstein distance along random unit directions; a, b: M×D, same M."""
    if a.shape != b.shape:
        raise ValueError(f"descriptor sets differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    results = []
    for _ in range(dir_repeats):
        dirs = torch.randn(a.shape[1], dirs_per_repeat, generator=generator, dtype=torch.float64)
        dirs = (dirs / dirs.norm(dim=0, keepdim=True)).float()  # unit length per direction, D×dirs
        total = 0.0
        for start in range(0, dirs_per_repeat, _DIR_CHUNK):
            chunk = dirs[:, start : start + _DIR_CHUNK].T.contiguous()  # dirs×D
            # Projections come out as dirs×M rows, sorted along each direction; numpy's SIMD sort is
            # several times faster than torch.sort on the CPU.
            proj_a = np.sort((chunk @ a.T).cpu().numpy(), axis=1)
            proj_b = np.sort((chunk @ b.T).cpu().numpy(), axis=1)
            total += float(np.abs(proj_a - proj_b).sum(dtype=np.float64))
        results.append(total / (a.shape[0] * dirs_per_repeat))  # mean over neighbourhoods and directions
    return float(np.mean(results))


def _generator(seed: int, *stream: int) -> torch.Generator:
    """An independent, reproducible random stream for (seed, *stream)."""
    mixed = int(np.random.SeedSequence([seed, *stream]).generate_state(1, dtype=np.uint64)[0] >> 1)
    return torch.Generator().manual_seed(mixed)


def _check_images(images: np.ndarray) -> None:
    if images.ndim != 4 or images.dtype != np.uint8 or images.shape[3] not in (1, 3):
        raise ValueError(f"expected uint8 N×H×W×(1|3) images, got {images.dtype} {images.shape}")
    if min(images.shape[1:3]) < MIN_RESOLUTION:
        raise FaceganError(f"SWD needs images of at least {MIN_RESOLUTION} px, got {images.shape[1]}×{images.shape[2]}")


def swd(
    images_a: np.ndarray, images_b: np.ndarray, seed: int = 0,
    reference: Sequence[torch.Tensor] | None = None,
) -> SWDResult:
    """SWD ×1e3 between two uint8 N×H×W×C sets (per level and averaged); `reference`: descriptor_pyramid(a)."""
    _check_images(images_b)
    count = min(len(images_a), len(images_b))
    if reference is None:
        _check_images(images_a)
        if images_a.shape[1:] != images_b.shape[1:]:
            raise FaceganError(f"image sets differ in shape: {images_a.shape[1:]} vs {images_b.shape[1:]}")
        images_a = images_a[:count]
    images_b = images_b[:count] if reference is None else images_b
    resolutions = pyramid_resolutions(images_b.shape[1])
    levels = {}
    for lvl, res in enumerate(resolutions):
        # One level at a time keeps at most two levels' descriptors in memory (≈1.5 GB at 10k images).
        desc_a = reference[lvl] if reference is not None else level_descriptors(images_a, lvl, _generator(seed, lvl))
        desc_b = level_descriptors(images_b, lvl, _generator(seed, lvl, 1))
        if desc_a.shape != desc_b.shape:
            raise FaceganError(f"SWD needs sets of equal size and shape: descriptors {tuple(desc_a.shape)} vs "
                               f"{tuple(desc_b.shape)}")
        levels[res] = sliced_wasserstein(desc_a, desc_b, _generator(seed, lvl, 2)) * 1e3
        del desc_a, desc_b
    return SWDResult(levels=levels, avg=float(np.mean(list(levels.values()))))


def _score(fakes: np.ndarray, reals: np.ndarray, ctx: ScoreContext) -> dict[str, object]:
    return swd(reals, fakes, seed=ctx.seed, reference=ctx.reference).as_dict()


def _summary(result: dict[str, object], label: str) -> str:
    levels = ", ".join(f"{k} px {v:.2f}" for k, v in result["swd_levels"].items())  # type: ignore[union-attr]
    return f"{label}: {result['swd']:.3f} (×1e3; {levels})"


METRIC = Metric(
    "swd", key="swd", title="SWD ×1e3",
    description="multi-scale sliced Wasserstein distance ×1e3 of Laplacian-pyramid patches (lower is better)",
    score=_score, summary=_summary, prepare_reals=descriptor_pyramid, during_training=True,
)
