"""SWD: the pyramid matches OpenCV, descriptors are real 7×7 windows, and the distance behaves."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
import scipy.ndimage
import scipy.stats
import torch

from facegan.errors import FaceganError
from facegan.metrics import swd as swd_mod
from facegan.metrics.swd import (
    descriptor_pyramid,
    laplacian_pyramid,
    level_descriptors,
    pyr_down,
    pyr_up,
    pyramid_resolutions,
    sliced_wasserstein,
    swd,
)


def test_pyramid_filters_match_opencv() -> None:
    rng = np.random.default_rng(0)
    for shape in ((32, 32), (16, 24), (25, 25)):
        image = (rng.random(shape) * 255).astype(np.float32)
        down = pyr_down(torch.from_numpy(image)[None, None])[0, 0].numpy()
        np.testing.assert_allclose(down, cv2.pyrDown(image), atol=1e-3)
    small = (rng.random((16, 16)) * 255).astype(np.float32)
    up = pyr_up(torch.from_numpy(small)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(up, cv2.pyrUp(small), atol=1e-3)


def test_levels_go_down_to_16_px_and_reconstruct() -> None:
    assert pyramid_resolutions(32) == [32, 16]
    assert pyramid_resolutions(64) == [64, 32, 16]
    assert pyramid_resolutions(128) == [128, 64, 32, 16]
    assert pyramid_resolutions(16) == [16]
    x = torch.rand(2, 3, 64, 64) * 255
    levels = laplacian_pyramid(x, 3)
    assert [tuple(lvl.shape[2:]) for lvl in levels] == [(64, 64), (32, 32), (16, 16)]
    rebuilt = levels[-1]
    for band in levels[-2::-1]:
        rebuilt = pyr_up(rebuilt) + band
    torch.testing.assert_close(rebuilt, x, atol=1e-3, rtol=0)


def _opencv_laplacian_levels(image: np.ndarray, num_levels: int) -> list[np.ndarray]:
    """Karras et al.'s levels built with OpenCV alone: band = G_k − pyrUp(G_k+1), the coarsest is G_last."""
    gaussian = [image.astype(np.float32)]
    for _ in range(1, num_levels):
        gaussian.append(cv2.pyrDown(gaussian[-1]))
    bands = [fine - cv2.pyrUp(coarse, dstsize=fine.shape[1::-1]) for fine, coarse in itertools.pairwise(gaussian)]
    return [*bands, gaussian[-1]]


def test_every_level_is_the_laplacian_band_of_the_full_pyramid() -> None:
    # 64-px images have levels 64, 32 (band-pass) and 16 (low-pass residual). The descriptors must be the 7×7
    # windows of those levels, built here independently with OpenCV, at the positions the same generator draws:
    # per level, all y centres then all x centres, each uniform in [3, size - 3) (one batch: n ≤ 256 images).
    from facegan.data.synthetic import render_faces

    images = render_faces(6, 64, seed=2)[0]
    levels = [_opencv_laplacian_levels(image, 3) for image in images]
    count = len(images) * 128
    for lvl, size in enumerate((64, 32, 16)):
        got = level_descriptors(images, lvl, torch.Generator().manual_seed(10 + lvl))
        gen = torch.Generator().manual_seed(10 + lvl)
        ys = torch.randint(3, size - 3, (count,), generator=gen).tolist()
        xs = torch.randint(3, size - 3, (count,), generator=gen).tolist()
        windows = np.stack([levels[k // 128][lvl][y - 3 : y + 4, x - 3 : x + 4].transpose(2, 0, 1)
                            for k, (y, x) in enumerate(zip(ys, xs, strict=True))])  # M×C×7×7
        mean = windows.mean(axis=(0, 2, 3), keepdims=True, dtype=np.float64)
        std = windows.std(axis=(0, 2, 3), keepdims=True, dtype=np.float64)
        expected = ((windows - mean) / std).reshape(count, -1).astype(np.float32)
        np.testing.assert_allclose(got.numpy(), expected, atol=2e-3, err_msg=f"level {lvl} ({size} px)")


def test_neighbourhoods_are_7x7_windows_inside_the_image() -> None:
    # Pixel value encodes its position, so every descriptor must be a contiguous window of positions.
    n, c, h, w = 3, 3, 20, 24
    level = torch.arange(n * c * h * w, dtype=torch.float32).reshape(n, c, h, w)
    patches = swd_mod._random_nhoods(level, torch.Generator().manual_seed(0))
    assert patches.shape == (n * 128, c, 7, 7)
    rows, cols = torch.meshgrid(torch.arange(7), torch.arange(7), indexing="ij")
    expected_offsets = (rows * w + cols).float()
    corner = patches[:, :, :1, :1]
    assert torch.equal(patches - corner, expected_offsets.expand_as(patches))
    image = (corner[:, 0, 0, 0] // (c * h * w)).long()
    assert torch.equal(image, torch.arange(n * 128) // 128)  # 128 neighbourhoods from each image in turn
    within = corner[:, 0, 0, 0] % (h * w)
    top, left = within // w, within % w
    assert top.min() >= 0 and top.max() <= h - 7 and left.min() >= 0 and left.max() <= w - 7
    assert len(set(zip(top.tolist(), left.tolist(), strict=True))) > 100  # positions really are random


def test_descriptors_are_normalised_per_channel_over_the_set(synthetic_faces: np.ndarray) -> None:
    desc = level_descriptors(synthetic_faces[:40], 0, torch.Generator().manual_seed(1))
    assert desc.shape == (40 * 128, 3 * 49)
    per_channel = desc.reshape(-1, 3, 49).permute(1, 0, 2).reshape(3, -1)
    torch.testing.assert_close(per_channel.mean(1), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(per_channel.std(1, unbiased=False), torch.ones(3), atol=1e-4, rtol=0)


def test_sliced_wasserstein_equals_mean_1d_wasserstein() -> None:
    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.normal(size=(500, 6)).astype(np.float32))
    b = torch.from_numpy(rng.normal(0.5, 2.0, size=(500, 6)).astype(np.float32))
    got = sliced_wasserstein(a, b, torch.Generator().manual_seed(5), dir_repeats=2, dirs_per_repeat=3)
    # Independent computation: the same directions, scipy's 1-D Wasserstein distance for each.
    gen = torch.Generator().manual_seed(5)
    dists = []
    for _ in range(2):
        dirs = torch.randn(6, 3, generator=gen, dtype=torch.float64)
        dirs = (dirs / dirs.norm(dim=0, keepdim=True)).float().numpy()
        for k in range(3):
            dists.append(scipy.stats.wasserstein_distance(a.numpy() @ dirs[:, k], b.numpy() @ dirs[:, k]))
    assert got == pytest.approx(np.mean(dists), rel=1e-4)


def _blur(images: np.ndarray, sigma: float) -> np.ndarray:
    if sigma == 0:
        return images
    out = scipy.ndimage.gaussian_filter(images.astype(np.float32), (0, sigma, sigma, 0))
    return out.round().clip(0, 255).astype(np.uint8)


@pytest.mark.slow
def test_swd_is_near_zero_for_one_set_and_grows_with_blur_and_noise(synthetic_faces: np.ndarray) -> None:
    images = synthetic_faces[:256]
    reference = descriptor_pyramid(images, seed=0)
    same = swd(images, images, seed=0, reference=reference)
    assert set(same.levels) == {32, 16}
    assert same.avg == pytest.approx(np.mean(list(same.levels.values())))
    blurred = [swd(images, _blur(images, s), seed=0, reference=reference).avg for s in (0.5, 1.0, 2.0)]
    rng = np.random.default_rng(0)
    noisy = [swd(images, (images + rng.normal(0, s, images.shape)).round().clip(0, 255).astype(np.uint8),
                 seed=0, reference=reference).avg for s in (16, 32, 64)]
    # One set against itself leaves only the noise of the random patch positions (the reference draws them
    # independently per set): well under the mildest blur or noise.
    assert same.avg < 0.75 * blurred[0] and same.avg < 0.75 * noisy[0], (same.avg, blurred, noisy)
    assert all(x < y for x, y in itertools.pairwise(blurred)), blurred
    assert all(x < y for x, y in itertools.pairwise(noisy)), noisy


@pytest.mark.slow
def test_blur_moves_the_finest_band_and_leaves_the_coarsest_level() -> None:
    # Two different sets of 256 built-in 64-px faces, then the second blurred with σ = 1 px. A σ = 1 blur removes
    # most of what lies in the finest band-pass level and almost nothing at 16 px, so the finest level's distance
    # must grow several times while the coarsest barely moves. (With Gaussian levels the finest level is the whole
    # image, dominated by its smooth content: the same blur raised it only ≈1.6×.)
    from facegan.data.synthetic import render_faces

    images = render_faces(512, 64, seed=1)[0]
    sharp, other = images[:256], images[256:]
    reference = descriptor_pyramid(sharp, seed=0)
    before = swd(sharp, other, seed=0, reference=reference).levels
    after = swd(sharp, _blur(other, 1.0), seed=0, reference=reference).levels
    assert after[64] - before[64] > after[16] - before[16], (before, after)
    assert after[64] > 4 * before[64], (before, after)
    assert 0.8 < after[16] / before[16] < 1.25, (before, after)


def test_swd_of_identical_descriptors_is_zero_and_reference_gives_the_same_result(
        synthetic_faces: np.ndarray) -> None:
    desc = level_descriptors(synthetic_faces[:8], 1, torch.Generator().manual_seed(0))
    assert sliced_wasserstein(desc, desc.clone(), torch.Generator().manual_seed(0)) == 0.0
    a, b = synthetic_faces[:16], synthetic_faces[16:32]
    direct = swd(a, b, seed=4)
    assert swd(a, b, seed=4, reference=descriptor_pyramid(a, seed=4)).levels == direct.levels
    assert swd(a, b, seed=5).avg != direct.avg  # the seed picks the patches and directions


def test_swd_handles_grey_images_and_refuses_tiny_ones(lfw_faces: np.ndarray) -> None:
    grey = np.stack([cv2.resize(im, (32, 32), interpolation=cv2.INTER_CUBIC)[:, :, None] for im in lfw_faces[:20]])
    result = swd(grey[:10], grey[10:], seed=0)
    assert set(result.levels) == {32, 16} and result.avg > 0
    with pytest.raises(FaceganError, match="at least 16 px"):
        swd(lfw_faces[:, :8, :8], lfw_faces[:, :8, :8])
    with pytest.raises(FaceganError, match="differ in shape"):
        swd(grey[:10], np.repeat(grey[10:], 3, axis=3))


def test_read_only_memory_maps_are_accepted(synthetic_faces: np.ndarray, tmp_path) -> None:
    from facegan.data.dataset import PreparedDataset, write_dataset

    write_dataset(tmp_path / "d", synthetic_faces[:32], source="test")
    images = PreparedDataset.open(tmp_path / "d").images  # read-only memmap: torch would warn on from_numpy
    assert not images.flags.writeable
    assert swd(images[:16], images[16:32]).avg == pytest.approx(swd(synthetic_faces[:16], synthetic_faces[16:32]).avg)
