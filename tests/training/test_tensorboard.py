"""--tensorboard: RUN/tb/ holds metrics.jsonl's scalars and the fixed-noise grids, read back with EventAccumulator."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from facegan.errors import FaceganError
from facegan.run.metrics_log import read_metrics
from facegan.run.state import TrainingRun
from facegan.training.configure import resume_config
from facegan.training.loop import train
from facegan.training.tensorboard import require_tensorboard, scalar_values
from factories import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


def _events(run: Path) -> EventAccumulator:
    events = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def test_event_files_hold_the_metrics_and_the_grids(tiny_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "r"
    train(tiny_config(tiny_dataset, steps=6, health_every=3, tensorboard=True), run, show_progress=False)
    records = read_metrics(run / "metrics.jsonl")
    events = _events(run)
    tags = events.Tags()
    expected = {key for r in records for key in scalar_values(r)}
    assert {"loss_d", "loss_g", "d_x", "d_g_z1", "d_g_z2", "images_per_s", "elapsed_s", "epoch",
            "health_diversity", "health_flags/collapse"} <= expected
    assert set(tags["scalars"]) == expected
    for key in ("loss_d", "loss_g", "d_x", "d_g_z2"):
        logged = {e.step: e.value for e in events.Scalars(key)}
        assert logged == pytest.approx({r["step"]: r[key] for r in records}, rel=1e-6), key
    assert [e.step for e in events.Scalars("health_diversity")] == [3, 6]
    grids = events.Images("samples/fixed_noise")
    assert [g.step for g in grids] == [3, 6]  # sample_every 3
    assert (grids[0].width, grids[0].height) == (8 * 34 + 2, 8 * 34 + 2)
    assert grids[1].encoded_image_string == (run / "samples" / "step-00000006.png").read_bytes()


def test_a_resumed_run_replaces_the_steps_it_redoes(tiny_dataset: Path, tmp_path: Path) -> None:
    def crash_at_step_6(run: TrainingRun) -> None:
        if run.step == 6:
            raise RuntimeError("simulated crash")

    run = tmp_path / "r"
    # TensorBoard's hook runs first, so steps 5-6 reach the events file after the step-4 checkpoint.
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny_config(tiny_dataset, steps=10, tensorboard=True, checkpoint_every=4), run,
              hooks=[crash_at_step_6], show_progress=False)
    assert [e.step for e in _events(run).Scalars("loss_d")] == [1, 2, 3, 4, 5, 6]
    train(resume_config(run), run, resume=True, show_progress=False)
    logged = {e.step: e.value for e in _events(run).Scalars("loss_d")}
    assert [e.step for e in _events(run).Scalars("loss_d")] == list(range(1, 11))  # 5 and 6 once, the new ones
    records = read_metrics(run / "metrics.jsonl")
    assert logged == pytest.approx({r["step"]: r["loss_d"] for r in records}, rel=1e-6)
    assert len(list((run / "tb").iterdir())) == 2  # one events file per session


def test_scalar_values_of_a_record() -> None:
    record = {"step": 3, "epoch": 0, "loss_d": 1.5, "d_x": None, "health_flags": ["collapse"], "health_diversity": 0.1}
    assert scalar_values(record) == {
        "epoch": 0.0, "loss_d": 1.5, "health_diversity": 0.1, "health_flags/non_finite": 0.0,
        "health_flags/d_saturated": 0.0, "health_flags/collapse": 1.0, "health_flags/rollback": 0.0,
        "health_flags/lr_changed": 0.0,
    }


def test_missing_package_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_tensorboard(name: str, *args: object, **kwargs: object) -> object:
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(FaceganError, match=r"--tensorboard needs the tensorboard package: pip install "
                       r"\"facegan\[tensorboard\]\""):
        require_tensorboard()
