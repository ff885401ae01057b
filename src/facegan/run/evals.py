"""RUN/eval/<step>.json: the one reader and writer of a run's evaluation files.

Each file is one JSON object written by `facegan eval` or `--eval-every` (format `facegan-eval`); its metric
keys are those the metrics of `facegan.metrics.registry` write, plus `results`, the headline numbers keyed with
their sample count (`swd_10k`). Files that do not parse are reported by the readers, never fatal.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from facegan.run.layout import eval_dir
from facegan.utils.atomic import atomic_write_text
from facegan.version import __version__

log = logging.getLogger("facegan.run")

FORMAT_NAME = "facegan-eval"
FORMAT_VERSION = 1
MAX_EVAL_FILE_BYTES = 1 << 20  # an eval result bigger than this is not a summary; list it without its contents
_STEP_NAME = re.compile(r"^(\d{8})\.json$")


def eval_path(run_dir: str | Path, step: int) -> Path:
    """The JSON file of the evaluation at `step`."""
    return eval_dir(run_dir) / f"{step:08d}.json"


def header(metrics: Sequence[str], seed: int) -> dict[str, Any]:
    """The fields every evaluation file starts with."""
    return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "metrics": list(metrics), "seed": seed}


def stamp() -> dict[str, str]:
    """The fields every evaluation file ends with: when, and by which facegan."""
    return {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "facegan_version": __version__}


def write_eval(path: str | Path, result: dict[str, Any]) -> Path:
    """Write an evaluation as JSON, atomically."""
    atomic_write_text(path, json.dumps(result, indent=2, sort_keys=False) + "\n")
    return Path(path)


def eval_files(run_dir: str | Path) -> list[Path]:
    """Every *.json file of RUN/eval/, by name."""
    folder = eval_dir(run_dir)
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def read_eval_file(path: Path) -> dict[str, Any]:
    """One evaluation file; a file that cannot be read, is too large or is not an object gives {"error": ...}."""
    try:
        if path.stat().st_size > MAX_EVAL_FILE_BYTES:
            return {"error": f"{path.name} is over {MAX_EVAL_FILE_BYTES} bytes; not shown"}
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        return {"error": f"{path.name} could not be read ({type(exc).__name__}: {exc})"}
    if not isinstance(data, dict):
        return {"error": f"{path.name} is not a JSON object"}
    return data


def read_evals(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Every evaluation file by its stem, unreadable ones as {"error": ...}."""
    return {path.stem: read_eval_file(path) for path in eval_files(run_dir)}


def load_evals(run_dir: str | Path) -> list[dict[str, Any]]:
    """The readable step evaluations (RUN/eval/XXXXXXXX.json) of a run, by step."""
    found = [data for path in eval_files(run_dir) if _STEP_NAME.match(path.name)
             and "error" not in (data := read_eval_file(path))]
    return sorted(found, key=lambda r: r.get("step", 0))


def latest_eval(run_dir: str | Path) -> tuple[int | None, dict[str, Any]]:
    """(step, contents) of the run's newest readable RUN/eval/<step>.json, or (None, {}) if it has none."""
    found = [(int(path.stem), path) for path in eval_files(run_dir) if path.stem.isdigit()]
    for step, path in sorted(found, reverse=True):
        data = read_eval_file(path)
        if "error" not in data:
            return step, data
    return None, {}
