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
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from facegan import __version__
from facegan.checkpoint import checkpoint_dir, save_checkpoint
from facegan.errors import FaceganError
from facegan.latents import seeded_latents
from facegan.metrics.imagesets import sample_indices
from facegan.metrics.runner import FORMAT_NAME, FORMAT_VERSION, eval_path, write_eval
from facegan.utils.atomic import atomic_write_text
from facegan.utils.images import to_uint8

if TYPE_CHECKING:
    from facegan.train import TrainingRun

log = logging.getLogger("facegan.metrics")

TRAINING_METRICS = ("swd", "faces")
DEFAULT_EVAL_N = 1000
BEST_NAME = "best.pt"


def best_checkpoint_path(run_dir: str | Path) -> Path:
    """RUN/checkpoints/best.pt."""
    return checkpoint_dir(run_dir) / BEST_NAME


def best_record_path(run_dir: str | Path) -> Path:
    """RUN/checkpoints/best.json: step and SWD of best.pt."""
    return checkpoint_dir(run_dir) / "best.json"


def _is_main_process() -> bool:
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()
                and torch.distributed.get_rank() != 0)


class EvalDuringTraining:
    """A training hook: every `every` steps, SWD (+ face rate) of `n` fakes; keeps best.pt by lowest SWD."""

    def __init__(self, every: int, n: int = DEFAULT_EVAL_N, metrics: Sequence[str] = TRAINING_METRICS,
                 seed: int = 0, batch_size: int = 256) -> None:
        if every < 1:
            raise FaceganError("--eval-every must be at least 1")
        if n < 2:
            raise FaceganError("--eval-n must be at least 2")
        unknown = sorted(set(metrics) - set(TRAINING_METRICS))
        if unknown or "swd" not in metrics:
            raise FaceganError(f"evaluation during training runs swd (and faces), not {', '.join(unknown)}")
        self.every, self.n, self.metrics, self.seed, self.batch_size = every, n, tuple(metrics), seed, batch_size
        self._reals: np.ndarray | None = None
        self._real_descriptors: list[torch.Tensor] | None = None
        self._real_face_rate: float | None = None
        self._detector: Any = None
        self._best: dict[str, Any] | None = None
        self._best_loaded = False

    def __call__(self, run: TrainingRun) -> None:
        if run.step % self.every != 0 or not _is_main_process():
            return
        self.evaluate(run)

    def _prepare_reals(self, run: TrainingRun) -> None:
        from facegan.metrics.swd import descriptor_pyramid

        # The same real subset and descriptors at every evaluation: only the fakes change between steps.
        idx = sample_indices(len(run.dataset), self.n, self.seed)
        self._reals = np.asarray(run.dataset.images[idx])
        self._real_descriptors = descriptor_pyramid(self._reals, self.seed)

    @torch.no_grad()
    def _fakes(self, run: TrainingRun) -> np.ndarray:
        # Score the weights that sampling uses: G's EMA copy when the run keeps one.
        ema = getattr(run, "netG_ema", None)
        netG = ema if ema is not None else getattr(run.netG, "module", run.netG)
        was_training = netG.training
        netG.eval()
        try:
            model = run.config.model
            latents = seeded_latents(len(self._reals), model.nz, self.seed + 1_000_003, model.latent)
            parts = [to_uint8(netG(latents[i : i + self.batch_size].to(run.device)))
                     for i in range(0, len(latents), self.batch_size)]
        finally:
            netG.train(was_training)
        return np.concatenate(parts)

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
        from facegan.metrics.facedetect import FaceDetector, FaceRates
        from facegan.metrics.swd import swd

        started = time.perf_counter()
        if self._reals is None:
            self._prepare_reals(run)
        if not self._best_loaded:
            self._load_best(run.run_dir)
        fakes = self._fakes(run)
        result: dict[str, Any] = {
            "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "metrics": list(self.metrics),
            "seed": self.seed, "step": run.step, "n": len(fakes), "n_real": len(self._reals),
            "during_training": True, "real": str(run.dataset.path), "resolution": int(fakes.shape[1]),
        }
        result.update(swd(self._reals, fakes, seed=self.seed, reference=self._real_descriptors).as_dict())
        if "faces" in self.metrics:
            detector = self._detector = self._detector or FaceDetector()
            if self._real_face_rate is None:
                self._real_face_rate = float(detector.detect(self._reals).mean())
            fake_rate = float(detector.detect(fakes).mean())
            real_rate = self._real_face_rate
            result.update(FaceRates(fake_rate, real_rate, fake_rate / real_rate if real_rate > 0 else None).as_dict())
        improved = self._best is None or result["swd"] < self._best["swd"]
        if improved:
            save_checkpoint(best_checkpoint_path(run.run_dir), checkpoint_payload(run))
            self._best = {"step": run.step, "swd": result["swd"], "n": self.n, "seed": self.seed}
            atomic_write_text(best_record_path(run.run_dir), json.dumps(self._best, indent=2) + "\n")
        result["best_step"] = self._best["step"] if self._best else run.step
        result["elapsed_s"] = {"total": round(time.perf_counter() - started, 3)}
        result.update({"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "facegan_version": __version__})
        write_eval(eval_path(run.run_dir, run.step), result)
        faces = f", faces {result['faces_fake']:.0%}" if "faces_fake" in result else ""
        log.info("eval at step %d: swd %.2f%s (best %.2f at step %d%s)", run.step, result["swd"], faces,
                 self._best["swd"], self._best["step"], ", saved best.pt" if improved else "")
        return result


def checkpoint_payload(run: TrainingRun) -> dict[str, Any]:
    """The payload of a step checkpoint for the live run (the training loop's own function)."""
    from facegan.train import checkpoint_payload as payload

    return payload(run)
