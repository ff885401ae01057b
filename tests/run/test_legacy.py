"""Runs written by facegan 0.1.0 (before the package was reorganised) still load, sample, resume and compare.

tests/data/legacy/run-0.1.0 is such a run (see its README): its config has `model.bottleneck` and
`train.began_gamma`, fields that now live in a family's options, and its metrics.jsonl has no images_seen.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import facegan
from facegan.config import RunConfig
from facegan.data.dataset import write_dataset
from facegan.experiments.compare import summarise
from facegan.generation.sample import load_generator
from facegan.run.checkpoint import list_checkpoints, load_checkpoint
from facegan.run.layout import read_runtime
from facegan.run.metrics_log import read_metrics
from facegan.training.configure import resume_config
from facegan.training.loop import train
from factories import blob_images

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy" / "run-0.1.0"

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_old_config_loads_with_its_moved_fields_migrated() -> None:
    raw = json.loads((LEGACY / "config.json").read_text())
    assert "bottleneck" in raw["model"] and "began_gamma" in raw["train"]  # the 0.1.0 shape
    config = RunConfig.load(LEGACY / "config.json")
    assert config.model.family == "dcgan" and config.model.options == {}  # BEGAN's fields: not a dcgan's


def test_the_old_checkpoint_loads_and_samples() -> None:
    model = facegan.load(LEGACY)
    faces = model.sample(3, seed=1)
    assert faces.shape == (3, 32, 32, 3) and faces.dtype == np.uint8
    assert np.array_equal(faces, model.sample(3, seed=1))
    gen = load_generator(LEGACY)
    assert gen.step == 4 and gen.images_seen == 4 * gen.config.train.batch_size  # derived: 0.1.0 did not store it


def test_the_old_run_compares_with_images_seen_derived() -> None:
    summary = summarise(LEGACY)
    assert summary.steps == 4 and summary.images_seen == 4 * summary.config["train"]["batch_size"]


def test_the_old_run_resumes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(LEGACY, run)
    data = tmp_path / "blobs32"
    write_dataset(data, blob_images(64, 32, 3), source="test:blobs")
    config = resume_config(run, steps=6)
    config.data.path = str(data)  # the dataset it was trained on is gone: point the resumed run at another
    result = train(config, run, resume=True, show_progress=False)
    assert (result.status, result.step) == ("finished", 6)
    records = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert "images_seen" not in records[3] and records[-1]["images_seen"] == 6 * config.train.batch_size
    assert read_runtime(run)[-1]["step"] == 4  # this start began at the old checkpoint's step
    newest = load_checkpoint(run)
    assert newest["step"] == 6 and Path(newest["path"]) == list_checkpoints(run)[-1]
    assert json.loads((run / "config.json").read_text())["model"]["options"] == {}  # rewritten in today's shape
