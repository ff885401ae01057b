"""What a metric declares (`Metric`) and what it is given when it scores (`ScoreContext`, `MetricOptions`).

A metric module (metrics/swd.py, ...) ends with `METRIC = Metric(...)`; metrics/registry.py registers it with
one line. `facegan eval`, `--eval-every`, compare, the report and the serve page read the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FACEFD_MAX_N = 2_000  # default cap on the images per set that facefd embeds (dlib is slow on a CPU)


@dataclass(frozen=True)
class MetricOptions:
    """What the user chose that a metric's requirements depend on."""

    inception_weights: str | Path | None = None
    device: Any = "cpu"
    facefd_n: int = FACEFD_MAX_N


@dataclass
class ScoreContext:
    """Everything a metric may use besides the two image sets."""

    seed: int = 0
    options: MetricOptions = field(default_factory=MetricOptions)
    train: np.ndarray | None = None  # the training images, for metrics with `train_images` (memorisation)
    resource: Any = None  # what the metric's `prepare` returned (the Inception network)
    reference: Any = None  # what the metric's `prepare_reals` returned for these reals (kept during training)
    picture_path: Path | None = None  # where the metric may write a picture beside the result (memo strip)
    show_progress: bool = True


def _always(options: MetricOptions) -> bool:
    return True


@dataclass(frozen=True)
class Metric:
    """A metric: its name (`--metrics`), its headline key in eval files, how it scores two uint8 N×H×W×C image
    sets, and what it needs."""

    name: str
    key: str  # the headline number in an eval file (the table column in compare, the report and the page)
    title: str  # that column's title
    description: str  # one line for `facegan eval --help`
    score: Callable[[np.ndarray, np.ndarray, ScoreContext], dict[str, Any]]  # fakes, reals → eval-file keys
    summary: Callable[[dict[str, Any], str], str]  # an eval result and this metric's label → the CLI's line
    lower_is_better: bool | None = True  # None: neither (a rate to compare with the reals')
    available: Callable[[MetricOptions], bool] = _always  # in the default list (its extra or weights present)
    prepare: Callable[[MetricOptions], Any] | None = None  # fail before slow work; returns ScoreContext.resource
    prepare_reals: Callable[[np.ndarray, int], Any] | None = None  # reals, seed → ScoreContext.reference
    count_key: str = "n"  # the result field holding the images per set it scored (facefd: facefd_n)
    train_images: int = 0  # training images it wants in ScoreContext.train (0: none)
    during_training: bool = False  # cheap enough for `--eval-every`

    def label(self, result: dict[str, Any]) -> str:
        """This metric's name with the sample count of `result`, stylegan-style: swd_10k."""
        return metric_label(self.name, int(result.get(self.count_key) or result.get("n") or 0))

    def headline(self, result: dict[str, Any]) -> float | None:
        """The headline number of an eval result, or None when the metric did not run (or gave no number)."""
        value = result.get(self.key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def metric_label(key: str, n: int) -> str:
    """A key with its sample count, stylegan-style: ("swd", 10000) → "swd_10k"."""
    count = f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)
    return f"{key}_{count}"


def fmt(result: dict[str, Any], key: str, spec: str = "{:.4g}") -> str:
    """A value of an eval result for a summary line ("n/a" when missing)."""
    value = result.get(key)
    return "n/a" if value is None else spec.format(value)
