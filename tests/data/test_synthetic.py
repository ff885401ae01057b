"""Tests of the procedural cartoon-face renderer (facegan.data.synthetic)."""

from __future__ import annotations

import numpy as np
import pytest

from facegan.data.synthetic import ATTRIBUTE_LEVELS, ATTRIBUTE_NAMES, render_face, render_faces

BINARY = [name for name, levels in zip(ATTRIBUTE_NAMES, ATTRIBUTE_LEVELS, strict=True) if levels == 2]


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, np.ndarray]:
    """200 faces at 32 px, shared by the statistical tests."""
    return render_faces(200, 32, seed=11)


def test_attribute_names() -> None:
    assert len(ATTRIBUTE_NAMES) == len(ATTRIBUTE_LEVELS) == len(set(ATTRIBUTE_NAMES))
    for name in ("eyeglasses", "smiling", "mouth_open", "bangs", "long_hair", "male"):
        assert name in BINARY
    assert all(levels >= 2 for levels in ATTRIBUTE_LEVELS)


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_shapes_and_dtypes(resolution: int) -> None:
    image, attrs = render_face(0, 5, resolution)
    assert image.shape == (resolution, resolution, 3) and image.dtype == np.uint8
    assert attrs.shape == (len(ATTRIBUTE_NAMES),) and attrs.dtype == np.int16
    images, batch_attrs = render_faces(3, resolution, seed=2)
    assert images.shape == (3, resolution, resolution, 3) and images.dtype == np.uint8
    assert batch_attrs.shape == (3, len(ATTRIBUTE_NAMES)) and batch_attrs.dtype == np.int16


def test_same_seed_and_index_give_identical_bytes() -> None:
    a_img, a_attr = render_face(7, 3, 64)
    b_img, b_attr = render_face(7, 3, 64)
    assert a_img.tobytes() == b_img.tobytes()
    assert np.array_equal(a_attr, b_attr)


def test_batch_matches_single_faces() -> None:
    images, attrs = render_faces(6, 32, seed=5)
    for i in range(6):
        img, attr = render_face(5, i, 32)
        assert np.array_equal(images[i], img)
        assert np.array_equal(attrs[i], attr)


def test_workers_do_not_change_output() -> None:
    counts: list[int] = []
    serial = render_faces(24, 32, seed=3, workers=1)
    parallel = render_faces(24, 32, seed=3, workers=2, on_progress=counts.append)
    assert serial[0].tobytes() == parallel[0].tobytes()
    assert np.array_equal(serial[1], parallel[1])
    assert sum(counts) == 24 and len(counts) > 1


def test_progress_serial() -> None:
    counts: list[int] = []
    render_faces(70, 32, seed=0, on_progress=counts.append)
    assert sum(counts) == 70 and all(c > 0 for c in counts)


def test_attributes_describe_the_face() -> None:
    # the attribute vector of a face does not depend on the resolution it is rendered at
    for i in range(4):
        assert np.array_equal(render_face(4, i, 32)[1], render_face(4, i, 128)[1])


def test_different_seeds_and_indices_differ() -> None:
    base = render_face(0, 0, 64)[0]
    assert not np.array_equal(base, render_face(1, 0, 64)[0])
    assert not np.array_equal(base, render_face(0, 1, 64)[0])
    a, _ = render_faces(8, 32, seed=0)
    b, _ = render_faces(8, 32, seed=1)
    assert all(not np.array_equal(a[i], b[i]) for i in range(8))


def test_attributes_in_range_and_binary_ones_vary(sample: tuple[np.ndarray, np.ndarray]) -> None:
    _, attrs = sample
    levels = np.asarray(ATTRIBUTE_LEVELS)
    assert (attrs >= 0).all() and (attrs < levels).all()
    for k, name in enumerate(ATTRIBUTE_NAMES):
        values = set(attrs[:, k].tolist())
        if name in BINARY:
            assert values == {0, 1}, name
        else:
            assert len(values) >= min(3, ATTRIBUTE_LEVELS[k]), name
    glasses = attrs[:, ATTRIBUTE_NAMES.index("eyeglasses")].mean()
    assert 0.12 < glasses < 0.4


def test_images_are_plausible(sample: tuple[np.ndarray, np.ndarray]) -> None:
    images, _ = sample
    flat = images.reshape(len(images), -1, 3).astype(np.float64)
    assert (flat.std(axis=1).mean(axis=1) > 10).all()  # no constant images
    mean = flat.mean(axis=1)
    assert ((mean > 40) & (mean < 225)).all()
    # faces differ from each other, and the centre of the frame (the face) differs from the corners
    assert images.std(axis=0).mean() > 20
    centre = images[:, 12:20, 12:20].astype(np.float64).mean(axis=(1, 2))
    corner = images[:, :4, :4].astype(np.float64).mean(axis=(1, 2))
    assert np.abs(centre - corner).sum(axis=1).mean() > 40


def test_face_is_skin_coloured(sample: tuple[np.ndarray, np.ndarray]) -> None:
    images, _ = sample
    # between the eyes and the mouth, every face shows skin: red >= green >= blue, roughly
    cheek = images[:, 17:20, 14:18].astype(np.float64).mean(axis=(1, 2))
    warm = (cheek[:, 0] >= cheek[:, 1] - 8) & (cheek[:, 1] >= cheek[:, 2] - 8)
    assert warm.mean() > 0.9


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        render_faces(-1, 32)
    with pytest.raises(ValueError):
        render_face(-1, 0, 32)
