"""`--eval-every`: evaluations during training and RUN/checkpoints/best.pt by lowest SWD."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from facegan.errors import FaceganError
from facegan.generation.sample import load_generator
from facegan.metrics.during_training import EvalDuringTraining, best_checkpoint_path, best_record_path
from facegan.metrics.evaluation import score_sets
from facegan.run.checkpoint import list_checkpoints, load_checkpoint
from facegan.run.evals import load_evals
from facegan.training.loop import train
from factories import tiny_config


@pytest.mark.slow
def test_eval_hook_keeps_the_best_checkpoint(tiny_dataset: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    config = tiny_config(tiny_dataset, steps=8, checkpoint_every=2, keep_checkpoints=1)
    hook = EvalDuringTraining(every=4, n=24)
    train(config, run_dir, hooks=[hook], show_progress=False)
    evals = load_evals(run_dir)
    assert [e["step"] for e in evals] == [4, 8]
    assert all(e["during_training"] and e["n"] == 24 and "faces_fake" in e and e["swd"] > 0 for e in evals)
    best = min(evals, key=lambda e: e["swd"])
    record = json.loads(best_record_path(run_dir).read_text())
    assert record["step"] == best["step"] and record["swd"] == pytest.approx(best["swd"])
    assert evals[-1]["best_step"] == best["step"]
    # best.pt survives pruning (keep=1) and is a full step checkpoint of the best step.
    assert [p.name for p in list_checkpoints(run_dir)] == ["step-00000008.pt"]
    ckpt = load_checkpoint(best_checkpoint_path(run_dir))
    assert ckpt["step"] == best["step"]
    assert {"G", "D", "optG", "optD", "rng", "config", "family", "fixed_latents"} <= set(ckpt)
    assert load_generator(best_checkpoint_path(run_dir)).step == best["step"]

    # Resuming keeps comparing against the recorded best: a worse SWD does not replace best.pt.
    before = best_checkpoint_path(run_dir).stat().st_mtime_ns
    resumed = EvalDuringTraining(every=4, n=24)
    resumed._load_best(run_dir)
    assert resumed._best == record
    resumed._best = {**record, "swd": -1.0}  # pretend the recorded best is unbeatable
    resumed._best_loaded = True
    config.train.steps = 12
    train(config, run_dir, resume=True, hooks=[resumed], show_progress=False)
    assert best_checkpoint_path(run_dir).stat().st_mtime_ns == before
    assert [e["step"] for e in load_evals(run_dir)] == [4, 8, 12]


def test_hook_leaves_g_in_training_mode_and_checks_options(tiny_dataset: Path, tmp_path: Path) -> None:
    seen: list[bool] = []

    def spy(run) -> None:  # runs after the eval hook
        seen.append(run.netG.training)

    config = tiny_config(tiny_dataset, steps=2, checkpoint_every=100)
    train(config, tmp_path / "run", hooks=[EvalDuringTraining(every=2, n=16, metrics=("swd",)), spy],
          show_progress=False)
    assert seen == [True, True]
    assert "faces_fake" not in load_evals(tmp_path / "run")[0]
    for kwargs in ({"every": 0}, {"every": 1, "n": 1}, {"every": 1, "metrics": ("fid",)}):
        with pytest.raises(FaceganError):
            EvalDuringTraining(**kwargs)
    assert torch.load(best_checkpoint_path(tmp_path / "run"), weights_only=True)["step"] == 2


def test_hook_results_are_those_of_score_sets(tiny_dataset: Path, tmp_path: Path) -> None:
    hook = EvalDuringTraining(every=2, n=16)
    expected: dict = {}

    def spy(run) -> None:  # runs after the eval hook, with the weights it scored
        if run.step == 2:
            expected.update(score_sets(hook._fakes(run), hook._reals, hook.metrics, seed=hook.seed,
                                       show_progress=False))

    train(tiny_config(tiny_dataset, steps=2, checkpoint_every=100), tmp_path / "run", hooks=[hook, spy],
          show_progress=False)
    saved = load_evals(tmp_path / "run")[0]
    assert saved["results"] == pytest.approx(expected["results"]) and set(saved["results"]) == {"swd_16", "faces_16"}
    assert {*hook.metrics, "total"} <= set(saved["elapsed_s"])
