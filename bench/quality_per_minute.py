"""Quality per CPU-minute (issue 17 §6): models trained for the same wall-clock time, scored on held-out images.

Each contestant is `NAME=TRAIN-ARGS` (options of `facegan train`); each (contestant, data set, seed) trains with
`facegan train --time-budget-minutes M` in its own process, the contestants ALTERNATING within each seed so a
machine shared with other work slows them alike. Then 2,000 samples of G (G_ema where the run keeps one, as
`facegan sample` does) are scored against 2,000 held-out images the run never saw, through the metrics registry:
the SWD, the face-detection rate and, where dlib is installed, the face-embedding FD (faces only). Also: the
training FLOPs per image (torch's FlopCounterMode on a few training steps of G and D), the achieved GFLOP/s and
its share of the CPU's nominal bf16 peak.

    python bench/quality_per_minute.py                       # 10 min, seeds 0,1, faces64 and fashion32
    python bench/quality_per_minute.py --minutes 30 --seeds 0 --datasets faces64
    python bench/quality_per_minute.py --minutes 0.2 --seeds 0 --n-eval 64        # smoke test
    python bench/quality_per_minute.py --contestant "dcgan-fp32=--model dcgan --precision fp32" \\
        --contestant "r3gan-cpu64=--model r3gan-cpu64 --batch-size 64"

Data (prepared once with facegan's library into --work, kept between runs): `faces64` is the built-in synthetic
faces at 64 px (training set: renderer seed 0; held-out set: renderer seed 1); `fashion32` is Fashion-MNIST's
10k test file at 32 px grey (../shared/data/fashion-mnist, or Debian's /usr/share/datasets/fashion-mnist),
split into the first 8,000 for training and the last 2,000 held out. Every finished run leaves a record beside
its run directory; a rerun with the same settings reuses it (--fresh retrains), so an interrupted benchmark
continues where it stopped.

Outputs: --json (every run, its scores and the FLOP counts), a markdown table per data set and run length
(mean ± half the range over seeds, and each contestant's SWD over the baseline's), and in --out-dir one 8×8 grid
per contestant and seed from the same latent seed, the held-out reals' grid, and the two side by side.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegan.config import RunConfig
from facegan.errors import FaceganError
from facegan.utils.atomic import atomic_write_text

log = logging.getLogger("facegan.bench.qpm")

BENCH_DIR = Path(__file__).resolve().parent
SHARED_DATA = Path(os.environ.get("FACEGAN_BENCH_DATA") or BENCH_DIR.parents[1] / "shared" / "data")
FASHION_FILE = "t10k-images-idx3-ubyte.gz"
FASHION_DIRS = (SHARED_DATA / "fashion-mnist", Path("/usr/share/datasets/fashion-mnist"))
DATASETS = ("faces64", "fashion32")
FACE_DATASETS = ("faces64",)
DCGAN_CONTESTANTS = ("dcgan-fp32=--model dcgan --precision fp32", "dcgan-auto=--model dcgan")
BASELINE = "dcgan-auto"  # the DCGAN default: every SWD is also given as a ratio to its
R3GAN_CPU_PRESETS = ("r3gan-cpu64", "r3gan-cpu32")  # what issue 17 plans; any other r3gan*cpu* preset joins too
SAMPLE_SEED = 1000  # latents of the scored samples and the grids: the same for every contestant
GRID_N = 64
RUN_ARGS = ("--no-progress", "--no-report", "--keep", "1")  # before the contestant's args (which win)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


# --- the machine ---------------------------------------------------------------------------------------------


def cpu_name() -> str:
    """bench/train_speed.py's description of the CPU (model, family/model numbers, cores, GHz, bf16 flags)."""
    spec = importlib.util.spec_from_file_location("facegan_bench_train_speed", BENCH_DIR / "train_speed.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.cpu_name()


def cpu_facts(cpuinfo: str | None = None) -> dict[str, Any]:
    """Vendor, family, model, MHz and flags of the first processor in /proc/cpuinfo (empty where unreadable)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return {}
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())

    def number(key: str, kind: type) -> Any:
        try:
            return kind(fields[key])
        except (KeyError, ValueError):
            return None

    return {"vendor": fields.get("vendor_id", ""), "family": number("cpu family", int),
            "model": number("model", int), "mhz": number("cpu MHz", float),
            "flags": sorted(set(fields.get("flags", "").split()))}


def bf16_peak(facts: dict[str, Any], cores: int) -> tuple[float | None, str]:
    """The nominal bf16 peak in GFLOP/s of `cores` cores at the clock /proc/cpuinfo reports, and the assumption.

    BENCHMARKS.md ("Distance from peak") reasons so for Zen 5: two 512-bit bf16 dot-product pipes per core, each
    VDPBF16PS doing 16 lanes × 2 products × 2 (multiply, add) = 64 FLOP, so 128 FLOP per cycle per core. Zen 4
    runs 512-bit instructions on 256-bit halves (64 per cycle per core); Intel's AMX does 1,024 bf16 FLOP per
    cycle per core; an Intel core with AVX-512 BF16 but no AMX, two 512-bit FMA ports (128). Boost clocks above
    the reported one lower the share.
    """
    flags, mhz = set(facts.get("flags", ())), facts.get("mhz")
    vendor, family = facts.get("vendor", ""), facts.get("family")
    if "amx_bf16" in flags:
        per_cycle, why = 1024, "Intel AMX: 1,024 bf16 FLOP per cycle per core"
    elif "avx512_bf16" not in flags:
        return None, "no native bf16 (neither AVX-512 BF16 nor AMX): no bf16 peak"
    elif vendor == "AuthenticAMD" and family is not None and family >= 26:
        per_cycle, why = 128, "Zen 5 (family 26): two 512-bit bf16 dot-product pipes, 64 FLOP each, per core"
    elif vendor == "AuthenticAMD":
        per_cycle, why = 64, "Zen 4 (family 25): 512-bit bf16 dot products on two 256-bit pipes, per core"
    else:
        per_cycle, why = 128, "AVX-512 BF16 without AMX: two 512-bit FMA ports, 64 FLOP each, per core"
    if not mhz:
        return None, f"{why}; the clock is unknown"
    peak = per_cycle * mhz / 1000 * cores
    return peak, f"{why} × {mhz / 1000:.2f} GHz (as /proc/cpuinfo reports) × {cores} cores = {peak:.0f} GFLOP/s"


# --- contestants and data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contestant:
    """A named set of `facegan train` options."""

    name: str
    args: tuple[str, ...]

    @property
    def spec(self) -> str:
        return f"{self.name}={shlex.join(self.args)}"


def parse_contestant(text: str) -> Contestant:
    """`NAME=TRAIN-ARGS` → Contestant; argparse's type function (a bad one is a one-line usage error)."""
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not NAME_PATTERN.match(name):
        raise argparse.ArgumentTypeError(f"{text!r}: give NAME=TRAIN-ARGS, e.g. 'dcgan-fp32=--model dcgan "
                                         "--precision fp32' (NAME: letters, digits, . _ + -)")
    try:
        args = tuple(shlex.split(rest))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    return Contestant(name, args)


def train_namespace(contestant: Contestant, data: Path) -> argparse.Namespace:
    """The contestant's options parsed by `facegan train`'s own parser (a bad option exits with its message)."""
    from facegan.cli.main import build_parser

    return build_parser().parse_args(["train", "--data", str(data), "--out", "unused", *RUN_ARGS, *contestant.args])


def contestant_config(contestant: Contestant, data: Path) -> RunConfig:
    """The config `facegan train` would build for this contestant on `data`."""
    from facegan.cli.train import new_config

    return new_config(train_namespace(contestant, data))


def preset_resolution(preset: str) -> int | None:
    """The resolution a preset pins (None: it takes the data's)."""
    from facegan.models.presets import all_presets

    return all_presets().get(preset, {}).get("model", {}).get("resolution")


def r3gan_cpu_contestants(resolution: int) -> tuple[list[Contestant], list[str]]:
    """Every registered r3gan preset with "cpu" in its name that fits `resolution`, and notes on the rest."""
    from facegan.models.presets import preset_names

    names = preset_names()
    chosen = [n for n in names if "r3gan" in n and "cpu" in n and preset_resolution(n) in (None, resolution)]
    notes = [f"preset {n} is not registered (facegan train --help does not list it): skipped"
             for n in R3GAN_CPU_PRESETS if n not in names and n.endswith(str(resolution))]
    if not chosen:
        notes.append(f"no r3gan CPU preset is registered for {resolution} px: only DCGAN runs on it")
    return [Contestant(n, ("--model", n)) for n in chosen], notes


def fits(contestant: Contestant, data: Path, resolution: int) -> bool:
    """False when the contestant's preset pins another resolution than the data's."""
    from facegan.models.presets import DEFAULT_PRESET

    pinned = preset_resolution(train_namespace(contestant, data).model or DEFAULT_PRESET)
    return pinned is None or pinned == resolution


def fashion_source(explicit: str | None = None) -> Path:
    """Fashion-MNIST's 10k test images (IDX), or one clear error when none of the known places has them."""
    folders = [Path(explicit)] if explicit else list(FASHION_DIRS)
    for folder in folders:
        if (folder / FASHION_FILE).is_file():
            return folder / FASHION_FILE
    raise FaceganError(f"fashion32 needs Fashion-MNIST's {FASHION_FILE} in {' or '.join(map(str, folders))}: put "
                       "the file there (`apt-get install dataset-fashion-mnist` installs Debian's copy), give "
                       "--fashion-dir, or leave fashion32 out of --datasets")


@dataclass(frozen=True)
class DataSet:
    """A training set and its held-out images, both prepared datasets."""

    name: str
    train: Path
    heldout: Path
    resolution: int
    faces: bool


def prepare_faces(work: Path, n_train: int, n_heldout: int, resolution: int = 64, workers: int = 1) -> DataSet:
    """The built-in faces: training set from renderer seed 0, held-out set from seed 1 (cached in `work`)."""
    from facegan.data.prepare import prepare_builtin

    folders = {}
    for role, count, seed in (("train", n_train, 0), ("heldout", n_heldout, 1)):
        out = work / "data" / f"faces{resolution}-{role}-seed{seed}-n{count}"
        if not (out / "meta.json").is_file():
            started = time.perf_counter()
            prepare_builtin("synthetic-faces", out, resolution, count=count, seed=seed, workers=workers,
                            show_progress=False)
            log.info("rendered %d faces (seed %d) into %s in %.0f s", count, seed, out, time.perf_counter() - started)
        folders[role] = out
    return DataSet(f"faces{resolution}", folders["train"], folders["heldout"], resolution, faces=True)


def prepare_fashion(work: Path, source: Path, n_heldout: int = 2000, resolution: int = 32,
                    name: str = "fashion") -> DataSet:
    """Fashion-MNIST's 10k test file at 32 px grey, split: all but the last `n_heldout` train, those are held out
    (`source` and `name`: another IDX file of grey images, prepared and split the same way)."""
    from facegan.data.dataset import PreparedDataset, write_dataset
    from facegan.data.decode import DecodeOptions
    from facegan.data.prepare import prepare_images

    full = work / "data" / f"{name}{resolution}-all"
    if not (full / "meta.json").is_file():
        prepare_images(str(source), full, DecodeOptions(resolution=resolution, channels=1), workers=1,
                       show_progress=False)
    dataset = PreparedDataset.open(full)
    count = len(dataset.images)
    if count <= n_heldout:
        raise FaceganError(f"{source} holds {count} images; the held-out split wants {n_heldout} and more to train on")
    labels = dataset.labels if getattr(dataset, "labels", None) is not None else None
    names = dataset.meta.get("label_names")
    folders = {}
    for role, part in (("train", slice(0, count - n_heldout)), ("heldout", slice(count - n_heldout, count))):
        out = work / "data" / f"{name}{resolution}-{role}-{part.start}-{part.stop}"
        if not (out / "meta.json").is_file():
            write_dataset(out, np.asarray(dataset.images[part]), source=f"{source}[{part.start}:{part.stop}]",
                          labels=None if labels is None else np.asarray(labels[part]), label_names=names)
        folders[role] = out
    log.info("%s%d: %d training and %d held-out images from %s", name, resolution, count - n_heldout, n_heldout,
             source)
    return DataSet(f"{name}{resolution}", folders["train"], folders["heldout"], resolution, faces=False)


# --- one run: train, then score ------------------------------------------------------------------------------


def last_record(run_dir: Path) -> dict[str, Any]:
    """The last line of RUN/metrics.jsonl (the loop flushes one at the step it stops on)."""
    from facegan.run.layout import metrics_path

    lines = [line for line in metrics_path(run_dir).read_text().splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines else {}


def train_run(contestant: Contestant, data: DataSet, seed: int, minutes: float, run_dir: Path,
              threads: int) -> dict[str, Any]:
    """Train one run with `facegan train --time-budget-minutes` in its own process; its speed figures."""
    import shutil

    from facegan.run.layout import read_runtime, record_images_seen

    shutil.rmtree(run_dir, ignore_errors=True)  # a run that did not finish (no record) starts again
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "facegan", "train", "--data", str(data.train), "--out", str(run_dir),
               "--seed", str(seed), "--time-budget-minutes", f"{minutes:g}", *RUN_ARGS, *contestant.args]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    log_path = run_dir.with_name(run_dir.name + ".log")
    log.info("training %s on %s, seed %d, %g min: %s", contestant.name, data.name, seed, minutes, shlex.join(command))
    started = time.perf_counter()
    with open(log_path, "w") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env, check=False)
    wall_s = time.perf_counter() - started
    if done.returncode != 0:
        tail = log_path.read_text().strip().splitlines()[-3:]
        raise FaceganError(f"{contestant.name} on {data.name} (seed {seed}) failed with exit code "
                           f"{done.returncode}: {' | '.join(tail)} (log: {log_path})")
    record = last_record(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    batch = config["train"]["batch_size"]
    seen = record_images_seen(record, batch) or 0
    elapsed = float(record.get("elapsed_s") or wall_s)
    runtime = (read_runtime(run_dir) or [{}])[-1]
    return {"steps": int(record.get("step", 0)), "images_seen": seen, "batch_size": batch,
            "train_s": round(elapsed, 2), "wall_s": round(wall_s, 2),  # wall: process start-up and the checkpoint too
            "images_per_s": round(seen / max(elapsed, 1e-9), 2),
            "precision": runtime.get("precision"), "channels_last": runtime.get("channels_last"),
            "family": config["model"]["family"], "resolution": config["model"]["resolution"],
            "ema": bool(config["train"].get("ema_decay") or config.get("schedule", {}).get("ema_half_life")),
            "command": shlex.join(command), "log": str(log_path)}


def score_run(run_dir: Path, reals: np.ndarray, data: DataSet, n_eval: int, facefd_n: int,
              threads: int) -> tuple[dict[str, Any], np.ndarray]:
    """Registry metrics of `n_eval` samples of the run's G (G_ema where kept) against the held-out reals; also the
    samples (the grids take the first GRID_N)."""
    from facegan.generation.sample import load_generator
    from facegan.metrics.evaluation import prepare_metrics, score_sets
    from facegan.metrics.metric import MetricOptions
    from facegan.metrics.registry import METRICS

    torch.set_num_threads(threads)
    options = MetricOptions(facefd_n=min(facefd_n, n_eval))
    metrics = ["swd"]
    if data.faces:
        metrics += ["faces"] + (["facefd"] if METRICS["facefd"].available(options) else [])
    gen = load_generator(run_dir)
    fakes = gen.generate(gen.latents(n_eval, SAMPLE_SEED))
    started = time.perf_counter()
    scores = score_sets(fakes, reals[:n_eval], metrics, seed=0, resources=prepare_metrics(metrics, options),
                        options=options, show_progress=False)
    scores["metrics"] = metrics
    scores["n"] = n_eval
    scores["score_s"] = round(time.perf_counter() - started, 1)
    return scores, fakes


# --- FLOPs ---------------------------------------------------------------------------------------------------


def count_step_flops(config: RunConfig, batch: int = 8, steps: int = 4) -> dict[str, Any]:
    """Training FLOPs per image of this config's G and D, counted with torch's FlopCounterMode.

    First the family's own training step (penalties and all), over `steps` steps (so n_critic and lazy penalties
    average out) on random images in fp32 (FLOPs do not depend on the precision). Where that step cannot be counted
    (a double backward FlopCounterMode does not follow, a conditional run), a plain step is counted instead:
    G(z) forward, D forward and backward on reals, on G(z) detached, and on G(z) into G; `penalties` says so.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from facegan.models import build_models, get_family
    from facegan.models.latents import draw_latents
    from facegan.training.optim import build_optimizers
    from facegan.training.step import StepContext

    m = config.model
    torch.manual_seed(0)
    netG, netD = build_models(m)
    generator = torch.Generator().manual_seed(0)
    real = torch.rand(batch, m.channels, m.resolution, m.resolution, generator=generator) * 2 - 1
    steps = max(steps, config.train.n_critic)
    try:
        if m.condition:
            raise FaceganError("a conditional run's step needs labels")
        optG, optD = build_optimizers(config, netG, netD)
        ctx = StepContext(netG=netG, netD=netD, optG=optG, optD=optD, config=config, noise=generator,
                          latents=lambda n: draw_latents(n, m.nz, m.latent, generator))
        step = get_family(m.family).step
        with FlopCounterMode(display=False) as counter:
            for i in range(steps):
                ctx.step = i
                step(ctx, real)
        return {"gflop_per_image": counter.get_total_flops() / (steps * batch) / 1e9, "penalties": "counted",
                "counted_with": f"the {m.family} family's training step, {steps} steps of {batch} images"}
    except Exception as exc:  # any failure of the full count falls back to the plain step
        why = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    if m.condition:
        return {"gflop_per_image": None, "penalties": "not counted", "counted_with": f"nothing ({why})"}
    netG.zero_grad(set_to_none=True)
    netD.zero_grad(set_to_none=True)
    with FlopCounterMode(display=False) as counter:
        fake = netG(draw_latents(batch, m.nz, m.latent, generator))
        netD(real).float().sum().backward()
        netD(fake.detach()).float().sum().backward()
        netD(fake).float().sum().backward()
    return {"gflop_per_image": counter.get_total_flops() / batch / 1e9, "penalties": "left out",
            "counted_with": f"a plain forward/backward of G and D without penalties (the step itself: {why})"}


# --- the summary -----------------------------------------------------------------------------------------------


def mean_spread(values: Sequence[float | None]) -> tuple[float, float] | None:
    """(mean, half the range) of the numbers among `values`; None when there are none."""
    numbers = [float(v) for v in values if v is not None]
    if not numbers:
        return None
    return statistics.fmean(numbers), (max(numbers) - min(numbers)) / 2


def fmt(pair: tuple[float, float] | None, spec: str = "{:.1f}", percent: bool = False) -> str:
    """"mean ± spread" (or the mean alone for one run, "—" for none)."""
    if pair is None:
        return "—"
    scale = 100 if percent else 1
    mean, spread = pair[0] * scale, pair[1] * scale
    unit = "%" if percent else ""
    return spec.format(mean) + unit + (f" ± {spec.format(spread)}{unit}" if spread > 0 else "")


def summarise(runs: Sequence[dict[str, Any]], baseline: str, peak_gflops: float | None) -> list[dict[str, Any]]:
    """One row per (data set, minutes, contestant), in the order first run: means and spreads over seeds."""
    groups: dict[tuple[str, float, str], list[dict[str, Any]]] = {}
    for run in runs:
        if run.get("error") is None:
            groups.setdefault((run["dataset"], run["minutes"], run["contestant"]), []).append(run)
    rows = []
    for (dataset, minutes, name), group in groups.items():
        scores = [r.get("scores", {}) for r in group]
        gflop = group[0].get("flops", {}).get("gflop_per_image")
        speeds = [r["train"]["images_per_s"] for r in group]
        achieved = [s * gflop for s in speeds] if gflop else []
        rows.append({
            "dataset": dataset, "minutes": minutes, "contestant": name, "seeds": [r["seed"] for r in group],
            "precision": group[0]["train"].get("precision"),
            "steps": mean_spread([r["train"]["steps"] for r in group]),
            "images_seen": mean_spread([r["train"]["images_seen"] for r in group]),
            "images_per_s": mean_spread(speeds),
            "swd": mean_spread([s.get("swd") for s in scores]),
            "faces_fake": mean_spread([s.get("faces_fake") for s in scores]),
            "faces_real": mean_spread([s.get("faces_real") for s in scores]),
            "facefd": mean_spread([s.get("facefd") for s in scores]),
            "gflop_per_image": gflop, "penalties": group[0].get("flops", {}).get("penalties"),
            "gflop_per_s": mean_spread(achieved),
            "peak_share": mean_spread([a / peak_gflops for a in achieved]) if peak_gflops else None,
        })
    for row in rows:
        base = next((r for r in rows if (r["dataset"], r["minutes"], r["contestant"])
                     == (row["dataset"], row["minutes"], baseline)), None)
        row["swd_ratio"] = (row["swd"][0] / base["swd"][0]
                            if base and row["swd"] and base["swd"] and base["swd"][0] else None)
    return rows


def markdown_tables(rows: Sequence[dict[str, Any]], baseline: str, cpu: str, peak_note: str) -> str:
    """The rows as one markdown table per (data set, minutes)."""
    out = []
    for key in dict.fromkeys((r["dataset"], r["minutes"]) for r in rows):
        group = [r for r in rows if (r["dataset"], r["minutes"]) == key]
        faces = any(r["faces_fake"] for r in group)
        fd = any(r["facefd"] for r in group)
        n_seeds = max(len(r["seeds"]) for r in group)
        out.append(f"**{key[0]}, {key[1]:g} minutes of training each** ({n_seeds} seed{'s' * (n_seeds > 1)}; "
                   "mean ± half the range over seeds)\n")
        head = ["contestant", "precision", "steps", "images seen", "images/s", "SWD ×1e3", f"SWD / {baseline}"]
        head += ["face rate"] * faces + ["face FD"] * fd + ["GFLOP/image", "GFLOP/s", "of bf16 peak"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|")
        for r in group:
            gflop = "—" if r["gflop_per_image"] is None else f"{r['gflop_per_image']:.2f}" + (
                "*" if r["penalties"] == "left out" else "")
            cells = [r["contestant"], r["precision"] or "?", fmt(r["steps"], "{:.0f}"),
                     fmt(r["images_seen"], "{:,.0f}"), fmt(r["images_per_s"], "{:.1f}"), fmt(r["swd"], "{:.1f}"),
                     "—" if r["swd_ratio"] is None else f"{r['swd_ratio']:.2f}"]
            cells += [fmt(r["faces_fake"], "{:.1f}", percent=True)] * faces + [fmt(r["facefd"], "{:.3f}")] * fd
            cells += [gflop, fmt(r["gflop_per_s"], "{:.0f}"), fmt(r["peak_share"], "{:.0f}", percent=True)]
            out.append("| " + " | ".join(cells) + " |")
        reals = [r["faces_real"][0] for r in group if r["faces_real"]]
        if reals:
            out.append(f"\nHeld-out reals' face rate: {statistics.fmean(reals):.1%}.")
        if any(r["penalties"] == "left out" for r in group):
            out.append("\n\\* FLOPs of a plain forward/backward of G and D: the gradient penalties' double backward "
                       "could not be counted, so GFLOP/s is a lower bound.")
        out.append("")
    out.append(f"CPU: {cpu}. Peak: {peak_note}. images/s: images seen over the training time (the loop's "
               "elapsed_s); GFLOP/s: GFLOP/image × images/s.")
    return "\n".join(out) + "\n"


def save_grids(out_dir: Path, dataset: str, seed: int, grids: dict[str, np.ndarray], reals: np.ndarray) -> Path:
    """One 8×8 PNG per contestant and of the reals, and all of them side by side (reals first)."""
    from facegan.utils.images import make_grid, save_png

    tiles = {"real": make_grid(reals[:GRID_N], nrow=8)}
    save_png(tiles["real"], out_dir / f"{dataset}-real.png")
    for name, images in grids.items():
        tiles[name] = make_grid(images, nrow=8)
        save_png(tiles[name], out_dir / f"{dataset}-{name}-seed{seed}.png")
    gap = np.full((tiles["real"].shape[0], 8, tiles["real"].shape[2]), 255, np.uint8)
    row = np.concatenate([part for tile in tiles.values() for part in (tile, gap)][:-1], axis=1)
    path = out_dir / f"{dataset}-side-by-side-seed{seed}.png"
    save_png(row, path)
    return path


# --- main ------------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--contestant", action="append", type=parse_contestant, metavar="NAME=TRAIN-ARGS",
                        help="a contestant: a name and `facegan train` options (repeat; default: "
                        f"{'; '.join(DCGAN_CONTESTANTS)}; and every r3gan CPU preset registered for the data's size)")
    parser.add_argument("--datasets", default=",".join(DATASETS), help=f"comma list of {', '.join(DATASETS)}")
    parser.add_argument("--minutes", type=float, default=10.0, help="training wall-clock per run (default 10)")
    parser.add_argument("--seeds", default="0,1", help="training seeds, comma list (default 0,1)")
    parser.add_argument("--n-eval", type=int, default=2000, help="samples scored against as many held-out images")
    parser.add_argument("--facefd-n", type=int, default=500, help="images per set for the dlib face FD (slow)")
    parser.add_argument("--faces-train", type=int, default=20000, help="built-in faces to train on")
    parser.add_argument("--heldout", type=int, default=2000,
                        help="held-out images (faces rendered with seed 1; the last of Fashion-MNIST's 10k)")
    parser.add_argument("--baseline", default=BASELINE,
                        help=f"the contestant SWD ratios divide by (default {BASELINE})")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="OMP_NUM_THREADS of each training run and torch threads of the scoring (default: "
                        "every core)")
    parser.add_argument("--fashion-dir", help=f"folder holding Fashion-MNIST's {FASHION_FILE} (default: "
                        f"{' or '.join(map(str, FASHION_DIRS))})")
    parser.add_argument("--work", default="/tmp/facegan-bench-qpm", help="prepared data, runs and their records")
    parser.add_argument("--out-dir", help="grids and the table (default WORK/out)")
    parser.add_argument("--json", help="every run and score (default OUT_DIR/quality_per_minute.json)")
    parser.add_argument("--fresh", action="store_true", help="retrain and rescore even where a record exists")
    args = parser.parse_args(argv)
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = sorted(set(args.datasets) - set(DATASETS))
    if unknown or not args.datasets:
        parser.error(f"unknown data set(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(DATASETS)}")
    try:
        args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds wants integers separated by commas, not {args.seeds!r}")
    if not args.seeds:
        parser.error("--seeds needs at least one seed")
    if not args.minutes > 0:
        parser.error("--minutes must be positive")
    for name in ("n_eval", "facefd_n", "faces_train", "heldout", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.n_eval > args.heldout:
        parser.error(f"--n-eval ({args.n_eval}) cannot exceed the held-out images (--heldout {args.heldout})")
    names = [c.name for c in args.contestant or []]
    if len(set(names)) != len(names):
        parser.error("two contestants share a name")
    args.work = Path(args.work)
    args.out_dir = Path(args.out_dir) if args.out_dir else args.work / "out"
    args.json = Path(args.json) if args.json else args.out_dir / "quality_per_minute.json"
    return args


def contestants_for(args: argparse.Namespace, data: DataSet, notes: list[str]) -> list[Contestant]:
    """The contestants that run on `data`: the given ones that fit its size, or the defaults."""
    if args.contestant:
        chosen = []
        for contestant in args.contestant:
            if fits(contestant, data.train, data.resolution):
                chosen.append(contestant)
            else:
                notes.append(f"{contestant.name}: its preset pins another size than {data.name}'s: skipped there")
        return chosen
    r3gan, r3gan_notes = r3gan_cpu_contestants(data.resolution)
    notes += [f"{data.name}: {note}" for note in r3gan_notes]
    return [parse_contestant(text) for text in DCGAN_CONTESTANTS] + r3gan


def run_key(contestant: Contestant, seed: int, minutes: float) -> str:
    return f"{contestant.name}-seed{seed}-{minutes:g}min"


def main(argv: Sequence[str] | None = None) -> int:
    from facegan.utils.logs import setup_logging

    setup_logging()
    args = parse_args(argv)
    try:
        return bench(args)
    except FaceganError as exc:
        print(f"quality_per_minute: error: {exc}", file=sys.stderr)
        return 2


def bench(args: argparse.Namespace) -> int:
    """Prepare the data, count FLOPs, train and score every run, write the results; the exit code."""
    from facegan.data.dataset import PreparedDataset
    from facegan.version import __version__ as version

    args.work.mkdir(parents=True, exist_ok=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    cpu = cpu_name()
    facts = cpu_facts()
    cores = min(args.threads, os.cpu_count() or 1)
    peak, peak_note = bf16_peak(facts, cores)
    log.info("CPU: %s; torch %s; %d threads per run", cpu, torch.__version__, args.threads)

    data_sets: list[DataSet] = []
    for name in args.datasets:  # every data set and every contestant's options are checked before any training
        if name == "faces64":
            data_sets.append(prepare_faces(args.work, args.faces_train, args.heldout))
        else:
            data_sets.append(prepare_fashion(args.work, fashion_source(args.fashion_dir), args.heldout))
    notes: list[str] = []
    plan = {d.name: contestants_for(args, d, notes) for d in data_sets}
    for note in notes:
        log.info("%s", note)
    flops: dict[str, dict[str, Any]] = {}
    for data in data_sets:
        for contestant in plan[data.name]:
            counted = count_step_flops(contestant_config(contestant, data.train))
            flops.setdefault(data.name, {})[contestant.name] = counted
            log.info("%s on %s: %s GFLOP per training image (%s)", contestant.name, data.name,
                     "?" if counted["gflop_per_image"] is None else f"{counted['gflop_per_image']:.3f}",
                     counted["counted_with"])

    reals = {d.name: np.asarray(PreparedDataset.open(d.heldout).images[:args.n_eval]) for d in data_sets}
    runs: list[dict[str, Any]] = []
    for seed in args.seeds:
        for data in data_sets:
            grids: dict[str, np.ndarray] = {}
            for contestant in plan[data.name]:  # alternate: every contestant once per seed, in turn
                run = one_run(args, contestant, data, seed, reals[data.name], flops[data.name][contestant.name], cpu)
                runs.append(run)
                if "grid" in run:
                    grids[contestant.name] = run.pop("grid")
                write_results(args, cpu, facts, peak, peak_note, version, plan, flops, notes, runs)
            if grids:
                log.info("grids: %s", save_grids(args.out_dir, data.name, seed, grids, reals[data.name]))
    table = write_results(args, cpu, facts, peak, peak_note, version, plan, flops, notes, runs)
    print(table, end="")
    failed = [r for r in runs if r.get("error")]
    for run in failed:
        log.error("%s", run["error"])
    return 1 if failed else 0


def one_run(args: argparse.Namespace, contestant: Contestant, data: DataSet, seed: int, reals: np.ndarray,
            flops: dict[str, Any], cpu: str) -> dict[str, Any]:
    """Train and score one (contestant, data set, seed), or reuse the record of an identical earlier run."""
    run_dir = args.work / "runs" / data.name / run_key(contestant, seed, args.minutes)
    record_path = run_dir.with_name(run_dir.name + ".json")
    spec = {"contestant": contestant.name, "args": list(contestant.args), "dataset": data.name,
            "train_data": str(data.train), "seed": seed, "minutes": args.minutes, "threads": args.threads}
    score_spec = {"n_eval": args.n_eval, "facefd_n": args.facefd_n, "heldout": str(data.heldout),
                  "sample_seed": SAMPLE_SEED}
    old = json.loads(record_path.read_text()) if record_path.is_file() and not args.fresh else {}
    run: dict[str, Any] = {**spec, "flops": flops, "error": None}
    try:
        if old.get("spec") == spec and old.get("train") and (run_dir / "config.json").is_file():
            run["train"] = old["train"]
            log.info("reusing the training run %s", run_dir)
        else:
            run["train"] = {**train_run(contestant, data, seed, args.minutes, run_dir, args.threads), "cpu": cpu}
            old = {}
        if old.get("score_spec") == score_spec and old.get("scores"):
            run["scores"] = old["scores"]
            from facegan.generation.sample import load_generator

            gen = load_generator(run_dir)
            run["grid"] = gen.generate(gen.latents(GRID_N, SAMPLE_SEED))
        else:
            run["scores"], fakes = score_run(run_dir, reals, data, args.n_eval, args.facefd_n, args.threads)
            run["grid"] = fakes[:GRID_N]
    except FaceganError as exc:
        run["error"] = str(exc)
        log.error("%s", exc)
        return run
    atomic_write_text(record_path, json.dumps({"spec": spec, "train": run["train"], "score_spec": score_spec,
                                               "scores": run["scores"]}, indent=2) + "\n")
    t, s = run["train"], run["scores"]
    log.info("%s on %s seed %d: %d steps, %d images (%.1f/s, %s); SWD %.2f%s", contestant.name, data.name, seed,
             t["steps"], t["images_seen"], t["images_per_s"], t["precision"], s.get("swd", float("nan")),
             f", faces {s['faces_fake']:.1%}" if s.get("faces_fake") is not None else "")
    return run


def write_results(args: argparse.Namespace, cpu: str, facts: dict[str, Any], peak: float | None, peak_note: str,
                  version: str, plan: dict[str, list[Contestant]], flops: dict[str, Any], notes: list[str],
                  runs: list[dict[str, Any]]) -> str:
    """The JSON of everything so far and the markdown table (rewritten after every run); returns the table."""
    rows = summarise(runs, args.baseline, peak)
    table = markdown_tables(rows, args.baseline, cpu, peak_note) if rows else "(no finished runs)\n"
    result = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "facegan_version": version,
        "torch": torch.__version__, "cpu": cpu, "cpu_facts": {k: v for k, v in facts.items() if k != "flags"},
        "threads": args.threads, "bf16_peak_gflops": peak, "bf16_peak_assumption": peak_note,
        "minutes": args.minutes, "seeds": args.seeds, "n_eval": args.n_eval, "facefd_n": args.facefd_n,
        "baseline": args.baseline, "sample_seed": SAMPLE_SEED,
        "contestants": {name: [c.spec for c in cs] for name, cs in plan.items()},
        "notes": notes, "flops": flops, "runs": [{k: v for k, v in r.items() if k != "grid"} for r in runs],
        "summary": rows, "table": table,
    }
    atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
    atomic_write_text(args.out_dir / "quality_per_minute.md", table)
    return table


if __name__ == "__main__":
    sys.exit(main())
