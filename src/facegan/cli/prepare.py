"""`facegan prepare SOURCE --out DIR`: make a prepared dataset."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `prepare` subcommand."""
    p = subparsers.add_parser(
        "prepare",
        help="turn images (or a built-in source) into a prepared dataset",
        description="Decode SOURCE once into DIR/images.npy (uint8 N×H×W×C) + DIR/meta.json, which training "
        "reads with no per-step decoding. SOURCE: a folder of images (searched recursively), a .zip or "
        ".tar[.gz] archive (read in place), MNIST IDX files (*-idx3-ubyte[.gz], labels from the idx1 file), "
        "a .npy/.npz image array, or builtin:synthetic-faces (procedural cartoon faces). Bad files are "
        "skipped and listed in DIR/skipped.tsv; DIR appears only when complete.",
        epilog="Example: facegan prepare img_align_celeba.zip --out data/celeba64 --crop celeba --workers 4",
    )
    p.add_argument("source", help="folder, .zip/.tar/.tar.gz, *-idx3-ubyte[.gz], .npy/.npz, or builtin:NAME")
    p.add_argument("--out", required=True, help="dataset directory to create")
    p.add_argument("--res", type=int, default=64, help="output resolution in pixels, square (default 64)")
    p.add_argument("--channels", type=int, choices=(1, 3), default=3, help="3 for RGB, 1 for grey (default 3)")
    p.add_argument("--crop", choices=("center", "celeba", "none"), default="center",
                   help="center: short side to --res then centre crop (default); celeba: the 178×178 face box "
                   "at rows 20-198 of aligned CelebA; none: squash the whole image")
    p.add_argument("--workers", type=int, default=1, help="decoding processes, 0 = one per CPU (default 1)")
    p.add_argument("--limit", type=int, default=None, help="keep at most N images (the first in sorted order)")
    p.add_argument("--dedupe", action="store_true", help="skip files whose bytes repeat an earlier file")
    p.add_argument("--attrs", metavar="FILE", default=None,
                   help="CelebA list_attr_celeba.txt/.csv to store as labels (default: found beside SOURCE)")
    p.add_argument("--max-pixels", type=int, default=100_000_000,
                   help="skip images with more pixels than this as possible decompression bombs (default 1e8)")
    p.add_argument("--n", type=int, default=None, help="number of images for a built-in source (default 20000)")
    p.add_argument("--seed", type=int, default=0, help="seed of a built-in source (default 0)")
    p.add_argument("--force", action="store_true", help="replace DIR if it already holds a dataset")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Prepare the dataset and print a one-line summary."""
    from facegan.data.prepare import prepare, summary_line

    meta = prepare(args.source, args.out, resolution=args.res, channels=args.channels, count=args.n,
                   seed=args.seed, workers=args.workers, force=args.force, show_progress=not args.no_progress,
                   crop=args.crop, limit=args.limit, dedupe=args.dedupe, attrs=args.attrs,
                   max_pixels=args.max_pixels)
    print(summary_line(meta, args.out))
    return 0
