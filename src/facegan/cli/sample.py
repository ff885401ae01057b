"""`facegan sample RUN|CHECKPOINT --out faces.png|DIR/`: generate faces from a trained model."""

from __future__ import annotations

import argparse

from facegan.errors import FaceganError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `sample` subcommand."""
    p = subparsers.add_parser(
        "sample",
        help="generate faces from a run or checkpoint",
        description="Generate faces with a trained generator. The same --seed gives the same faces. "
        "Needs nothing but the checkpoint file (a run directory means its newest checkpoint).",
    )
    p.add_argument("model", metavar="RUN|CHECKPOINT", help="run directory or checkpoint file")
    p.add_argument("--out", required=True, help="a .png file for one grid, or a folder for one PNG per face")
    p.add_argument("--n", type=int, default=64, help="number of faces (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents (default 0)")
    p.add_argument("--truncation", type=float, default=1.0, help="scale latents toward the mean, 0-1 (default 1)")
    p.add_argument("--nrow", type=int, default=None, help="faces per grid row (default: square)")
    p.add_argument("--device", default="cpu", help="device to run G on (default cpu)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate and write the faces."""
    from facegan.sample import load_generator, write_samples

    if not 1 <= args.n <= 100_000:
        raise FaceganError("--n must be between 1 and 100000")
    if not 0.0 <= args.truncation <= 1.0:
        raise FaceganError("--truncation must be between 0 and 1")
    gen = load_generator(args.model, device=args.device)
    paths = write_samples(gen.sample(args.n, args.seed, args.truncation), args.out, nrow=args.nrow)
    files = f" ({len(paths)} files)" if len(paths) > 1 else ""
    print(f"wrote {args.n} faces from step {gen.step} to {args.out}{files}")
    return 0
