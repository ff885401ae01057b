"""Plots of a run's metrics.jsonl records as PNG files (matplotlib's Agg canvas, never pyplot).

Figures are built as `matplotlib.figure.Figure` objects drawn by `FigureCanvasAgg`, so nothing here selects
a global backend or touches pyplot's figure registry; a program that uses pyplot itself is not disturbed.
Every plot reads plain records (dicts from `facegan.run.metrics_log.read_metrics`), in which a non-finite value
is `null`: such steps are marked with red ticks along the bottom of the axes rather than dropped silently.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter
from matplotlib.transforms import blended_transform_factory

from facegan.utils.atomic import atomic_write_bytes

# Keys every facegan step writes; anything else numeric goes to the "other scalars" panel.
STANDARD_KEYS = frozenset({"step", "epoch", "images_seen", "loss_d", "loss_g", "d_x", "d_g_z1", "d_g_z2",
                           "images_per_s", "elapsed_s"})
MAX_PANELS = 12
MAX_RAW_POINTS = 20_000  # raw lines are thinned past this many points (smoothing still uses every step)
DPI = 110
FIGSIZE = (5.9, 3.7)  # inches: 649 × 407 px, so two plots sit side by side in a 1400 px wide window

# Point sizes at 110 dpi: text is 16-20 px high on screen at 100 % zoom.
STYLE = {
    "font.size": 11,
    "axes.titlesize": 13,
    "axes.labelsize": 12,
    "xtick.labelsize": 10.5,
    "ytick.labelsize": 10.5,
    "legend.fontsize": 10.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
COLORS = {"loss_d": "#1f77b4", "loss_g": "#ff7f0e", "d_x": "#2ca02c", "d_g_z1": "#d62728", "d_g_z2": "#9467bd"}
NONFINITE_COLOR = "#e00000"
SPEED_COLOR = "#138d9c"


@dataclass
class Series:
    """One scalar against step: `steps` and `values` as float arrays, NaN where the log holds null."""

    key: str
    steps: np.ndarray
    values: np.ndarray

    @property
    def finite(self) -> np.ndarray:
        """Mask of the steps with a finite value."""
        return np.isfinite(self.values)

    @property
    def has_finite(self) -> bool:
        """True if at least one value is finite."""
        return bool(self.finite.any())


def _number(value: Any) -> float | None:
    """A JSON value as a float; None for null, strings, lists and objects (bools count as 0/1)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return None


def series(records: Sequence[Mapping[str, Any]], key: str) -> Series:
    """The values of `key` against step; records without the key are skipped, null becomes NaN."""
    steps, values = [], []
    for record in records:
        if key not in record or _number(record.get("step")) is None:
            continue
        value = _number(record[key])
        steps.append(float(record["step"]))
        values.append(math.nan if value is None or not math.isfinite(value) else value)
    return Series(key, np.asarray(steps, dtype=float), np.asarray(values, dtype=float))


def numeric_keys(records: Iterable[Mapping[str, Any]], exclude: Iterable[str] = STANDARD_KEYS) -> list[str]:
    """Keys with a number (or bool) in at least one record, in first-seen order, minus `exclude`."""
    excluded = set(exclude)
    found: dict[str, None] = {}
    for record in records:
        for key, value in record.items():
            if key not in excluded and key not in found and _number(value) is not None:
                found[key] = None
    return list(found)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Debiased exponential moving average over the finite values (NaNs are skipped, their slots stay NaN)."""
    out = np.full(values.shape, np.nan, dtype=float)
    ok = np.isfinite(values)
    if window <= 1 or not ok.any():
        out[ok] = values[ok]
        return out
    alpha = 2.0 / (window + 1.0)
    # y[n] = (1 - α) y[n-1] + α x[n], divided by the same filter run on ones (TensorBoard-style debiasing).
    # A plain loop: ~0.3 s for a million steps, and importing scipy.signal would cost more than that.
    smoothed, mean, weight = [], 0.0, 0.0
    for value in values[ok].tolist():
        mean = (1 - alpha) * mean + alpha * value
        weight = (1 - alpha) * weight + alpha
        smoothed.append(mean / weight)
    out[ok] = smoothed
    return out


def smoothing_window(count: int) -> int:
    """Steps averaged by the smoothed line: about 1/40 of the run, between 1 and 500."""
    return int(min(500, max(1, count // 40)))


def _thin(count: int) -> slice:
    return slice(None, None, max(1, math.ceil(count / MAX_RAW_POINTS)))


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _mark_nonfinite(ax: Any, steps: np.ndarray) -> None:
    """Red ticks along the bottom edge of `ax` at `steps` (where a value was NaN or inf)."""
    if len(steps):
        transform = blended_transform_factory(ax.transData, ax.transAxes)
        ax.plot(steps, np.full(len(steps), 0.02), linestyle="none", marker="|", markersize=14, markeredgewidth=1.6,
                color=NONFINITE_COLOR, transform=transform, clip_on=False)


def _legend_nonfinite(ax: Any, counts: Sequence[tuple[str, int]]) -> None:
    """One legend entry for the red ticks, naming how many steps of each series were non-finite."""
    parts = [f"{label} {count}" for label, count in counts if count]
    if parts:
        ax.plot([], [], linestyle="none", marker="|", markersize=14, markeredgewidth=1.6, color=NONFINITE_COLOR,
                label="NaN/inf steps: " + ", ".join(parts))


def _plot_series(ax: Any, s: Series, label: str, color: str, window: int, flag: bool = False) -> int:
    """A light raw line and a bold smoothed line of `s` (a step line for 0/1 flags); returns non-finite count."""
    ok = s.finite
    if ok.any():
        thin = _thin(int(ok.sum()))
        if flag:
            ax.plot(s.steps[ok][thin], s.values[ok][thin], color=color, linewidth=1.6, drawstyle="steps-post",
                    label=label)
        else:
            if window > 1:
                ax.plot(s.steps[ok][thin], s.values[ok][thin], color=color, alpha=0.25, linewidth=0.8)
            ax.plot(s.steps[ok][thin], smooth(s.values, window)[ok][thin], color=color, linewidth=2.0, label=label)
    _mark_nonfinite(ax, s.steps[~ok])
    return int((~ok).sum())


HEALTH_COLORS = {"non_finite": NONFINITE_COLOR, "d_saturated": "#e67e00", "collapse": "#8e44ad",
                 "rollback": "#222222", "lr_changed": "#777777"}
HEALTH_EVENTS = ("rollback", "lr_changed")  # one step each: dotted lines; the other flags are states: bands


def mark_health(ax: Any, records: Sequence[Mapping[str, Any]]) -> None:
    """The health checks' flags (facegan.training.health) along the top of `ax`: a band per state flag over the steps
    since the check before the one that raised it, a dotted line per rollback; one legend entry per flag."""
    spans: dict[str, list[tuple[float, float]]] = {}
    previous = 0.0
    for record in records:
        flags = record.get("health_flags")
        if not isinstance(flags, list):
            continue
        step = float(record["step"])
        for flag in flags:
            spans.setdefault(str(flag), []).append((previous, step))
        previous = step
    states = [f for f in sorted(spans) if f not in HEALTH_EVENTS]
    for row, flag in enumerate(states):
        top = 1.0 - 0.045 * row
        for i, (start, stop) in enumerate(_merge(spans[flag])):
            ax.axvspan(start, stop, ymin=top - 0.04, ymax=top, color=HEALTH_COLORS.get(flag, "#555555"), alpha=0.8,
                       linewidth=0, label=f"health: {flag}" if i == 0 else None)
    for flag in (f for f in sorted(spans) if f in HEALTH_EVENTS):
        for i, (_, step) in enumerate(spans[flag]):
            ax.axvline(step, color=HEALTH_COLORS[flag], linestyle=":", linewidth=1.4,
                       label=f"health: {flag}" if i == 0 else None)


def _merge(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Touching (start, stop) intervals joined, so a flag held over many checks is one band."""
    merged: list[tuple[float, float]] = []
    for start, stop in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], stop)
        else:
            merged.append((start, stop))
    return merged


def _empty_note(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=13, color="#666")


def plot_losses(
    records: Sequence[Mapping[str, Any]], path: str | Path, log_scale: bool = False, loss_name: str = "",
) -> Path:
    """Loss_D and Loss_G against step (raw and smoothed); `log_scale` uses a log y-axis (symlog if any ≤ 0).

    `loss_name` (the config's train.loss) only labels the y-axis.
    """
    loss_d, loss_g = series(records, "loss_d"), series(records, "loss_g")
    window = smoothing_window(max(len(loss_d.steps), len(loss_g.steps)))
    with rc_context(STYLE):
        fig = Figure(figsize=FIGSIZE, layout="constrained")
        ax = fig.add_subplot()
        bad = [("Loss_D", _plot_series(ax, loss_d, "Loss_D", COLORS["loss_d"], window)),
               ("Loss_G", _plot_series(ax, loss_g, "Loss_G", COLORS["loss_g"], window))]
        _legend_nonfinite(ax, bad)
        mark_health(ax, records)
        finite = np.concatenate([loss_d.values[loss_d.finite], loss_g.values[loss_g.finite]])
        title = "Losses of D and G"
        if not len(finite):
            _empty_note(ax, "no finite loss values logged")
        elif log_scale:
            if finite.min() > 0:
                ax.set_yscale("log")
                title += ", log scale"
            else:
                # Hinge/WGAN losses go negative: log-like beyond ±linthresh, linear inside it.
                nonzero = np.abs(finite[finite != 0])
                linthresh = max(1e-3, float(np.percentile(nonzero, 10))) if len(nonzero) else 1.0
                ax.set_yscale("symlog", linthresh=linthresh)
                title += ", symmetric log scale"
            # Plain decimals (0.8, 2, 30) on the labelled ticks instead of 8×10⁻¹.
            ax.yaxis.set_major_formatter(FuncFormatter(_plain_tick))
            ax.yaxis.set_minor_formatter(FuncFormatter(_plain_tick) if _decades(finite) < 1.2 else NullFormatter())
        ax.set_title(title)
        ax.set_xlabel("training step (batches)")
        ax.set_ylabel("BCE loss (nats)" if loss_name == "bce" else f"{loss_name} loss".strip())
        if ax.get_legend_handles_labels()[0]:
            fig.legend(loc="outside lower center", ncols=3, frameon=False)
        return _save(fig, Path(path))


def _decades(values: np.ndarray) -> float:
    positive = np.abs(values[values != 0])
    return float(np.log10(positive.max() / positive.min())) if len(positive) else 0.0


def _plain_tick(value: float, _pos: int) -> str:
    return f"{value:.3g}"


def plot_scores(records: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """D(x) and D(G(z)) before (z1) and after (z2) D's update against step, with 0.5 marked."""
    parts = [("d_x", "D(x) real"), ("d_g_z1", "D(G(z1)) before D step"), ("d_g_z2", "D(G(z2)) at G step")]
    found = [(series(records, key), label, COLORS[key]) for key, label in parts]
    window = smoothing_window(max((len(s.steps) for s, _, _ in found), default=0))
    with rc_context(STYLE):
        fig = Figure(figsize=FIGSIZE, layout="constrained")
        ax = fig.add_subplot()
        ax.axhline(0.5, color="#444", linestyle="--", linewidth=1.2, label="0.5: cannot tell")
        bad = [(label.split(" ")[0], _plot_series(ax, s, label, color, window)) for s, label, color in found]
        _legend_nonfinite(ax, bad)
        mark_health(ax, records)
        if not any(s.has_finite for s, _, _ in found):
            _empty_note(ax, "no finite D(x) / D(G(z)) values logged")
        ax.set_ylim(-0.03, 1.03)
        ax.set_title("Discriminator outputs (mean of sigmoid(D))")
        ax.set_xlabel("training step (batches)")
        ax.set_ylabel("probability 'real' (0-1)")
        fig.legend(loc="outside lower center", ncols=2, frameon=False)
        return _save(fig, Path(path))


def plot_speed(records: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Training throughput (images/s, one point per flush of the log) against wall-clock time."""
    points: dict[float, float] = {}
    for record in records:
        elapsed, speed = _number(record.get("elapsed_s")), _number(record.get("images_per_s"))
        if elapsed is not None and speed is not None and math.isfinite(speed) and math.isfinite(elapsed):
            points[elapsed] = speed  # every record of one flush carries the same pair
    with rc_context(STYLE):
        fig = Figure(figsize=FIGSIZE, layout="constrained")
        ax = fig.add_subplot()
        ax.set_xlabel("wall-clock time since the run started (seconds)")
        if points:
            t = np.asarray(sorted(points), dtype=float)
            v = np.asarray([points[k] for k in sorted(points)], dtype=float)
            if t.max() > 300:
                t = t / 60
                ax.set_xlabel("wall-clock time since the run started (minutes)")
            window = smoothing_window(len(v))
            if window > 1:
                ax.plot(t, v, color=SPEED_COLOR, alpha=0.3, linewidth=0.8)
            ax.plot(t, smooth(v, window), color=SPEED_COLOR, linewidth=2.0, marker="o" if len(v) <= 40 else None,
                    markersize=4, label="images/s per log interval" + (" (smoothed)" if window > 1 else ""))
            # Weighted by each interval's length, so a fast first minute does not stand for a slow hour.
            dt = np.diff(np.concatenate([[0.0], t]))
            average = float((v * dt).sum() / dt.sum()) if dt.sum() > 0 else float(v.mean())
            ax.axhline(average, color="#444", linestyle="--", linewidth=1.0,
                       label=f"run average {average:,.0f} images/s")
            ax.set_ylim(0, max(float(v.max()) * 1.15, 1.0))
            ax.legend(loc="lower right", framealpha=0.9)
        else:
            _empty_note(ax, "no images_per_s / elapsed_s logged")
        ax.set_title("Training speed")
        ax.set_ylabel("images per second")
        return _save(fig, Path(path))


def _is_flag(records: Sequence[Mapping[str, Any]], key: str) -> bool:
    """A key logged as true/false (a health flag, say) is drawn as a step line, never smoothed."""
    return any(isinstance(r.get(key), bool) for r in records)


def plot_panels(
    records: Sequence[Mapping[str, Any]], keys: Sequence[str], path: str | Path, title: str,
    xlabel: str = "training step (batches)", markers: bool = False,
) -> Path:
    """One small panel per key (each with its own y-axis), e.g. BEGAN's k_t and M_global, or eval metrics."""
    keys = list(keys)[:MAX_PANELS]
    ncols = min(3, max(1, len(keys)))
    nrows = max(1, math.ceil(len(keys) / ncols))
    with rc_context(STYLE):
        fig = Figure(figsize=(4.0 * ncols, 3.0 * nrows + 0.4), layout="constrained")
        fig.suptitle(title, fontsize=13)
        for i, key in enumerate(keys):
            ax = fig.add_subplot(nrows, ncols, i + 1)
            s = series(records, key)
            color = f"C{i % 10}"
            flag = _is_flag(records, key)
            if markers:
                ok = s.finite
                ax.plot(s.steps[ok], s.values[ok], color=color, marker="o", markersize=5, linewidth=1.6)
                _mark_nonfinite(ax, s.steps[~ok])
            else:
                _plot_series(ax, s, key, color, smoothing_window(len(s.steps)), flag=flag)
            if flag:
                ax.set_yticks([0, 1], ["false", "true"])
                ax.set_ylim(-0.1, 1.1)
            if not s.has_finite:
                _empty_note(ax, "no finite values")
            bad = int((~s.finite).sum())
            ax.set_title(key + (f"  ({bad} NaN/inf)" if bad else ""))
            ax.set_xlabel(xlabel)
        return _save(fig, Path(path))
