"""How close facegan's DCGAN-64 training step comes to the CPU's matmul rate ("faces sooner on every CPU", item 4).

The reference is a large square torch.mm (fp32, --mm 2048: 2·n³ FLOPs per product, repeated for about
--mm-seconds per round) and, where the CPU multiplies bf16 natively (avx512_bf16 or AMX: facegan's
cpu_has_fast_bf16()), the same torch.mm on bfloat16 tensors. Against it runs one full training step of the
tutorial's DCGAN-64 (`build_config("dcgan")`) as facegan's loop takes it: build_models, Speed.prepare_model,
build_optimizers (fused Adam), a StepContext with latents from torch.randn, and gan_step on a fixed batch of
random "real" images in [-1, 1] put into the run's layout by Speed.images every step. Contestants: fp32 NCHW
(facegan's fp32 path today), fp32 channels_last, and bf16 autocast + channels_last where bf16 is fast.

Each step's FLOPs are counted once with torch.utils.flop_counter.FlopCounterMode over one fp32 step (G forward,
D forward and backward on reals and fakes, G's update through the frozen D; the issue quotes ≈ 2.27 GFLOP per
image) and divided by its batch; a contestant's GFLOP/s is that count × its images/s, and its fraction is
that rate over the mm rate of the same precision (the issue's target: ≥ 0.70 in fp32 on every CPU kind).
All contestants alternate within each of --rounds rounds (fresh nets each round, --warmup untimed steps, then
--steps timed ones), so noise from other work hits them alike; the table gives the median and every round.

    python bench/kernels.py                                   # 1 thread, batch 128, 3 rounds
    python bench/kernels.py --threads 16 --json /tmp/kernels.json
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python bench/kernels.py   # AVX2-only stand-in (no bf16)
    python bench/kernels.py --quick                           # smoke test: batch 16, 2 steps, 1 round, mm 512

On an AVX-512 machine the two environment variables make oneDNN and PyTorch's own kernels use AVX2 code, a
stand-in for an AVX2-only CPU; under it the bf16 contestants are skipped (its bf16 would not be native). The
fp32 torch.mm itself runs MKL's sgemm where torch has MKL (the x86 wheels), which neither variable reaches: add
MKL_ENABLE_INSTRUCTIONS=AVX2 to cap the reference too (the report prints all three variables).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from facegan.models import build_models, get_family
from facegan.models.family import StepContext
from facegan.models.presets import build_config
from facegan.training.optim import build_optimizers
from facegan.training.precision import Speed, cpu_flags, cpu_has_fast_bf16, resolve_speed
from facegan.training.step import gan_step

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_speed import cpu_name  # bench/ is not a package

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile")
ENV_VARS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) below native bf16 dot products: under them bf16 would be emulated.
NO_BF16_ISAS = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}
TARGET = 0.70  # the issue's goal: step GFLOP/s ≥ 70 % of the mm GFLOP/s
ISSUE_GFLOP_PER_IMAGE = 2.27
FLOP_BATCH = 4  # FLOPs per image do not depend on the batch; count them on a small one
DEFAULTS = {"batch": 128, "steps": 10, "warmup": 3, "rounds": 3, "mm": 2048, "mm_seconds": 1.5}
QUICK = {"batch": 16, "steps": 2, "warmup": 1, "rounds": 1, "mm": 512, "mm_seconds": 0.1}
CPU = torch.device("cpu")


# --- the machine ------------------------------------------------------------------------------------------


def _lscpu_model() -> str:
    """lscpu's "Model name" ("" where lscpu is missing)."""
    if shutil.which("lscpu") is None:
        return ""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model name":
            return value.strip()
    return ""


def _cpuinfo(key: str) -> str:
    """The first value of `key` in /proc/cpuinfo ("?" where absent)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        pass
    return "?"


def cpu_kind() -> dict[str, Any]:
    """What kind of CPU this is and which kernels torch and oneDNN may use on it."""
    flags = cpu_flags()
    return {
        "description": cpu_name(),
        "lscpu_model_name": _lscpu_model(),
        "cpu_family": _cpuinfo("cpu family"),
        "model": _cpuinfo("model"),
        "flags": {flag: flag in flags for flag in FLAGS},
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "env": {name: os.environ[name] for name in ENV_VARS if name in os.environ},
        "fp32_mm_library": "MKL sgemm" if torch.backends.mkl.is_available() else "torch's own BLAS",
    }


def bf16_verdict(setting: str) -> tuple[bool, str]:
    """(measure bf16?, why) for --bf16 auto/on/off; auto: where the CPU has native bf16 and no AVX2 stand-in."""
    if setting == "off":
        return False, "skipped (--bf16 off)"
    if setting == "on":
        return True, "measured (--bf16 on)"
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    capability = os.environ.get("ATEN_CPU_CAPABILITY", "").lower()
    if isa in NO_BF16_ISAS or capability in ("avx2", "default"):
        env = " ".join(f"{k}={os.environ[k]}" for k in ENV_VARS[:2] if k in os.environ)
        return False, f"skipped: AVX2 stand-in ({env})"
    if not cpu_has_fast_bf16():
        return False, "skipped: no avx512_bf16 or AMX on this CPU"
    return True, "measured (native bf16: avx512_bf16 or AMX)"


# --- the matmul reference -----------------------------------------------------------------------------------


class Matmul:
    """An n×n torch.mm in one dtype, repeated often enough to take about `seconds` per measurement."""

    def __init__(self, n: int, dtype: torch.dtype, seconds: float) -> None:
        generator = torch.Generator().manual_seed(0)
        self.n, self.dtype = n, dtype
        self.a = torch.randn(n, n, generator=generator).to(dtype)
        self.b = torch.randn(n, n, generator=generator).to(dtype)
        self.out = torch.empty(n, n, dtype=dtype)
        torch.mm(self.a, self.b, out=self.out)  # warm-up: oneDNN primitives, pages
        single = self._seconds_per_mm(1)
        self.repeats = max(2, math.ceil(seconds / max(single, 1e-9)))

    def _seconds_per_mm(self, repeats: int) -> float:
        start = time.perf_counter()
        for _ in range(repeats):
            torch.mm(self.a, self.b, out=self.out)
        return (time.perf_counter() - start) / repeats

    def gflops(self) -> float:
        """GFLOP/s of one measurement (2·n³ FLOPs per product)."""
        torch.mm(self.a, self.b, out=self.out)
        return 2 * self.n**3 / self._seconds_per_mm(self.repeats) / 1e9


# --- the training step --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contestant:
    """One way to run the DCGAN-64 step."""

    name: str
    precision: str  # "fp32" or "bf16"
    channels_last: bool

    def speed(self) -> Speed:
        return resolve_speed(self.precision, "on" if self.channels_last else "off", "off", CPU)


CONTESTANTS = [
    Contestant("fp32 NCHW", "fp32", False),
    Contestant("fp32 channels_last", "fp32", True),
    Contestant("bf16 channels_last", "bf16", True),
]


def make_step(speed: Speed, batch: int, seed: int = 0) -> Callable[[int], None]:
    """A fresh DCGAN-64 (the tutorial's nets) with its optimisers, as facegan's loop builds them for `speed`;
    returns a function running training step i on a fixed batch of random images in [-1, 1]."""
    config = build_config("dcgan", {"train": {"batch_size": batch}})
    if get_family(config.model.family).step is not None:
        raise SystemExit("the dcgan family no longer trains with gan_step: update bench/kernels.py")
    torch.manual_seed(seed)
    netG, netD = build_models(config.model)
    for net in (netG, netD):
        speed.prepare_model(net)
    optG, optD = build_optimizers(config, netG, netD)
    noise = torch.Generator().manual_seed(seed + 1)
    nz, res, channels = config.model.nz, config.model.resolution, config.model.channels
    ctx = StepContext(netG=netG, netD=netD, optG=optG, optD=optD, config=config,
                      latents=lambda n: torch.randn(n, nz, generator=noise),
                      autocast=speed.autocast, scaler=speed.grad_scaler(), noise=noise)
    real = torch.rand(batch, channels, res, res, generator=torch.Generator().manual_seed(seed + 2)) * 2 - 1

    def step(i: int) -> None:
        ctx.step = i
        gan_step(ctx, speed.images(real))  # the loop hands each NCHW batch through speed.images too

    return step


def gflop_per_image() -> float:
    """FLOPs of one fp32 training step (forward and backward, by torch's flop formulas) per image, in GFLOP."""
    step = make_step(CONTESTANTS[0].speed(), FLOP_BATCH)
    step(0)  # the counted step is a steady one, not the first
    with FlopCounterMode(display=False) as counter:
        step(1)
    return counter.get_total_flops() / FLOP_BATCH / 1e9


def images_per_second(contestant: Contestant, batch: int, warmup: int, steps: int) -> float:
    """Images/s over `steps` timed steps of fresh nets after `warmup` untimed ones."""
    step = make_step(contestant.speed(), batch)
    for i in range(warmup):
        step(i)
    start = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(i)
    return batch * steps / (time.perf_counter() - start)


# --- the run ------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, bf16: bool) -> dict[str, Any]:
    """Every measurement of every round, the contestants alternating within each round."""
    contestants = [c for c in CONTESTANTS if bf16 or c.precision != "bf16"]
    per_image = gflop_per_image()
    print(f"FLOPs: {per_image:.3f} GFLOP per image per training step", file=sys.stderr, flush=True)
    matmuls = {"fp32": Matmul(args.mm, torch.float32, args.mm_seconds)}
    if bf16:
        matmuls["bf16"] = Matmul(args.mm, torch.bfloat16, args.mm_seconds)
    mm_rounds: dict[str, list[float]] = {p: [] for p in matmuls}
    step_rounds: dict[str, list[float]] = {c.name: [] for c in contestants}
    for r in range(args.rounds):
        for precision, mm in matmuls.items():
            mm_rounds[precision].append(mm.gflops())
            print(f"round {r + 1}/{args.rounds}  mm {precision} {args.mm}²{'':<10} "
                  f"{mm_rounds[precision][-1]:9.1f} GFLOP/s", file=sys.stderr, flush=True)
        for c in contestants:
            step_rounds[c.name].append(images_per_second(c, args.batch, args.warmup, args.steps))
            print(f"round {r + 1}/{args.rounds}  {c.name:<22} {step_rounds[c.name][-1]:9.1f} img/s",
                  file=sys.stderr, flush=True)
    mm = {p: {"n": args.mm, "repeats": matmuls[p].repeats, "gflops_rounds": v, "gflops": statistics.median(v)}
          for p, v in mm_rounds.items()}
    base = statistics.median(step_rounds[CONTESTANTS[0].name])
    steps = {}
    for c in contestants:
        values = step_rounds[c.name]
        rate = statistics.median(values)
        ref = mm[c.precision]
        steps[c.name] = {
            "precision": c.precision, "channels_last": c.channels_last,
            "images_per_s_rounds": values, "images_per_s": rate, "gflops": rate * per_image,
            "fraction_of_mm": rate * per_image / ref["gflops"],
            "fraction_of_mm_rounds": [v * per_image / m for v, m in zip(values, ref["gflops_rounds"], strict=True)],
            "vs_fp32_nchw": rate / base,
        }
    return {"gflop_per_image": per_image, "mm": mm, "steps": steps}


def report(cpu: dict[str, Any], results: dict[str, Any], args: argparse.Namespace, bf16_note: str) -> str:
    """The Markdown summary."""
    flags = ", ".join(f"{f} {'yes' if v else 'no'}" for f, v in cpu["flags"].items())
    env = ", ".join(f"{k}={cpu['env'][k]}" if k in cpu["env"] else f"{k} unset" for k in ENV_VARS)
    per_image = results["gflop_per_image"]
    lines = [
        "# DCGAN-64 training step against torch.mm (bench/kernels.py)", "",
        f"- CPU: lscpu \"{cpu['lscpu_model_name'] or '?'}\", cpu family {cpu['cpu_family']}, model {cpu['model']}; "
        f"{flags}; {cpu['description']}",
        f"- torch {cpu['torch']}, ATen CPU capability {cpu['aten_cpu_capability']}; {env}; "
        f"{torch.get_num_threads()} thread(s); fp32 torch.mm by {cpu['fp32_mm_library']}; "
        f"load average {os.getloadavg()[0]:.1f} at the end.",
        f"- bf16: {bf16_note}.",
        f"- FLOPs: {per_image:.3f} GFLOP per image per training step (FlopCounterMode over one fp32 step; the issue "
        f"quotes ≈ {ISSUE_GFLOP_PER_IMAGE}).",
        f"- batch {args.batch}, {args.rounds} round(s) × ({args.warmup} warm-up + {args.steps} timed steps), "
        f"mm {args.mm}² × {results['mm']['fp32']['repeats']} per round; median over rounds, every round last.",
        "",
        "| contestant | img/s | GFLOP/s | ÷ mm of its precision | × fp32 NCHW | per round |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for precision, mm in results["mm"].items():
        rounds = ", ".join(f"{v:.1f}" for v in mm["gflops_rounds"])
        lines.append(f"| torch.mm {precision} {mm['n']}² | | {mm['gflops']:.1f} | 1.00 | | {rounds} GFLOP/s |")
    for name, s in results["steps"].items():
        rounds = ", ".join(f"{v:.1f}" for v in s["images_per_s_rounds"])
        fraction = f"{s['fraction_of_mm']:.2f}"
        if s["precision"] == "fp32":
            fraction += " ✓" if s["fraction_of_mm"] >= TARGET else " ✗"
        lines.append(f"| step {name} | {s['images_per_s']:.1f} | {s['gflops']:.1f} | {fraction} | "
                     f"{s['vs_fp32_nchw']:.2f} | {rounds} img/s |")
    lines += ["", f"✓/✗: the fp32 step at ≥ {TARGET:.0%} of the fp32 torch.mm rate on these cores (the issue's goal)."]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--batch", type=int, help=f"images per step (default {DEFAULTS['batch']})")
    parser.add_argument("--steps", type=int, help=f"timed steps per round (default {DEFAULTS['steps']})")
    parser.add_argument("--warmup", type=int, help=f"untimed steps per round (default {DEFAULTS['warmup']})")
    parser.add_argument("--rounds", type=int, help=f"rounds (default {DEFAULTS['rounds']})")
    parser.add_argument("--mm", type=int, help=f"side of the square torch.mm (default {DEFAULTS['mm']})")
    parser.add_argument("--mm-seconds", type=float, help=f"seconds of mm per round (default {DEFAULTS['mm_seconds']})")
    parser.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                        help="bf16 contestants: auto (where the CPU has native bf16 and no AVX2 stand-in), on, off")
    parser.add_argument("--json", default="", help="also write every number here")
    parser.add_argument("--quick", action="store_true", help="smoke test: batch 16, 2 steps, 1 round, mm 512")
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    cpu = cpu_kind()
    print(f"CPU: {cpu['description']}; lscpu \"{cpu['lscpu_model_name']}\"; "
          f"{', '.join(f'{f}={int(v)}' for f, v in cpu['flags'].items())}; "
          f"ATen {cpu['aten_cpu_capability']}; {cpu['env'] or 'no ISA env vars'}", file=sys.stderr, flush=True)
    bf16, bf16_note = bf16_verdict(args.bf16)
    results = run(args, bf16)
    sys.stdout.write(report(cpu, results, args, bf16_note))
    if args.json:
        payload = {"cpu": cpu, "threads": torch.get_num_threads(), "bf16": bf16_note, "target": TARGET,
                   "args": vars(args), **results}
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
