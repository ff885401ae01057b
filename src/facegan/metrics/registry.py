"""The metrics registry: every metric `facegan eval`, `--eval-every`, compare, the report and the page know.

Adding a metric is one module that ends with `METRIC = Metric(...)` (metrics/metric.py) plus one line here.
"""

from __future__ import annotations

from collections.abc import Sequence

from facegan.errors import FaceganError
from facegan.metrics import facedetect, facefd, fid, memorisation, swd
from facegan.metrics.metric import Metric, MetricOptions

METRICS: dict[str, Metric] = {
    swd.METRIC.name: swd.METRIC,
    facedetect.METRIC.name: facedetect.METRIC,
    facefd.METRIC.name: facefd.METRIC,
    fid.METRIC.name: fid.METRIC,
    memorisation.METRIC.name: memorisation.METRIC,
}


def metric_names() -> tuple[str, ...]:
    """Every registered metric's name, in registry order."""
    return tuple(METRICS)


def available_metrics(options: MetricOptions | None = None) -> tuple[str, ...]:
    """The default metric list: every metric whose requirements are met (facefd with dlib, fid with weights)."""
    options = options or MetricOptions()
    return tuple(name for name, metric in METRICS.items() if metric.available(options))


def parse_metrics(metrics: str | Sequence[str] | None, options: MetricOptions | None = None) -> tuple[str, ...]:
    """Metric names from "swd,faces" or a list (None: the default list), checked against the registry."""
    if metrics is None:
        return available_metrics(options)
    names = [m.strip().lower() for m in (metrics.split(",") if isinstance(metrics, str) else metrics)]
    names = [m for m in names if m]
    unknown = sorted(set(names) - set(METRICS))
    if unknown or not names:
        raise FaceganError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}; choose from "
                           f"{','.join(METRICS)}")
    return tuple(dict.fromkeys(names))


def training_metrics() -> tuple[str, ...]:
    """The metrics cheap enough for `--eval-every`."""
    return tuple(name for name, metric in METRICS.items() if metric.during_training)


def headline_columns(results: Sequence[dict]) -> list[tuple[Metric, str]]:
    """(metric, column label) of every registered metric with a number in any of `results`, registry order;
    the label carries the sample count when all results agree on it (swd_10k), else the bare name."""
    columns = []
    for metric in METRICS.values():
        scored = [r for r in results if metric.headline(r) is not None]
        if scored:
            labels = {metric.label(r) for r in scored}
            columns.append((metric, labels.pop() if len(labels) == 1 else metric.name))
    return columns
