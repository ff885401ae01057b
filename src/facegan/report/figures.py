"""One of the report's plots of a run, drawn now from its metrics.jsonl as PNG bytes (for a notebook to show)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from facegan.errors import FaceganError
from facegan.report import plots
from facegan.run.layout import config_path, metrics_path
from facegan.run.metrics_log import read_metrics

PLOTS = ("losses", "losses-log", "scores", "speed")


def _loss_name(run_dir: Path) -> str:
    try:
        return str(json.loads(config_path(run_dir).read_text())["train"]["loss"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def plot_png(run_dir: str | Path, kind: str = "losses") -> bytes:
    """The report's `kind` plot (losses, losses-log, scores or speed) of the run in `run_dir`, as PNG bytes."""
    if kind not in PLOTS:
        raise FaceganError(f"unknown plot {kind!r}; choose from {', '.join(PLOTS)}")
    run_dir = Path(run_dir)
    records = read_metrics(metrics_path(run_dir))
    if not records:
        raise FaceganError(f"{run_dir} has no training metrics (metrics.jsonl) to plot")
    with tempfile.TemporaryDirectory(prefix="facegan-plot-") as tmp:
        path = Path(tmp) / f"{kind}.png"
        if kind in ("losses", "losses-log"):
            plots.plot_losses(records, path, log_scale=kind == "losses-log", loss_name=_loss_name(run_dir))
        elif kind == "scores":
            plots.plot_scores(records, path)
        else:
            plots.plot_speed(records, path)
        return path.read_bytes()
