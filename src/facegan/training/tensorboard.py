"""`--tensorboard`: the run's metrics.jsonl scalars and fixed-noise grids as TensorBoard events in RUN/tb/.

A training hook (added by `train` when `train.tensorboard` is set) that follows metrics.jsonl, the run's
source of truth, so TensorBoard shows exactly its scalars (`loss_d`, `d_x`, `images_per_s`, `health_diversity`,
one 0/1 scalar per health flag, ...), plus every grid written to RUN/samples/ (`samples/fixed_noise`).
Events are appended with tensorboard's record format, opening the file only while writing, so nothing stays
open between steps and a crash loses nothing already written. A resumed or rolled-back run starts a
session at its first new step, which makes TensorBoard drop the older events from that step on (as
`SummaryWriter(purge_step=...)` does). The HTML report (facegan.report) stays the offline default; this
needs the optional `tensorboard` package (`pip install "facegan[tensorboard]"`).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from facegan.config import RunConfig
from facegan.errors import FaceganError
from facegan.run.layout import metrics_path, sample_path

INSTALL_HINT = 'pip install "facegan[tensorboard]" (or: pip install tensorboard)'


def require_tensorboard() -> None:
    """Raise a one-line FaceganError when the optional tensorboard package is missing."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise FaceganError(f"--tensorboard needs the tensorboard package: {INSTALL_HINT}") from None


def _event_bytes(**fields: Any) -> bytes:
    from tensorboard.compat.proto.event_pb2 import Event

    return Event(wall_time=time.time(), **fields).SerializeToString()


def _record(data: bytes) -> bytes:
    """One TFRecord: length, masked CRC of the length, data, masked CRC of the data."""
    import struct

    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


def scalar_values(record: dict[str, Any]) -> dict[str, float]:
    """The TensorBoard scalars of one metrics.jsonl record: every number but the step, and each health flag 0/1."""
    from facegan.training.health import FLAGS

    scalars = {key: float(value) for key, value in record.items()
               if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)}
    flags = record.get("health_flags")
    if isinstance(flags, list):
        scalars.update({f"health_flags/{flag}": float(flag in flags) for flag in FLAGS})
    return scalars


class TensorBoardHook:
    """A training hook that mirrors RUN/metrics.jsonl and RUN/samples/ into RUN/tb/ as TensorBoard events."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path: Path | None = None
        self._offset = 0
        self._next_step = 0  # the step the next scalars should have; a run that goes back restarts the session
        self._seen: Any = None

    def _write(self, events: Sequence[bytes]) -> None:
        if events and self.path is not None:
            with self.path.open("ab") as handle:
                handle.write(b"".join(_record(e) for e in events))

    def _start(self, step: int) -> None:
        """Open a session at `step`: a new events file on the first call, and a purge of steps ≥ `step`."""
        from tensorboard.compat.proto.event_pb2 import SessionLog

        events = []
        if self.path is None:
            folder = self.run_dir / "tb"
            folder.mkdir(parents=True, exist_ok=True)
            # TensorBoard reads a folder's events files in name order: the time (µs) keeps sessions in order.
            self.path = folder / f"events.out.tfevents.{time.time():.6f}.{socket.gethostname()}.{os.getpid()}"
            events.append(_event_bytes(file_version="brain.Event:2"))
        if step > 1:
            events.append(_event_bytes(step=step, session_log=SessionLog(status=SessionLog.START)))
        self._write(events)
        self._offset = self._first_line_at(step)
        self._next_step = step

    def _metrics_path(self) -> Path:
        return metrics_path(self.run_dir)

    def _first_line_at(self, step: int) -> int:
        """Byte offset of the first metrics.jsonl line whose step is ≥ `step` (the file's end if none)."""
        path = self._metrics_path()
        if not path.exists():
            return 0
        offset = 0
        with path.open("rb") as handle:
            for line in handle:
                try:
                    if json.loads(line).get("step", 0) >= step:
                        return offset
                except json.JSONDecodeError:
                    return offset
                offset += len(line)
        return offset

    def _new_records(self) -> list[dict[str, Any]]:
        """Complete metrics.jsonl lines written since the last call."""
        path = self._metrics_path()
        if not path.exists():
            return []
        with path.open("rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        end = data.rfind(b"\n") + 1
        self._offset += end
        records = []
        for line in data[:end].splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def __call__(self, run: Any) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        if self.path is None or run.step < self._next_step:
            self._start(run.step)
        self._next_step = run.step + 1
        events = []
        if run.last_record is not self._seen:  # metrics.jsonl got new lines at this step
            self._seen = run.last_record
            for record in self._new_records():
                values = [Summary.Value(tag=k, simple_value=v) for k, v in scalar_values(record).items()]
                events.append(_event_bytes(step=int(record["step"]), summary=Summary(value=values)))
        grid = sample_path(self.run_dir, run.step)
        if run.step % run.config.train.sample_every == 0 and grid.exists():
            events.append(_event_bytes(step=run.step, summary=Summary(value=[_image_value(grid)])))
        self._write(events)


def _image_value(png: Path) -> Any:
    """A TensorBoard image summary of a PNG file, its bytes as they are."""
    from PIL import Image
    from tensorboard.compat.proto.summary_pb2 import Summary

    data = png.read_bytes()
    with Image.open(png) as image:
        width, height = image.size
        colorspace = {"L": 1, "RGB": 3, "RGBA": 4}.get(image.mode, 3)
    image_proto = Summary.Image(height=height, width=width, colorspace=colorspace, encoded_image_string=data)
    return Summary.Value(tag="samples/fixed_noise", image=image_proto)


def with_hook(hooks: Sequence[Any], config: RunConfig, run_dir: str | Path) -> tuple[Any, ...]:
    """A TensorBoardHook for `run_dir` first, then `hooks`, when `train.tensorboard` is set (once: a retried run
    passes its hooks back in)."""
    hooks = tuple(hooks)
    if not config.train.tensorboard or any(isinstance(h, TensorBoardHook) for h in hooks):
        return hooks
    require_tensorboard()
    return (TensorBoardHook(run_dir), *hooks)
