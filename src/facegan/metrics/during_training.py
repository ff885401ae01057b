"""Evaluation during training (`facegan train --eval-every N`): SWD and face rate, and the best checkpoint.

Every N steps the hook puts G in eval mode, generates `n` faces from fixed latents (the same each time, so the
numbers are comparable across steps), scores them against a fixed random subset of the training data with
SWD (the reals' descriptors are computed once) and the face-detection rate, writes RUN/eval/<step>.json, and
saves RUN/checkpoints/best.pt — the same payload as a step checkpoint — whenever SWD is the lowest so far.
best.pt is not a `step-*.pt` file, so checkpoint pruning never removes it. RUN/checkpoints/best.json
remembers the best SWD (step, swd, n, seed), so a resumed run keeps comparing against it; it lives beside
best.pt rather than in eval/, whose *.json files are one evaluation each.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegan.errors import FaceganError
from facegan.generation.sample import in_batches
from facegan.metrics.evaluation import score_sets
from facegan.metrics.imagesets import sample_indices
from facegan.metrics.registry import METRICS, training_metrics
from facegan.models.latents import seeded_latents
from facegan.run.checkpoint import save_checkpoint
from facegan.run.evals import eval_path, header, stamp, write_eval
from facegan.run.layout import checkpoint_dir
from facegan.run.state import TrainingRun, checkpoint_payload
from facegan.utils.atomic import atomic_write_text
from facegan.utils.images import to_uint8
from facegan.utils.modules import unwrap

log = logging.getLogger("facegan.metrics")

BEST_METRIC = "swd"  # best.pt keeps the checkpoint with the lowest SWD
DEFAULT_EVAL_N = 1000
BEST_NAME = "best.pt"


def best_checkpoint_path(run_dir: str | Path) -> Path:
    """RUN/checkpoints/best.pt."""
    return checkpoint_dir(run_dir) / BEST_NAME


def best_record_path(run_dir: str | Path) -> Path:
    """RUN/checkpoints/best.json: step and SWD of best.pt."""
    return checkpoint_dir(run_dir) / "best.json"


class EvalDuringTraining:
    """A training hook: every `every` steps, the training metrics (SWD, face rate) of `n` fakes; keeps best.pt by
    lowest SWD."""

    def __init__(self, every: int, n: int = DEFAULT_EVAL_N, metrics: Sequence[str] | None = None,
                 seed: int = 0, batch_size: int = 256) -> None:
        if every < 1:
            raise FaceganError("--eval-every must be at least 1")
        if n < 2:
            raise FaceganError("--eval-n must be at least 2")
        metrics = tuple(metrics) if metrics is not None else training_metrics()
        unknown = sorted(set(metrics) - set(training_metrics()))
        if unknown or BEST_METRIC not in metrics:
            raise FaceganError(f"evaluation during training runs {' and '.join(training_metrics())}, "
                               f"not {', '.join(unknown)}")
        self.every, self.n, self.metrics, self.seed, self.batch_size = every, n, metrics, seed, batch_size
        self._reals: np.ndarray | None = None
        self._references: dict[str, Any] = {}
        self._best: dict[str, Any] | None = None
        self._best_loaded = False

    def __call__(self, run: TrainingRun) -> None:
        if run.step % self.every != 0 or not run.dist.is_main:
            return
        self.evaluate(run)

    def _prepare_reals(self, run: TrainingRun) -> None:
        # The same real subset and real-side results at every evaluation: only the fakes change between steps.
        idx = sample_indices(len(run.dataset), self.n, self.seed)
        self._reals = np.asarray(run.dataset.images[idx])
        for name in self.metrics:
            prepare = METRICS[name].prepare_reals
            if prepare is not None:
                self._references[name] = prepare(self._reals, self.seed)

    @torch.no_grad()
    def _fakes(self, run: TrainingRun) -> np.ndarray:
        # Score the weights that sampling uses: G's EMA copy when the run keeps one.
        netG = run.netG_ema if run.netG_ema is not None else unwrap(run.netG)
        was_training = netG.training
        netG.eval()
        try:
            model = run.config.model
            latents = seeded_latents(len(self._reals), model.nz, self.seed + 1_000_003, model.latent)
            return in_batches(lambda z: to_uint8(netG(z.to(run.device))), latents, self.batch_size)
        finally:
            netG.train(was_training)

    def _load_best(self, run_dir: Path) -> None:
        self._best_loaded = True
        path = best_record_path(run_dir)
        if path.is_file() and best_checkpoint_path(run_dir).is_file():
            try:
                best = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                return
            if best.get("n") == self.n and best.get("seed") == self.seed:
                self._best = best

    def evaluate(self, run: TrainingRun) -> dict[str, Any]:
        """Score G now, write RUN/eval/<step>.json and, if SWD improved, RUN/checkpoints/best.pt."""
        started = time.perf_counter()
        if self._reals is None:
            self._prepare_reals(run)
        if not self._best_loaded:
            self._load_best(run.run_dir)
        fakes = self._fakes(run)
        result: dict[str, Any] = {
            **header(self.metrics, self.seed), "step": run.step, "images_seen": run.images_seen, "n": len(fakes),
            "n_real": len(self._reals), "during_training": True, "real": str(run.dataset.path),
            "resolution": int(fakes.shape[1]),
        }
        result.update(score_sets(fakes, self._reals, self.metrics, seed=self.seed, show_progress=False,
                                 references=self._references))
        score = result[METRICS[BEST_METRIC].key]
        improved = self._best is None or score < self._best["swd"]
        if improved:
            save_checkpoint(best_checkpoint_path(run.run_dir), checkpoint_payload(run))
            self._best = {"step": run.step, "swd": score, "n": self.n, "seed": self.seed}
            atomic_write_text(best_record_path(run.run_dir), json.dumps(self._best, indent=2) + "\n")
        result["best_step"] = self._best["step"] if self._best else run.step
        result["elapsed_s"] = {**result["elapsed_s"], "total": round(time.perf_counter() - started, 3)}
        result.update(stamp())
        write_eval(eval_path(run.run_dir, run.step), result)
        faces = f", faces {result['faces_fake']:.0%}" if "faces_fake" in result else ""
        log.info("eval at step %d: swd %.2f%s (best %.2f at step %d%s)", run.step, score, faces,
                 self._best["swd"], self._best["step"], ", saved best.pt" if improved else "")
        return result
