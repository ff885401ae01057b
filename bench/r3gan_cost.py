"""Cost of an R3GAN training step on this CPU against facegan's DCGAN-64, to choose CPU presets (issue 17).

One "step" is what a training loop does per batch of `--batch` images: D's step (G(z) without grad, D on reals
and fakes, the RpGAN loss, optionally R1 + R2 with their double backward, backward, Adam) and G's step (G(z),
D on fakes and reals with D frozen, the RpGAN loss, backward, Adam). DCGAN-64 (facegan's, the tutorial's
widths) runs its own step (BCE on logits, no penalty) in the same rounds. Cells alternate within each round,
so a machine shared with other work slows all of them alike: the ratios within one run are what count.

Cells: every candidate × {fp32, bf16 autocast + channels_last} × {grouped 3×3, grouped + R1+R2, dense 3×3};
DCGAN × {fp32, bf16+cl}. Reported: median ms per step over the rounds, ms per image, the ratio to DCGAN-64's
per-image cost in the same precision, parameter counts, forward GFLOPs per image of G and D, and GFLOPs per
training step (torch.utils.flop_counter, backward and double backward included) with the achieved GFLOP/s.

    python bench/r3gan_cost.py                         # all candidates, 3 rounds, batch 64
    python bench/r3gan_cost.py --only cpu64-a,cpu32-a --rounds 2 --out /tmp/r3gan-cost.md
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from facegan.losses import rpgan_d, rpgan_g, zero_centred_penalty
from facegan.models import dcgan, r3gan

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_speed import cpu_name  # bench/ is not a package

GAMMA = 1.0
FLOP_BATCH = 4  # FLOPs per image do not depend on the batch; count them on a small one


@dataclass(frozen=True)
class Candidate:
    """An R3GAN configuration to price: G's widths from 4×4 up, blocks per stage, channels per 3×3 group."""

    name: str
    resolution: int
    widths: tuple[int, ...]
    blocks: tuple[int, ...] = (2,)
    channels_per_group: int = 16
    nz: int = 64
    step: bool = True  # False: too large to step on a CPU; count parameters and FLOPs only

    def cfg(self, dense: bool = False) -> SimpleNamespace:
        options = {"widths": list(self.widths), "blocks": list(self.blocks),
                   "channels_per_group": 0 if dense else self.channels_per_group}
        return SimpleNamespace(resolution=self.resolution, channels=3, nz=self.nz, options=options)


CANDIDATES = [
    Candidate("paper-ffhq64", 64, r3gan.PAPER_WIDTHS[64], step=False),
    Candidate("paper-cifar32", 32, r3gan.PAPER_WIDTHS[32], step=False),
    Candidate("probe64", 64, (256, 256, 128, 64, 32), step=False),  # the probe: ~10× DCGAN, not stepped
    Candidate("cpu64-a", 64, (256, 128, 64, 32, 16), (2, 2, 2, 1, 0), 8),
    Candidate("cpu64-b", 64, (256, 128, 64, 32, 16), (2, 2, 2, 1, 1), 8),
    Candidate("cpu64-c", 64, (256, 256, 128, 64, 32), (2, 2, 2, 1, 0), 16),
    Candidate("cpu32-a", 32, (256, 128, 64, 32), (2, 2, 2, 1), 8),
    Candidate("cpu32-b", 32, (256, 256, 128, 64), (2, 2, 2, 1), 16),
]


@dataclass
class Nets:
    """G, D, their Adam optimizers and the step to run."""

    netG: nn.Module
    netD: nn.Module
    step: Callable[[Nets, torch.Tensor, bool, Any], None]
    optG: torch.optim.Optimizer = field(init=False)
    optD: torch.optim.Optimizer = field(init=False)

    def __post_init__(self) -> None:
        self.optG = torch.optim.Adam(self.netG.parameters(), lr=1e-4, betas=(0.0, 0.99))
        self.optD = torch.optim.Adam(self.netD.parameters(), lr=1e-4, betas=(0.0, 0.99))


def r3gan_step(nets: Nets, real: torch.Tensor, penalty: bool, autocast: Any) -> None:
    """D's step (RpGAN [+ R1 + R2]) then G's step (RpGAN), each with its Adam update."""
    n, nz = real.shape[0], nets.netG.nz
    nets.optD.zero_grad(set_to_none=True)
    with autocast():
        with torch.no_grad():
            fake = nets.netG(torch.randn(n, nz))
        real_x, fake_x = real.detach().requires_grad_(penalty), fake.detach().requires_grad_(penalty)
        real_out, fake_out = nets.netD(real_x).float(), nets.netD(fake_x).float()
        loss_d = rpgan_d(real_out, fake_out)
        if penalty:  # γ/2·(R1 + R2) through the same forward pass, as facegan's step takes them
            loss_d = loss_d + GAMMA / 2 * (zero_centred_penalty(real_out, real_x)
                                           + zero_centred_penalty(fake_out, fake_x))
    loss_d.backward()
    nets.optD.step()
    nets.optG.zero_grad(set_to_none=True)
    nets.netD.requires_grad_(False)
    with autocast():
        fake = nets.netG(torch.randn(n, nz))
        loss = rpgan_g(nets.netD(fake).float(), nets.netD(real).float())
    loss.backward()
    nets.netD.requires_grad_(True)
    nets.optG.step()


def dcgan_step(nets: Nets, real: torch.Tensor, penalty: bool, autocast: Any) -> None:
    """DCGAN's step: D on BCE(D(x), 1) + BCE(D(G(z)), 0), then G on BCE(D(G(z)), 1)."""
    n = real.shape[0]
    ones, zeros = torch.ones(n), torch.zeros(n)
    nets.optD.zero_grad(set_to_none=True)
    with autocast():
        fake = nets.netG(torch.randn(n, 100))
        loss_d = (F.binary_cross_entropy_with_logits(nets.netD(real).float(), ones)
                  + F.binary_cross_entropy_with_logits(nets.netD(fake.detach()).float(), zeros))
    loss_d.backward()
    nets.optD.step()
    nets.optG.zero_grad(set_to_none=True)
    nets.netD.requires_grad_(False)
    with autocast():
        loss_g = F.binary_cross_entropy_with_logits(nets.netD(fake).float(), ones)
    loss_g.backward()
    nets.netD.requires_grad_(True)
    nets.optG.step()


def build(kind: str, candidate: Candidate | None, resolution: int, dense: bool, channels_last: bool) -> Nets:
    """Fresh nets for one cell."""
    torch.manual_seed(0)
    if kind == "dcgan":
        cfg = SimpleNamespace(nz=100, ngf=64, ndf=64, channels=3, resolution=resolution, leaky_slope=0.2,
                              d_norm="batch", minibatch_std=False)
        netG, netD, step = dcgan.build_generator(cfg), dcgan.build_discriminator(cfg), dcgan_step
    else:
        assert candidate is not None
        cfg = candidate.cfg(dense)
        netG, netD, step = r3gan.build_generator(cfg), r3gan.build_discriminator(cfg), r3gan_step
    if channels_last:
        netG, netD = netG.to(memory_format=torch.channels_last), netD.to(memory_format=torch.channels_last)
    return Nets(netG, netD, step)


def autocast_for(precision: str) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    if precision == "bf16":
        return lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


class _FlopCounter(TorchDispatchMode):
    """Counts FLOPs with torch.utils.flop_counter's formulas but without its module hooks, which refuse
    torch.autograd.grad on inputs (the R1/R2 double backward); conv backward counted by groups (below)."""

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func._overloadpacket is torch.ops.aten.convolution_backward:
            self.flops += _conv_backward_flops(*args)
        elif (counter := flop_registry.get(func._overloadpacket)) is not None:
            self.flops += counter(*args, **kwargs, out_val=out)
        return out


def _conv_backward_flops(grad_out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, *rest: Any) -> int:
    """A conv's backward: the forward's FLOPs once for the input gradient and once for the weight gradient
    (torch's formula for the weight gradient ignores groups, which overcounts grouped and depthwise convs)."""
    transposed, mask = rest[4], rest[-1]
    spatial = (x if transposed else grad_out).shape[2:]
    forward = 2 * grad_out.shape[0] * weight.numel() * int(torch.tensor(spatial).prod())
    return forward * (int(mask[0]) + int(mask[1]))


def gflops(fn: Callable[[], Any]) -> float:
    """GFLOPs (2 per multiply-add) of what `fn` runs, forward and backward, by torch's flop formulas."""
    with _FlopCounter() as counter:
        fn()
    return counter.flops / 1e9


@dataclass(frozen=True)
class Cell:
    """One timed configuration."""

    name: str
    kind: str
    resolution: int
    precision: str
    penalty: bool
    dense: bool
    candidate: Candidate | None = None

    @property
    def label(self) -> str:
        conv = "" if self.kind == "dcgan" else (" dense" if self.dense else " grouped")
        return f"{self.name} {self.precision}{conv}{' R1+R2' if self.penalty else ''}"


def cells_for(candidates: list[Candidate], resolutions: set[int]) -> list[Cell]:
    cells = [Cell(f"dcgan{res}", "dcgan", res, p, False, False) for res in sorted(resolutions)
             for p in ("fp32", "bf16")]
    for c in candidates:
        if not c.step:
            continue
        for precision in ("fp32", "bf16"):
            for penalty, dense in ((False, False), (True, False), (False, True)):  # dense: without penalty
                cells.append(Cell(c.name, "r3gan", c.resolution, precision, penalty, dense, c))
    return cells


def time_cell(cell: Cell, batch: int, warmup: int, steps: int) -> float:
    """Median seconds per step of `cell` after `warmup` steps (fresh nets, fixed real batch)."""
    bf16 = cell.precision == "bf16"
    nets = build(cell.kind, cell.candidate, cell.resolution, cell.dense, channels_last=bf16)
    real = torch.rand(batch, 3, cell.resolution, cell.resolution) * 2 - 1
    if bf16:
        real = real.contiguous(memory_format=torch.channels_last)
    autocast = autocast_for(cell.precision)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        nets.step(nets, real, cell.penalty, autocast)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def flop_table(candidates: list[Candidate]) -> list[dict[str, Any]]:
    """Parameters, forward GFLOPs per image and training-step GFLOPs (fp32, grouped) of every network."""
    rows = []
    for res in sorted({c.resolution for c in candidates} | {64}):
        nets = build("dcgan", None, res, False, False)
        real = torch.rand(FLOP_BATCH, 3, res, res)
        rows.append(_flop_row(f"dcgan{res}", nets, res, real, dcgan=True))
    for c in candidates:
        nets = build("r3gan", c, c.resolution, False, False)
        real = torch.rand(FLOP_BATCH, 3, c.resolution, c.resolution)
        rows.append(_flop_row(c.name, nets, c.resolution, real, dcgan=False, step=c.step, candidate=c))
    return rows


def _flop_row(name: str, nets: Nets, res: int, real: torch.Tensor, dcgan: bool, step: bool = True,
              candidate: Candidate | None = None) -> dict[str, Any]:
    nz = 100 if dcgan else nets.netG.nz
    with torch.no_grad():
        g_fwd = gflops(lambda: nets.netG(torch.randn(1, nz)))
        d_fwd = gflops(lambda: nets.netD(torch.rand(1, 3, res, res)))
    row: dict[str, Any] = {"name": name, "g_params": count(nets.netG), "d_params": count(nets.netD),
                           "g_gflop": g_fwd, "d_gflop": d_fwd, "spec": _spec(candidate)}
    if step:
        batch = real.shape[0]
        row["step_gflop"] = gflops(lambda: nets.step(nets, real, False, contextlib.nullcontext)) / batch
        if not dcgan:
            row["step_pen_gflop"] = gflops(lambda: nets.step(nets, real, True, contextlib.nullcontext)) / batch
    return row


def _spec(c: Candidate | None) -> str:
    if c is None:
        return "ngf=ndf=64, nz=100"
    return f"widths {list(c.widths)}, blocks {list(c.blocks)}, {c.channels_per_group} ch/group, nz {c.nz}"


def run_rounds(cells: list[Cell], rounds: int, batch: int, warmup: int, steps: int) -> dict[Cell, list[float]]:
    """Each cell's seconds per step in every round; cells alternate within a round."""
    samples: dict[Cell, list[float]] = {cell: [] for cell in cells}
    for r in range(rounds):
        for cell in cells:
            samples[cell].append(time_cell(cell, batch, warmup, steps))
            print(f"round {r + 1}/{rounds}  {cell.label:<42} {samples[cell][-1] * 1e3:9.0f} ms/step",
                  file=sys.stderr, flush=True)
    return samples


def report(samples: dict[Cell, list[float]], flops: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """The markdown tables."""
    batch = args.batch
    results = {cell: min(values) for cell, values in samples.items()}  # least disturbed by the other work
    ref = {(c.resolution, c.precision): t for c, t in results.items() if c.kind == "dcgan"}
    ref64 = {p: ref.get((64, p)) for p in ("fp32", "bf16")}
    by_name = {row["name"]: row for row in flops}
    lines = [
        "# R3GAN training-step cost on this CPU (bench/r3gan_cost.py)", "",
        f"- CPU: {cpu_name()}; torch {torch.__version__}, {torch.get_num_threads()} threads.",
        "- The machine was SHARED with other helpers' work while this ran (load average "
        f"{os.getloadavg()[0]:.1f} at the end on {os.cpu_count()} cores): absolute times are noisy and slow; the "
        "cells alternated within each round, so the ratios within this run are what count.",
        f"- batch {batch} images per step, {args.rounds} rounds × ({args.warmup} warm-up + {args.steps} timed) steps; "
        "ms/step is the fastest round's median (the one least slowed by other work; all rounds in the last "
        "column). A step = D's step + G's step with Adam; R3GAN steps use RpGAN (+ R1 + R2, γ=1, every step).",
        "- ratio = ms per image over DCGAN-64's ms per image in the same precision (bf16 = bf16 autocast + "
        "channels_last); ratio32 compares with DCGAN-32.", "",
        "## Cost per step", "",
        "| cell | ms/step | ms/image | × DCGAN-64 | × DCGAN-32 | GFLOP/s | all rounds (ms) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for cell, seconds in results.items():
        per_image = seconds * 1e3 / batch
        base64 = ref64.get(cell.precision)
        base32 = ref.get((32, cell.precision))
        row = by_name.get(cell.name, {})
        step_gflop = row.get("step_pen_gflop" if cell.penalty else "step_gflop")
        rate = f"{step_gflop * batch / seconds:.0f}" if step_gflop and not cell.dense else ""
        ratio64 = f"{per_image / (base64 * 1e3 / batch):.2f}" if base64 else ""
        ratio32 = f"{per_image / (base32 * 1e3 / batch):.2f}" if base32 and cell.resolution == 32 else ""
        rounds = ", ".join(f"{v * 1e3:.0f}" for v in samples[cell])
        lines.append(f"| {cell.label} | {seconds * 1e3:.0f} | {per_image:.1f} | {ratio64} | {ratio32} | {rate} "
                     f"| {rounds} |")
    lines += ["", "GFLOP/s: the fp32 grouped step's counted FLOPs over this cell's time (dense cells left blank: "
              "their FLOPs differ).", "", "## Networks", "",
              "| net | G params | D params | G fwd GFLOP/img | D fwd GFLOP/img | step GFLOP/img | with R1+R2 | spec |",
              "|---|---:|---:|---:|---:|---:|---:|---|"]
    for row in flops:
        step = f"{row['step_gflop']:.2f}" if "step_gflop" in row else "(not stepped)"
        pen = f"{row['step_pen_gflop']:.2f}" if "step_pen_gflop" in row else ""
        lines.append(f"| {row['name']} | {row['g_params']:,} | {row['d_params']:,} | {row['g_gflop']:.3f} | "
                     f"{row['d_gflop']:.3f} | {step} | {pen} | {row['spec']} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads (1 on a shared machine: oversubscribed OpenMP barriers add noise)")
    parser.add_argument("--only", default="", help="comma-separated candidate names (default: all)")
    parser.add_argument("--out", default="", help="also write the markdown table here")
    return parser.parse_args(argv)


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    wanted = {name for name in args.only.split(",") if name}
    candidates = [c for c in CANDIDATES if not wanted or c.name in wanted]
    with _threads(args.threads):
        flops = flop_table(candidates)
        cells = cells_for(candidates, {c.resolution for c in candidates if c.step} | {64})
        results = run_rounds(cells, args.rounds, args.batch, args.warmup, args.steps)
    text = report(results, flops, args)
    sys.stdout.write(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
