"""`prepare` on real faces, CelebA-shaped folders and archives, MNIST IDX files and arrays; determinism,
crops, labels, --limit, overwrite rules, clear errors; and the streaming writer underneath."""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegan.data.dataset import PreparedDataset, make_temp_sibling
from facegan.data.inspect import read_skipped
from facegan.data.prepare import prepare
from facegan.data.writer import DatasetWriter, npy_header
from facegan.errors import FaceganError

from .prepare_helpers import (
    ASTRONAUT,
    FASHION_MNIST,
    LFW_FACES,
    celeba_attribute_text,
    celeba_like,
    encode,
    write_idx,
)

CELEBA_ATTRIBUTES = [
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips", "Big_Nose",
    "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses",
    "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks",
    "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick",
    "Wearing_Necklace", "Wearing_Necktie", "Young",
]


def names_of(out: Path) -> list[str]:
    return (out / "names.txt").read_text().splitlines()


def reference_center_crop(path: Path, size: int) -> np.ndarray:
    """The tutorial's Resize(size) + CenterCrop(size), done independently with PIL (bilinear)."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        scale = size / min(img.size)
        w, h = max(size, round(img.width * scale)), max(size, round(img.height * scale))
        img = img.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=None)
        left, top = (w - size) // 2, (h - size) // 2
        return np.asarray(img.crop((left, top, left + size, top + size)))


def test_real_faces_match_an_independent_resize_and_crop(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    shutil.copytree(LFW_FACES, photos / "lfw")
    shutil.copy(ASTRONAUT, photos / "astronaut.png")
    meta = prepare(str(photos), tmp_path / "out", resolution=32, show_progress=False)
    assert meta["count"] == 101 and meta["skipped"] == 0
    names = names_of(tmp_path / "out")
    assert names[0] == "astronaut.png" and names[1:] == sorted(f"lfw/{p.name}" for p in LFW_FACES.glob("*.png"))
    images = PreparedDataset.open(tmp_path / "out").images
    for k in (0, 1, 50, 100):
        expected = reference_center_crop(photos / names[k], 32).astype(int)
        # Lanczos vs bilinear differ a little; a wrong crop, flip or channel order differs by far more.
        assert np.abs(images[k].astype(int) - expected).mean() < 6, names[k]
    assert np.array_equal(images[1][..., 0], images[1][..., 1])  # grey LFW faces → 3 equal channels


def is_red(pixels: np.ndarray) -> np.ndarray:
    return (pixels[..., 0] > 180) & (pixels[..., 1] < 70) & (pixels[..., 2] < 70)


def make_celeba_folder(root: Path, count: int) -> tuple[list[str], np.ndarray]:
    """img_align_celeba/000001.jpg… (178×218, red bands above row 20 and below row 198) and, beside the
    folder, list_attr_celeba.txt with rows for these images (shuffled) and for some that are not here."""
    folder = root / "img_align_celeba"
    folder.mkdir(parents=True)
    names = [f"{i:06d}.jpg" for i in range(1, count + 1)]
    for i, name in enumerate(names):
        array = np.array(celeba_like(i))
        array[:20] = array[198:] = (255, 0, 0)
        (folder / name).write_bytes(encode(Image.fromarray(array), "JPEG", quality=92))
    rows = np.random.default_rng(0).choice(np.array([-1, 1], dtype=np.int16), size=(count + 5, 40))
    listed = [*names, *(f"{i:06d}.jpg" for i in range(count + 1, count + 6))]
    order = list(range(count + 5))
    random.Random(0).shuffle(order)
    text = celeba_attribute_text([listed[k] for k in order], CELEBA_ATTRIBUTES, rows[order])
    (root / "list_attr_celeba.txt").write_text(text)
    return names, rows[:count]


def test_celeba_folder_zip_and_tar_give_the_same_bytes_and_attributes(tmp_path: Path) -> None:
    names, rows = make_celeba_folder(tmp_path / "celeba", 24)
    folder = tmp_path / "celeba" / "img_align_celeba"
    meta1 = prepare(str(folder), tmp_path / "w1", resolution=32, crop="celeba", workers=1, show_progress=False)
    meta2 = prepare(str(folder), tmp_path / "w2", resolution=32, crop="celeba", workers=2, show_progress=False)
    assert meta1["sha256"] == meta2["sha256"]
    assert (tmp_path / "w1" / "images.npy").read_bytes() == (tmp_path / "w2" / "images.npy").read_bytes()
    assert meta1["sha256"] == hashlib.sha256((tmp_path / "w1" / "images.npy").read_bytes()).hexdigest()

    ds = PreparedDataset.open(tmp_path / "w1")
    assert names_of(tmp_path / "w1") == names
    assert ds.meta["label_names"] == CELEBA_ATTRIBUTES and ds.labels is not None
    assert np.array_equal(ds.labels, rows)  # matched by file name, whatever the file's row order
    for k in (0, 23):  # the celeba box is rows 20-198: the red bands are left out
        with Image.open(folder / names[k]) as img:
            expected = np.asarray(img.convert("RGB").crop((0, 20, 178, 198)).resize((32, 32), Image.LANCZOS))
        # (Rows next to the bands are left out of the comparison: JPEG's 16-row chroma blocks blend the band
        # colour into them differently at the reduced decoding scale.)
        assert np.abs(ds.images[k, 1:-1].astype(int) - expected[1:-1]).mean() < 4
        assert is_red(ds.images[k, [0, -1]]).mean() < 0.5

    # The zip (attribute CSV inside it, Kaggle-style) and a tar.gz in shuffled order: same images, same labels.
    csv = "image_id," + ",".join(CELEBA_ATTRIBUTES) + "\n" + "".join(
        f"{n}," + ",".join(str(v) for v in r) + "\n" for n, r in zip(names, rows, strict=True))
    with zipfile.ZipFile(tmp_path / "img_align_celeba.zip", "w") as zf:
        for name in names:
            zf.write(folder / name, f"img_align_celeba/{name}")
        zf.writestr("list_attr_celeba.csv", csv)
    with tarfile.open(tmp_path / "celeba.tar.gz", "w:gz") as tar:
        for name in random.Random(1).sample(names, len(names)):
            tar.add(folder / name, f"img_align_celeba/{name}")
    zipped = prepare(str(tmp_path / "img_align_celeba.zip"), tmp_path / "z", resolution=32, crop="celeba",
                     workers=2, show_progress=False)
    tarred = prepare(str(tmp_path / "celeba.tar.gz"), tmp_path / "t", resolution=32, crop="celeba",
                     attrs=tmp_path / "celeba" / "list_attr_celeba.txt", show_progress=False)
    assert zipped["sha256"] == tarred["sha256"] == meta1["sha256"]
    assert zipped["skipped"] == 0  # the attribute file inside the archive is used, not reported
    for out in ("z", "t"):
        labels = PreparedDataset.open(tmp_path / out).labels
        assert labels is not None and np.array_equal(labels, rows)

    squashed = prepare(str(folder), tmp_path / "none", resolution=32, crop="none", show_progress=False)
    top = PreparedDataset.open(tmp_path / "none").images[:, 0]
    assert squashed["crop"] == "none" and is_red(top).mean() > 0.9  # without the crop the band shows


def test_mnist_idx_files_written_by_the_test(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    train = rng.integers(0, 256, size=(30, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
    train_labels, test_labels = rng.integers(0, 10, 30, dtype=np.uint8), rng.integers(0, 10, 10, dtype=np.uint8)
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    write_idx(mnist / "train-images-idx3-ubyte.gz", train)
    write_idx(mnist / "train-labels-idx1-ubyte.gz", train_labels)
    write_idx(mnist / "t10k-images-idx3-ubyte", test)
    write_idx(mnist / "t10k-labels-idx1-ubyte", test_labels)

    meta = prepare(str(mnist / "train-images-idx3-ubyte.gz"), tmp_path / "one", resolution=28, channels=1,
                   crop="none", show_progress=False)
    ds = PreparedDataset.open(tmp_path / "one")
    assert meta["source_kind"] == "idx" and ds.meta["label_names"] == ["digit"]
    assert np.array_equal(ds.images[..., 0], train)  # same size, no crop: pixels unchanged
    assert ds.labels is not None and np.array_equal(ds.labels[:, 0], train_labels)

    prepare(str(mnist), tmp_path / "all", resolution=32, channels=3, workers=2, show_progress=False)
    ds = PreparedDataset.open(tmp_path / "all")
    assert len(ds) == 40 and ds.channels == 3 and ds.resolution == 32
    assert names_of(tmp_path / "all")[:2] == ["t10k-images-idx3-ubyte[0]", "t10k-images-idx3-ubyte[1]"]
    assert ds.labels is not None and np.array_equal(ds.labels[:, 0], np.concatenate([test_labels, train_labels]))

    (mnist / "t10k-images-idx3-ubyte").write_bytes((mnist / "t10k-images-idx3-ubyte").read_bytes()[:500])
    with pytest.raises(FaceganError, match="truncated"):
        prepare(str(mnist / "t10k-images-idx3-ubyte"), tmp_path / "bad", show_progress=False)


def test_real_fashion_mnist_idx(tmp_path: Path) -> None:
    images_gz = FASHION_MNIST / "t10k-images-idx3-ubyte.gz"  # the first 1,000 test images, re-packed
    meta = prepare(str(images_gz), tmp_path / "fm", resolution=32, channels=1, limit=300, workers=2,
                   show_progress=False)
    ds = PreparedDataset.open(tmp_path / "fm")
    assert meta["count"] == 300 and ds.images.shape == (300, 32, 32, 1)
    with gzip.open(FASHION_MNIST / "t10k-labels-idx1-ubyte.gz") as handle:
        labels = np.frombuffer(handle.read(), np.uint8, offset=8)
    assert ds.labels is not None and np.array_equal(ds.labels[:, 0], labels[:300])
    assert 40 < ds.images.mean() < 110  # real clothing on black, not blank or saturated


def test_npz_and_npy_arrays(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, size=(6, 16, 16, 3), dtype=np.uint8)
    np.save(tmp_path / "faces.npy", rgb)
    prepare(str(tmp_path / "faces.npy"), tmp_path / "npy", resolution=16, crop="none", show_progress=False)
    assert np.array_equal(PreparedDataset.open(tmp_path / "npy").images, rgb)

    floats = rgb.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1  # N×C×H×W in [-1, 1]
    floats[2, 0, 0, 0] = np.nan
    np.savez(tmp_path / "faces.npz", x=floats, y=np.arange(6))
    meta = prepare(str(tmp_path / "faces.npz"), tmp_path / "npz", resolution=16, crop="none", show_progress=False)
    ds = PreparedDataset.open(tmp_path / "npz")
    assert meta["count"] == 5 and read_skipped(tmp_path / "npz")[0][:2] == ("faces.npz[2]", "non-finite")
    assert np.abs(ds.images.astype(int) - np.delete(rgb, 2, axis=0)).max() <= 1
    assert ds.labels is not None and ds.labels[:, 0].tolist() == [0, 1, 3, 4, 5]

    np.save(tmp_path / "wide.npy", np.full((2, 16, 16, 3), 1000.0))
    with pytest.raises(FaceganError, match="cannot read float64 pixel values"):
        prepare(str(tmp_path / "wide.npy"), tmp_path / "wide", show_progress=False)


def test_limit_dedupe_and_passes(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a0.jpg").write_bytes(b"")
    (photos / "a1.jpg").write_bytes(b"junk")
    for i in range(2, 8):
        (photos / f"a{i}.png").write_bytes(encode(Image.new("L", (20, 20), 30 * i), "PNG"))
    (photos / "a3_copy.png").write_bytes((photos / "a3.png").read_bytes())
    prepare(str(photos), tmp_path / "out", resolution=8, limit=4, dedupe=True, workers=2, show_progress=False)
    assert names_of(tmp_path / "out") == ["a2.png", "a3.png", "a4.png", "a5.png"]
    assert [r[:2] for r in read_skipped(tmp_path / "out")] == [
        ("a0.jpg", "empty"), ("a1.jpg", "not-an-image"), ("a3_copy.png", "duplicate")]


def test_overwrite_rules(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(encode(Image.new("RGB", (12, 12), (9, 9, 9)), "PNG"))
    prepare(str(photos), tmp_path / "out", resolution=8, show_progress=False)
    with pytest.raises(FaceganError, match="already exists; pass --force"):
        prepare(str(photos), tmp_path / "out", resolution=8, show_progress=False)
    meta = prepare(str(photos), tmp_path / "out", resolution=16, force=True, show_progress=False)
    assert meta["resolution"] == 16 and PreparedDataset.open(tmp_path / "out").resolution == 16
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(FaceganError, match="not a facegan dataset; refusing"):
        prepare(str(photos), tmp_path / "mine", resolution=8, force=True, show_progress=False)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "out", "photos"]  # no temporaries left


def test_clear_errors_and_nothing_left_behind(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_bytes(b"")
    (bad / "y.png").write_bytes(b"text")
    with pytest.raises(FaceganError, match=r"no usable images .*all 2 candidates were skipped \(.*empty 1"):
        prepare(str(bad), tmp_path / "out", show_progress=False)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("hi")
    with pytest.raises(FaceganError, match=r"no image files in .*unsupported-extension 1"):
        prepare(str(tmp_path / "docs"), tmp_path / "out", show_progress=False)
    with pytest.raises(FaceganError, match="does not exist"):
        prepare(str(tmp_path / "nowhere"), tmp_path / "out", show_progress=False)
    (tmp_path / "notes.md").write_text("# notes")
    with pytest.raises(FaceganError, match="unsupported source"):
        prepare(str(tmp_path / "notes.md"), tmp_path / "out", show_progress=False)
    with pytest.raises(FaceganError, match="--crop must be one of"):
        prepare(str(bad), tmp_path / "out", crop="face", show_progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "docs", "notes.md"]


def test_builtin_source_still_works(tmp_path: Path) -> None:
    meta = prepare("builtin:synthetic-faces", tmp_path / "faces", resolution=16, count=6, show_progress=False)
    assert meta["count"] == 6 and meta["source"] == "builtin:synthetic-faces"


@pytest.mark.parametrize("shape", [(0, 8, 8, 3), (5, 64, 64, 3), (202599, 64, 64, 3), (10**9, 1024, 1024, 1)])
def test_npy_header_is_what_numpy_writes(shape: tuple[int, ...]) -> None:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|u1", "fortran_order": False, "shape": shape})
    assert npy_header(shape) == buffer.getvalue()


def test_writer_places_rows_by_index_and_compacts(tmp_path: Path) -> None:
    rows = np.arange(12 * 4 * 4 * 1, dtype=np.uint8).reshape(12, 4, 4, 1)
    writer = DatasetWriter(tmp_path / "ds", capacity=1000, resolution=4, channels=1)
    writer.reserve(1000)
    writer.put([11, 3, 7], rows[[11, 3, 7]])  # any order, as workers finish
    writer.put(list(range(3)), rows[:3])
    keep = np.array([0, 1, 2, 3, 7, 11])
    labels = np.arange(1000, dtype=np.int16)[:, None]
    meta = writer.finish(keep, "test", labels, ["n"], skipped=[("x", "empty", "zero-byte file")],
                         names=[f"n{i}" for i in range(1000)])
    loaded = np.load(tmp_path / "ds" / "images.npy")
    assert np.array_equal(loaded, rows[keep]) and meta["count"] == 6
    assert np.load(tmp_path / "ds" / "labels.npy")[:, 0].tolist() == keep.tolist()
    assert (tmp_path / "ds" / "names.txt").read_text().split() == [f"n{i}" for i in keep]
    assert (tmp_path / "ds" / "images.npy").stat().st_size == 128 + 6 * 16

    aborted = DatasetWriter(tmp_path / "gone", capacity=4, resolution=4, channels=1)
    assert aborted.tmp_dir.exists() and aborted.tmp_dir.name.startswith(".gone.tmp-")
    aborted.abort()
    assert not aborted.tmp_dir.exists() and not (tmp_path / "gone").exists()
    assert make_temp_sibling(tmp_path / "x").parent == tmp_path
