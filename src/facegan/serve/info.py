"""What the server knows about its model: config, step, dataset and metrics from RUN/eval/*.json, as plain JSON."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from facegan.sample import LoadedGenerator

log = logging.getLogger("facegan.serve")

MAX_EVAL_FILE_BYTES = 1 << 20  # an eval result bigger than this is not a summary; list it without its contents


def run_dir_of(checkpoint: str | Path) -> Path | None:
    """The run directory a checkpoint file sits in (RUN/checkpoints/step-N.pt), or None for a lone file."""
    folder = Path(checkpoint).resolve().parent
    if folder.name == "checkpoints" and (folder.parent / "config.json").is_file():
        return folder.parent
    return None


def dataset_summary(path: str) -> dict[str, Any]:
    """The dataset's path and, when its meta.json can still be read, its count, size and source."""
    summary: dict[str, Any] = {"path": path}
    meta_path = Path(path) / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        summary["available"] = False
        return summary
    summary["available"] = True
    for key in ("count", "resolution", "channels", "source", "label_names", "created"):
        if key in meta:
            summary[key] = meta[key]
    return summary


def eval_results(run_dir: Path | None) -> dict[str, Any]:
    """RUN/eval/*.json by file stem; a file that cannot be read is reported, not fatal."""
    if run_dir is None or not (run_dir / "eval").is_dir():
        return {}
    results: dict[str, Any] = {}
    for path in sorted((run_dir / "eval").glob("*.json")):
        try:
            if path.stat().st_size > MAX_EVAL_FILE_BYTES:
                results[path.stem] = {"error": f"{path.name} is over {MAX_EVAL_FILE_BYTES} bytes; not shown"}
                continue
            results[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("cannot read %s: %s", path, exc)
            results[path.stem] = {"error": f"cannot read {path.name}: {type(exc).__name__}"}
    return results


def model_info(gen: LoadedGenerator) -> dict[str, Any]:
    """Everything /api/info reports about the model (limits and serving facts are added by the app)."""
    config = gen.config
    run_dir = run_dir_of(gen.checkpoint)
    return {
        "checkpoint": str(gen.checkpoint),
        "run_dir": str(run_dir) if run_dir else None,
        "step": gen.step,
        "images_seen": gen.step * config.train.batch_size,
        "device": str(gen.device),
        "model": {k: getattr(config.model, k) for k in config.model.__dataclass_fields__},
        "dataset": dataset_summary(config.data.path),
        "metrics": eval_results(run_dir),
        "config": config.to_dict(),
    }
