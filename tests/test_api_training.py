"""facegan.prepare and facegan.train: the CLI's code path from Python (same config, checks, errors and run
directory), stopped by an interrupt with a checkpoint, resumed, and returning the trained FaceGAN."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path

import numpy as np
import pytest

import facegan
from facegan.api import training as api_training
from facegan.api.model import FaceGAN
from facegan.cli.main import build_parser, main
from facegan.cli.train import new_config
from facegan.data.dataset import PreparedDataset
from facegan.errors import FaceganError
from facegan.models.presets import DEFAULT_PRESET
from facegan.training.options import preset_family

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"nz": 16, "ngf": 8, "ndf": 8, "batch_size": 16, "log_every": 2, "device": "cpu", "progress": False,
        "report": False}


def test_prepare_then_train_returns_the_trained_model(tmp_path: Path) -> None:
    data = facegan.prepare("builtin:synthetic-faces", tmp_path / "faces", res=32, n=48, progress=False)
    assert data == tmp_path / "faces" and len(PreparedDataset.open(data)) == 48
    gan = facegan.train(data, tmp_path / "run", steps=4, **TINY)
    assert isinstance(gan, FaceGAN) and gan.step == 4 and gan.resolution == 32
    assert gan.config.model.family == facegan.load(tmp_path / "run").config.model.family
    assert gan.run_dir == (tmp_path / "run").resolve()
    for name in ("config.json", "metrics.jsonl", "samples/latest.png", "checkpoints/step-00000004.pt"):
        assert (tmp_path / "run" / name).is_file(), name
    np.testing.assert_array_equal(gan.sample(3, seed=1), facegan.load(tmp_path / "run").sample(3, seed=1))
    with pytest.raises(FaceganError, match="already exists; pass --force"):
        facegan.prepare("builtin:synthetic-faces", data, res=32, n=48, progress=False)


def test_the_api_builds_the_config_the_cli_builds(tiny_dataset: Path, tmp_path: Path) -> None:
    facegan.train(tiny_dataset, tmp_path / "api", steps=2, lr=1e-3, ema=0.9, flip=True, **TINY)
    args = build_parser().parse_args(["train", "--data", str(tiny_dataset), "--out", str(tmp_path / "cli"),
                                      "--steps", "2", "--lr", "1e-3", "--ema", "0.9", "--flip", "--nz", "16",
                                      "--ngf", "8", "--ndf", "8", "--batch-size", "16", "--log-every", "2",
                                      "--device", "cpu"])
    written = json.loads((tmp_path / "api" / "config.json").read_text())
    written.pop("versions")
    expected = new_config(args).to_dict()
    expected.pop("versions")
    assert written == expected
    assert written["model"]["family"] == preset_family(DEFAULT_PRESET)  # no model given: the default preset


def test_time_budget_minutes_alone_sets_the_length(tiny_dataset: Path, tmp_path: Path) -> None:
    from facegan.config import BUDGET_ONLY_STEPS
    from facegan.training.options import new_run_config

    config = new_run_config(tiny_dataset, None, {"time_budget_minutes": 0.5})
    assert (config.train.steps, config.train.time_budget_s) == (BUDGET_ONLY_STEPS, 30.0)
    capped = new_run_config(tiny_dataset, None, {"time_budget_minutes": 0.5, "epochs": 2})
    assert (capped.train.steps, capped.train.epochs) == (0, 2)


@pytest.mark.parametrize(("options", "message"), [
    ({"batch_sise": 16}, "unknown training option 'batch_sise'; did you mean batch_size?"),
    ({"batch_size": "64"}, r"train.batch_size \(--batch-size\) must be an int, not '64'"),
    ({"ema": 1.5}, "must be less than 1"),
    ({"minutes": "two"}, "time_budget_minutes must be a number"),
    ({"bottleneck": 8}, "bottleneck is an option of the began model, not dcgan"),
    ({"model": "nope"}, "unknown model preset 'nope'"),
    ({"condition": ["smiling"]}, "--condition needs labels, but"),
    ({"condition": 3}, "condition wants label names"),
])
def test_api_mistakes_are_one_clear_error(tiny_dataset: Path, tmp_path: Path, options: dict, message: str) -> None:
    options = {"model": "dcgan", **options}  # the family the messages name
    with pytest.raises(FaceganError, match=message):
        facegan.train(tiny_dataset, tmp_path / "run", steps=1, **{**TINY, **options})
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_train_needs_data_and_out_or_resume(tiny_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(FaceganError, match=r"give the prepared dataset and the run directory"):
        facegan.train(tiny_dataset)
    with pytest.raises(FaceganError, match="takes its data and output from the run"):
        facegan.train(tiny_dataset, resume=tmp_path)
    with pytest.raises(FaceganError, match=r"dataset .*missing does not exist \(make one with `facegan prepare`\)"):
        facegan.train(tmp_path / "missing", tmp_path / "run", steps=1, **TINY)


def test_an_interrupt_stops_with_a_checkpoint_and_resume_continues(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    def interrupt_at_step_3(run: object) -> None:  # as Ctrl-C, or a notebook's interrupt button, would
        if run.step == 3:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(api_training, "training_hooks", lambda *args: [interrupt_at_step_3])
    with caplog.at_level(logging.WARNING):
        gan = facegan.train(tiny_dataset, tmp_path / "run", steps=50, **TINY)
    # The signal came in the hooks after step 3: the loop finishes the step it is in (4) and checkpoints it.
    assert gan.step == 4 and (tmp_path / "run" / "checkpoints" / "step-00000004.pt").is_file()
    assert "interrupted at step 4; facegan.train(resume=" in caplog.text
    monkeypatch.undo()
    resumed = facegan.train(resume=tmp_path / "run", steps=6, progress=False, report=False)
    assert resumed.step == 6
    with pytest.raises(FaceganError, match="already holds a run"):
        facegan.train(tiny_dataset, tmp_path / "run", steps=1, **TINY)


def test_the_cli_and_the_api_share_the_run_they_write(tiny_dataset: Path, tmp_path: Path) -> None:
    assert main(["train", "--data", str(tiny_dataset), "--out", str(tmp_path / "run"), "--steps", "2", "--nz", "16",
                 "--ngf", "8", "--ndf", "8", "--batch-size", "16", "--device", "cpu", "--no-progress",
                 "--no-report"]) == 0
    gan = facegan.train(resume=tmp_path / "run", steps=4, progress=False, report=False)
    assert gan.step == 4


@pytest.mark.slow
def test_a_notebook_interrupt_stops_with_a_checkpoint(tiny_dataset: Path, tmp_path: Path) -> None:
    """The interrupt button of Jupyter sends the kernel SIGINT while the cell trains: facegan.train stops after the
    current step with a checkpoint and returns the model, in a real IPython kernel."""
    import os
    import time

    from jupyter_client.manager import start_new_kernel

    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path), env=env, startup_timeout=300)
    try:
        msg_id = kc.execute(f"import facegan\ngan = facegan.train({str(tiny_dataset)!r}, 'run', steps=10**6, "
                            "nz=16, ngf=8, ndf=8, batch_size=16, log_every=1, device='cpu', report=False)\n"
                            "print('returned at step', gan.step)")
        metrics = tmp_path / "run" / "metrics.jsonl"
        give_up = time.monotonic() + 600  # a safety net for a cell that fails before training, not a timing
        while not (metrics.is_file() and metrics.stat().st_size):  # training has begun: press the button
            assert time.monotonic() < give_up, "training never started in the kernel"
            time.sleep(0.2)
        km.interrupt_kernel()
        text, errors = [], []
        while True:
            msg = kc.get_iopub_msg(timeout=600)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                text.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                errors.append(msg["content"]["ename"])
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    output = "".join(text)
    assert errors == [] and "stopping after this step with a checkpoint (SIGINT)" in output, output
    step = int(output.split("returned at step")[1])
    assert (tmp_path / "run" / "checkpoints" / f"step-{step:08d}.pt").is_file()
