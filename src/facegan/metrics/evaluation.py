"""Run the metrics: a trained generator against its data (`evaluate`) or two image sets (`compare_sets`).

`evaluate` writes RUN/eval/<step>.json (facegan.run.evals), a JSON object:
  format, format_version, step, n (fakes), n_real, seed, metrics (names run), checkpoint, real, resolution,
  the keys each metric writes (see its module and docs/metrics.md: swd, swd_levels, faces_*, facefd_*, fid,
  kid, memo_*), results {label: headline} with each label carrying its sample count (swd_10k),
  elapsed_s {stage: seconds}, created, facegan_version.
The metrics are those of `facegan.metrics.registry`; each says what it needs (an extra, weights, the training
images) and is checked before any slow work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facegan.data.dataset import PreparedDataset, is_dataset_dir
from facegan.errors import FaceganError
from facegan.generation.sample import LoadedGenerator, load_generator
from facegan.metrics.imagesets import load_image_set, match_sets, sample_indices
from facegan.metrics.metric import FACEFD_MAX_N, MetricOptions, ScoreContext, metric_label
from facegan.metrics.registry import METRICS, available_metrics, parse_metrics
from facegan.run.evals import eval_path, header, load_evals, stamp, write_eval
from facegan.run.layout import run_dir_of
from facegan.utils.device import resolve_device
from facegan.utils.progress import progress_bar

__all__ = ["DEFAULT_N", "available_metrics", "compare_sets", "eval_path", "evaluate", "generate_fakes",
           "load_evals", "metric_label", "parse_metrics", "run_dir_of", "score_sets", "summary_lines"]

log = logging.getLogger("facegan.metrics")

DEFAULT_N = 10_000


def generate_fakes(gen: LoadedGenerator, n: int, seed: int = 0, batch_size: int = 256,
                   on_progress: Callable[[int], object] | None = None) -> np.ndarray:
    """n faces (uint8 N×H×W×C) from seeded latents, generated in batches."""
    return gen.generate(gen.latents(n, seed), batch_size=batch_size, on_progress=on_progress)


def _timed(elapsed: dict[str, float], name: str) -> Callable[[], None]:
    started = time.perf_counter()

    def done() -> None:
        elapsed[name] = round(time.perf_counter() - started, 3)
    return done


def score_sets(
    fakes: np.ndarray,
    reals: np.ndarray,
    metrics: Sequence[str],
    train: np.ndarray | None = None,
    seed: int = 0,
    resources: dict[str, Any] | None = None,
    options: MetricOptions | None = None,
    picture_path: Callable[[str], Path] | None = None,
    show_progress: bool = True,
    references: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every requested metric of fakes against reals (uint8 NHWC sets of one shape), with `results`: the headline
    numbers keyed with their sample counts.

    `train`: the training images for metrics that want them (default: the reals); `resources`: what each metric's
    `prepare` returned (`prepare_metrics`); `picture_path(name)`: where a metric may write its picture;
    `references`: what each metric's `prepare_reals` returned for these reals (kept across evaluations in training).
    """
    out: dict[str, Any] = {}
    elapsed: dict[str, float] = {}
    for name in metrics:
        metric = METRICS[name]
        ctx = ScoreContext(seed=seed, options=options or MetricOptions(), train=train,
                           resource=(resources or {}).get(name), reference=(references or {}).get(name),
                           show_progress=show_progress,
                           picture_path=picture_path(name) if picture_path is not None else None)
        done = _timed(elapsed, name)
        out.update(metric.score(fakes, reals, ctx))
        done()
    out["results"] = headline_results(out, metrics, len(fakes))
    out["elapsed_s"] = elapsed
    return out


def headline_results(scores: dict[str, Any], metrics: Sequence[str], n: int) -> dict[str, float | None]:
    """{label with sample count: headline} of the metrics run (`swd_10k`), as stylegan names `fid50k_full`."""
    results = {}
    for name in metrics:
        metric = METRICS[name]
        results[metric.label({"n": n, **scores})] = metric.headline(scores)
    return results


def prepare_metrics(metrics: Sequence[str], options: MetricOptions) -> dict[str, Any]:
    """Fail before any slow work when a metric's extra or weights are missing; returns what each one prepared."""
    return {name: METRICS[name].prepare(options) for name in metrics if METRICS[name].prepare is not None}


def _wants_train(metrics: Sequence[str]) -> int:
    """How many training images the chosen metrics want (0: none)."""
    return max((METRICS[name].train_images for name in metrics), default=0)


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
    metrics = parse_metrics(metrics, MetricOptions(inception_weights))
    gen = run_or_generator if isinstance(run_or_generator, LoadedGenerator) else load_generator(
        run_or_generator, device=str(resolve_device(device)))
    options = MetricOptions(inception_weights, gen.device, facefd_n)
    resources = prepare_metrics(metrics, options)
    train_path = Path(gen.config.data.path)
    real_path = Path(real_dataset) if real_dataset is not None else train_path
    if real_dataset is None and not real_path.exists():
        raise FaceganError(f"the run's dataset {real_path} is missing; point --real at the training images")
    elapsed: dict[str, float] = {}
    done = _timed(elapsed, "load_reals")
    reals = load_image_set(real_path, n, seed)
    train = None
    if _wants_train(metrics) and is_dataset_dir(train_path):
        train = PreparedDataset.open(train_path).images
    done()
    done = _timed(elapsed, "generate")
    with progress_bar(n, "generate", unit="img", enabled=show_progress) as bar:
        fakes = generate_fakes(gen, n, seed, on_progress=bar.update)
    done()
    if fakes.shape[1:] != reals.shape[1:]:
        log.info("fakes are %s and reals %s: resizing to a common shape", fakes.shape[1:], reals.shape[1:])
        fakes, reals = match_sets(fakes, reals)
    run_dir = run_dir_of(gen.checkpoint) or Path(gen.checkpoint).parent  # a lone file: eval/ beside it
    path = eval_path(run_dir, gen.step)
    scores = score_sets(fakes, reals, metrics, train=_train_for(train, fakes), seed=seed, resources=resources,
                        options=options, show_progress=show_progress,
                        picture_path=(lambda name: path.with_name(f"{gen.step:08d}-{name}.png")) if write else None)
    result = {**header(metrics, seed), "step": gen.step, "n": len(fakes), "n_real": len(reals),
              "checkpoint": gen.checkpoint, "real": str(real_path), "resolution": int(fakes.shape[1])}
    result.update(scores)
    result["elapsed_s"] = {**elapsed, **scores["elapsed_s"]}
    result.update(stamp())
    if write:
        write_eval(path, result)
        result["path"] = str(path)
        log.info("wrote %s", path)
    return result


def _train_for(train: np.ndarray | None, fakes: np.ndarray) -> np.ndarray | None:
    """The training images for the metrics that want them, when they have the fakes' shape."""
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
    metrics = parse_metrics(metrics, MetricOptions(inception_weights))
    options = MetricOptions(inception_weights, resolve_device(device), facefd_n)
    resources = prepare_metrics(metrics, options)
    elapsed: dict[str, float] = {}
    done = _timed(elapsed, "load")
    # A metric that wants training images (memorisation) gets the whole real set (up to what it asks for).
    reals = load_image_set(real_dir, _wants_train(metrics) or n, seed)
    fakes = load_image_set(fake_dir, n, seed)
    fakes, reals = match_sets(fakes, reals)
    done()
    scored_reals = reals[sample_indices(len(reals), n, seed)]
    scores = score_sets(fakes, scored_reals, metrics, train=reals, seed=seed, resources=resources, options=options,
                        show_progress=show_progress,
                        picture_path=(lambda name: Path(out).with_suffix(f".{name}.png")) if out is not None else None)
    result = {**header(metrics, seed), "n": len(fakes), "n_real": len(scored_reals), "real": str(real_dir),
              "fake": str(fake_dir), "resolution": int(fakes.shape[1])}
    result.update(scores)
    result["elapsed_s"] = {**elapsed, **scores["elapsed_s"]}
    result.update(stamp())
    if out is not None:
        write_eval(out, result)
        result["path"] = str(out)
    return result


def summary_lines(result: dict[str, Any]) -> list[str]:
    """Human-readable lines for the CLI, one per registered metric in the result."""
    return [metric.summary(result, metric.label(result)) for metric in METRICS.values()
            if metric.name in result.get("metrics", ()) or metric.key in result]
