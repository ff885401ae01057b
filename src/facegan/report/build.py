"""`build_report(RUN)`: plots, grids, GIFs and RUN/report/index.html from what a run leaves on disk.

Reads only RUN/config.json, RUN/metrics.jsonl, RUN/samples/*.png, RUN/eval/*.json, the newest checkpoint
(G makes the fakes and the latent walks, on the CPU by default) and the prepared dataset the config names
(for real images). It never talks to a training process, so it can run while one is going. The report is
built in a temporary sibling folder and swapped in whole: a reader never sees half a report.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facegan.data.dataset import PreparedDataset, make_temp_sibling, publish_dir
from facegan.errors import FaceganError
from facegan.report.html import GENERATOR_TAG, Page, Picture, Section, Table, write_page
from facegan.run.layout import checkpoint_dir, config_path, metrics_path, report_dir, samples_dir
from facegan.run.metrics_log import read_metrics
from facegan.utils.images import make_grid, save_png
from facegan.version import __version__

log = logging.getLogger("facegan.report")

GRID_FACES = 64  # real and fake grids: 8 × 8
WALK_ROWS, WALK_STEPS = 6, 10
MIN_FACE_PX = 64  # faces smaller than this are shown enlarged (pixelated, integer factor)


@dataclass
class _Build:
    """What one report build has gathered so far."""

    run_dir: Path
    out: Path
    config: dict[str, Any]
    records: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    def cfg(self, section: str, key: str, default: Any = None) -> Any:
        value = self.config.get(section, {})
        return value.get(key, default) if isinstance(value, dict) else default


def build_report(run_dir: str | Path, out_dir: str | Path | None = None, device: str = "cpu", seed: int = 0) -> Path:
    """Write the report of the run in `run_dir` to `out_dir` (default RUN/report); returns its index.html."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FaceganError(f"{run_dir} is not a directory (give a run directory made by `facegan train`)")
    if not any(path.exists() for path in (config_path(run_dir), metrics_path(run_dir), checkpoint_dir(run_dir))):
        raise FaceganError(f"{run_dir} is not a facegan run (no config.json, metrics.jsonl or checkpoints/)")
    out = Path(out_dir) if out_dir is not None else report_dir(run_dir)
    _check_replaceable(out)
    started = time.perf_counter()
    tmp = make_temp_sibling(out)
    try:
        records = read_metrics(metrics_path(run_dir))
        build = _Build(run_dir=run_dir, out=tmp, config=_read_config(run_dir), records=records)
        page = _assemble(build, device, seed)
        write_page(page, tmp / "index.html")
        _make_readable(tmp)
        publish_dir(tmp, out, force=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for note in build.notes:
        log.warning("report: %s", note)
    log.info("report of %s written to %s (%.1f s)", run_dir, out / "index.html", time.perf_counter() - started)
    return out / "index.html"


def try_build_report(run_dir: str | Path, out_dir: str | Path | None = None, device: str = "cpu") -> Path | None:
    """`build_report`, but a failure is logged as a warning and returns None (for use during training)."""
    try:
        return build_report(run_dir, out_dir, device=device)
    except Exception as exc:  # a report must never stop training
        log.warning("could not build the report of %s: %s", run_dir, exc)
        return None


def report_hook(every: int, out_dir: str | Path | None = None) -> Callable[[Any], None]:
    """A training hook that rebuilds the report every `every` steps (failures only log a warning)."""
    if every < 1:
        raise FaceganError("--report-every must be at least 1")

    def hook(run: Any) -> None:
        if run.step % every == 0:
            try_build_report(run.run_dir, out_dir)

    return hook


def _check_replaceable(out: Path) -> None:
    """`out` may be replaced only if it is missing, empty, or an earlier report."""
    if not out.exists():
        return
    if not out.is_dir():
        raise FaceganError(f"{out} exists and is not a folder; give another --out")
    index = out / "index.html"
    if any(out.iterdir()) and not (index.is_file() and GENERATOR_TAG in index.read_text(errors="replace")[:2000]):
        raise FaceganError(f"{out} exists and is not a facegan report (it would be replaced); give another --out")


def _make_readable(folder: Path) -> None:
    """Temporary files are created private (0600/0700); a report is for reading, like any web folder."""
    folder.chmod(0o755)
    for path in folder.iterdir():
        path.chmod(0o644)


def _read_config(run_dir: Path) -> dict[str, Any]:
    path = config_path(run_dir)
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise FaceganError(f"cannot read {path}: {exc}") from None
        return data if isinstance(data, dict) else {}
    try:
        from facegan.run.checkpoint import load_checkpoint

        return load_checkpoint(run_dir)["config"].to_dict()
    except FaceganError:
        return {}


# ---------------------------------------------------------------------------------------------------------------
# Sections


def _assemble(b: _Build, device: str, seed: int) -> Page:
    _metrics_notes(b)
    _plots_section(b)
    _eval_section(b)
    gen = _load_generator(b, device)
    _real_fake_section(b, gen, seed)
    _progress_section(b)
    _walk_section(b, gen, seed)
    _run_section(b)
    model = f"{b.cfg('model', 'family', '?')} · {b.cfg('model', 'resolution', '?')} px · " \
            f"{b.cfg('model', 'channels', '?')} ch"
    return Page(
        title=f"facegan report: {b.run_dir.resolve().name}",
        subtitle=f"{b.run_dir.resolve()} · {model} · built {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        facts=_facts(b),
        notes=b.notes,
        sections=b.sections,
        footer=f"facegan {__version__}. Built from config.json, metrics.jsonl, samples/, eval/ and the newest "
               "checkpoint; rebuild with `facegan report RUN`. Opens from disk: no server needed.",
    )


def _finite(values: Sequence[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


def _metrics_notes(b: _Build) -> None:
    if not b.records:
        b.notes.append("metrics.jsonl is empty or missing: no training step has been logged yet "
                       "(steps are written every --log-every steps), so there are no plots.")
        return
    losses = [r.get(k) for r in b.records for k in ("loss_d", "loss_g") if k in r]
    finite = _finite(losses)
    if not finite:
        b.notes.append(f"Every logged loss is non-finite (NaN or inf) in all {len(b.records)} steps: "
                       "training diverged from the start. Lower the learning rate or check the data.")
        return
    bad = [r["step"] for r in b.records if any(k in r and not _finite([r[k]]) for k in ("loss_d", "loss_g"))]
    if bad:
        b.notes.append(f"{len(bad)} of {len(b.records)} logged steps have a non-finite loss (NaN or inf), "
                       f"the first at step {bad[0]:,}; they are marked in red on the loss plots.")


def _plots_section(b: _Build) -> None:
    from facegan.report import plots

    section = Section("curves", "Training curves")
    b.sections.append(section)
    if not b.records:
        section.notes.append("No metrics logged yet.")
        return
    window = plots.smoothing_window(len(b.records))
    section.intro = (f"Light lines are the raw per-step values, bold lines their exponential moving average over "
                     f"about {window} steps. Red ticks on the bottom edge mark steps whose value was NaN or infinite."
                     if window > 1 else "Red ticks on the bottom edge mark steps whose value was NaN or infinite.")
    loss = str(b.cfg("train", "loss", ""))
    _add_plot(b, section, plots.plot_losses(b.records, b.out / "losses.png", loss_name=loss),
              "Loss_D and Loss_G against training step.")
    _add_plot(b, section, plots.plot_losses(b.records, b.out / "losses-log.png", log_scale=True, loss_name=loss),
              "The same losses on a logarithmic axis: slow drifts and spikes stand out.")
    _add_plot(b, section, plots.plot_scores(b.records, b.out / "scores.png"),
              "D(x) is D's mean output on real images; D(G(z1)) on fakes before D's update, D(G(z2)) on fakes "
              "when G steps. Near 0.5 D cannot tell them apart; D(x) → 1 with D(G(z)) → 0 means D is winning.")
    _add_plot(b, section, plots.plot_speed(b.records, b.out / "speed.png"),
              "Images per second (batch size × steps / wall-clock time) for each logging interval.")
    others = plots.numeric_keys(b.records)
    if others:
        shown = others[: plots.MAX_PANELS]
        caption = "Other scalars in metrics.jsonl: " + ", ".join(shown)
        if len(others) > len(shown):
            caption += f" (and {len(others) - len(shown)} more not shown: {', '.join(others[len(shown):])})"
        _add_plot(b, section, plots.plot_panels(b.records, shown, b.out / "scalars.png", "Other logged scalars"),
                  caption + ".")


def _add_plot(b: _Build, section: Section, path: Path, caption: str) -> None:
    with Image.open(path) as img:
        width, height = img.size
    section.pictures.append(Picture(path.name, caption, width, height))


def _eval_section(b: _Build) -> None:
    from facegan.metrics.registry import headline_columns
    from facegan.run.evals import eval_files, read_eval_file

    files = eval_files(b.run_dir)
    if not files:
        return
    section = Section("eval", "Evaluation", "Metrics from RUN/eval/*.json, one row per evaluation: first the "
                      "headline number of each metric (labelled with its sample count), then every other number.")
    b.sections.append(section)
    rows: list[dict[str, Any]] = []
    for path in files:
        data = read_eval_file(path)
        if "error" in data and len(data) == 1:
            section.notes.append(f"{data['error']}; it is left out.")
            continue
        rows.append({"file": path.name, **data})
    rows.sort(key=lambda r: (r.get("step") if isinstance(r.get("step"), (int, float)) else math.inf, r["file"]))
    from facegan.report.plots import numeric_keys, plot_panels

    columns = headline_columns(rows)
    headline = [metric.key for metric, _ in columns]
    keys = [*headline, *(k for k in numeric_keys(rows, exclude=("step", "epoch", "images_seen"))
                         if k not in headline)]
    if not keys:
        section.notes.append("The evaluation files hold no numeric metrics.")
        return
    titles = [label for _, label in columns] + keys[len(headline):]
    table = Table(["step", *titles, "file"],
                  [[_fmt(r.get("step", "")), *(_fmt(r.get(k, "")) for k in keys), r["file"]] for r in rows],
                  align_numbers=True)
    section.tables.append(table)
    stepped = [r for r in rows if isinstance(r.get("step"), (int, float))]
    if len(stepped) >= 2:
        _add_plot(b, section, plot_panels(stepped, keys, b.out / "eval.png", "Evaluation metrics", markers=True),
                  "Each evaluation metric against the training step it was measured at.")


def _load_generator(b: _Build, device: str) -> Any:
    from facegan.generation.sample import load_generator
    from facegan.run.checkpoint import list_checkpoints

    if not list_checkpoints(b.run_dir):
        b.notes.append("The run has no checkpoint yet, so there are no generated faces or latent walks.")
        return None
    try:
        return load_generator(b.run_dir, device=device)
    except FaceganError as exc:
        b.notes.append(f"The newest checkpoint could not be loaded ({exc}); no generated faces are shown.")
        return None


def _face_picture(name: str, image: np.ndarray, face_px: int, caption: str, min_px: int = MIN_FACE_PX) -> Picture:
    """A picture of faces, enlarged by an integer factor (pixelated) when the faces are under `min_px`."""
    scale = max(1, math.ceil(min_px / max(1, face_px)))
    return Picture(name, caption, image.shape[1], image.shape[0], scale=scale, pixelated=scale > 1)


def _real_fake_section(b: _Build, gen: Any, seed: int) -> None:
    section = Section("real-fake", "Real vs fake",
                      "Training images (left) beside faces from the newest checkpoint's generator (right).")
    b.sections.append(section)
    data_path = str(b.cfg("data", "path", "") or "")
    dataset = _open_dataset(b.run_dir, data_path)
    if isinstance(dataset, str):
        section.notes.append(dataset)
    else:
        count = min(GRID_FACES, len(dataset))
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(len(dataset), size=count, replace=False))
        grid = make_grid(np.asarray(dataset.images[idx]), nrow=8)
        save_png(grid, b.out / "real.png")
        section.pictures.append(_face_picture("real.png", grid, dataset.resolution,
                                              f"{count} random training images from {dataset.path}"))
    if gen is not None:
        faces = gen.sample(GRID_FACES, seed)
        grid = make_grid(faces, nrow=8)
        save_png(grid, b.out / "fake.png")
        section.pictures.append(_face_picture("fake.png", grid, faces.shape[1],
                                              f"{GRID_FACES} generated faces, G at step {gen.step:,} (seed {seed})"))


def _open_dataset(run_dir: Path, data_path: str) -> PreparedDataset | str:
    """The run's dataset, or a sentence saying why it cannot be shown."""
    if not data_path:
        return "The run's config names no dataset, so no real images are shown."
    candidates = [Path(data_path)]
    if not Path(data_path).is_absolute():
        candidates.append(run_dir / data_path)
    for candidate in candidates:
        if candidate.exists():
            try:
                return PreparedDataset.open(candidate)
            except FaceganError as exc:
                return f"The training data {data_path} cannot be read ({exc}), so no real images are shown."
    return f"The training data {data_path} is no longer there, so no real images are shown."


def _progress_section(b: _Build) -> None:
    from facegan.report.animation import sample_grids, write_progress_animation

    section = Section("progress", "Progress on fixed noise",
                      "G's output for the same 64 latents throughout training (written every --sample-every steps).")
    b.sections.append(section)
    grids = sample_grids(b.run_dir)
    # The newest step grid, not samples/latest.png: that one is only rewritten when training ends.
    latest = samples_dir(b.run_dir) / "latest.png"
    source = grids[-1][1] if grids else (latest if latest.is_file() else None)
    if source is None:
        section.notes.append("No fixed-noise grids in samples/ yet.")
        return
    shutil.copyfile(source, b.out / "latest.png")
    with Image.open(b.out / "latest.png") as img:
        width, height = img.size
    face_px = max(1, (width - 2) // 8 - 2)  # an 8 × 8 grid with 2 px padding
    step_text = f"step {grids[-1][0]:,}" if grids else "the end of training"
    section.pictures.append(Picture("latest.png", f"The newest fixed-noise grid ({step_text}).", width, height,
                                    scale=max(1, math.ceil(MIN_FACE_PX / face_px)), pixelated=face_px < MIN_FACE_PX))
    gif, mp4, frames = write_progress_animation(b.run_dir, b.out, batch_size=b.cfg("train", "batch_size"))
    if gif is not None:
        with Image.open(gif) as img:
            width, height = img.size
        dropped = len(grids) - frames
        caption = f"All {frames} fixed-noise grids in step order, as a looping animation."
        if dropped > 0:
            caption = f"{frames} of the {len(grids)} fixed-noise grids, evenly spaced, as a looping animation."
        section.pictures.append(Picture(gif.name, caption, width, height, link=mp4.name if mp4 else None))


def _walk_section(b: _Build, gen: Any, seed: int) -> None:
    if gen is None:
        return
    from facegan.report.interpolation import interpolate, walk_frames, walk_strip
    from facegan.utils.gif import save_gif

    section = Section("interpolation", "Latent interpolation",
                      f"Each row walks from one random latent to another in {WALK_STEPS} steps along the great "
                      "circle between them (spherical interpolation). Smooth changes mean G has learned a "
                      "continuous face space rather than memorised separate images.")
    b.sections.append(section)
    faces = interpolate(gen, WALK_ROWS, WALK_STEPS, seed=seed)
    strip = walk_strip(faces)
    save_png(strip, b.out / "interpolation.png")
    section.pictures.append(_face_picture("interpolation.png", strip, faces.shape[2],
                                          f"{WALK_ROWS} latent walks, G at step {gen.step:,}."))
    frames = walk_frames(faces)
    save_gif(frames, b.out / "interpolation.gif", 100)
    section.pictures.append(_face_picture("interpolation.gif", frames[0], faces.shape[2],
                                          "The same walks as an animation, forward and back.", min_px=96))


def _run_section(b: _Build) -> None:
    section = Section("run", "Run details")
    b.sections.append(section)
    section.tables.append(Table(["run", ""], [[k, v] for k, v in _facts(b)], "Run"))
    dataset = _open_dataset(b.run_dir, str(b.cfg("data", "path", "") or ""))
    if isinstance(dataset, PreparedDataset):
        meta = dataset.meta
        rows = [["path", str(dataset.path)], ["images", f"{len(dataset):,}"],
                ["size", f"{dataset.resolution} × {dataset.resolution} px, {dataset.channels} channel(s)"],
                ["source", str(meta.get("source", "?"))], ["created", str(meta.get("created", "?"))],
                ["sha256 of images.npy", str(meta.get("sha256", "?"))[:16] + "…"]]
        if meta.get("label_names"):
            rows.append(["labels", ", ".join(meta["label_names"])])
        section.tables.append(Table(["dataset", ""], rows, "Dataset"))
    versions = b.config.get("versions") or {}
    if isinstance(versions, dict) and versions:
        section.tables.append(Table(["package", "version"], [[k, str(v)] for k, v in versions.items()],
                                    "Versions used for training"))
    parts = [(name, part) for name, part in b.config.items() if isinstance(part, dict) and name != "versions"]
    for name, part in parts:  # one table per config section, side by side
        section.tables.append(Table(["option", "value"], [[key, _fmt(value)] for key, value in part.items()],
                                    f"Configuration: {name}"))
    if not parts:
        section.notes.append("No config.json in the run.")


def _facts(b: _Build) -> list[tuple[str, str]]:
    from facegan.run.layout import record_images_seen

    last = b.records[-1] if b.records else {}
    facts: list[tuple[str, str]] = []
    step = last.get("step")
    seen = record_images_seen(last, b.cfg("train", "batch_size"))
    if isinstance(step, int):
        facts.append(("step", f"{step:,}"))
        if seen is not None:
            facts.append(("images seen", f"{seen / 1000:,.1f}k"))
    if isinstance(last.get("epoch"), int):
        facts.append(("epoch", str(last["epoch"])))
    elapsed = last.get("elapsed_s")
    if isinstance(elapsed, (int, float)):
        facts.append(("training time", _duration(float(elapsed))))
    if seen is not None and isinstance(elapsed, (int, float)) and elapsed > 0:
        facts.append(("average speed", f"{seen / elapsed:,.0f} images/s"))
    if b.cfg("train", "loss"):
        facts.append(("loss", str(b.cfg("train", "loss"))))
    for key, label in (("loss_d", "last Loss_D"), ("loss_g", "last Loss_G"), ("d_x", "last D(x)")):
        if key in last:
            value = last[key]
            facts.append((label, f"{value:.3g}" if isinstance(value, (int, float)) else "NaN/inf"))
    return facts


def _duration(seconds: float) -> str:
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d} (m:s)"


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if value is None:
        return "—"
    if isinstance(value, (Mapping, list)):
        return json.dumps(value)
    return str(value)
