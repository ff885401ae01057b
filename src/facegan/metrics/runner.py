"""Run the metrics: a trained generator against its data (`evaluate`) or two image sets (`compare_sets`).

`evaluate` writes RUN/eval/<step>.json (step zero-padded to 8 digits, like the checkpoints), a JSON object:
  format, format_version, step, n (fakes), n_real, seed, metrics (names run), checkpoint, real, resolution,
  swd, swd_levels {"32": …, "16": …}                       (SWD ×1e3, lower is better)
  faces_fake, faces_real, faces_ratio                      (Haar-cascade face rates, ratio → 1 is good)
  facefd, facekid, facekid_std, facefd_n, facefd_found_*    (dlib face-embedding FD/KID, lower is better)
  fid, kid, kid_std                                        (Inception FID/KID, lower is better)
  memo_share, memo_share_heldout, memo_copies, memo_nn_median, memo_nn_min, memo_train_nn_median,
  memo_reference, memo_strip                               (memorisation check, see memorisation.py)
  elapsed_s {stage: seconds}, created, facegan_version.
Keys are plain metric names; the sample count is the "n" field (facefd runs on at most `facefd_n` images of
each set, since dlib's CPU network needs ~0.1 s per face). docs/metrics.md explains how to read each value.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegan import __version__
from facegan.data.dataset import PreparedDataset, is_dataset_dir
from facegan.errors import FaceganError
from facegan.metrics.imagesets import load_image_set, match_sets, sample_indices
from facegan.sample import LoadedGenerator, load_generator
from facegan.utils.atomic import atomic_write_text
from facegan.utils.device import resolve_device
from facegan.utils.images import save_png
from facegan.utils.progress import progress_bar

log = logging.getLogger("facegan.metrics")

ALL_METRICS = ("swd", "faces", "facefd", "fid", "memo")
DEFAULT_N = 10_000
FACEFD_MAX_N = 2_000
MEMO_MAX_REFERENCE = 50_000
MEMO_MAX_HELDOUT = 1_000
FORMAT_NAME = "facegan-eval"
FORMAT_VERSION = 1
_EVAL_NAME = re.compile(r"^(\d{8})\.json$")


def available_metrics(inception_weights: str | Path | None = None) -> tuple[str, ...]:
    """The default metric list: swd, faces and memo, plus facefd when dlib is installed, fid when weights are."""
    from facegan.metrics.facefd import dlib_available
    from facegan.metrics.inception import weights_available

    chosen = ["swd", "faces"]
    if dlib_available():
        chosen.append("facefd")
    if weights_available(inception_weights):
        chosen.append("fid")
    return (*chosen, "memo")


def parse_metrics(metrics: str | Sequence[str] | None, inception_weights: str | Path | None = None
                  ) -> tuple[str, ...]:
    """Metric names from "swd,faces" or a list (None or "all-available": the default list), checked."""
    if metrics is None:
        return available_metrics(inception_weights)
    names = [m.strip().lower() for m in (metrics.split(",") if isinstance(metrics, str) else metrics)]
    names = [m for m in names if m]
    unknown = sorted(set(names) - set(ALL_METRICS))
    if unknown or not names:
        raise FaceganError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}; choose from "
                           f"{','.join(ALL_METRICS)}")
    return tuple(dict.fromkeys(names))


def eval_dir(run_dir: str | Path) -> Path:
    """Where a run keeps its evaluations."""
    return Path(run_dir) / "eval"


def eval_path(run_dir: str | Path, step: int) -> Path:
    """The JSON file of the evaluation at `step`."""
    return eval_dir(run_dir) / f"{step:08d}.json"


def load_evals(run_dir: str | Path) -> list[dict[str, Any]]:
    """All evaluations of a run, by step (files that do not parse are skipped)."""
    folder = eval_dir(run_dir)
    found = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if _EVAL_NAME.match(path.name):
            try:
                found.append(json.loads(path.read_text()))
            except (OSError, json.JSONDecodeError):
                log.warning("skipping unreadable evaluation %s", path)
    return sorted(found, key=lambda r: r.get("step", 0))


def write_eval(path: str | Path, result: dict[str, Any]) -> Path:
    """Write an evaluation as JSON, atomically."""
    atomic_write_text(path, json.dumps(result, indent=2, sort_keys=False) + "\n")
    return Path(path)


def run_dir_of(checkpoint: str | Path) -> Path:
    """The run directory a checkpoint belongs to (RUN for RUN/checkpoints/x.pt; else the file's folder)."""
    path = Path(checkpoint)
    if path.is_dir():
        return path
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


@torch.no_grad()
def generate_fakes(gen: LoadedGenerator, n: int, seed: int = 0, batch_size: int = 256,
                   on_progress: Callable[[int], object] | None = None) -> np.ndarray:
    """n faces (uint8 N×H×W×C) from seeded latents, generated in batches."""
    latents = gen.latents(n, seed)
    parts = []
    for start in range(0, n, batch_size):
        parts.append(gen.images(latents[start : start + batch_size]))
        if on_progress is not None:
            on_progress(len(parts[-1]))
    return np.concatenate(parts)


def _timed(elapsed: dict[str, float], name: str) -> Callable[[], None]:
    started = time.perf_counter()

    def done() -> None:
        elapsed[name] = round(time.perf_counter() - started, 3)
    return done


def split_memo_reference(train: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(reference, held-out) split of the training images for the memorisation check."""
    held = min(MEMO_MAX_HELDOUT, len(train) // 20)
    order = np.random.default_rng(seed + 7).permutation(len(train))
    heldout_idx, ref_idx = np.sort(order[:held]), np.sort(order[held : held + MEMO_MAX_REFERENCE])
    return np.asarray(train[ref_idx]), np.asarray(train[heldout_idx])


def score_sets(
    fakes: np.ndarray,
    reals: np.ndarray,
    metrics: Sequence[str],
    train: np.ndarray | None = None,
    seed: int = 0,
    inception: Any = None,
    facefd_n: int = FACEFD_MAX_N,
    strip_path: Path | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Every requested metric of fakes against reals (uint8 NHWC sets of one shape).

    `train`: the training images for memo (default: the reals); `inception`: the loaded FID network for fid.
    """
    out: dict[str, Any] = {}
    elapsed: dict[str, float] = {}
    if "swd" in metrics:
        from facegan.metrics.swd import swd

        done = _timed(elapsed, "swd")
        out.update(swd(reals, fakes, seed=seed).as_dict())
        done()
    if "faces" in metrics:
        from facegan.metrics.facedetect import FaceDetector, FaceRates

        done = _timed(elapsed, "faces")
        detector = FaceDetector()
        with progress_bar(len(fakes) + len(reals), "faces", unit="img", enabled=show_progress) as bar:
            rates = []
            for images in (fakes, reals):
                rates.append(float(detector.detect(images).mean()))
                bar.update(len(images))
        out.update(FaceRates(rates[0], rates[1], rates[0] / rates[1] if rates[1] > 0 else None).as_dict())
        done()
    if "facefd" in metrics:
        from facegan.metrics.facefd import face_embedding_distance

        done = _timed(elapsed, "facefd")
        count = min(facefd_n, len(fakes), len(reals))
        with progress_bar(2 * count, "facefd", unit="img", enabled=show_progress) as bar:
            out.update(face_embedding_distance(fakes[:count], reals[:count], seed=seed, on_progress=bar.update))
        out["facefd_n"] = count
        done()
    if "fid" in metrics:
        from facegan.metrics.fid import fid_kid

        done = _timed(elapsed, "fid")
        with progress_bar(len(fakes) + len(reals), "fid", unit="img", enabled=show_progress) as bar:
            out.update(fid_kid(fakes, reals, net=inception, seed=seed, on_progress=bar.update))
        done()
    if "memo" in metrics:
        from facegan.metrics.memorisation import closest_pairs_strip, memorisation

        done = _timed(elapsed, "memo")
        train = reals if train is None else train
        reference, heldout = split_memo_reference(train, seed)
        total = 2 * (len(reference) + len(fakes) + len(heldout))
        with progress_bar(total, "memo", unit="img", enabled=show_progress) as bar:
            result = memorisation(fakes, reference, heldout, on_progress=bar.update)
        out.update(result.as_dict())
        out["memo_reference"] = len(reference)
        if strip_path is not None:
            save_png(closest_pairs_strip(fakes, reference, result), strip_path)
            out["memo_strip"] = strip_path.name
        done()
    out["elapsed_s"] = elapsed
    return out


def _header(metrics: Sequence[str], seed: int) -> dict[str, Any]:
    return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "metrics": list(metrics), "seed": seed}


def _check_requirements(metrics: Sequence[str], inception_weights: str | Path | None,
                        device: str | torch.device) -> Any:
    """Fail before any slow work when dlib or usable Inception weights are missing; returns the Inception net."""
    if "facefd" in metrics:
        from facegan.metrics.facefd import import_dlib, model_dir

        import_dlib()
        model_dir()
    if "fid" in metrics:
        from facegan.metrics.inception import load_inception

        return load_inception(inception_weights, device)
    return None


def evaluate(
    run_or_generator: str | Path | LoadedGenerator,
    n: int = DEFAULT_N,
    metrics: str | Sequence[str] | None = None,
    real_dataset: str | Path | None = None,
    seed: int = 0,
    device: str = "auto",
    inception_weights: str | Path | None = None,
    facefd_n: int = FACEFD_MAX_N,
    write: bool = True,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Score n fakes of a run/checkpoint/generator against its training data; writes RUN/eval/<step>.json."""
    if n < 2:
        raise FaceganError("--n must be at least 2")
    metrics = parse_metrics(metrics, inception_weights)
    gen = run_or_generator if isinstance(run_or_generator, LoadedGenerator) else load_generator(
        run_or_generator, device=str(resolve_device(device)))
    inception = _check_requirements(metrics, inception_weights, gen.device)
    train_path = Path(gen.config.data.path)
    real_path = Path(real_dataset) if real_dataset is not None else train_path
    if real_dataset is None and not real_path.exists():
        raise FaceganError(f"the run's dataset {real_path} is missing; point --real at the training images")
    elapsed: dict[str, float] = {}
    done = _timed(elapsed, "load_reals")
    reals = load_image_set(real_path, n, seed)
    train = None
    if "memo" in metrics and is_dataset_dir(train_path):
        train = PreparedDataset.open(train_path).images
    done()
    done = _timed(elapsed, "generate")
    with progress_bar(n, "generate", unit="img", enabled=show_progress) as bar:
        fakes = generate_fakes(gen, n, seed, on_progress=bar.update)
    done()
    if fakes.shape[1:] != reals.shape[1:]:
        log.info("fakes are %s and reals %s: resizing to a common shape", fakes.shape[1:], reals.shape[1:])
        fakes, reals = match_sets(fakes, reals)
    run_dir = run_dir_of(gen.checkpoint)
    path = eval_path(run_dir, gen.step)
    strip = path.with_name(f"{gen.step:08d}-memo.png") if write else None
    scores = score_sets(fakes, reals, metrics, train=_train_for(train, fakes), seed=seed, inception=inception,
                        facefd_n=facefd_n, strip_path=strip, show_progress=show_progress)
    result = {**_header(metrics, seed), "step": gen.step, "n": len(fakes), "n_real": len(reals),
              "checkpoint": gen.checkpoint, "real": str(real_path), "resolution": int(fakes.shape[1])}
    result.update(scores)
    result["elapsed_s"] = {**elapsed, **scores["elapsed_s"]}
    result.update({"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "facegan_version": __version__})
    if write:
        write_eval(path, result)
        result["path"] = str(path)
        log.info("wrote %s", path)
    return result


def _train_for(train: np.ndarray | None, fakes: np.ndarray) -> np.ndarray | None:
    """The training images for the memorisation check when they have the fakes' shape."""
    return train if train is not None and train.shape[1:] == fakes.shape[1:] else None


def compare_sets(
    real_dir: str | Path,
    fake_dir: str | Path,
    n: int | None = DEFAULT_N,
    metrics: str | Sequence[str] | None = None,
    seed: int = 0,
    device: str = "auto",
    inception_weights: str | Path | None = None,
    facefd_n: int = FACEFD_MAX_N,
    out: str | Path | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Score the images of fake_dir against real_dir (image folders or prepared datasets); no run needed.

    The real set also serves as the training set of the memorisation check. With `out`, the result is written
    there as JSON (and the memorisation strip beside it).
    """
    metrics = parse_metrics(metrics, inception_weights)
    inception = _check_requirements(metrics, inception_weights, resolve_device(device))
    elapsed: dict[str, float] = {}
    done = _timed(elapsed, "load")
    # The memorisation check wants the whole real set as its training set (up to its reference cap).
    reals = load_image_set(real_dir, MEMO_MAX_REFERENCE + MEMO_MAX_HELDOUT if "memo" in metrics else n, seed)
    fakes = load_image_set(fake_dir, n, seed)
    fakes, reals = match_sets(fakes, reals)
    done()
    scored_reals = reals[sample_indices(len(reals), n, seed)]
    strip = Path(out).with_suffix(".memo.png") if out is not None else None
    scores = score_sets(fakes, scored_reals, metrics, train=reals, seed=seed, inception=inception,
                        facefd_n=facefd_n, strip_path=strip, show_progress=show_progress)
    result = {**_header(metrics, seed), "n": len(fakes), "n_real": len(scored_reals), "real": str(real_dir),
              "fake": str(fake_dir), "resolution": int(fakes.shape[1])}
    result.update(scores)
    result["elapsed_s"] = {**elapsed, **scores["elapsed_s"]}
    result.update({"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "facegan_version": __version__})
    if out is not None:
        write_eval(out, result)
        result["path"] = str(out)
    return result


def metric_label(key: str, n: int) -> str:
    """A key with its sample count, stylegan-style: ("swd", 10000) → "swd_10k"."""
    count = f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)
    return f"{key}_{count}"


def summary_lines(result: dict[str, Any]) -> list[str]:
    """Human-readable lines for the CLI."""
    n = int(result.get("n", 0))
    lines = []

    def num(key: str, fmt: str = "{:.4g}") -> str:
        value = result.get(key)
        return "n/a" if value is None else fmt.format(value)

    if "swd" in result:
        levels = ", ".join(f"{k} px {v:.2f}" for k, v in result["swd_levels"].items())
        lines.append(f"{metric_label('swd', n)}: {result['swd']:.3f} (×1e3; {levels})")
    if "faces_fake" in result:
        lines.append(f"faces: {num('faces_fake', '{:.1%}')} of fakes, {num('faces_real', '{:.1%}')} of reals, "
                     f"ratio {num('faces_ratio', '{:.3f}')}")
    if "facefd" in result:
        lines.append(f"{metric_label('facefd', int(result['facefd_n']))}: {num('facefd')}  "
                     f"facekid: {num('facekid')} ± {num('facekid_std')}")
    if "fid" in result:
        lines.append(f"{metric_label('fid', n)}: {num('fid', '{:.3f}')}  kid: {num('kid')} ± {num('kid_std')}")
    if "memo_share" in result:
        lines.append(f"memorisation: {num('memo_share', '{:.1%}')} of fakes closer to a training image than "
                     f"training images are to each other (held-out reals: {num('memo_share_heldout', '{:.1%}')}); "
                     f"{result['memo_copies']} near-copies")
    return lines
