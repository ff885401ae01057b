"""Streaming, atomic writer of a prepared dataset: rows go straight to disk, the directory appears only when done.

Rows are written into `images.npy` inside a temporary sibling of the output directory (see
`make_temp_sibling`), at the position of their source index, so workers may finish in any order and the
result is the same. `finish` drops the rows of skipped images (moving later rows forward in place),
writes the final .npy header, labels.npy, names.txt, skipped.tsv and meta.json (last), and renames the directory
into place. Until then the file has no valid header and the directory has no meta.json, so an interrupted
run never leaves anything that looks like a dataset; `abort` (or leaving the `with` block by an
exception) deletes the temporary directory. Memory use is a few chunks of rows, whatever the dataset size.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facegan.data.dataset import finish_dataset_dir, make_temp_sibling, publish_dir

NPY_MAGIC = b"\x93NUMPY\x01\x00"


def npy_header(shape: tuple[int, ...], length: int | None = None) -> bytes:
    """A version-1.0 .npy header for a C-order uint8 array, padded with spaces to `length` bytes.

    With `length=None` it is padded to a multiple of 64, exactly as `np.save` writes it.
    """
    body = f"{{'descr': '|u1', 'fortran_order': False, 'shape': {shape!r}, }}".encode("latin1")
    if length is None:
        length = -(-(len(NPY_MAGIC) + 2 + len(body) + 1) // 64) * 64
    pad = length - len(NPY_MAGIC) - 2 - len(body) - 1
    if pad < 0:
        raise ValueError(f"header for shape {shape} does not fit in {length} bytes")
    return NPY_MAGIC + struct.pack("<H", len(body) + pad + 1) + body + b" " * pad + b"\n"


def _tsv_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class DatasetWriter:
    """Write up to `capacity` rows of resolution²×channels uint8 images into a temporary dataset directory."""

    def __init__(self, out_dir: str | Path, capacity: int, resolution: int, channels: int) -> None:
        self.out_dir = Path(out_dir)
        self.row_shape = (resolution, resolution, channels)
        self.row_bytes = resolution * resolution * channels
        # The header is reserved at its largest (the capacity's digits) and rewritten at the end.
        self.header_bytes = len(npy_header((capacity, *self.row_shape)))
        self.tmp_dir = make_temp_sibling(self.out_dir)
        self.images_path = self.tmp_dir / "images.npy"
        self._file = open(self.images_path, "w+b")  # noqa: SIM115 (closed in finish/abort)
        self._file.write(b"\0" * self.header_bytes)  # not a valid header until `finish`
        self._rows: np.memmap | None = None
        self.capacity = 0
        self.reserve(capacity)

    def reserve(self, capacity: int) -> None:
        """Make room for rows 0..capacity-1 (the file grows sparsely; nothing is zero-filled in memory)."""
        if capacity <= self.capacity:
            return
        self._rows = None
        self._file.truncate(self.header_bytes + capacity * self.row_bytes)
        self._rows = np.memmap(self._file, dtype=np.uint8, mode="r+", offset=self.header_bytes,
                               shape=(capacity, *self.row_shape))
        self.capacity = capacity

    def put(self, indices: list[int], rows: np.ndarray) -> None:
        """Store `rows[k]` at row `indices[k]`."""
        if not indices:
            return
        assert self._rows is not None
        first = indices[0]
        if indices == list(range(first, first + len(indices))):
            self._rows[first : first + len(indices)] = rows
        else:
            self._rows[np.asarray(indices)] = rows

    def finish(
        self,
        keep: np.ndarray,
        source: str,
        labels: np.ndarray | None = None,
        label_names: list[str] | None = None,
        skipped: Iterable[tuple[str, str, str]] = (),
        extra: dict[str, Any] | None = None,
        force: bool = False,
        names: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Keep rows `keep` (ascending), write labels/names.txt/skipped.tsv/meta.json, publish; returns the meta.

        `names` (one per row of the capacity) become names.txt: the source name of every kept image, in order.
        """
        assert self._rows is not None
        keep = np.asarray(keep, dtype=np.int64)
        if len(keep) and (np.any(np.diff(keep) <= 0) or keep[0] < 0 or keep[-1] >= self.capacity):
            raise ValueError("keep must be ascending row numbers below the capacity")
        # Move kept rows forward in place; block by block is safe because keep[j] >= j.
        first_moved = int(np.argmax(keep != np.arange(len(keep)))) if np.any(keep != np.arange(len(keep))) else None
        if first_moved is not None:
            block = 1024
            for start in range(first_moved, len(keep), block):
                stop = min(start + block, len(keep))
                self._rows[start:stop] = self._rows[keep[start:stop]]
        self._rows.flush()
        self._rows = None
        self._file.seek(0)
        self._file.write(npy_header((len(keep), *self.row_shape), self.header_bytes))
        self._file.truncate(self.header_bytes + len(keep) * self.row_bytes)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        if labels is not None:
            np.save(self.tmp_dir / "labels.npy", np.ascontiguousarray(labels[keep], dtype=np.int16))
        if names is not None:
            with open(self.tmp_dir / "names.txt", "w", encoding="utf-8") as handle:
                handle.writelines(f"{_tsv_cell(names[i])}\n" for i in keep)
        with open(self.tmp_dir / "skipped.tsv", "w", encoding="utf-8") as handle:
            handle.write("name\treason\tdetail\n")
            for name, reason, detail in skipped:
                handle.write(f"{_tsv_cell(name)}\t{reason}\t{_tsv_cell(detail)}\n")
        meta = finish_dataset_dir(self.tmp_dir, source, label_names if labels is not None else None, extra)
        self.tmp_dir.chmod(0o755)  # mkdtemp made it private; a dataset is an ordinary readable folder
        publish_dir(self.tmp_dir, self.out_dir, force)
        return meta

    def abort(self) -> None:
        """Delete the temporary directory (after an error or interrupt)."""
        self._rows = None
        if not self._file.closed:
            self._file.close()
        shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            self.abort()
