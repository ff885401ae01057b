"""RUN/metrics.jsonl: one JSON line per training step, buffered on the device and written every N steps.

Every line holds `step`, `epoch` and `images_seen` (real images D has seen, all processes together), then the
step's values (loss_d, loss_g, D(x) as d_x, ...), health notes, and the flush's images_per_s and elapsed_s.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from facegan.utils.atomic import atomic_write_text, fsync_file


def _plain(value: float) -> float | None:
    """JSON has no NaN/inf: non-finite values are written as null."""
    return value if math.isfinite(value) else None


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl (skipping a torn last line after a crash)."""
    records = []
    path = Path(path)
    if not path.exists():
        return records
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


class MetricsLog:
    """Buffers per-step scalar tensors and appends them as JSON lines in one host sync per flush."""

    def __init__(self, path: str | Path, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self._steps: list[tuple[int, int, int | None]] = []
        self._values: list[dict[str, torch.Tensor]] = []
        self._notes: list[dict[str, Any] | None] = []
        if resume_step is not None and self.path.exists():
            # Lines written after the checkpoint we resume from describe steps that will be redone.
            kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step]
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def add(self, step: int, epoch: int, values: dict[str, torch.Tensor],
            notes: dict[str, Any] | None = None, images_seen: int | None = None) -> None:
        """Remember one step's scalars (still on the device) and plain JSON `notes` for its line only."""
        self._steps.append((step, epoch, images_seen))
        self._values.append(values)
        self._notes.append(notes)

    def flush(self, extra: dict[str, float], durable: bool = False) -> dict[str, Any] | None:
        """Write the buffered steps, each with `extra` (images_per_s, elapsed_s); returns the last record.
        `durable`: on the disk when it returns (before a checkpoint, so a run resumed from it misses no line)."""
        if not self._values:
            return None
        keys = list(self._values[0])
        table = torch.stack([torch.stack([v[k].float() for k in keys]) for v in self._values]).cpu().tolist()
        lines, record = [], None
        for (step, epoch, seen), row, notes in zip(self._steps, table, self._notes, strict=True):
            record = {"step": step, "epoch": epoch, **({"images_seen": seen} if seen is not None else {})}
            record.update({k: _plain(x) for k, x in zip(keys, row, strict=True)})
            record.update(notes or {})
            record.update(extra)
            lines.append(json.dumps(record))
        with self.path.open("a") as handle:
            handle.write("\n".join(lines) + "\n")
            if durable:
                fsync_file(handle)
        self._steps.clear()
        self._values.clear()
        self._notes.clear()
        return record
