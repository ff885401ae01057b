"""Quality of a demo-like model and the cost of each metric at 10k images (issue 5).

    python bench/eval_demo.py --run runs/demo              # the model `make demo` trains
    python bench/eval_demo.py                              # trains a quick stand-in first (32 px synthetic faces)

1. `facegan eval`-equivalent: SWD, face-detection rate and memorisation of --n fakes against the run's training
   data (facefd on --facefd-n of them when dlib is installed), written to RUN/eval/<step>.json as usual.
2. Cost per metric for 10k fakes + 10k reals, wall and CPU seconds (this process, all threads), with the time
   to generate the 10k fakes as the reference measured in the same run, before and after the metrics
   (alternating, since the machine may be shared). facefd and FID are timed on --sample-n images per set and
   scaled linearly to 10k (dlib and Inception cost the same per image); FID uses an Inception network with
   random weights (same arithmetic as the real one) plus one 2048×2048 sqrtm.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

from facegan.data.dataset import PreparedDataset, is_dataset_dir
from facegan.generation.sample import load_generator
from facegan.metrics.evaluation import evaluate, generate_fakes, summary_lines
from facegan.metrics.facedetect import FaceDetector
from facegan.metrics.facefd import FaceEmbedder, dlib_available
from facegan.metrics.fid import inception_features
from facegan.metrics.inception import FIDInceptionV3
from facegan.metrics.memorisation import memorisation, split_memo_reference
from facegan.metrics.swd import swd
from facegan.run.checkpoint import list_checkpoints

TEN_K = 10_000


class Clock:
    """Wall and process-CPU seconds of a block."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")


def quick_run(data: Path, out: Path, steps: int) -> Path:
    """Prepare 20k synthetic 32-px faces (as `make demo`) and train a smaller, shorter DCGAN on them."""
    from facegan.data.prepare import prepare
    from facegan.training.configure import config_for_data
    from facegan.training.loop import train

    if not is_dataset_dir(data):
        prepare("builtin:synthetic-faces", data, resolution=32, count=20_000, workers=2, show_progress=False)
    if not list_checkpoints(out):
        shutil.rmtree(out, ignore_errors=True)  # an unfinished earlier attempt
        config = config_for_data("dcgan", data, {
            "model": {"ngf": 32, "ndf": 32},
            "train": {"batch_size": 64, "steps": steps, "sample_every": 100, "checkpoint_every": 100,
                      "device": "cpu"}})
        train(config, out, show_progress=False)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="run to evaluate (default: train a quick stand-in)")
    parser.add_argument("--data", type=Path, default=Path("data/bench-eval-faces32"))
    parser.add_argument("--quick-run", type=Path, default=Path("runs/bench-eval-quick"))
    parser.add_argument("--steps", type=int, default=400, help="steps of the quick stand-in (batch 64)")
    parser.add_argument("--n", type=int, default=TEN_K)
    parser.add_argument("--facefd-n", type=int, default=2000)
    parser.add_argument("--sample-n", type=int, default=100, help="images per set for the facefd/FID timings")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-eval-demo.json"))
    args = parser.parse_args()
    load_before = os.getloadavg()
    run = args.run or quick_run(args.data, args.quick_run, args.steps)
    report: dict[str, object] = {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
                                 "python": platform.python_version(), "run": str(run), "n": args.n}

    # 1. Quality, exactly what `facegan eval RUN --n N` computes and writes.
    metrics = "swd,faces,memo" + (",facefd" if dlib_available() else "")
    with Clock() as full:
        result = evaluate(run, n=args.n, metrics=metrics, facefd_n=args.facefd_n, device="cpu",
                          show_progress=False)
    report["quality"] = {k: v for k, v in result.items() if not isinstance(v, dict) or k == "swd_levels"}
    report["quality_eval_wall_s"] = round(full.wall, 1)
    print("\n".join(summary_lines(result)))

    # 2. Cost per metric at 10k, alternating with the generation reference.
    gen = load_generator(run, device="cpu")
    dataset = PreparedDataset.open(gen.config.data.path)
    reals = np.asarray(dataset.images[np.sort(np.random.default_rng(0).choice(len(dataset), TEN_K, False))])
    times: dict[str, list[tuple[float, float]]] = {}

    def timed(name: str, fn, scale: float = 1.0) -> object:
        with Clock() as c:
            value = fn()
        times.setdefault(name, []).append((c.wall * scale, c.cpu * scale))
        return value

    fakes = timed("generate 10k fakes (reference)", lambda: generate_fakes(gen, TEN_K, seed=1))
    timed("swd", lambda: swd(reals, fakes))
    detector = FaceDetector()
    timed("faces", lambda: (detector.detect(fakes), detector.detect(reals)))
    train_images = np.asarray(dataset.images)
    reference, heldout = split_memo_reference(train_images, 0)
    timed(f"memo (vs {len(reference)} training images)", lambda: memorisation(fakes, reference, heldout))
    k = args.sample_n
    if dlib_available():
        embedder = FaceEmbedder()
        timed("facefd (scaled from "f"{k}+{k})", lambda: (embedder.embed(fakes[:k]), embedder.embed(reals[:k])),
              scale=TEN_K / k)
    net = FIDInceptionV3().eval().requires_grad_(False)
    timed(f"fid: Inception features (scaled from {k}+{k})",
          lambda: (inception_features(fakes[:k], net), inception_features(reals[:k], net)), scale=TEN_K / k)
    cov = np.cov(np.random.default_rng(0).normal(size=(4096, 2048)), rowvar=False)
    timed("fid: sqrtm of 2048×2048", lambda: scipy.linalg.sqrtm(cov @ cov))
    timed("generate 10k fakes (reference)", lambda: generate_fakes(gen, TEN_K, seed=2))

    ref_wall = float(np.mean([w for w, _ in times["generate 10k fakes (reference)"]]))
    ref_cpu = float(np.mean([c for _, c in times["generate 10k fakes (reference)"]]))
    report["load_average_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    report["cost_10k"] = {name: {"wall_s": [round(w, 2) for w, _ in reps], "cpu_s": [round(c, 2) for _, c in reps],
                                 "vs_generate_wall": round(np.mean([w for w, _ in reps]) / ref_wall, 2),
                                 "vs_generate_cpu": round(np.mean([c for _, c in reps]) / ref_cpu, 2)}
                          for name, reps in times.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(f"CPU {report['cpu']}, load average {report['load_average_before_after']}")
    for name, row in report["cost_10k"].items():
        print(f"{name:48s} wall {row['wall_s']} s  cpu {row['cpu_s']} s  "
              f"×{row['vs_generate_wall']} wall / ×{row['vs_generate_cpu']} cpu of generation")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
