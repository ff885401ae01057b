"""Looking at a prepared dataset: a text summary (`facegan data info`) and a contact sheet (`facegan data show`)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np

from facegan.data.dataset import PreparedDataset, sha256_file
from facegan.errors import FaceganError
from facegan.utils.images import make_grid, resize_nearest, save_png

MIN_TILE_PX = 64  # tiles smaller than this (MNIST's 28 px) are enlarged, pixel-exact, for viewing


def read_skipped(path: str | Path) -> list[tuple[str, str, str]]:
    """The (name, reason, detail) rows of DIR/skipped.tsv ([] when there is none)."""
    tsv = Path(path) / "skipped.tsv"
    if not tsv.is_file():
        return []
    with open(tsv, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [(r[0], r[1], r[2] if len(r) > 2 else "") for r in rows[1:] if len(r) >= 2]


def dataset_info(path: str | Path, verify: bool = False) -> str:
    """A few lines describing a prepared dataset; with `verify`, images.npy's sha256 is recomputed and checked."""
    ds = PreparedDataset.open(path)
    meta = ds.meta
    size_mb = (ds.path / "images.npy").stat().st_size / 1e6
    lines = [
        f"dataset   {ds.path}",
        f"images    {len(ds)} × {ds.resolution}×{ds.resolution}×{ds.channels} uint8 ({size_mb:.1f} MB)",
        f"source    {meta.get('source')}" + (f" ({meta['source_kind']})" if meta.get("source_kind") else ""),
    ]
    if meta.get("crop"):
        lines.append(f"crop      {meta['crop']}")
    if ds.labels is not None:
        names = meta.get("label_names") or []
        shown = ", ".join(names[:6]) + (f", … ({len(names)} in all)" if len(names) > 6 else "")
        lines.append(f"labels    {ds.labels.shape[1]} per image: {shown}")
    else:
        lines.append("labels    none")
    sample = np.asarray(ds.images[:: max(1, len(ds) // 1000)], dtype=np.float32)
    lines.append(f"pixels    mean {sample.mean():.1f}, std {sample.std():.1f} (0-255, over {len(sample)} images)")
    skipped = read_skipped(ds.path)
    if skipped:
        counts = meta.get("skipped_by_reason") or dict(Counter(reason for _, reason, _ in skipped).most_common())
        reasons = ", ".join(f"{reason} {n}" for reason, n in counts.items())
        lines.append(f"skipped   {len(skipped)} ({reasons}); see {ds.path / 'skipped.tsv'}")
    elif "skipped" in meta:
        lines.append("skipped   none")
    lines.append(f"sha256    {meta.get('sha256')}")
    if verify:
        actual = sha256_file(ds.path / "images.npy")
        if actual != meta.get("sha256"):
            raise FaceganError(f"{ds.path}/images.npy does not match the sha256 in meta.json: it is damaged")
        lines.append("verified  images.npy matches meta.json")
    lines.append(f"created   {meta.get('created')} by facegan {meta.get('facegan_version')}")
    return "\n".join(lines)


def write_contact_sheet(path: str | Path, out: str | Path, n: int = 64, seed: int = 0) -> Path:
    """A PNG grid of `n` images of the dataset drawn at random (by `seed`), without replacement."""
    if n < 1:
        raise FaceganError("--n must be at least 1")
    ds = PreparedDataset.open(path)
    rng = np.random.default_rng(seed)
    indices = np.sort(rng.choice(len(ds), size=min(n, len(ds)), replace=False))
    images = np.asarray(ds.images[indices])
    if ds.resolution < MIN_TILE_PX:
        factor = -(-MIN_TILE_PX // ds.resolution)
        images = np.stack([resize_nearest(im, ds.resolution * factor) for im in images])
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise FaceganError(f"--out must be a .png file, got {out}")
    save_png(make_grid(images), out)
    return out
