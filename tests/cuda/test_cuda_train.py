"""Training on a GPU: fp32 (with TF32), bf16 and fp16 steps are finite, learn and resume; the data sits on the GPU."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from cuda_support import (  # faces32, gpu_run: fixtures
    CUDA,
    checkpoint,
    distance,
    faces32,
    float_tensors,
    gpu_run,
    run_cli,
    train_args,
)

pytestmark = CUDA

# Resume on a GPU is compared to a tolerance, not bit for bit: facegan turns cuDNN's autotuner on, so each
# process may pick other convolution algorithms, and some backward kernels sum with atomics in no fixed order.
# Those differences are rounding-sized; a resume that lost the optimiser state, the data order or an RNG state
# moves the weights as far as training does. So the resumed run must end within 5% of the distance the
# weights travelled over the resumed half of the straight run (a broken resume gives a ratio near 1 or more).
RESUME_TOLERANCE = 0.05
STEPS = 8


def losses(run: Path) -> list[tuple[int, float, float]]:
    """(step, loss_d, loss_g) of every line of the run's metrics.jsonl."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [(r["step"], r["loss_d"], r["loss_g"]) for r in rows]


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_steps_are_finite_learn_and_resume(precision: str, faces32: Path, tmp_path: Path,
                                           record_property: pytest.RecordProperty) -> None:
    straight = tmp_path / "straight"
    log = run_cli(*train_args(faces32, straight, STEPS, "--precision", precision)).stderr
    assert "on cuda" in log, log
    assert ("precision fp32 (TF32" if precision == "fp32" else f"precision {precision},") in log, log
    rows = losses(straight)
    assert [r[0] for r in rows] == list(range(1, STEPS + 1))
    assert all(math.isfinite(d) and math.isfinite(g) for _, d, g in rows), rows

    half, end = float_tensors(checkpoint(straight, STEPS // 2)), float_tensors(checkpoint(straight, STEPS))
    assert all(bool(torch.isfinite(t).all()) for t in end.values())
    moved = distance(half, end)
    assert moved > 0, "the weights did not change over the second half"

    resumed = tmp_path / "resumed"
    run_cli(*train_args(faces32, resumed, STEPS // 2, "--precision", precision))
    run_cli("train", "--resume", resumed, "--steps", STEPS, "--no-progress", "--no-report")
    after = float_tensors(checkpoint(resumed, STEPS))
    gap = distance(end, after)
    bit_exact = all(torch.equal(end[k], after[k]) for k in end)
    record_property("resume_bit_exact", bit_exact)
    record_property("resume_gap_over_movement", gap / moved)
    assert losses(resumed)[-1][0] == STEPS
    assert gap <= RESUME_TOLERANCE * moved, f"resumed run is {gap / moved:.3f}× the half-run movement away"


def test_dataset_is_resident_on_the_gpu(gpu_run: tuple[Path, str]) -> None:
    _, log = gpu_run
    assert "images resident on cuda" in log, log


def test_cuda_graphs_through_compile_train(faces32: Path, tmp_path: Path) -> None:
    run = tmp_path / "graphs"
    log = run_cli(*train_args(faces32, run, 6, "--compile", "reduce-overhead"), timeout=400).stderr
    assert "compile reduce-overhead" in log, log
    assert all(math.isfinite(d) and math.isfinite(g) for _, d, g in losses(run))
    assert distance(float_tensors(checkpoint(run, 3)), float_tensors(checkpoint(run, 6))) > 0
