"""The RUN/ folder: where each file of a run lives, which run a checkpoint belongs to, and images seen.

RUN/config.json        the RunConfig (facegan.config)
RUN/runtime.json       what each start or resume actually used: device, precision, layout, compile, processes
RUN/metrics.jsonl      one line per training step (facegan.run.metrics_log)
RUN/samples/           fixed-noise grids step-XXXXXXXX.png and latest.png
RUN/checkpoints/       step-XXXXXXXX.pt (facegan.run.checkpoint), best.pt and best.json (--eval-every)
RUN/eval/              XXXXXXXX.json, one evaluation each (facegan.run.evals)
RUN/report/            index.html and its pictures (facegan.report)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from facegan.utils.atomic import atomic_write_text

CONFIG = "config.json"
RUNTIME = "runtime.json"
METRICS = "metrics.jsonl"
SAMPLES = "samples"
CHECKPOINTS = "checkpoints"
EVAL = "eval"
REPORT = "report"


def config_path(run_dir: str | Path) -> Path:
    """RUN/config.json."""
    return Path(run_dir) / CONFIG


def metrics_path(run_dir: str | Path) -> Path:
    """RUN/metrics.jsonl."""
    return Path(run_dir) / METRICS


def samples_dir(run_dir: str | Path) -> Path:
    """RUN/samples/, the fixed-noise grids."""
    return Path(run_dir) / SAMPLES


def sample_path(run_dir: str | Path, step: int) -> Path:
    """The fixed-noise grid written at `step`."""
    return samples_dir(run_dir) / f"step-{step:08d}.png"


def checkpoint_dir(run_dir: str | Path) -> Path:
    """Where a run keeps its checkpoints."""
    return Path(run_dir) / CHECKPOINTS


def eval_dir(run_dir: str | Path) -> Path:
    """Where a run keeps its evaluations."""
    return Path(run_dir) / EVAL


def report_dir(run_dir: str | Path) -> Path:
    """Where a run's HTML report goes by default."""
    return Path(run_dir) / REPORT


def runtime_path(run_dir: str | Path) -> Path:
    """RUN/runtime.json."""
    return Path(run_dir) / RUNTIME


def is_run_dir(path: str | Path) -> bool:
    """True for a folder that holds a run's config.json."""
    return config_path(path).is_file()


def run_dir_of(checkpoint: str | Path) -> Path | None:
    """The run a checkpoint file (RUN/checkpoints/x.pt) or run folder belongs to; None for a lone file."""
    path = Path(checkpoint).resolve()
    if path.is_dir():
        return path
    folder = path.parent
    return folder.parent if folder.name == CHECKPOINTS and is_run_dir(folder.parent) else None


def images_seen(step: int, batch_size: int) -> int:
    """Real images D has seen after `step` steps of `batch_size` (all processes together)."""
    return int(step) * int(batch_size)


def record_images_seen(record: dict[str, Any], batch_size: int | None = None) -> int | None:
    """Images seen at a metrics.jsonl record: its `images_seen`, else step × batch size (lines of 0.1.0 runs)."""
    value = record.get("images_seen")
    if isinstance(value, int):
        return value
    step = record.get("step")
    if isinstance(step, int) and isinstance(batch_size, int):
        return images_seen(step, batch_size)
    return None


def read_runtime(run_dir: str | Path) -> list[dict[str, Any]]:
    """The entries of RUN/runtime.json (empty for a run without one)."""
    try:
        data = json.loads(runtime_path(run_dir).read_text())
    except (OSError, json.JSONDecodeError):
        return []
    return list(data.get("starts", [])) if isinstance(data, dict) else []


def append_runtime(run_dir: str | Path, entry: dict[str, Any]) -> Path:
    """Add one start's entry (step, device, precision, ...) to RUN/runtime.json, atomically."""
    entry = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **entry}
    path = runtime_path(run_dir)
    atomic_write_text(path, json.dumps({"starts": [*read_runtime(run_dir), entry]}, indent=2) + "\n")
    return path
