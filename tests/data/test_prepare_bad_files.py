"""A corpus of bad files mixed with good ones, in a folder and in archives: exactly the good ones are kept,
every bad one is listed in skipped.tsv with its reason, and nothing crashes or is written outside the output."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegan.data.dataset import PreparedDataset
from facegan.data.decode import BadImageError, DecodeOptions, decode_image
from facegan.data.inspect import read_skipped
from facegan.data.prepare import prepare

from .prepare_helpers import build_corpus, encode, exif_rotated_jpeg


def kept_names(out: Path) -> list[str]:
    return (out / "names.txt").read_text().splitlines()


def rows_by_name(out: Path) -> dict[str, np.ndarray]:
    ds = PreparedDataset.open(out)
    return dict(zip(kept_names(out), np.asarray(ds.images), strict=True))


def _central_entry(data: bytearray, name: str) -> int:
    """Offset of the zip central-directory record of member `name`."""
    start = data.index(b"PK\x01\x02")
    while data[start + 46 : start + 46 + len(name)] != name.encode():
        start = data.index(b"PK\x01\x02", start + 4)
    return start


def check_tricky_pixels(rows: dict[str, np.ndarray]) -> None:
    """The tricky-but-valid files were converted, not just accepted."""
    red = rows["cmyk.jpg"].reshape(-1, 3).mean(0)
    assert red[0] > 200 and red[1] < 60 and red[2] < 60, red  # CMYK → RGB keeps the colour
    transparent = rows["palette_transparent.png"]
    assert (transparent[:, :12] > 250).all()  # transparent palette entry composited on white
    assert transparent[:, 20:, 0].min() > 240 and transparent[:, 20:, 1:].max() < 15  # opaque red stays red
    assert abs(int(rows["grey16.png"].mean()) - 128) <= 1  # 16-bit mid-grey → 128, not clipped to 255
    frame = rows["animated.gif"].reshape(-1, 3).mean(0)
    assert frame[0] > 240 and frame[2] < 15  # first frame (red), not the second (blue)
    rotated = rows["rotated.jpg"].mean(axis=(1, 2))
    assert rotated[:12].max() < 40 and rotated[-12:].min() > 215  # EXIF orientation applied: black on top
    assert (rows["grey_alpha.png"] > 250).all()  # fully transparent grey → white
    assert np.array_equal(rows["FACE.PNG"][..., 0], rows["FACE.PNG"][..., 2])  # grey → 3 equal channels


@pytest.mark.parametrize("workers", [1, 2])
def test_folder_corpus_keeps_exactly_the_good_files(tmp_path: Path, workers: int) -> None:
    good, bad = build_corpus(tmp_path / "photos")
    os.symlink(tmp_path / "missing.jpg", tmp_path / "photos" / "dangling_link.jpg")
    bad["dangling_link.jpg"] = "unreadable"
    (tmp_path / "photos" / ".thumbnails").mkdir()
    (tmp_path / "photos" / ".thumbnails" / "cache.jpg").write_bytes(b"hidden folders are not searched")
    meta = prepare(str(tmp_path / "photos"), tmp_path / "out", resolution=32, crop="none", workers=workers,
                   dedupe=True, show_progress=False)

    assert kept_names(tmp_path / "out") == good
    assert meta["count"] == len(good) == 12
    skipped = {name: reason for name, reason, _ in read_skipped(tmp_path / "out")}
    assert skipped == bad
    assert len(bad) >= 14 and len(set(bad.values())) >= 9  # kinds of bad file, and distinct reasons
    assert all(detail for _, _, detail in read_skipped(tmp_path / "out"))
    assert meta["skipped"] == len(bad) and sum(meta["skipped_by_reason"].values()) == len(bad)
    check_tricky_pixels(rows_by_name(tmp_path / "out"))


def test_zip_corpus_read_in_place_including_unsafe_member_names(tmp_path: Path) -> None:
    good, bad = build_corpus(tmp_path / "photos")
    archive = tmp_path / "photos.zip"
    jpeg = (tmp_path / "photos" / "photo.jpg").read_bytes()
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((tmp_path / "photos").rglob("*")):
            if path.is_file():
                zf.write(path, "photos/" + path.relative_to(tmp_path / "photos").as_posix())
        zf.writestr("__MACOSX/photos/._photo.jpg", b"\x00\x05\x16\x07resource fork")
        zf.writestr("photos/subdir/", b"")
        # Names that would escape an extraction folder are only names here: read in place, kept, never written.
        zf.writestr("../escape.jpg", encode(Image.new("RGB", (20, 20), (0, 200, 0)), "JPEG"))
        zf.writestr("/abs/path.jpg", encode(Image.new("RGB", (20, 20), (0, 0, 200)), "JPEG"))
        zf.writestr("photos/locked.jpg", jpeg)
        zf.writestr("photos/crc_mismatch.jpg", jpeg)
    # Patch the bytes: mark "locked.jpg" encrypted (flag bit 0, in its local and central headers), and flip
    # one data byte of "crc_mismatch.jpg" so its CRC no longer matches.
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        locked, damaged = zf.getinfo("photos/locked.jpg"), zf.getinfo("photos/crc_mismatch.jpg")
    data[locked.header_offset + 6] |= 0x1
    data[_central_entry(data, locked.filename) + 8] |= 0x1
    data[damaged.header_offset + 30 + len(damaged.filename) + len(damaged.extra) + 500] ^= 0xFF
    archive.write_bytes(bytes(data))
    before = sorted(p.name for p in tmp_path.parent.iterdir())

    meta = prepare(str(archive), tmp_path / "out", resolution=32, crop="none", workers=2, dedupe=True,
                   show_progress=False)

    expected = sorted(["/abs/path.jpg", "../escape.jpg"] + [f"photos/{name}" for name in good])
    assert kept_names(tmp_path / "out") == expected
    skipped = {name: reason for name, reason, _ in read_skipped(tmp_path / "out")}
    assert skipped == {
        **{f"photos/{name}": reason for name, reason in bad.items()},
        "__MACOSX/photos/._photo.jpg": "resource-fork",
        "photos/locked.jpg": "encrypted",
        "photos/crc_mismatch.jpg": "corrupt-archive-member",
    }
    assert meta["source_kind"] == "zip"
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before  # nothing written beside tmp_path
    assert not (tmp_path / "escape.jpg").exists() and not Path("/abs/path.jpg").exists()
    rows = {k.removeprefix("photos/"): v for k, v in rows_by_name(tmp_path / "out").items()}
    check_tricky_pixels(rows)
    assert rows["../escape.jpg"][..., 1].mean() > 150


def test_tar_links_and_truncated_tar_gz(tmp_path: Path) -> None:
    jpeg = encode(Image.new("RGB", (40, 40), (10, 120, 200)), "JPEG")
    archive = tmp_path / "faces.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("b.jpg", "a.jpg"):  # archive order is not sorted order
            info = tarfile.TarInfo(name)
            info.size = len(jpeg)
            tar.addfile(info, io.BytesIO(jpeg))
        link = tarfile.TarInfo("link.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
        info = tarfile.TarInfo("../../outside.png")
        data = encode(Image.new("L", (30, 30), 99), "PNG")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    meta = prepare(str(archive), tmp_path / "out", resolution=16, show_progress=False)
    assert kept_names(tmp_path / "out") == ["../../outside.png", "a.jpg", "b.jpg"]
    assert read_skipped(tmp_path / "out")[0][:2] == ("link.jpg", "not-a-file")
    assert meta["source_kind"] == "tar"

    # A tar.gz cut short: the members before the damage are kept, the damage is reported, no crash.
    rng = np.random.default_rng(1)
    cut = tmp_path / "cut.tar.gz"
    with tarfile.open(cut, "w:gz") as tar:
        for k in range(6):
            big = encode(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), "PNG")
            info = tarfile.TarInfo(f"img{k}.png")
            info.size = len(big)
            tar.addfile(info, io.BytesIO(big))
    cut.write_bytes(cut.read_bytes()[: int(cut.stat().st_size * 0.6)])
    meta = prepare(str(cut), tmp_path / "out-cut", resolution=16, show_progress=False)
    assert 1 <= meta["count"] < 6
    reasons = {reason for _, reason, _ in read_skipped(tmp_path / "out-cut")}
    assert reasons <= {"corrupt-archive", "corrupt-archive-member"} and "corrupt-archive" in reasons


def test_decode_verdicts_do_not_depend_on_warning_filters() -> None:
    """Pytest turns warnings into errors; decode must give the same verdict under any filter."""
    import warnings

    opts = DecodeOptions(resolution=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quiet = decode_image(exif_rotated_jpeg(), opts)
    assert np.array_equal(quiet, decode_image(exif_rotated_jpeg(), opts))
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(BadImageError) as caught:
        decode_image(encode(Image.new("L", (300, 300)), "PNG"), DecodeOptions(resolution=16, max_pixels=10_000))
    assert caught.value.category == "decompression-bomb"
    assert before == Image.MAX_IMAGE_PIXELS  # the limit is per call, not left behind
