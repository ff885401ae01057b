"""Checkpoints: plain state dicts plus the config, written atomically and durably, loaded with weights_only=True.

A run directory's checkpoint is its newest one that loads (`load_newest_checkpoint`; resume, sample and eval alike):
one a lost machine left unreadable (its write never reached the disk) is skipped and, once the run continues, set
aside as `step-N.pt.unreadable`.
"""

from __future__ import annotations

import io
import logging
import os
import re
from pathlib import Path
from typing import Any

import torch

from facegan.config import RunConfig
from facegan.errors import FaceganError
from facegan.run.layout import checkpoint_dir
from facegan.utils.atomic import atomic_write_bytes
from facegan.version import __version__

log = logging.getLogger("facegan.checkpoint")

FORMAT_VERSION = 1
_NAME = re.compile(r"^step-(\d+)\.pt$")
UNREADABLE_SUFFIX = ".unreadable"


class UnreadableCheckpointError(FaceganError):
    """A file that does not load as a facegan checkpoint (truncated, empty, or not a checkpoint at all)."""


def checkpoint_path(run_dir: str | Path, step: int) -> Path:
    """The file name of the checkpoint taken at `step`."""
    return checkpoint_dir(run_dir) / f"step-{step:08d}.pt"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """The run's step checkpoints, oldest first."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def checkpoint_step(path: str | Path) -> int | None:
    """The step in a step checkpoint's name (None for another file, best.pt say)."""
    match = _NAME.match(Path(path).name)
    return int(match.group(1)) if match else None


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write `payload` (state dicts, tensors, plain values) with the format version, atomically and durably (on
    the disk when it returns, so a machine lost a moment later still has it)."""
    buffer = io.BytesIO()
    torch.save({"format": "facegan-checkpoint", "format_version": FORMAT_VERSION,
                "facegan_version": __version__, **payload}, buffer)
    atomic_write_bytes(path, buffer.getvalue(), durable=True)


def prune_checkpoints(run_dir: str | Path, keep: int) -> None:
    """Delete all but the newest `keep` step checkpoints."""
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate a checkpoint file, or a run's newest checkpoint that loads (`load_newest_checkpoint`);
    `config` comes back as a RunConfig."""
    path = Path(path)
    if path.is_dir():
        ckpt = load_newest_checkpoint(path, map_location)
        if ckpt is None:
            raise FaceganError(f"{path} holds no checkpoints (is it a facegan run directory?)")
        return ckpt
    if not path.exists():
        raise FaceganError(f"{path} does not exist")
    return _load_file(path, map_location)


def _load_file(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise UnreadableCheckpointError(f"{path} is not a readable facegan checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != "facegan-checkpoint":
        raise UnreadableCheckpointError(f"{path} is not a facegan checkpoint")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise FaceganError(f"{path} was written by a newer facegan (format {payload['format_version']})")
    payload["config"] = RunConfig.from_dict(payload["config"])
    payload["path"] = str(path)
    return payload


def load_newest_checkpoint(run_dir: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The run's newest step checkpoint that loads, or None when it has no step checkpoint at all.

    A newer file that does not load (a machine lost before its write reached the disk) is skipped with a warning;
    when none of them loads, that is an error (nothing is started over while checkpoints exist).
    """
    found = list_checkpoints(run_dir)
    for path in reversed(found):
        try:
            return _load_file(path, map_location)
        except UnreadableCheckpointError as exc:
            log.warning("skipping %s (%s); trying the checkpoint before it", path.name, exc)
    if found:
        raise FaceganError(f"no checkpoint in {checkpoint_dir(run_dir)} loads ({len(found)} tried); move them aside "
                           "to start the run again")
    return None


def set_aside_newer(run_dir: str | Path, step: int) -> list[Path]:
    """Rename the run's step checkpoints after `step` (files that did not load) to NAME.unreadable, so the run it
    continues from is its newest again; returns their new paths."""
    moved = []
    for path in list_checkpoints(run_dir):
        if (checkpoint_step(path) or 0) > step:
            target = path.with_name(path.name + UNREADABLE_SUFFIX)
            os.replace(path, target)
            moved.append(target)
            log.warning("set %s aside as %s: it does not load", path.name, target.name)
    return moved
