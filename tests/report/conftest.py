"""Fixtures for the report tests: one tiny real run (trained once per session) and synthetic runs."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from facegan.config import RunConfig
from facegan.report import build_report
from facegan.training.loop import train
from factories import tiny_config

TINY_STEPS = 12
TINY_SAMPLE_EVERY = 4  # grids at steps 4, 8, 12


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Path) -> Path:
    """A real 12-step DCGAN run (32 px, ngf/ndf 8) with two evaluation files beside it."""
    run = tmp_path_factory.mktemp("runs") / "tiny"
    config = tiny_config(tiny_dataset, steps=TINY_STEPS, log_every=2, sample_every=TINY_SAMPLE_EVERY,
                         checkpoint_every=1000)
    train(config, run, show_progress=False)
    (run / "eval").mkdir()
    for step, swd in ((6, 0.31), (12, 0.22)):
        (run / "eval" / f"step-{step:08d}.json").write_text(json.dumps({"step": step, "swd_10k": swd, "fid_1k": 300.5}))
    return run


@pytest.fixture(scope="session")
def tiny_report(tiny_run: Path) -> Path:
    """The report of `tiny_run` (its index.html)."""
    return build_report(tiny_run)


def synthetic_record(step: int, **values: Any) -> dict[str, Any]:
    """One metrics.jsonl record like the training loop writes (None = a non-finite value)."""
    record = {"step": step, "epoch": step // 50, "loss_d": 1.4 - step / 500, "loss_g": 0.7 + step / 400,
              "d_x": 0.5 + step / 1000, "d_g_z1": 0.5 - step / 1000, "d_g_z2": 0.45 - step / 1000,
              "images_per_s": 500.0 + 10 * math.sin(step), "elapsed_s": step * 0.25}
    record.update(values)
    return record


@pytest.fixture
def synthetic_run(tmp_path: Path) -> Callable[[list[dict[str, Any]] | None], Path]:
    """Make a run folder with a config.json and the given metrics.jsonl records (None: an empty file)."""

    def make(records: list[dict[str, Any]] | None, data_path: str = "") -> Path:
        run = tmp_path / "run"
        shutil.rmtree(run, ignore_errors=True)
        run.mkdir()
        config = RunConfig()
        config.data.path = data_path
        config.save(run / "config.json")
        text = "".join(json.dumps(r) + "\n" for r in records or [])
        (run / "metrics.jsonl").write_text(text)
        return run

    return make
