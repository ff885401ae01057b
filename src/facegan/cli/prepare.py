"""`facegan prepare SOURCE --out DIR`: make a prepared dataset."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `prepare` subcommand."""
    p = subparsers.add_parser(
        "prepare",
        help="turn images (or a built-in source) into a prepared dataset",
        description="Decode SOURCE once into DIR/images.npy (uint8 N×H×W×C) + DIR/meta.json, which training "
        "reads with no per-step decoding. SOURCE: builtin:synthetic-faces (procedural cartoon faces).",
    )
    p.add_argument("source", help="what to prepare, e.g. builtin:synthetic-faces")
    p.add_argument("--out", required=True, help="dataset directory to create")
    p.add_argument("--res", type=int, default=64, help="output resolution in pixels, square (default 64)")
    p.add_argument("--channels", type=int, choices=(1, 3), default=3, help="3 for RGB, 1 for grey (default 3)")
    p.add_argument("--n", type=int, default=None, help="number of images for a built-in source (default 20000)")
    p.add_argument("--seed", type=int, default=0, help="seed of a built-in source (default 0)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--force", action="store_true", help="replace DIR if it already exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Prepare the dataset and report where it is."""
    from facegan.data.prepare import prepare

    meta = prepare(args.source, args.out, resolution=args.res, channels=args.channels, count=args.n,
                   seed=args.seed, workers=args.workers, force=args.force)
    print(f"prepared {meta['count']} images at {meta['resolution']} px × {meta['channels']} ch in {args.out}")
    return 0
