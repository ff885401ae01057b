"""The training loop: logging, samples, checkpoints, exact resume, clean stop on a signal."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PIL import Image

from facegan.errors import FaceganError
from facegan.losses import bce_d
from facegan.models import build_models
from facegan.run.checkpoint import list_checkpoints, load_checkpoint, load_newest_checkpoint
from facegan.run.layout import read_runtime
from facegan.run.metrics_log import read_metrics
from facegan.run.state import TrainingRun
from facegan.training.configure import resume_config
from facegan.training.loop import train
from facegan.training.optim import build_optimizers
from factories import killed_while_writing, tiny_config


def test_one_d_step_lowers_d_loss_on_a_fixed_batch(tiny_dataset: Path) -> None:
    torch.manual_seed(0)
    cfg = tiny_config(tiny_dataset)
    netG, netD = build_models(cfg.model)
    _, optD = build_optimizers(cfg, netG, netD)
    real = torch.rand(16, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        fake = netG(torch.randn(16, cfg.model.nz))

    def loss() -> torch.Tensor:
        return bce_d(netD(real), netD(fake))

    before = loss()
    optD.zero_grad()
    before.backward()
    optD.step()
    after = loss().item()
    assert after < before.item() - 1e-3


def test_run_directory_contents(tiny_dataset: Path, tmp_path: Path) -> None:
    result = train(tiny_config(tiny_dataset), tmp_path / "run", show_progress=False)
    run = tmp_path / "run"
    assert result.status == "finished" and result.step == 6
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["ngf"] == 8 and config["versions"]["torch"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    for record in records:
        for key in ("epoch", "loss_d", "loss_g", "d_x", "d_g_z1", "d_g_z2", "images_per_s", "elapsed_s"):
            assert key in record, key
        assert 0 <= record["d_x"] <= 1 and 0 <= record["d_g_z1"] <= 1 and record["images_per_s"] > 0
    with Image.open(run / "samples" / "step-00000003.png") as grid:
        assert grid.size == (8 * 34 + 2, 8 * 34 + 2)  # 8×8 faces of 32 px with 2-px padding
    assert (run / "samples" / "latest.png").exists()
    assert [p.name for p in list_checkpoints(run)] == ["step-00000003.pt", "step-00000006.pt"]
    ckpt = load_checkpoint(run)
    assert ckpt["step"] == 6 and ckpt["config"].model.ngf == 8
    assert {"G", "D", "optG", "optD", "rng", "fixed_latents", "epoch"} <= set(ckpt)


def test_keeps_only_the_last_k_checkpoints(tiny_dataset: Path, tmp_path: Path) -> None:
    train(tiny_config(tiny_dataset, steps=8, checkpoint_every=2, keep_checkpoints=2), tmp_path / "r",
          show_progress=False)
    assert [p.name for p in list_checkpoints(tmp_path / "r")] == ["step-00000006.pt", "step-00000008.pt"]


def test_resume_is_exact(tiny_dataset: Path, tmp_path: Path) -> None:
    # 2K steps straight vs K steps, resume, K steps; K crosses an epoch boundary (16 batches per epoch).
    k = 10
    cfg_straight = tiny_config(tiny_dataset, steps=2 * k, checkpoint_every=k, seed=3)
    cfg_straight.data.flip = True
    train(cfg_straight, tmp_path / "straight", show_progress=False)

    cfg_half = tiny_config(tiny_dataset, steps=k, checkpoint_every=k, seed=3)
    cfg_half.data.flip = True
    train(cfg_half, tmp_path / "resumed", show_progress=False)
    from facegan.training.configure import resume_config

    train(resume_config(tmp_path / "resumed", steps=2 * k), tmp_path / "resumed", resume=True, show_progress=False)

    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    assert a["step"] == b["step"] == 2 * k
    for net in ("G", "D"):
        for name, tensor in a[net].items():
            assert torch.equal(tensor, b[net][name]), f"{net}.{name} differs after resume"
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(1, 2 * k + 1))


def test_signal_stops_with_a_checkpoint(tiny_dataset: Path, tmp_path: Path) -> None:
    def interrupt_at_step_4(run: TrainingRun) -> None:
        if run.step == 4:
            os.kill(os.getpid(), signal.SIGINT)

    # Python's own Ctrl-C handler while training starts, whatever the test process inherited (SIG_IGN when the
    # tests run in the background: nohup, `make test &` in a script); training's stop handler replaces it.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        result = train(tiny_config(tiny_dataset, steps=50, checkpoint_every=100), tmp_path / "r",
                       hooks=[interrupt_at_step_4], show_progress=False)
        after = {sig: signal.getsignal(sig) for sig in before}
    finally:
        signal.signal(signal.SIGINT, inherited)
    assert result.status == "interrupted"
    assert result.step in (4, 5)
    assert load_checkpoint(tmp_path / "r")["step"] == result.step
    assert after == before  # the previous handlers are back


def test_an_ignored_sigint_stays_ignored_while_training(tiny_dataset: Path, tmp_path: Path) -> None:
    def interrupt_at_step_4(run: TrainingRun) -> None:
        if run.step == 4:
            os.kill(os.getpid(), signal.SIGINT)

    inherited = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under nohup
    try:
        result = train(tiny_config(tiny_dataset, steps=8, checkpoint_every=100), tmp_path / "r",
                       hooks=[interrupt_at_step_4], show_progress=False)
        still_ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, inherited)
    assert result.status == "finished" and result.step == 8
    assert still_ignored


def test_refuses_to_overwrite_a_run(tiny_dataset: Path, tmp_path: Path) -> None:
    train(tiny_config(tiny_dataset, steps=2), tmp_path / "r", show_progress=False)
    with pytest.raises(FaceganError, match="already holds a run"):
        train(tiny_config(tiny_dataset, steps=2), tmp_path / "r", show_progress=False)


def test_model_must_fit_the_data(tiny_dataset: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_dataset)
    cfg.model.resolution = 64
    with pytest.raises(FaceganError, match="--res 64"):
        train(cfg, tmp_path / "r", show_progress=False)


def test_resume_removes_the_temporary_files_a_killed_checkpoint_write_left(tiny_dataset: Path, tmp_path: Path) -> None:
    from facegan.training.configure import resume_config

    run = tmp_path / "run"
    train(tiny_config(tiny_dataset, steps=3), run, show_progress=False)
    left = killed_while_writing(run / "checkpoints" / "step-00000006.pt")  # as a SIGKILL mid-checkpoint does
    others = [run / "checkpoints" / "notes.tmp", run / "checkpoints" / ".keep", run / "samples" / left.name]
    for path in others:
        path.write_bytes(b"not facegan's temporary file, or not in checkpoints/")
    train(resume_config(run, steps=6), run, resume=True, show_progress=False)
    assert not left.exists()
    assert all(path.exists() for path in others)
    assert [p.name for p in list_checkpoints(run)] == ["step-00000003.pt", "step-00000006.pt"]


def _lost_at(step: int) -> Callable[[TrainingRun], None]:
    """A hook that ends the process's training at `step` as a lost machine would: no stop, no last checkpoint."""
    def hook(run: TrainingRun) -> None:
        if run.step == step:
            raise RuntimeError("lost")
    return hook


def test_metrics_reach_the_disk_before_each_checkpoint(tiny_dataset: Path, tmp_path: Path) -> None:
    """A checkpoint between two log flushes: a run resumed from it after a crash misses no metrics line."""
    run = tmp_path / "run"
    cfg = tiny_config(tiny_dataset, steps=10, log_every=4, checkpoint_every=3)
    with pytest.raises(RuntimeError, match="lost"):
        train(cfg, run, hooks=[_lost_at(7)], show_progress=False)  # steps 5 and 6 were not due to be logged yet
    assert list_checkpoints(run)[-1].name == "step-00000006.pt"
    train(resume_config(run, steps=10), run, resume=True, show_progress=False)
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == list(range(1, 11))


def test_resume_skips_a_checkpoint_that_does_not_load(
    tiny_dataset: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A newest checkpoint a lost machine left unreadable: the run continues from the one before and sets it aside."""
    run = tmp_path / "run"
    train(tiny_config(tiny_dataset, steps=6), run, show_progress=False)
    newest = run / "checkpoints" / "step-00000006.pt"
    straight = load_checkpoint(newest)
    newest.write_bytes(newest.read_bytes()[:100])  # as a write that never reached the disk leaves it
    assert load_checkpoint(run)["step"] == 3  # what sample, eval and serve read meanwhile: the one before
    train(resume_config(run, steps=6), run, resume=True, show_progress=False)
    assert "skipping step-00000006.pt" in caplog.text
    assert [p.name for p in list_checkpoints(run)] == ["step-00000003.pt", "step-00000006.pt"]
    assert (run / "checkpoints" / "step-00000006.pt.unreadable").exists()
    again = load_checkpoint(run)
    assert again["step"] == 6 and all(torch.equal(v, straight["G"][k]) for k, v in again["G"].items())
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == list(range(1, 7))


def test_a_run_with_checkpoints_that_all_fail_to_load_is_not_started_again(tiny_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(tiny_config(tiny_dataset, steps=3), run, show_progress=False)
    (run / "checkpoints" / "step-00000003.pt").write_bytes(b"")
    with pytest.raises(FaceganError, match=r"no checkpoint in .* loads \(1 tried\)"):
        load_newest_checkpoint(run)
    with pytest.raises(FaceganError, match="holds checkpoints"):
        train(tiny_config(tiny_dataset, steps=3), run, start_over=True, show_progress=False)


def test_a_run_lost_before_its_first_checkpoint_starts_over(tiny_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="lost"):
        train(tiny_config(tiny_dataset, steps=6, checkpoint_every=100), run, hooks=[_lost_at(5)], show_progress=False)
    assert list_checkpoints(run) == [] and [r["step"] for r in read_metrics(run / "metrics.jsonl")] == [1, 2, 3, 4]
    with pytest.raises(FaceganError, match="already holds a run"):
        train(tiny_config(tiny_dataset, steps=6), run, show_progress=False)
    changed = tiny_config(tiny_dataset, steps=6, batch_size=8)
    with pytest.raises(FaceganError, match="--batch-size cannot change"):
        train(changed, run, start_over=True, show_progress=False)
    with pytest.raises(FaceganError, match="trains on"):
        train(tiny_config(tmp_path / "other-data", steps=6), run, start_over=True, show_progress=False)
    result = train(tiny_config(tiny_dataset, steps=6), run, start_over=True, show_progress=False)
    assert result.step == 6
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == list(range(1, 7))  # none counted twice
    assert [s["step"] for s in read_runtime(run)] == [0, 0]


def test_sigterm_twice_stops_with_a_checkpoint(tiny_dataset: Path, tmp_path: Path) -> None:
    """A preemption notice that arrives twice (a scheduler signalling every process) stops once, cleanly."""
    def preempt_at_step_4(run: TrainingRun) -> None:
        if run.step == 4:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)

    result = train(tiny_config(tiny_dataset, steps=50, checkpoint_every=100), tmp_path / "r",
                   hooks=[preempt_at_step_4], show_progress=False)
    assert result.status == "interrupted" and result.step in (4, 5)
    assert load_checkpoint(tmp_path / "r")["step"] == result.step
