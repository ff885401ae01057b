"""The prepared format on the reading side: opening and validating, BatchIterator and FaceDataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from facegan.data.dataset import BatchIterator, FaceDataset, PreparedDataset, write_dataset
from facegan.errors import FaceganError

CPU = torch.device("cpu")


@pytest.fixture
def numbered(tmp_path: Path) -> PreparedDataset:
    """40 images 8×8×3 where image i is filled with value 5·i (its left column brighter), with labels i."""
    images = np.repeat((np.arange(40, dtype=np.uint8) * 5)[:, None, None, None], 8 * 8 * 3, axis=1).reshape(
        40, 8, 8, 3)
    images[:, :, 0] += 2  # left column differs, so a flip is visible
    labels = np.arange(40, dtype=np.int16)[:, None]
    write_dataset(tmp_path / "numbered", images, source="test", labels=labels, label_names=["i"])
    return PreparedDataset.open(tmp_path / "numbered")


def image_ids(batch: torch.Tensor) -> list[int]:
    """Which numbered image each batch row is (from its right column's value)."""
    values = ((batch[:, 0, 0, 4] + 1) * 127.5).round().int()
    return (values // 5).tolist()


def test_memory_map_and_resident_batches_are_identical(numbered: PreparedDataset) -> None:
    resident = BatchIterator(numbered, 8, CPU, seed=5, flip=True)
    mapped = BatchIterator(numbered, 8, CPU, seed=5, flip=True, resident_bytes=0)
    assert isinstance(resident.source, torch.Tensor) and isinstance(mapped.source, np.ndarray)
    resident.set_labels(torch.from_numpy(np.array(numbered.labels)))
    mapped.set_labels(torch.from_numpy(np.array(numbered.labels)))
    for a, b in zip(resident.epoch(1), mapped.epoch(1), strict=True):
        assert torch.equal(a, b)
        # Labels travel with their images whichever path gathered them.
        assert mapped.batch_labels is not None and image_ids(b) == mapped.batch_labels[:, 0].tolist()


def test_batches_are_shuffled_in_range_and_flipped(numbered: PreparedDataset) -> None:
    batches = BatchIterator(numbered, 8, CPU, seed=0, flip=True, resident_bytes=0)
    epoch = list(batches.epoch(0))
    assert len(epoch) == 5 and epoch[0].shape == (8, 3, 8, 8) and epoch[0].dtype == torch.float32
    seen = [i for b in epoch for i in image_ids(b)]
    assert sorted(seen) == list(range(40)) and seen != list(range(40))
    stacked = torch.cat(epoch)
    assert stacked.min() >= -1 and stacked.max() <= 1
    left_brighter = stacked[:, 0, 0, 0] > stacked[:, 0, 0, 7]
    assert 0 < int(left_brighter.sum()) < 40  # some flipped (left column moved right), some not
    assert image_ids(next(BatchIterator(numbered, 8, CPU, seed=0, flip=True).epoch(0))) == image_ids(epoch[0])


def test_face_dataset_for_a_dataloader(numbered: PreparedDataset) -> None:
    faces = FaceDataset(numbered.path)
    image, label = faces[3]
    assert image.shape == (3, 8, 8) and label.tolist() == [3]
    assert image[0, 0, 4].item() == pytest.approx(15 / 127.5 - 1)
    assert faces[-1][1].tolist() == [39]
    with pytest.raises(IndexError):
        faces[40]
    flipped = FaceDataset(numbered, flip=True, generator=torch.Generator().manual_seed(0))
    columns = [flipped[i][0][0, 0] for i in range(40)]
    assert any(c[0] > c[7] for c in columns) and any(c[0] < c[7] for c in columns)
    loader = torch.utils.data.DataLoader(faces, batch_size=10, shuffle=False)
    images, labels = next(iter(loader))
    assert images.shape == (10, 3, 8, 8) and labels[:, 0].tolist() == list(range(10))


def test_open_rejects_what_is_not_a_dataset(tmp_path: Path, numbered: PreparedDataset) -> None:
    with pytest.raises(FaceganError, match="does not exist"):
        PreparedDataset.open(tmp_path / "nothing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(FaceganError, match="not a prepared dataset"):
        PreparedDataset.open(tmp_path / "plain")
    meta = json.loads((numbered.path / "meta.json").read_text())
    (numbered.path / "meta.json").write_text(json.dumps({**meta, "count": 41}))
    with pytest.raises(FaceganError, match=r"meta\.json says"):
        PreparedDataset.open(numbered.path)
    (numbered.path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(FaceganError, match="fewer than one batch"):
        BatchIterator(PreparedDataset.open(numbered.path), 64, CPU)
