"""The prepared dataset format and the batch iterator the training loop reads from.

A prepared dataset is a directory:
- `images.npy`: uint8 N×H×W×C (C = 1 or 3), read as a memory map;
- `labels.npy` (optional): int16 N×A, one column per name in `meta["label_names"]`;
- `meta.json`: format, count, resolution, channels, source, labels, sha256 of images.npy, facegan version.
Decoding happens once, at prepare time; training only gathers rows of the array.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegan import __version__
from facegan.errors import FaceganError

FORMAT_NAME = "facegan-dataset"
FORMAT_VERSION = 1


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 22) -> str:
    """Hex sha256 of a file's contents."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def is_dataset_dir(path: str | Path) -> bool:
    """True if `path` holds a complete prepared dataset (meta.json is written last)."""
    return (Path(path) / "meta.json").is_file() and (Path(path) / "images.npy").is_file()


def publish_dir(tmp_dir: Path, out_dir: Path, force: bool) -> None:
    """Move a finished temporary directory into place, replacing `out_dir` only when `force` is set."""
    if out_dir.exists():
        if not force:
            raise FaceganError(f"{out_dir} already exists; pass --force to replace it")
        trash = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.replace(out_dir, trash)
        os.replace(tmp_dir, out_dir)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp_dir, out_dir)


def make_temp_sibling(out_dir: Path) -> Path:
    """A fresh temporary directory beside `out_dir` (same filesystem, so the final rename is atomic)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))


def finish_dataset_dir(
    tmp_dir: Path,
    source: str,
    label_names: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write meta.json for the images.npy (and labels.npy) already in `tmp_dir`; returns the meta."""
    images = np.load(tmp_dir / "images.npy", mmap_mode="r")
    if images.ndim != 4 or images.dtype != np.uint8 or images.shape[3] not in (1, 3):
        raise ValueError(f"images.npy must be uint8 N×H×W×(1|3), got {images.dtype} {images.shape}")
    if images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be square, got {images.shape[1]}×{images.shape[2]}")
    has_labels = (tmp_dir / "labels.npy").is_file()
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "count": int(images.shape[0]),
        "resolution": int(images.shape[1]),
        "channels": int(images.shape[3]),
        "source": source,
        "labels": "labels.npy" if has_labels else None,
        "label_names": list(label_names or []) if has_labels else [],
        "sha256": sha256_file(tmp_dir / "images.npy"),
        "facegan_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }
    del images
    (tmp_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def write_dataset(
    out_dir: str | Path,
    images: np.ndarray,
    source: str,
    labels: np.ndarray | None = None,
    label_names: list[str] | None = None,
    force: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write an in-memory uint8 N×H×W×C array as a prepared dataset, atomically; returns its meta."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not force:
        raise FaceganError(f"{out_dir} already exists; pass --force to replace it")
    if len(images) == 0:
        raise FaceganError("no images to write: the dataset would be empty")
    tmp_dir = make_temp_sibling(out_dir)
    try:
        np.save(tmp_dir / "images.npy", np.ascontiguousarray(images, dtype=np.uint8))
        if labels is not None:
            if len(labels) != len(images):
                raise ValueError("labels and images differ in length")
            np.save(tmp_dir / "labels.npy", np.asarray(labels, dtype=np.int16))
        meta = finish_dataset_dir(tmp_dir, source, label_names, extra)
        publish_dir(tmp_dir, out_dir, force)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return meta


@dataclass
class PreparedDataset:
    """An opened prepared dataset: `images` is a read-only uint8 memory map N×H×W×C."""

    path: Path
    meta: dict[str, Any]
    images: np.ndarray
    labels: np.ndarray | None

    @classmethod
    def open(cls, path: str | Path) -> PreparedDataset:
        """Open and validate a prepared dataset directory."""
        path = Path(path)
        if not path.exists():
            raise FaceganError(f"dataset {path} does not exist (make one with `facegan prepare`)")
        meta_path = path / "meta.json"
        if not meta_path.is_file():
            raise FaceganError(f"{path} is not a prepared dataset (no meta.json; make one with `facegan prepare`)")
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise FaceganError(f"cannot read {meta_path}: {exc}") from None
        if meta.get("format") != FORMAT_NAME:
            raise FaceganError(f"{meta_path} is not a facegan dataset description")
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise FaceganError(f"{path} was written by a newer facegan (format {meta['format_version']})")
        try:
            images = np.load(path / "images.npy", mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise FaceganError(f"cannot read {path / 'images.npy'}: {exc}") from None
        expected = (meta["count"], meta["resolution"], meta["resolution"], meta["channels"])
        if images.shape != expected or images.dtype != np.uint8:
            raise FaceganError(f"{path}/images.npy is {images.dtype} {images.shape}, meta.json says uint8 {expected}")
        labels = None
        if meta.get("labels"):
            labels = np.load(path / meta["labels"], mmap_mode="r")
        return cls(path=path, meta=meta, images=images, labels=labels)

    def __len__(self) -> int:
        return int(self.meta["count"])

    @property
    def resolution(self) -> int:
        """Side of the square images in pixels."""
        return int(self.meta["resolution"])

    @property
    def channels(self) -> int:
        """1 (grey) or 3 (RGB)."""
        return int(self.meta["channels"])


def to_float_nchw(batch_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 N×H×W×C to float N×C×H×W in [-1, 1] (on whatever device the input is)."""
    return batch_uint8.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


class BatchIterator:
    """Shuffled batches of a prepared dataset as float tensors in [-1, 1] on `device`.

    The order of epoch `e` depends only on (seed, e), so a run resumed mid-epoch sees the same batches it
    would have seen. With `world_size > 1` each rank takes a disjoint share of every epoch's permutation.
    Small arrays are read into memory (or copied to the GPU) once; batches are then gathered by index.
    """

    def __init__(
        self,
        dataset: PreparedDataset,
        batch_size: int,
        device: torch.device,
        seed: int = 0,
        flip: bool = False,
        rank: int = 0,
        world_size: int = 1,
        resident_bytes: int = 4 << 30,
    ) -> None:
        if len(dataset) < batch_size * world_size:
            raise FaceganError(
                f"dataset has {len(dataset)} images, fewer than one batch of {batch_size}"
                + (f" × {world_size} ranks" if world_size > 1 else "")
                + "; use a smaller --batch-size"
            )
        self.dataset = dataset
        self.batch_size = batch_size
        self.device = device
        self.seed = seed
        self.flip = flip
        self.rank = rank
        self.world_size = world_size
        self.source = self._resident_array(dataset.images, device, resident_bytes)

    @staticmethod
    def _resident_array(images: np.ndarray, device: torch.device, budget: int) -> torch.Tensor | np.ndarray:
        """The image array as a tensor on `device` when it fits the budget, else the memory map itself."""
        if images.nbytes > budget:
            return images
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if images.nbytes > free // 4:
                return images
        return torch.from_numpy(np.array(images, copy=True)).to(device)

    @property
    def batches_per_epoch(self) -> int:
        """Full batches per epoch for this rank (the last partial batch is dropped)."""
        return len(self.dataset) // (self.batch_size * self.world_size)

    def epoch_indices(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's image indices for `epoch`, shaped batches×batch_size, and the matching flip mask."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.dataset), generator=generator)
        flips = torch.rand(len(self.dataset), generator=generator) < 0.5
        per_rank = self.batches_per_epoch * self.batch_size
        mine = slice(self.rank * per_rank, (self.rank + 1) * per_rank)
        shape = (self.batches_per_epoch, self.batch_size)
        return order[mine].reshape(shape), flips[mine].reshape(shape)

    def batch(self, indices: torch.Tensor, flips: torch.Tensor | None = None) -> torch.Tensor:
        """Gather the images at `indices` as float N×C×H×W in [-1, 1] on the device."""
        if isinstance(self.source, torch.Tensor):
            raw = self.source[indices.to(self.source.device)]
        else:
            sorted_idx = np.sort(indices.numpy())
            raw = torch.from_numpy(self.source[sorted_idx]).to(self.device, non_blocking=True)
        images = to_float_nchw(raw)
        if self.flip and flips is not None:
            mask = flips.to(images.device).view(-1, 1, 1, 1)
            images = torch.where(mask, images.flip(3), images)
        return images

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[torch.Tensor]:
        """Yield the batches of `epoch`, starting at batch number `start_batch`."""
        order, flips = self.epoch_indices(epoch)
        for b in range(start_batch, len(order)):
            yield self.batch(order[b], flips[b])
