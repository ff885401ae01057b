"""What the training health checks cost: images/s of the same short run with checks off, every 100 and every 10 steps.

    python bench/health.py [--rounds 3] [--steps 200] [--threads 1]

Runs alternate (off, 100, 10, off, 100, 10, ...) in one process on a fixed 32-px dataset, so a loaded machine
slows every setting alike; the figure is each setting's median images/s as a ratio of the median with checks
off. Prints one Markdown table row per setting.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from facegan.data.dataset import write_dataset
from facegan.models.presets import build_config
from facegan.training.loop import train


def images(count: int, resolution: int, seed: int = 0) -> np.ndarray:
    """Blobs of colour on noise: enough structure for a GAN, no rendering cost."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:resolution, 0:resolution] / resolution
    out = rng.integers(0, 40, size=(count, resolution, resolution, 3), dtype=np.uint8)
    for i in range(count):
        (cx, cy), r = rng.uniform(0.3, 0.7, 2), rng.uniform(0.15, 0.3)
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        out[i][disc] = rng.integers(100, 255, size=3, dtype=np.uint8)
    return out


def one_run(data: Path, out: Path, every: int, steps: int) -> float:
    """images/s of one training run (its own log: images over the wall time of all steps)."""
    config = build_config("dcgan", {
        "data": {"path": str(data)},
        "model": {"resolution": 32, "nz": 64, "ngf": 32, "ndf": 32},
        "train": {"batch_size": 64, "steps": steps, "device": "cpu", "log_every": 50, "sample_every": 10**6,
                  "checkpoint_every": 10**6, "health_every": every, "health_warmup": 0},
    })
    started = time.perf_counter()
    train(config, out, show_progress=False)
    return steps * 64 / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = (0, 100, 10)
    speeds: dict[int, list[float]] = {every: [] for every in settings}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        write_dataset(data, images(2048, 32), source="bench:blobs")
        for round_ in range(args.rounds):
            for every in settings:
                speeds[every].append(one_run(data, Path(tmp) / f"run-{round_}-{every}", every, args.steps))
    reference = statistics.median(speeds[0])
    print("| health checks | images/s (median, min-max) | vs off |")
    print("|---|---|---|")
    for every in settings:
        label = "off (`--health-every 0`)" if every == 0 else f"every {every} steps"
        median = statistics.median(speeds[every])
        print(f"| {label} | {median:.0f} ({min(speeds[every]):.0f}-{max(speeds[every]):.0f}) | "
              f"{median / reference:.3f} |")


if __name__ == "__main__":
    main()
