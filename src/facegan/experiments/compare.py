"""`facegan compare RUN...`: several runs side by side: a table (Markdown, CSV and an HTML page in the report's
style) of what differs between them, their length, time, images/s, final losses, SWD and face rate, and their
loss curves overlaid.

Evaluation numbers come from each run's newest RUN/eval/<step>.json (written by `facegan eval` or
`--eval-every`), one column per registered metric that any run has (facegan.metrics.registry); a run without
one shows "-". Images seen come from metrics.jsonl; throughput is the run's images seen over its training time,
so sampling and checkpointing count, as they do for a user waiting on the run.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facegan.errors import FaceganError
from facegan.metrics.registry import METRICS, headline_columns
from facegan.run.evals import latest_eval
from facegan.run.layout import config_path, metrics_path, record_images_seen
from facegan.run.metrics_log import read_metrics
from facegan.utils.atomic import atomic_write_bytes, atomic_write_text
from facegan.utils.text import is_number

TAIL_FRACTION = 0.1  # final losses: mean over the last 10 % of logged steps


@dataclass
class RunSummary:
    """What `compare` shows of one run."""

    name: str
    run_dir: Path
    config: dict[str, Any]
    records: list[dict[str, Any]] = field(repr=False)
    steps: int
    images_seen: int
    elapsed_s: float | None
    images_per_s: float | None
    loss_d: float | None
    loss_g: float | None
    evaluation: dict[str, Any] = field(default_factory=dict, repr=False)  # the newest eval file
    eval_step: int | None = None

    def score(self, name: str) -> float | None:
        """The headline number of the registered metric `name` in the newest evaluation (None: not run)."""
        return METRICS[name].headline(self.evaluation)

    @property
    def swd(self) -> float | None:
        """The newest SWD ×1e3."""
        return self.score("swd")

    @property
    def face_rate(self) -> float | None:
        """The fakes' face-detection rate of the newest evaluation."""
        return self.score("faces")


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _tail_mean(records: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in records if isinstance(r.get(key), (int, float))]
    if not values:
        return None
    tail = values[-max(1, math.ceil(len(values) * TAIL_FRACTION)):]
    return float(np.mean(tail))


def summarise(run_dir: str | Path) -> RunSummary:
    """Read a run directory's config.json, metrics.jsonl and newest eval file."""
    run_dir = Path(run_dir)
    try:
        config = json.loads(config_path(run_dir).read_text())
    except (OSError, json.JSONDecodeError):
        raise FaceganError(f"{run_dir} is not a facegan run (no readable config.json)") from None
    records = read_metrics(metrics_path(run_dir))
    batch = int(config.get("train", {}).get("batch_size", 0))
    steps = int(records[-1]["step"]) if records else 0
    elapsed = records[-1].get("elapsed_s") if records else None
    images = (record_images_seen(records[-1], batch) or 0) if records else 0
    eval_step, data = latest_eval(run_dir)
    return RunSummary(
        name=run_dir.name, run_dir=run_dir, config=config, records=records, steps=steps, images_seen=images,
        elapsed_s=elapsed, images_per_s=images / elapsed if elapsed else None,
        loss_d=_tail_mean(records, "loss_d"), loss_g=_tail_mean(records, "loss_g"),
        evaluation=data, eval_step=eval_step,
    )


def varying_settings(summaries: Sequence[RunSummary]) -> list[str]:
    """The config keys (section.field) whose values differ between the runs, in config order."""
    flats = [_flat({k: v for k, v in s.config.items() if k != "versions"}) for s in summaries]
    keys = list(dict.fromkeys(k for flat in flats for k in flat))
    return [k for k in keys if len({json.dumps(flat.get(k)) for flat in flats}) > 1]


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def table_rows(summaries: Sequence[RunSummary]) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted rows of the comparison table."""
    varying = varying_settings(summaries)
    columns = headline_columns([s.evaluation for s in summaries])
    headers = ["run", *varying, "steps", "images seen", "train time (s)", "images/s", "loss_d (last 10%)",
               "loss_g (last 10%)", *(f"{metric.title} ({label})" for metric, label in columns), "eval step"]
    rows = []
    for s in summaries:
        flat = _flat(s.config)
        rows.append([s.name, *(_fmt(flat.get(k)) for k in varying), str(s.steps), str(s.images_seen),
                     _fmt(s.elapsed_s, 3), _fmt(s.images_per_s, 3), _fmt(s.loss_d), _fmt(s.loss_g),
                     *(_fmt(metric.headline(s.evaluation)) for metric, _ in columns), _fmt(s.eval_step)])
    return headers, rows


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub Markdown table (numbers right-aligned)."""
    def align(i: int) -> str:
        numeric = all(is_number(row[i]) or row[i] == "-" for row in rows)
        return "---:" if numeric and i > 0 else "---"
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align(i) for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"



def plot_losses_overlaid(summaries: Sequence[RunSummary], path: str | Path) -> Path:
    """loss_d and loss_g of every run against images seen (smoothed), one colour per run."""
    from matplotlib import colormaps, rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from facegan.report.plots import STYLE, series, smooth, smoothing_window

    cmap = colormaps["tab20" if len(summaries) > 10 else "tab10"]
    with rc_context(STYLE):
        fig = Figure(figsize=(13, 5.5 + 0.22 * math.ceil(len(summaries) / 3)), layout="constrained")
        axes = fig.subplots(1, 2)
        for i, s in enumerate(summaries):
            batch = int(s.config.get("train", {}).get("batch_size", 1))
            seen = np.array([record_images_seen(r, batch) or 0 for r in s.records], dtype=float)
            for ax, key in zip(axes, ("loss_d", "loss_g"), strict=True):
                data = series(s.records, key)
                ok = data.finite
                if ok.any():
                    y = smooth(data.values, smoothing_window(int(ok.sum())))[ok]
                    x = _images_at(s.records, seen, data.steps[ok]) / 1000
                    ax.plot(x, y, color=cmap(i % cmap.N), linewidth=1.6,
                            label=s.name if key == "loss_d" else None)
        for ax, title in zip(axes, ("Loss_D (smoothed)", "Loss_G (smoothed)"), strict=True):
            ax.set_title(title)
            ax.set_xlabel("images seen (thousands)")
        if axes[0].get_legend_handles_labels()[0]:
            fig.legend(loc="outside lower center", ncols=3, frameon=False, fontsize=9)
        FigureCanvasAgg(fig)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def _images_at(records: list[dict[str, Any]], seen: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Images seen at each of `steps` (from the records' images_seen, or step × batch for older runs)."""
    by_step = {int(r["step"]): value for r, value in zip(records, seen, strict=True) if isinstance(r.get("step"), int)}
    return np.array([by_step.get(int(step), 0.0) for step in steps], dtype=float)


def expand_runs(paths: Sequence[str | Path]) -> list[Path]:
    """Run directories from the arguments: a sweep directory (with sweep.json) stands for its runs."""
    runs: list[Path] = []
    for path in map(Path, paths):
        if (path / "sweep.json").is_file() and not config_path(path).exists():
            plan = json.loads((path / "sweep.json").read_text())
            runs += [path / r["name"] for r in plan.get("runs", []) if config_path(path / r["name"]).exists()]
        else:
            runs.append(path)
    if not runs:
        raise FaceganError("no runs to compare")
    return runs


def compare(run_dirs: Sequence[str | Path], out_dir: str | Path, title: str = "facegan compare") -> dict[str, Path]:
    """Write compare.md, compare.csv, compare.html and compare-losses.png for the runs into `out_dir`."""
    from facegan.report.html import Page, Picture, Section, Table, write_page

    summaries = [summarise(p) for p in expand_runs(run_dirs)]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    headers, rows = table_rows(summaries)
    paths = {"md": out / "compare.md", "csv": out / "compare.csv", "html": out / "compare.html",
             "losses": out / "compare-losses.png"}
    atomic_write_text(paths["md"], f"# {title}\n\n" + markdown_table(headers, rows))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    atomic_write_text(paths["csv"], buffer.getvalue())
    plot_losses_overlaid(summaries, paths["losses"])
    with Image.open(paths["losses"]) as png:
        width, height = png.size
    evaluated = sum(s.eval_step is not None for s in summaries)
    page = Page(
        title=title,
        subtitle=f"{len(summaries)} runs compared",
        facts=[("runs", str(len(summaries))), ("evaluated", f"{evaluated} of {len(summaries)}"),
               ("settings that differ", ", ".join(varying_settings(summaries)) or "none")],
        notes=["Train time and images/s include sampling and checkpoints. Losses are means over the last 10 % of "
               "logged steps. The metric columns (SWD ×1e3: lower is better) come from each run's newest "
               "RUN/eval/<step>.json, labelled with their sample count; '-' means the run has not been evaluated."],
        sections=[
            Section("table", "Runs", tables=[Table(headers, rows, align_numbers=True)]),
            Section("losses", "Loss curves", "Every run's smoothed losses against images seen.",
                    pictures=[Picture(paths["losses"].name, "Loss_D and Loss_G of every run", width, height)]),
        ],
        footer="Written by facegan compare.",
    )
    write_page(page, paths["html"])
    for path in paths.values():
        path.chmod(0o644)  # atomic writes start private (mkstemp); these are ordinary readable files
    return paths
