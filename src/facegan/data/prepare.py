"""`facegan prepare`: turn a source of images into a prepared dataset (see `facegan.data.dataset`).

Sources (see `facegan.data.sources`): a folder (recursive), a .zip / .tar[.gz] archive read in place, MNIST
IDX files, a .npy/.npz array, or `builtin:NAME`. Candidates are decoded in sorted order by `workers`
processes (`facegan.data.decode`) and streamed to disk (`facegan.data.writer`); bad files are skipped
and listed in DIR/skipped.tsv, and the directory only appears, complete, at the end.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import signal
import threading
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from facegan.data.celeba import find_attribute_text, match_attributes, parse_attributes
from facegan.data.dataset import is_dataset_dir, write_dataset
from facegan.data.decode import CROPS, DEFAULT_MAX_PIXELS, ChunkResult, DecodeOptions, Payload, decode_chunk
from facegan.data.sources import ATTRIBUTE_FILE_NAMES, Source, open_source
from facegan.data.writer import DatasetWriter
from facegan.errors import FaceganError
from facegan.utils.progress import progress_bar

log = logging.getLogger("facegan.prepare")

BUILTIN_PREFIX = "builtin:"
BUILTIN_SOURCES = ("synthetic-faces",)


def rgb_to_gray(images: np.ndarray) -> np.ndarray:
    """uint8 N×H×W×3 → N×H×W×1 with ITU-R 601 luma weights (as Pillow's convert('L'))."""
    luma = images[..., 0] * 0.299 + images[..., 1] * 0.587 + images[..., 2] * 0.114
    return np.clip(np.round(luma), 0, 255).astype(np.uint8)[..., None]


def prepare_builtin(
    name: str, out: str | Path, resolution: int, channels: int = 3, count: int = 20000, seed: int = 0,
    workers: int = 1, force: bool = False, show_progress: bool = True,
) -> dict[str, Any]:
    """Render a built-in dataset (`synthetic-faces`) into a prepared dataset; returns its meta."""
    if name != "synthetic-faces":
        raise FaceganError(f"unknown built-in dataset {name!r}; known: {', '.join(BUILTIN_SOURCES)}")
    from facegan.data import synthetic

    if count < 1:
        raise FaceganError("--n must be at least 1")
    with progress_bar(count, "render", unit="img", enabled=show_progress) as bar:
        images, labels = synthetic.render_faces(count, resolution, seed=seed, workers=workers, on_progress=bar.update)
    if channels == 1:
        images = rgb_to_gray(images)
    meta = write_dataset(
        out, images, source=f"{BUILTIN_PREFIX}{name}", labels=labels,
        label_names=list(synthetic.ATTRIBUTE_NAMES), force=force, extra={"seed": seed},
    )
    log.info("wrote %d synthetic faces (%d px, %d ch) to %s", meta["count"], resolution, channels, out)
    return meta


def check_output(out: Path, force: bool) -> None:
    """Refuse an existing `out` unless `force`; even with `force`, never replace a folder that is not a dataset."""
    if not (out.exists() or out.is_symlink()):
        return
    if not force:
        raise FaceganError(f"{out} already exists; pass --force to replace it")
    if not out.is_dir() or (not is_dataset_dir(out) and any(out.iterdir())):
        raise FaceganError(f"{out} exists and is not a facegan dataset; refusing to replace it, even with --force")


def _warn_stale_temporaries(out: Path) -> None:
    stale = sorted(out.parent.glob(f".{out.name}.tmp-*")) if out.parent.is_dir() else []
    if stale:
        log.warning("found %d unfinished folder(s) left by an interrupted prepare beside %s (e.g. %s); "
                    "delete them to free disk space", len(stale), out, stale[0].name)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt while preparing, so a killed run cleans up its temporary folder too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _worker_init() -> None:
    # Ctrl-C reaches the whole process group: only the parent reacts (it terminates the pool and cleans up).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _chunks(items: Iterable[tuple[int, Payload]], size: int) -> Iterator[list[tuple[int, Payload]]]:
    chunk: list[tuple[int, Payload]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class ParallelDecoder:
    """Decode chunks of payloads in this process (workers=1) or in a multiprocessing pool.

    At most a few chunks per worker are in flight, so a source read in the parent (an archive) never
    queues more than that in memory.
    """

    def __init__(self, opts: DecodeOptions, workers: int, want_digests: bool, chunk_size: int) -> None:
        self.opts = opts
        self.workers = workers
        self.want_digests = want_digests
        self.chunk_size = chunk_size
        self.pool = None
        if workers > 1:
            self.pool = multiprocessing.get_context().Pool(workers, initializer=_worker_init)

    def run(self, payloads: Iterable[tuple[int, Payload]]) -> Iterator[ChunkResult]:
        """Decoded results of every chunk, in submission order."""
        tasks = ((self.opts, self.want_digests, chunk) for chunk in _chunks(payloads, self.chunk_size))
        if self.pool is None:
            yield from map(decode_chunk, tasks)
            return
        pending: deque = deque()
        for task in tasks:
            pending.append(self.pool.apply_async(decode_chunk, (task,)))
            if len(pending) >= 4 * self.workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()

    def __enter__(self) -> ParallelDecoder:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if self.pool is None:
            return
        if exc_type is None:
            self.pool.close()
        else:
            self.pool.terminate()
        self.pool.join()


class _Tally:
    """Which candidates were kept, why the others were skipped, and their content digests (for --dedupe)."""

    def __init__(self, total: int) -> None:
        self.kept = np.zeros(total, dtype=bool)
        self.failures: dict[int, tuple[str, str]] = {}
        self.digests: dict[int, bytes] = {}
        self.first_of: dict[bytes, int] = {}

    def add(self, result: ChunkResult) -> None:
        self.kept[result.indices] = True
        for index, digest in zip(result.indices, result.digests, strict=True):
            if digest:
                self.digests[index] = digest
        for index, category, detail in result.failures:
            self.failures[index] = (category, detail)

    def drop_duplicates(self, indices: range, names: list[str]) -> None:
        """Skip every kept image whose bytes equal an earlier (in sorted order) kept image's."""
        for index in indices:
            digest = self.digests.pop(index, None)
            if not self.kept[index] or digest is None:
                continue
            first = self.first_of.setdefault(digest, index)
            if first != index:
                self.kept[index] = False
                self.failures[index] = ("duplicate", f"same bytes as {names[first]}")

    @property
    def kept_count(self) -> int:
        return int(self.kept.sum())


def _labels_for(src: Source, source: str, attrs: str | Path | None) -> tuple[np.ndarray | None, list[str], str | None]:
    """Per-candidate labels: a CelebA attribute table when one is given or found, else the source's own."""
    found = None
    if attrs is not None or src.kind in ("folder", "zip", "tar"):
        found = find_attribute_text(Path(source), attrs, src.attribute_text)
    if found is not None:
        text, where = found
        names, table = parse_attributes(text, where)
        labels, _ = match_attributes(src.names, names, table, where)
        if labels is not None:
            log.info("labels: %d attributes from %s", len(names), where)
            return labels, names, where
    return src.labels, src.label_names, None


def _reason_counts(skipped: list[tuple[str, str, str]]) -> dict[str, int]:
    return dict(sorted(Counter(reason for _, reason, _ in skipped).items(), key=lambda kv: (-kv[1], kv[0])))


def _reasons_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in counts.items())


def prepare_images(
    source: str,
    out: str | Path,
    opts: DecodeOptions,
    workers: int = 1,
    limit: int | None = None,
    dedupe: bool = False,
    attrs: str | Path | None = None,
    force: bool = False,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Decode every image of a folder/archive/IDX/array source into the dataset `out`; returns its meta."""
    out = Path(out)
    check_output(out, force)
    _warn_stale_temporaries(out)
    with open_source(source) as src, _sigterm_as_interrupt():
        labels, label_names, labels_from = _labels_for(src, source, attrs)
        rejected = [r for r in src.rejected if not (labels_from and PurePosixPath(r[0]).name in ATTRIBUTE_FILE_NAMES)]
        total = len(src.names)
        if total == 0:
            why = f" ({len(rejected)} other entries: {_reasons_text(_reason_counts(rejected))})" if rejected else ""
            raise FaceganError(f"no image files in {source}{why}")
        want = total if limit is None else min(limit, total)
        chunk_size = max(1, min(64, math.ceil(want / (workers * 8))))
        tally = _Tally(total)
        processed = 0
        with DatasetWriter(out, want, opts.resolution, opts.channels) as writer, \
                ParallelDecoder(opts, workers, dedupe, chunk_size) as decoder, \
                progress_bar(want, "prepare", unit="img", enabled=show_progress) as bar:
            # One pass without --limit; with it, more passes only while bad files leave it short.
            while processed < total:
                goal = total - processed if limit is None else limit - tally.kept_count
                if goal <= 0:
                    break
                batch = range(processed, min(total, processed + goal))
                writer.reserve(batch.stop)
                bar.total = max(bar.total, batch.stop)
                for result in decoder.run(src.payloads(batch)):
                    writer.put(result.indices, result.rows)
                    tally.add(result)
                    bar.update(len(result.indices) + len(result.failures))
                if dedupe:
                    tally.drop_duplicates(batch, src.names)
                processed = batch.stop
            keep = np.flatnonzero(tally.kept[:processed])
            skipped = rejected + [(src.names[i], *tally.failures[i]) for i in sorted(tally.failures)]
            counts = _reason_counts(skipped)
            if len(keep) == 0:
                raise FaceganError(f"no usable images in {source}: all {processed} candidates were skipped "
                                   f"({_reasons_text(counts)}); nothing was written")
            extra = {
                "crop": opts.crop, "source_kind": src.kind, "candidates": total, "skipped": len(skipped),
                "skipped_by_reason": counts, "dedupe": dedupe, "limit": limit, "labels_from": labels_from,
            }
            meta = writer.finish(keep, source, labels, label_names, skipped, extra, force, names=src.names)
    log.debug("%s", summary_line(meta, out))
    return meta


def summary_line(meta: dict[str, Any], out: str | Path) -> str:
    """One line for the user: what was kept, what was skipped and why, and where the list is."""
    line = f"prepared {meta['count']} images ({meta['resolution']} px × {meta['channels']} ch) in {out}"
    skipped = meta.get("skipped", 0)
    if skipped:
        reasons = _reasons_text(meta.get("skipped_by_reason", {}))
        line += f"; skipped {skipped} ({reasons}), listed in {Path(out) / 'skipped.tsv'}"
    elif "skipped" in meta:
        line += "; skipped none"
    return line


def prepare(
    source: str, out: str | Path, resolution: int = 64, channels: int = 3, count: int | None = None,
    seed: int = 0, workers: int = 1, force: bool = False, show_progress: bool = True,
    crop: str = "center", limit: int | None = None, dedupe: bool = False, attrs: str | Path | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> dict[str, Any]:
    """Prepare `source` into the dataset directory `out`; returns the dataset's meta.

    `count`/`seed` apply to built-in sources; `crop`, `limit`, `dedupe`, `attrs` (a CelebA attribute
    table) and `max_pixels` (larger images are skipped as decompression bombs) to image sources.
    `workers` processes decode in parallel (0: one per CPU); the result does not depend on it.
    """
    if channels not in (1, 3):
        raise FaceganError("--channels must be 1 or 3")
    if resolution < 8 or resolution > 1024:
        raise FaceganError("--res must be between 8 and 1024")
    if crop not in CROPS:
        raise FaceganError(f"--crop must be one of {', '.join(CROPS)}")
    if workers < 0:
        raise FaceganError("--workers must be 0 (one per CPU) or more")
    if limit is not None and limit < 1:
        raise FaceganError("--limit must be at least 1")
    if max_pixels < 1:
        raise FaceganError("--max-pixels must be at least 1")
    workers = workers or os.cpu_count() or 1
    check_output(Path(out), force)
    if source.startswith(BUILTIN_PREFIX):
        return prepare_builtin(source[len(BUILTIN_PREFIX):], out, resolution, channels, count or limit or 20000,
                               seed, workers, force, show_progress)
    opts = DecodeOptions(resolution=resolution, channels=channels, crop=crop, max_pixels=max_pixels)
    return prepare_images(source, out, opts, workers=workers, limit=limit, dedupe=dedupe, attrs=attrs, force=force,
                          show_progress=show_progress)
