"""Speed of `facegan prepare` and of reading the prepared dataset, on CelebA-shaped JPEGs (issue 3).

1. Prepare throughput: `prepare()` of a folder of N 178×218 JPEGs to 64 px (listing, parallel decoding,
   streaming write, sha256 and rename all included), at 1 and at 2 worker processes, alternating, in images/s.
   Target: at least 1,000 images/s per worker.
2. Loading throughput per epoch: the prepared dataset through `BatchIterator` (batches of 128, random flips,
   float in [-1, 1]; once resident in memory as training uses it, and once gathered from the memory map),
   against an ImageFolder-style loader that decodes every JPEG with PIL every epoch and applies the reference
   tutorial's Resize(64) + CenterCrop(64) + ToTensor + Normalize (torchvision's maths, written with PIL/numpy
   because torchvision cannot be installed here), through a DataLoader. Epochs ALTERNATE between the loaders,
   so a machine shared with other work slows them alike. Target: prepared ≥ 20× faster per epoch.

The JPEGs are made from real photos in ../shared/data: random crops of the astronaut portrait and the LFW faces,
scaled to 178×218, jittered in brightness and mirrored, saved at quality 90 (about CelebA's file size).

    python bench/prepare.py                      # 2,000 JPEGs, 3 rounds, 3 epochs per loader
    python bench/prepare.py --n 5000 --rounds 5 --ref-workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package
from train_speed import SHARED_DATA, cpu_name, require_shared_data


def make_celeba_like(folder: Path, count: int, seed: int = 0) -> Path:
    """`count` 178×218 JPEGs named 000001.jpg… from crops of real photos (kept between runs)."""
    if folder.is_dir() and len(list(folder.glob("*.jpg"))) == count:
        return folder
    require_shared_data()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    astronaut = Image.open(SHARED_DATA / "astronaut.png").convert("RGB")
    faces = [Image.open(p).convert("RGB") for p in sorted((SHARED_DATA / "lfw-subset" / "faces").glob("*.png"))]
    for i in range(count):
        h = int(rng.uniform(0.45, 1.0) * 512)
        w = min(512, round(h * 178 / 218))
        x, y = int(rng.integers(0, 512 - w + 1)), int(rng.integers(0, 512 - h + 1))
        img = astronaut.crop((x, y, x + w, y + h)).resize((178, 218), Image.Resampling.BICUBIC)
        if i % 2:  # a real face over the middle, as in an aligned CelebA image
            face = faces[int(rng.integers(len(faces)))].resize((118, 118), Image.Resampling.BICUBIC)
            img.paste(face, (30, 50))
        if rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        pixels = np.asarray(img, np.float32) * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20)
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{i + 1:06d}.jpg", quality=90)
    return folder


# --- the reference: an ImageFolder with the tutorial's transform, decoding every epoch -------------------------


def tv_resize(img: Image.Image, size: int) -> Image.Image:
    """torchvision.transforms.Resize(size) on a PIL image: the shorter side to `size`, bilinear (antialiased)."""
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    return img.resize((new_short, new_long) if w <= h else (new_long, new_short), Image.Resampling.BILINEAR)


def tv_center_crop(img: Image.Image, size: int) -> Image.Image:
    """torchvision.transforms.CenterCrop(size) on a PIL image."""
    w, h = img.size
    top, left = round((h - size) / 2.0), round((w - size) / 2.0)
    return img.crop((left, top, left + size, top + size))


class ImageFolderLike(torch.utils.data.Dataset):
    """ImageFolder + Resize(64) + CenterCrop(64) + ToTensor + Normalize(0.5, 0.5): decodes on every access."""

    def __init__(self, folder: Path, size: int = 64) -> None:
        self.files = sorted(folder.glob("*.jpg"))
        self.size = size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        with open(self.files[index], "rb") as handle:
            img = Image.open(handle).convert("RGB")
        img = tv_center_crop(tv_resize(img, self.size), self.size)
        x = torch.from_numpy(np.array(img, np.uint8, copy=True)).permute(2, 0, 1).float().div(255)
        return (x - 0.5) / 0.5, 0


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (pool workers), user + system."""
    t = os.times()  # children's times have clock-tick resolution; this process's come from process_time()
    return time.process_time() + t.children_user + t.children_system


def timed_epoch(batches: Iterable[torch.Tensor | tuple[torch.Tensor, int]]) -> tuple[float, float, int]:
    """(wall s, CPU s, images) for one pass over `batches`, each batch touched as a training step would."""
    wall, cpu, seen = time.perf_counter(), cpu_seconds(), 0
    for batch in batches:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        seen += len(images)
        images.sum()
    return time.perf_counter() - wall, cpu_seconds() - cpu, seen


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} (min {min(values):,.0f}, max {max(values):,.0f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="number of JPEGs (default 2000)")
    parser.add_argument("--res", type=int, default=64, help="prepared resolution (default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of prepare (default 3)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per loader, alternating (default 3)")
    parser.add_argument("--batch", type=int, default=128, help="batch size of both loaders (default 128)")
    parser.add_argument("--ref-workers", type=int, default=0, help="DataLoader workers of the reference (default 0)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the JPEGs and datasets (default: temp)")
    args = parser.parse_args(argv)

    from facegan.data.dataset import BatchIterator, PreparedDataset
    from facegan.data.prepare import prepare

    work = args.work or Path(tempfile.mkdtemp(prefix="facegan-bench-prepare-"))
    folder = make_celeba_like(work / "img_align_celeba", args.n)
    torch.set_num_threads(1)  # one core per loader, like one DataLoader worker; prepare's workers are processes
    print(f"CPU: {cpu_name()}; torch {torch.__version__}; {args.n} JPEGs 178×218 in {folder}")

    # 1. prepare throughput, 1 and 2 workers alternating; wall-clock and per CPU-second of work.
    rates: dict[int, list[float]] = {1: [], 2: []}
    cpu_rates: dict[int, list[float]] = {1: [], 2: []}
    for r in range(args.rounds):
        for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
            wall, cpu = time.perf_counter(), cpu_seconds()
            meta = prepare(str(folder), work / f"prepared-{workers}", resolution=args.res, workers=workers,
                           force=True, show_progress=False)
            rates[workers].append(meta["count"] / (time.perf_counter() - wall))
            cpu_rates[workers].append(meta["count"] / (cpu_seconds() - cpu))
    sha = {w: PreparedDataset.open(work / f"prepared-{w}").meta["sha256"] for w in (1, 2)}
    print("\nprepare to 64 px (median of rounds; a CPU-second counts the parent and all its workers)")
    for workers in (1, 2):
        per_worker = statistics.median(rates[workers]) / workers
        print(f"  {workers} worker(s): {spread(rates[workers])} images/s wall = {per_worker:,.0f} per worker; "
              f"{statistics.median(cpu_rates[workers]):,.0f} images per CPU-second "
              f"[{'meets' if per_worker >= 1000 else 'MISSES'} 1,000/s per worker on the wall clock]")
    print(f"  same sha256 at 1 and 2 workers: {sha[1] == sha[2]}")

    # 2. loading per epoch, alternating.
    dataset = PreparedDataset.open(work / "prepared-1")
    resident = BatchIterator(dataset, args.batch, torch.device("cpu"), seed=0, flip=True)
    mapped = BatchIterator(dataset, args.batch, torch.device("cpu"), seed=0, flip=True, resident_bytes=0)
    loader = torch.utils.data.DataLoader(ImageFolderLike(folder, args.res), batch_size=args.batch, shuffle=True,
                                         drop_last=True, num_workers=args.ref_workers,
                                         persistent_workers=args.ref_workers > 0)
    walls: dict[str, list[float]] = {"reference": [], "resident": [], "memmap": []}
    cpus: dict[str, list[float]] = {"reference": [], "resident": [], "memmap": []}
    counts: dict[str, int] = {}
    for epoch in range(args.epochs):
        for name, batches in (("reference", loader), ("resident", resident.epoch(epoch)),
                              ("memmap", mapped.epoch(epoch))):
            wall, cpu, counts[name] = timed_epoch(batches)
            walls[name].append(wall)
            cpus[name].append(cpu)
    ref_wall, ref_cpu = statistics.median(walls["reference"]), statistics.median(cpus["reference"])
    print(f"\nloading one epoch ({counts['reference']} images, batch {args.batch}, median of {args.epochs} epochs"
          + (f"; the reference's CPU time misses its {args.ref_workers} workers" if args.ref_workers else "") + ")")
    results: dict[str, object] = {
        "cpu": cpu_name(), "n": args.n, "res": args.res, "same_sha256": sha[1] == sha[2],
        "prepare_images_per_s": {str(k): round(statistics.median(v)) for k, v in rates.items()},
        "prepare_images_per_cpu_s": {str(k): round(statistics.median(v)) for k, v in cpu_rates.items()},
        "epoch_wall_s": {k: round(statistics.median(v), 4) for k, v in walls.items()},
        "epoch_cpu_s": {k: round(statistics.median(v), 4) for k, v in cpus.items()},
    }
    for name in ("reference", "resident", "memmap"):
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        line = f"  {name:9s}: {wall * 1000:8.1f} ms/epoch wall ({counts[name] / wall:9,.0f} images/s), " \
               f"{cpu * 1000:8.1f} ms CPU"
        if name != "reference":
            verdict = "meets" if ref_wall / wall >= 20 else "MISSES"
            line += f"  → {ref_wall / wall:,.0f}× wall, {ref_cpu / max(cpu, 1e-9):,.0f}× CPU [{verdict} 20×]"
            results[f"speedup_{name}"] = round(ref_wall / wall, 1)
        print(line)
    print("\n" + json.dumps(results))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
