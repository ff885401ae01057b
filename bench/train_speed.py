"""Training speed of facegan's default loop against the PyTorch DCGAN example, on the same images (issue 10).

The reference is pytorch/examples' dcgan/main.py as written: an ImageFolder of CelebA-shaped 178×218 JPEGs that
every step decodes with PIL and turns into 64-px tensors (Resize(64), CenterCrop(64), ToTensor, Normalize) in
DataLoader workers (2, the example's default), fp32 NCHW nets ending in Sigmoid with BCELoss, `.item()` calls
every step. It also runs with its images already decoded in memory, to tell the gain from the data path apart
from the gain from the maths. facegan's loop trains with its defaults (plus any --facegan variants) on the same
JPEGs prepared once by `facegan prepare`. The loops ALTERNATE within each round, so a machine shared with other
work slows all of them alike; each figure is the steady-state images/s over --steps steps after --warmup steps.

    python bench/train_speed.py                          # CPU: 3 rounds, DCGAN-64, batch 128
    python bench/train_speed.py --quality-steps 300      # also the SWD quality guard (default vs fp32)
    python bench/train_speed.py --device cuda --ref-workers 2,16 --steps 50 --warmup 10

torchvision cannot be installed beside this torch (TOOLCHAIN.md), so the example's transforms are written
here with PIL/numpy/torch, as torchvision computes them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from facegan.config import TrainConfig
from facegan.run.state import TrainingRun
from facegan.training.configure import config_for_data
from facegan.training.loop import train
from facegan.training.precision import resolve_speed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tutorial import Reference  # bench/ is not a package

# ../shared beside the repo; FACEGAN_BENCH_DATA names a copy elsewhere (bench/gpu_wheels.sh carries one to a GPU).
SHARED_DATA = Path(os.environ.get("FACEGAN_BENCH_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
GFLOP_PER_IMAGE = 2.5  # DCGAN-64 training: D on real and fake, G, and all backward passes (issue 10)


def require_shared_data() -> None:
    """Stop with one clear message when the real photos of ../shared/data (beside the repository) are absent."""
    needed = [SHARED_DATA / "astronaut.png", SHARED_DATA / "lfw-subset" / "faces"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise SystemExit(f"{Path(__file__).name}: this benchmark makes its JPEGs from the real photos in "
                         f"../shared/data beside the repository (astronaut.png, lfw-subset/faces/), but "
                         f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing: put that folder "
                         "there (the tests do not need it).")


# --- the machine ------------------------------------------------------------------------------------------


def cpu_name() -> str:
    """The CPU model, with family/model numbers and its bf16 features (lscpu says only "AMD EPYC" here)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or platform.machine()
    flags = set(fields.get("flags", "").split())
    bf16 = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return (f"{fields.get('model name', '?')} (family {fields.get('cpu family', '?')}, "
            f"model {fields.get('model', '?')}, "
            f"{os.cpu_count()} cores, {float(fields.get('cpu MHz', 0)) / 1000:.2f} GHz, "
            f"bf16: {', '.join(bf16) or 'none'})")


def device_name(device: torch.device) -> str:
    """The GPU's name for CUDA runs, else the CPU's."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (host CPU: {cpu_name()})"
    return cpu_name()


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer reads finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- the images ------------------------------------------------------------------------------------------------


def make_jpeg_folder(root: Path, count: int, seed: int = 0) -> Path:
    """`count` CelebA-shaped 178×218 JPEGs in root/faces/ (an ImageFolder class), 000001.jpg, ...

    Made from real photos: random crops of the astronaut portrait and the LFW face crops, scaled up.
    """
    folder = root / "faces"
    if folder.is_dir() and len(list(folder.glob("*.jpg"))) == count:
        return root
    require_shared_data()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    if (SHARED_DATA / "astronaut.png").exists():
        astronaut = Image.open(SHARED_DATA / "astronaut.png").convert("RGB")
    else:  # no photos here: smooth random colour fields, JPEG-coded alike (decoding costs about the same)
        print(f"{SHARED_DATA / 'astronaut.png'} is missing: the JPEGs are made of smooth random images", flush=True)
        small = rng.uniform(0, 255, (16, 16, 3)).astype(np.uint8)
        astronaut = Image.fromarray(small).resize((512, 512), Image.BICUBIC)
    faces = [Image.open(p).convert("RGB") for p in sorted((SHARED_DATA / "lfw-subset" / "faces").glob("*.png"))]
    for i in range(count):
        if faces and i % 4 == 3:
            img = faces[int(rng.integers(len(faces)))].resize((178, 218), Image.BICUBIC)
        else:
            h = int(rng.uniform(0.45, 1.0) * 512)
            w = min(512, round(h * 178 / 218))
            x, y = int(rng.integers(0, 512 - w + 1)), int(rng.integers(0, 512 - h + 1))
            img = astronaut.crop((x, y, x + w, y + h)).resize((178, 218), Image.BICUBIC)
        if rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        pixels = np.asarray(img, np.float32) * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20)
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{i + 1:06d}.jpg", quality=90)
    return root


# --- the reference: pytorch/examples dcgan/main.py --------------------------------------------------------------


def tv_resize(img: Image.Image, size: int) -> Image.Image:
    """torchvision.transforms.Resize(size) on a PIL image: the shorter side to `size`, bilinear (antialiased)."""
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    return img.resize((new_w, new_h), Image.BILINEAR)


def tv_center_crop(img: Image.Image, size: int) -> Image.Image:
    """torchvision.transforms.CenterCrop(size) on a PIL image."""
    w, h = img.size
    top, left = round((h - size) / 2.0), round((w - size) / 2.0)
    return img.crop((left, top, left + size, top + size))


def tv_to_tensor_normalize(img: Image.Image) -> torch.Tensor:
    """ToTensor() then Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)): C×H×W float in [-1, 1]."""
    x = torch.from_numpy(np.array(img, np.uint8, copy=True)).permute(2, 0, 1).float().div(255)
    return (x - 0.5) / 0.5


class ImageFolder(torch.utils.data.Dataset):
    """torchvision.datasets.ImageFolder with the example's transform: decode, Resize(64), CenterCrop(64)."""

    def __init__(self, root: Path, image_size: int = 64) -> None:
        self.files = sorted(p for d in sorted(root.iterdir()) if d.is_dir() for p in d.glob("*.jpg"))
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        with open(self.files[index], "rb") as handle:
            img = Image.open(handle).convert("RGB")
        img = tv_center_crop(tv_resize(img, self.image_size), self.image_size)
        return tv_to_tensor_normalize(img), 0


def cpu_seconds(pids: list[int] = ()) -> float:  # type: ignore[assignment]
    """CPU time used so far by this process (all threads) plus the live processes `pids` (loader workers)."""
    total = time.process_time()
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
        except (OSError, IndexError, ValueError):
            pass
    return total


class Window:
    """Wall and CPU time over a measured window: images/s and images per CPU-second (which a machine shared
    with other work distorts less: a loop gets CPU-seconds only while it runs)."""

    def __init__(self, device: torch.device, pids: Callable[[], list[int]] = list) -> None:
        self.device, self.pids = device, pids

    def start(self) -> None:
        synchronize(self.device)
        self.wall, self.cpu = time.perf_counter(), cpu_seconds(self.pids())

    def stop(self, images: int) -> tuple[float, float]:
        synchronize(self.device)
        wall, cpu = time.perf_counter() - self.wall, cpu_seconds(self.pids()) - self.cpu
        return images / wall, images / max(cpu, 1e-9)


def timed_steps(step: Callable[[Any], None], batches: Iterator[Any], warmup: int, steps: int,
                window: Window) -> tuple[float, float]:
    """(images/s, images per CPU-second) of `step` over `steps` batches after `warmup` (loading included)."""
    for _ in range(warmup):
        step(next(batches))
    window.start()
    count = 0
    for _ in range(steps):
        data = next(batches)
        step(data)
        count += data[0].shape[0]
    return window.stop(count)


def reference_jpeg(folder: Path, device: torch.device, workers: int, batch: int, warmup: int,
                   steps: int) -> tuple[float, float]:
    """The example end to end: JPEG decoding and transforms in `workers` DataLoader workers."""
    loader = torch.utils.data.DataLoader(ImageFolder(folder), batch_size=batch, shuffle=True, num_workers=workers)
    ref = Reference(device)
    batches = iter(loader)  # starts the workers
    pids = [w.pid for w in getattr(batches, "_workers", [])]
    try:
        return timed_steps(ref.step, batches, warmup, steps, Window(device, lambda: pids))
    finally:
        del batches  # shuts the workers down


def decode_all(folder: Path) -> torch.Tensor:
    """Every image through the example's transform once: N×3×64×64 float."""
    dataset = ImageFolder(folder)
    return torch.stack([dataset[i][0] for i in range(len(dataset))])


def reference_memory(images: torch.Tensor, device: torch.device, batch: int, warmup: int,
                     steps: int) -> tuple[float, float]:
    """The example's maths on images already decoded in memory (shuffled batches, no workers)."""
    ref = Reference(device)
    generator = torch.Generator().manual_seed(0)

    def batches() -> Iterator[tuple[torch.Tensor, int]]:
        while True:
            order = torch.randperm(len(images), generator=generator)
            for b in range(len(images) // batch):
                yield images[order[b * batch:(b + 1) * batch]], 0

    return timed_steps(ref.step, batches(), warmup, steps, Window(device))


# --- facegan ------------------------------------------------------------------------------------------------------


def facegan_speed(prepared: Path, device: torch.device, batch: int, warmup: int, steps: int,
                  train_options: dict[str, Any], work: Path, model: str = "dcgan") -> tuple[tuple[float, float], str]:
    """facegan's training loop (`facegan train` with `train_options` over its defaults): speeds and settings."""
    overrides = {"train": {"batch_size": batch, "steps": warmup + steps, "device": str(device), **train_options}}
    config = config_for_data(model, prepared, overrides)
    window = Window(device)
    measured: list[tuple[float, float]] = []

    def clock(run: TrainingRun) -> None:
        if run.step == warmup:
            window.start()
        elif run.step == warmup + steps:
            measured.append(window.stop(steps * batch))

    run_dir = Path(tempfile.mkdtemp(dir=work, prefix="facegan-run-"))
    shutil.rmtree(run_dir)
    try:
        train(config, run_dir, hooks=[clock], show_progress=False)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    t = config.train
    settings = resolve_speed(t.precision, t.channels_last, t.compile, device).describe()
    return measured[0], settings


# --- quality guard --------------------------------------------------------------------------------------------------


def quality_guard(prepared: Path, device: torch.device, batch: int, steps: int, seeds: list[int],
                  variants: dict[str, dict[str, Any]], work: Path, n_images: int,
                  model: dict[str, Any]) -> dict[str, list[float]]:
    """SWD (×1e3, lower is better) of G after `steps` steps for each variant and seed, against real images."""
    from facegan.data.dataset import PreparedDataset
    from facegan.generation.sample import load_generator
    from facegan.metrics.swd import descriptor_pyramid, swd

    reals = np.asarray(PreparedDataset.open(prepared).images[:n_images])
    reference = descriptor_pyramid(reals, seed=0)
    results: dict[str, list[float]] = {name: [] for name in variants}
    for seed in seeds:
        for name, options in variants.items():
            overrides = {"model": model,
                         "train": {"batch_size": batch, "steps": steps, "device": str(device), "seed": seed,
                                   "sample_every": 10**9, "checkpoint_every": 10**9, **options}}
            run_dir = work / f"quality-{name}-{seed}"
            shutil.rmtree(run_dir, ignore_errors=True)
            started = time.perf_counter()
            train(config_for_data("dcgan", prepared, overrides), run_dir, show_progress=False)
            fakes = load_generator(run_dir).sample(len(reals), seed=1000 + seed)
            value = swd(reals, fakes, seed=0, reference=reference).avg
            results[name].append(value)
            print(f"  quality {name:>8} seed {seed}: SWD {value:7.2f} ({time.perf_counter() - started:.0f} s)",
                  flush=True)
            shutil.rmtree(run_dir, ignore_errors=True)
    return results


def prepared_at(jpegs: Path, work: Path, resolution: int) -> Path:
    """The JPEGs prepared once by `facegan prepare` at `resolution` (kept in `work` between runs)."""
    prepared = work / f"prepared-{resolution}"
    if not (prepared / "meta.json").exists():
        from facegan.data.prepare import prepare

        started = time.perf_counter()
        prepare(str(jpegs / "faces"), prepared, resolution=resolution, workers=0, show_progress=False)
        print(f"facegan prepare at {resolution} px (once): {time.perf_counter() - started:.1f} s")
    return prepared


# --- main ----------------------------------------------------------------------------------------------------------


def spread(values: list[float]) -> str:
    """min-max (median) of a list of figures."""
    return f"{min(values):.0f}-{max(values):.0f} (median {statistics.median(values):.0f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/tmp/facegan-bench-speed", help="folder for the JPEGs and the dataset")
    parser.add_argument("--images", type=int, default=2560, help="JPEGs to make (≥ (warmup+steps)×batch)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, help="torch intra-op threads of both loops (default: torch's, one "
                        "per core); 1 is steadier on a CPU shared with other work")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--ref-workers", default="2", help="comma list of DataLoader worker counts")
    parser.add_argument("--no-memory-reference", action="store_true")
    parser.add_argument("--facegan", default="default",
                        help="comma list of facegan variants: default, or PRECISION[+compile][+nchw|+cl], e.g. "
                        "default,fp32,fp32+cl,bf16+compile; +ro compiles with CUDA graphs (reduce-overhead)")
    parser.add_argument("--model", default="dcgan", help="facegan's model preset (the reference is DCGAN-64 always)")
    parser.add_argument("--quality-steps", type=int, default=0, help="SWD guard: steps per run (0: skip)")
    parser.add_argument("--quality-seeds", default="0,1")
    parser.add_argument("--quality-candidate", default="auto", help="precision compared with fp32 (default auto)")
    parser.add_argument("--quality-images", type=int, default=1024)
    parser.add_argument("--quality-res", type=int, default=64, help="DCGAN resolution of the guard (32 is ~4× cheaper)")
    parser.add_argument("--quality-width", type=int, default=64, help="ngf = ndf of the guard's DCGAN")
    parser.add_argument("--quality-batch", type=int, help="batch of the guard's runs (default --batch)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    workers = [int(w) for w in args.ref_workers.split(",")]
    need = (args.warmup + args.steps) * args.batch
    if args.images < need:
        parser.error(f"--images must be at least (warmup+steps)×batch = {need}")

    print(f"device: {device_name(device)}; torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    started = time.perf_counter()
    jpegs = make_jpeg_folder(work / "jpeg", args.images)
    print(f"{args.images} CelebA-shaped 178×218 JPEGs in {jpegs} ({time.perf_counter() - started:.1f} s)")
    prepared = prepared_at(jpegs, work, 64)
    in_memory = None if args.no_memory_reference or not args.rounds else decode_all(jpegs)

    default_precision = TrainConfig().precision
    variants: dict[str, dict[str, Any]] = {}
    for name in args.facegan.split(","):
        options: dict[str, Any] = {}
        for part in name.split("+"):
            if part in ("auto", "fp32", "bf16", "fp16"):
                options["precision"] = part
            elif part == "compile":
                options["compile"] = "on"
            elif part in ("ro", "reduce-overhead"):  # torch.compile with CUDA graphs
                options["compile"] = "reduce-overhead"
            elif part == "nchw":
                options["channels_last"] = "off"
            elif part == "cl":
                options["channels_last"] = "on"
            elif part != "default":
                parser.error(f"unknown facegan variant part {part!r}")
        variants[name] = options

    figures: dict[str, list[float]] = {}  # images/s per round
    per_cpu: dict[str, list[float]] = {}  # images per CPU-second per round

    def record(key: str, measured: tuple[float, float], round_number: int) -> None:
        figures.setdefault(key, []).append(measured[0])
        per_cpu.setdefault(key, []).append(measured[1])
        print(f"round {round_number}: {key}: {measured[0]:.1f} img/s, {measured[1]:.1f} img per CPU-s", flush=True)

    labels: dict[str, str] = {}
    for r in range(1, args.rounds + 1):
        for w in workers:
            record(f"reference, JPEG path, {w} workers",
                   reference_jpeg(jpegs, device, w, args.batch, args.warmup, args.steps), r)
        for name, options in variants.items():
            measured, label = facegan_speed(prepared, device, args.batch, args.warmup, args.steps, options, work,
                                            args.model)
            labels[f"facegan {name}"] = label + (" (the config defaults)" if name == "default" else "")
            record(f"facegan {name}", measured, r)
        if in_memory is not None:
            record("reference, data in memory",
                   reference_memory(in_memory, device, args.batch, args.warmup, args.steps), r)

    if figures:
        base_key = f"reference, JPEG path, {workers[0]} workers"
        print(f"\nDCGAN-64 (facegan: {args.model}), batch {args.batch}, {args.rounds} rounds of {args.steps} steps "
              f"after {args.warmup} warm-up; {device_name(device)}")
        print(f"{'loop':<34} {'images/s: range (median)':<26} {'× ref. per round':<18} {'GFLOP/s':<9} "
              f"{'img per CPU-s (median)':<24} × ref.")
        for key, values in figures.items():
            ratios = [v / b for v, b in zip(values, figures[base_key], strict=True)]
            cpu_ratio = statistics.median(per_cpu[key]) / statistics.median(per_cpu[base_key])
            gflops = statistics.median(values) * GFLOP_PER_IMAGE
            print(f"{key:<34} {spread(values):<26} {f'{min(ratios):.2f}-{max(ratios):.2f}×':<18} {gflops:<9.0f} "
                  f"{spread(per_cpu[key]):<24} {cpu_ratio:.2f}×" + (f"   [{labels[key]}]" if key in labels else ""))

    result: dict[str, Any] = {"device": device_name(device), "torch": torch.__version__, "batch": args.batch,
                              "model": args.model, "steps": args.steps, "warmup": args.warmup, "rounds": args.rounds,
                              "images_per_s": figures, "images_per_cpu_s": per_cpu, "settings": labels}
    if args.quality_steps:
        seeds = [int(s) for s in args.quality_seeds.split(",")]
        candidate = args.quality_candidate
        guard = {candidate: {"precision": candidate}, "fp32": {"precision": "fp32"}}
        batch = args.quality_batch or args.batch
        model = {"ngf": args.quality_width, "ndf": args.quality_width}
        print(f"\nquality guard: DCGAN-{args.quality_res} (ngf = ndf = {args.quality_width}), batch {batch}: SWD "
              f"after {args.quality_steps} steps, {args.quality_images} images, seeds {seeds}")
        swds = quality_guard(prepared_at(jpegs, work, args.quality_res), device, batch, args.quality_steps, seeds,
                             guard, work, args.quality_images, model)
        means = {k: statistics.mean(v) for k, v in swds.items()}
        noise = max(max(v) - min(v) for v in swds.values())
        gap = abs(means[candidate] - means["fp32"])
        verdict = "within" if gap <= noise else "OUTSIDE"
        print(f"SWD {candidate}: {swds[candidate]}, fp32: {swds['fp32']}; gap of means {gap:.2f} "
              f"is {verdict} the run-to-run spread {noise:.2f} (config default precision: {default_precision})")
        result["quality"] = {"steps": args.quality_steps, "res": args.quality_res, "width": args.quality_width,
                             "batch": batch, "swd": swds, "gap": gap, "spread": noise}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
