"""Memorisation check: copies of training images are flagged, new faces are not."""

from __future__ import annotations

import numpy as np
import torch

from facegan.metrics.memorisation import closest_pairs_strip, memo_features, memorisation, nearest_neighbours


def test_nearest_neighbours_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    ref = torch.from_numpy(rng.random((50, 12)).astype(np.float32))
    query = torch.from_numpy(rng.random((9, 12)).astype(np.float32))
    dist, idx = nearest_neighbours(query, ref)
    brute = torch.cdist(query.double(), ref.double())
    assert torch.equal(idx, brute.argmin(1))
    torch.testing.assert_close(dist.double(), brute.min(1).values / np.sqrt(12), atol=1e-5, rtol=0)
    self_dist, self_idx = nearest_neighbours(ref, ref, exclude_self=True)
    assert (self_idx != torch.arange(50)).all() and (self_dist > 0).all()


def test_features_are_16px_thumbnails(synthetic_faces: np.ndarray) -> None:
    features = memo_features(synthetic_faces[:4])
    assert features.shape == (4, 3 * 16 * 16)
    assert float(features.min()) >= 0 and float(features.max()) <= 1
    assert memo_features(synthetic_faces[:2, :8, :8]).shape == (2, 3 * 8 * 8)  # small images keep their size


def test_exact_and_mirrored_copies_are_flagged(synthetic_faces: np.ndarray) -> None:
    train, heldout, new = synthetic_faces[:200], synthetic_faces[200:250], synthetic_faces[250:300]
    copy = train[17].copy()
    mirrored = train[42][:, ::-1].copy()
    fakes = np.concatenate([new, copy[None], mirrored[None]])
    result = memorisation(fakes, train, heldout)
    assert result.closer[-2] and result.closer[-1]
    assert result.nearest[-2] == 17 and result.nearest[-1] == 42
    assert result.distance[-2] < 1e-3 and result.distance[-1] < 1e-3
    assert result.copies == 2  # only the two copies are within 10 % of the training images' spacing
    # New faces from the same renderer pass at about the rate of held-out real images.
    assert abs(result.closer[:-2].mean() - result.share_heldout) < 0.25
    assert result.share == result.closer.mean()
    report = result.as_dict()
    assert report["memo_copies"] == 2 and report["memo_nn_min"] < 1e-3 and report["memo_share_heldout"] is not None
    strip = closest_pairs_strip(fakes, train, result, count=4)
    assert strip.dtype == np.uint8 and strip.shape[2] == 3
    assert strip.shape[0] >= 2 * 64  # two rows, upscaled to at least 64 px per face
    # The two copies are the most suspicious, so they lead the strip (top-left fake, bottom-left its source).
    assert set(np.argsort(result.suspicion())[:2]) == {len(fakes) - 2, len(fakes) - 1}


def test_noisy_copies_still_find_their_source_image(synthetic_faces: np.ndarray) -> None:
    train = synthetic_faces[:100]
    noisy = np.clip(train[:20].astype(int) + np.random.default_rng(1).integers(-40, 41, train[:20].shape), 0, 255)
    result = memorisation(noisy.astype(np.uint8), train)
    assert result.share_heldout is None
    assert (result.nearest == np.arange(20)).all()  # pixel noise does not hide the source image


def test_read_only_memory_maps_are_accepted(synthetic_faces: np.ndarray, tmp_path) -> None:
    from facegan.data.dataset import PreparedDataset, write_dataset

    write_dataset(tmp_path / "d", synthetic_faces[:40], source="test")
    images = PreparedDataset.open(tmp_path / "d").images
    result = memorisation(images[:5], images[5:40])
    assert result.distance.shape == (5,) and (result.distance > 0).all()  # none of the 5 is in the reference
