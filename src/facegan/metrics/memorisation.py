"""Memorisation check: does G reproduce training images instead of making new faces?

Feature space: each image shrunk by area averaging to at most 16×16 px, all channels, values 0..1 — a
768-number vector for RGB. Why this space: memorisation means near-copies of training pixels, which a
small thumbnail catches while ignoring the high-frequency texture where a GAN's copy would differ; it costs
one matrix product (20k training images × 10k fakes in seconds on a CPU), needs no learned network (an
Inception or face embedding would also match "same kind of face", not "same image"), and its distance has a
plain unit: the root-mean-square pixel difference of the thumbnails (0 = identical, 1 = black vs white).
Horizontal mirror images count as copies too (the training loop may flip).

For every fake: its nearest training image and their distance. A fake is "closer than the training images
are to each other" when its distance is below that training image's distance to its own nearest other
training image. `share` is the fraction of such fakes. Real images drawn from the same distribution pass
this test at some base rate too, so `share_heldout` gives the same fraction for held-out real images (not in
the reference): a share far above it means the model copies; a share near or below it does not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from facegan.metrics.metric import Metric, ScoreContext, fmt
from facegan.utils.images import make_grid, save_png
from facegan.utils.progress import progress_bar

FEATURE_SIZE = 16
COPY_FRACTION = 0.1  # a fake within 10% of the median train-to-train distance counts as a near-exact copy
_CHUNK = 2048  # query rows per distance block: 2048 × 20k floats = 160 MB


def memo_features(images: np.ndarray) -> torch.Tensor:
    """Thumbnail vectors of uint8 N×H×W×C images: N×(C·s·s) float32 in [0, 1], s = min(16, H)."""
    size = min(FEATURE_SIZE, images.shape[1], images.shape[2])
    parts = []
    for start in range(0, len(images), 4096):
        x = torch.from_numpy(np.array(images[start : start + 4096])).permute(0, 3, 1, 2).float() / 255
        parts.append(F.adaptive_avg_pool2d(x, size).flatten(1))
    return torch.cat(parts) if parts else torch.empty(0, images.shape[3] * size * size)


def _mirror(images: np.ndarray) -> np.ndarray:
    return images[:, :, ::-1]


def nearest_neighbours(query: torch.Tensor, reference: torch.Tensor, exclude_self: bool = False,
                       on_progress: Callable[[int], object] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """RMS distance to, and index of, the nearest reference row of every query row (exclude_self: query is ref)."""
    dim = reference.shape[1]
    # Centring first keeps |q|² + |r|² - 2 q·r accurate in float32 (an exact copy comes out ~1e-4, not ~1e-2).
    centre = reference.mean(dim=0, keepdim=True)
    ref = reference - centre
    ref_sq = (ref * ref).sum(1)
    best_d2 = torch.empty(len(query))
    best_idx = torch.empty(len(query), dtype=torch.long)
    for start in range(0, len(query), _CHUNK):
        q = query[start : start + _CHUNK] - centre
        d2 = (q * q).sum(1, keepdim=True) + ref_sq[None, :] - 2.0 * (q @ ref.T)
        if exclude_self:
            rows = torch.arange(len(q))
            d2[rows, rows + start] = float("inf")
        value, index = d2.min(dim=1)
        best_d2[start : start + len(q)] = value
        best_idx[start : start + len(q)] = index
        if on_progress is not None:
            on_progress(len(q))
    return (best_d2.clamp_min(0) / dim).sqrt(), best_idx


@dataclass
class MemorisationResult:
    """Nearest training image of every fake, with the distances the verdict compares."""

    distance: np.ndarray  # (N,) RMS thumbnail distance of each fake to its nearest training image
    nearest: np.ndarray  # (N,) index of that training image in the reference set
    train_nn_distance: np.ndarray  # (M,) each training image's distance to its nearest other training image
    closer: np.ndarray  # (N,) bool: distance < train_nn_distance[nearest]
    share: float
    share_heldout: float | None
    copies: int

    def as_dict(self) -> dict[str, float | int | None]:
        """The JSON form used in eval files."""
        return {
            "memo_share": self.share, "memo_share_heldout": self.share_heldout, "memo_copies": self.copies,
            "memo_nn_median": float(np.median(self.distance)),
            "memo_nn_min": float(self.distance.min()),
            "memo_train_nn_median": float(np.median(self.train_nn_distance)),
        }

    def suspicion(self) -> np.ndarray:
        """Distance relative to the training images' own spacing: below 1 is 'closer than they are'."""
        return self.distance / np.maximum(self.train_nn_distance[self.nearest], 1e-12)


def _nearest_with_mirror(images: np.ndarray, ref: torch.Tensor, exclude_self: bool = False,
                         on_progress: Callable[[int], object] | None = None) -> tuple[np.ndarray, np.ndarray]:
    d_plain, i_plain = nearest_neighbours(memo_features(images), ref, exclude_self, on_progress)
    # A symmetric face is close to its own mirror image, so self-exclusion applies to both comparisons.
    d_flip, i_flip = nearest_neighbours(memo_features(_mirror(images)), ref, exclude_self, on_progress)
    use_flip = d_flip < d_plain
    return torch.where(use_flip, d_flip, d_plain).numpy(), torch.where(use_flip, i_flip, i_plain).numpy()


def memorisation(fakes: np.ndarray, reference: np.ndarray, heldout: np.ndarray | None = None,
                 on_progress: Callable[[int], object] | None = None) -> MemorisationResult:
    """Compare fakes (and optional held-out reals) with the training images in `reference` (uint8 NHWC)."""
    if len(reference) < 2:
        raise ValueError("the memorisation check needs at least 2 training images")
    ref = memo_features(reference)
    train_nn, _ = _nearest_with_mirror(reference, ref, exclude_self=True, on_progress=on_progress)
    distance, nearest = _nearest_with_mirror(fakes, ref, on_progress=on_progress)
    closer = distance < train_nn[nearest]
    share_heldout = None
    if heldout is not None and len(heldout):
        d_held, n_held = _nearest_with_mirror(heldout, ref, on_progress=on_progress)
        share_heldout = float((d_held < train_nn[n_held]).mean())
    copies = int((distance < COPY_FRACTION * np.median(train_nn)).sum())
    return MemorisationResult(distance=distance, nearest=nearest, train_nn_distance=train_nn, closer=closer,
                              share=float(closer.mean()), share_heldout=share_heldout, copies=copies)


def closest_pairs_strip(fakes: np.ndarray, reference: np.ndarray, result: MemorisationResult, count: int = 8,
                        min_side: int = 64) -> np.ndarray:
    """The `count` most suspicious fakes (top row) over their nearest training images (bottom row), uint8 H×W×C."""
    order = np.argsort(result.suspicion(), kind="stable")[:count]
    top = fakes[order]
    bottom = reference[result.nearest[order]]
    grid = make_grid(np.concatenate([top, bottom]), nrow=len(order))
    scale = max(1, -(-min_side // fakes.shape[1]))  # upscale small faces so the strip is readable
    return np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)


MEMO_MAX_REFERENCE = 50_000
MEMO_MAX_HELDOUT = 1_000


def split_memo_reference(train: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(reference, held-out) split of the training images for the memorisation check."""
    held = min(MEMO_MAX_HELDOUT, len(train) // 20)
    order = np.random.default_rng(seed + 7).permutation(len(train))
    heldout_idx, ref_idx = np.sort(order[:held]), np.sort(order[held : held + MEMO_MAX_REFERENCE])
    return np.asarray(train[ref_idx]), np.asarray(train[heldout_idx])


def _score(fakes: np.ndarray, reals: np.ndarray, ctx: ScoreContext) -> dict[str, object]:
    reference, heldout = split_memo_reference(reals if ctx.train is None else ctx.train, ctx.seed)
    total = 2 * (len(reference) + len(fakes) + len(heldout))
    with progress_bar(total, "memo", unit="img", enabled=ctx.show_progress) as bar:
        result = memorisation(fakes, reference, heldout, on_progress=bar.update)
    out: dict[str, object] = {**result.as_dict(), "memo_reference": len(reference)}
    if ctx.picture_path is not None:
        save_png(closest_pairs_strip(fakes, reference, result), ctx.picture_path)
        out["memo_strip"] = ctx.picture_path.name
    return out


def _summary(result: dict[str, object], label: str) -> str:
    return (f"memorisation: {fmt(result, 'memo_share', '{:.1%}')} of fakes closer to a training image than "
            f"training images are to each other (held-out reals: {fmt(result, 'memo_share_heldout', '{:.1%}')}); "
            f"{result.get('memo_copies')} near-copies ({label})")


METRIC = Metric(
    "memo", key="memo_share", title="memorised share",
    description="nearest training image of every fake: the share closer than training images are to each other",
    score=_score, summary=_summary, train_images=MEMO_MAX_REFERENCE + MEMO_MAX_HELDOUT,
)
