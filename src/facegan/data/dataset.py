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
import logging
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

from facegan.errors import FaceganError
from facegan.version import __version__

log = logging.getLogger("facegan.data")

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
        self.labels: torch.Tensor | None = None  # N×A per-image labels gathered with the images (set_labels)
        self.batch_labels: torch.Tensor | None = None  # the labels of the batch `batch` returned last

    def set_labels(self, labels: torch.Tensor) -> None:
        """Gather these N×A labels (row i: image i) with every batch, into `batch_labels` (conditional runs)."""
        if len(labels) != len(self.dataset):
            raise ValueError(f"{len(labels)} label rows for {len(self.dataset)} images")
        self.labels = labels.to(self.device)

    @staticmethod
    def _resident_array(images: np.ndarray, device: torch.device, budget: int) -> torch.Tensor | np.ndarray:
        """The image array as a tensor on `device` when it fits the budget, else the memory map itself."""
        size = f"{images.nbytes / 2**20:.1f} MiB"
        if images.nbytes > budget:
            log.info("images read from the memory map each step (%s, over the %d MiB budget)", size, budget >> 20)
            return images
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if images.nbytes > free // 4:
                log.info("images read from the memory map each step (%s, over a quarter of the GPU's free "
                         "memory)", size)
                return images
        resident = torch.from_numpy(np.array(images, copy=True)).to(device)
        log.info("images resident on %s (%s)", resident.device, size)
        return resident

    @property
    def batches_per_epoch(self) -> int:
        """Full batches per epoch for this rank (the last partial batch is dropped)."""
        return len(self.dataset) // (self.batch_size * self.world_size)

    def epoch_indices(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's image indices for `epoch`, shaped batches×batch_size, and the matching flip mask."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.dataset), generator=generator)
        flips = torch.rand(len(self.dataset), generator=generator) < 0.5
        # Global batch b is order[b*B:(b+1)*B] with B = batch_size × world_size, what one process with batch
        # B would see; rank r takes the r-th share of it.
        used = self.batches_per_epoch * self.batch_size * self.world_size
        shape = (self.batches_per_epoch, self.world_size, self.batch_size)
        return order[:used].view(shape)[:, self.rank], flips[:used].view(shape)[:, self.rank]

    def batch(self, indices: torch.Tensor, flips: torch.Tensor | None = None) -> torch.Tensor:
        """Gather the images at `indices` as float N×C×H×W in [-1, 1] on the device."""
        if isinstance(self.source, torch.Tensor):
            raw = self.source.index_select(0, indices.to(self.source.device))  # a copy; several × faster than []
        else:
            # Read the memory map in ascending order (sequential I/O), then restore the requested order so
            # a batch is the same whether the array is resident or not.
            wanted = indices.cpu().numpy()
            ascending = np.argsort(wanted, kind="stable")
            rows = np.empty((len(wanted), *self.source.shape[1:]), dtype=np.uint8)
            rows[ascending] = self.source[wanted[ascending]]
            raw = torch.from_numpy(rows).to(self.device, non_blocking=True)
        if self.flip and flips is not None:
            # Mirror the uint8 N×H×W×C rows (W is dim 2) before conversion: a quarter of the bytes. On the CPU
            # only the chosen rows are touched; on a GPU `where` avoids the host sync that nonzero() would cost.
            flips = flips.to(raw.device)
            if raw.device.type == "cpu":
                chosen = flips.nonzero().squeeze(1)
                raw.index_copy_(0, chosen, raw.index_select(0, chosen).flip(2))
            else:
                raw = torch.where(flips.view(-1, 1, 1, 1), raw.flip(2), raw)
        images = to_float_nchw(raw)
        if self.labels is not None:
            self.batch_labels = self.labels[indices.to(self.labels.device)]
        return images

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[torch.Tensor]:
        """Yield the batches of `epoch`, starting at batch number `start_batch`."""
        order, flips = self.epoch_indices(epoch)
        if isinstance(self.source, torch.Tensor):  # one copy to the device per epoch, not a host sync per step
            order, flips = order.to(self.source.device), flips.to(self.source.device)
        for b in range(start_batch, len(order)):
            yield self.batch(order[b], flips[b])


class FaceDataset(torch.utils.data.Dataset):
    """A prepared dataset as a map-style torch `Dataset`, for code that wants a `DataLoader`.

    Item i is (float C×H×W in [-1, 1], int16 label row; empty without labels), mirrored left-right with
    probability 0.5 when `flip` (drawn from `generator`, or torch's default one, which a DataLoader seeds per
    worker). Training uses `BatchIterator`, which gathers whole batches with no per-item Python.
    """

    def __init__(self, dataset: PreparedDataset | str | Path, flip: bool = False,
                 generator: torch.Generator | None = None) -> None:
        self.dataset = dataset if isinstance(dataset, PreparedDataset) else PreparedDataset.open(dataset)
        self.flip = flip
        self.generator = generator
        self._no_labels = torch.empty(0, dtype=torch.int16)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        image = to_float_nchw(torch.from_numpy(np.array(self.dataset.images[index]))[None])[0]
        if self.flip and torch.rand((), generator=self.generator) < 0.5:
            image = image.flip(2)
        labels = self.dataset.labels
        label = self._no_labels if labels is None else torch.from_numpy(np.array(labels[index]))
        return image, label
