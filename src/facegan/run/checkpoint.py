"""Checkpoints: plain state dicts plus the config, written atomically, loaded with weights_only=True."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import torch

from facegan.config import RunConfig
from facegan.errors import FaceganError
from facegan.run.layout import checkpoint_dir
from facegan.utils.atomic import atomic_write_bytes
from facegan.version import __version__

FORMAT_VERSION = 1
_NAME = re.compile(r"^step-(\d+)\.pt$")


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


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write `payload` (state dicts, tensors, plain values) with the format version, atomically."""
    buffer = io.BytesIO()
    torch.save({"format": "facegan-checkpoint", "format_version": FORMAT_VERSION,
                "facegan_version": __version__, **payload}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def prune_checkpoints(run_dir: str | Path, keep: int) -> None:
    """Delete all but the newest `keep` step checkpoints."""
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file from a checkpoint path or a run directory (its newest checkpoint)."""
    path = Path(path)
    if path.is_dir():
        found = list_checkpoints(path)
        if not found:
            raise FaceganError(f"{path} holds no checkpoints (is it a facegan run directory?)")
        return found[-1]
    if not path.exists():
        raise FaceganError(f"{path} does not exist")
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate a checkpoint file or a run's newest checkpoint; `config` comes back as a RunConfig."""
    path = resolve_checkpoint(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise FaceganError(f"{path} is not a readable facegan checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != "facegan-checkpoint":
        raise FaceganError(f"{path} is not a facegan checkpoint")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise FaceganError(f"{path} was written by a newer facegan (format {payload['format_version']})")
    payload["config"] = RunConfig.from_dict(payload["config"])
    payload["path"] = str(path)
    return payload
