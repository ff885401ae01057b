"""facegan.report.plots: series from metrics records, smoothing, and the PNG plots (incl. NaN and empty data)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from facegan.report import plots

from .conftest import synthetic_record
from .helpers import image_info


def test_series_turns_null_into_nan_and_skips_records_without_the_key() -> None:
    records = [{"step": 1, "loss_d": 1.0}, {"step": 2, "loss_d": None}, {"step": 3}, {"step": 4, "loss_d": 0.5}]
    s = plots.series(records, "loss_d")
    assert s.steps.tolist() == [1, 2, 4]
    assert s.values[0] == 1.0 and math.isnan(s.values[1]) and s.values[2] == 0.5
    assert s.finite.tolist() == [True, False, True]


def test_numeric_keys_finds_extra_scalars_and_flags_but_not_text_or_standard_keys() -> None:
    records = [synthetic_record(1, k_t=0.0, note="warm-up"), synthetic_record(2, k_t=0.1, M_global=0.3),
               synthetic_record(3, healthy=True, M_global=None, nested={"a": 1})]
    assert plots.numeric_keys(records) == ["k_t", "M_global", "healthy"]


def test_smooth_is_a_debiased_ema_that_skips_nan() -> None:
    values = np.array([1.0, np.nan, 3.0, 5.0, np.inf, 7.0])
    out = plots.smooth(values, 3)
    alpha, mean, weight, expected = 0.5, 0.0, 0.0, []
    for v in (1.0, 3.0, 5.0, 7.0):
        mean = (1 - alpha) * mean + alpha * v
        weight = (1 - alpha) * weight + alpha
        expected.append(mean / weight)
    assert np.allclose(out[[0, 2, 3, 5]], expected)
    assert np.isnan(out[[1, 4]]).all()
    assert np.allclose(plots.smooth(np.full(50, 2.5), 10), 2.5)  # debiased: no ramp up from 0
    assert np.array_equal(plots.smooth(values, 1)[[0, 2]], [1.0, 3.0])


def _check_png(path: Path) -> None:
    fmt, size, frames = image_info(path)
    assert (fmt, frames) == ("PNG", 1)
    assert size == (round(plots.FIGSIZE[0] * plots.DPI), round(plots.FIGSIZE[1] * plots.DPI))


def test_plots_are_pngs_of_the_documented_size(tmp_path: Path) -> None:
    records = [synthetic_record(s) for s in range(1, 301)]
    for make, name in ((plots.plot_losses, "losses"), (plots.plot_scores, "scores"), (plots.plot_speed, "speed")):
        _check_png(make(records, tmp_path / f"{name}.png"))
    _check_png(plots.plot_losses(records, tmp_path / "log.png", log_scale=True, loss_name="bce"))


def test_plots_survive_nan_negative_and_all_nan_values(tmp_path: Path) -> None:
    nan_some = [synthetic_record(s, loss_d=None if s % 7 == 0 else -0.5 + s / 100) for s in range(1, 101)]
    all_nan = [synthetic_record(s, loss_d=None, loss_g=None, d_x=None, d_g_z1=None, d_g_z2=None,
                                images_per_s=None) for s in range(1, 21)]
    for records, tag in ((nan_some, "some"), (all_nan, "all"), ([], "empty")):
        _check_png(plots.plot_losses(records, tmp_path / f"{tag}.png"))
        _check_png(plots.plot_losses(records, tmp_path / f"{tag}-log.png", log_scale=True))  # symlog for < 0
        _check_png(plots.plot_scores(records, tmp_path / f"{tag}-scores.png"))
        _check_png(plots.plot_speed(records, tmp_path / f"{tag}-speed.png"))


def test_other_scalars_get_one_panel_each(tmp_path: Path) -> None:
    records = [synthetic_record(s, k_t=s / 100, M_global=None if s == 5 else 1 / s, healthy=s % 10 != 0)
               for s in range(1, 101)]
    path = plots.plot_panels(records, ["k_t", "M_global", "healthy", "missing"], tmp_path / "panels.png", "Other")
    fmt, (width, height), _ = image_info(path)
    assert fmt == "PNG"
    assert (width, height) == (round(4.0 * 3 * plots.DPI), round((3.0 * 2 + 0.4) * plots.DPI))  # 3 × 2 panels


def test_plotting_leaves_pyplot_and_the_backend_alone(tmp_path: Path) -> None:
    import sys

    import matplotlib

    backend = matplotlib.get_backend()
    plots.plot_speed([synthetic_record(1)], tmp_path / "speed.png")
    assert matplotlib.get_backend() == backend
    pyplot = sys.modules.get("matplotlib.pyplot")
    assert pyplot is None or pyplot.get_fignums() == []
