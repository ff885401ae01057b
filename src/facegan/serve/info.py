"""What the server knows about its model: config, step, dataset and metrics from RUN/eval/*.json, as plain JSON.

`metrics` holds every eval file by stem (facegan.run.evals); `headline` the newest evaluation's number of each
registered metric (facegan.metrics.registry), labelled with its sample count.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from facegan.generation.sample import LoadedGenerator
from facegan.metrics.registry import headline_columns
from facegan.run.evals import latest_eval, read_evals
from facegan.run.layout import run_dir_of

log = logging.getLogger("facegan.serve")


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
    return read_evals(run_dir) if run_dir is not None else {}


def headline_metrics(run_dir: Path | None) -> dict[str, Any]:
    """{label with sample count: number} of the newest evaluation, for every registered metric it holds."""
    if run_dir is None:
        return {}
    _, newest = latest_eval(run_dir)
    return {label: metric.headline(newest) for metric, label in headline_columns([newest])}


def model_info(gen: LoadedGenerator) -> dict[str, Any]:
    """Everything /api/info reports about the model (limits and serving facts are added by the app)."""
    config = gen.config
    run_dir = run_dir_of(gen.checkpoint)
    return {
        "checkpoint": str(gen.checkpoint),
        "run_dir": str(run_dir) if run_dir else None,
        "step": gen.step,
        "images_seen": gen.images_seen,
        "device": str(gen.device),
        "model": {k: getattr(config.model, k) for k in config.model.__dataclass_fields__},
        "dataset": dataset_summary(config.data.path),
        "metrics": eval_results(run_dir),
        "headline": headline_metrics(run_dir),
        "config": config.to_dict(),
    }
