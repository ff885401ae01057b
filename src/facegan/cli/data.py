"""`facegan data info DIR` and `facegan data show DIR --out sheet.png`: look at a prepared dataset."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `data` subcommand and its `info` / `show` actions."""
    p = subparsers.add_parser(
        "data",
        help="describe a prepared dataset or draw a contact sheet of it",
        description="Inspect a prepared dataset (made by `facegan prepare`): `info` prints its size, source, "
        "labels and skipped files; `show` writes a PNG grid of randomly drawn images.",
    )
    actions = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    info = actions.add_parser("info", help="print what a dataset holds",
                              description="Print a prepared dataset's size, source, crop, labels, skipped files.")
    info.add_argument("dataset", metavar="DIR", help="prepared dataset directory")
    info.add_argument("--verify", action="store_true", help="recompute images.npy's sha256 and check it")
    info.set_defaults(func=run_info)
    show = actions.add_parser("show", help="write a contact sheet of random images",
                              description="Write a PNG grid of images drawn at random from a prepared dataset.")
    show.add_argument("dataset", metavar="DIR", help="prepared dataset directory")
    show.add_argument("--out", required=True, help="PNG file to write")
    show.add_argument("--n", type=int, default=64, help="number of images (default 64)")
    show.add_argument("--seed", type=int, default=0, help="seed of the random draw (default 0)")
    show.set_defaults(func=run_show)


def run_info(args: argparse.Namespace) -> int:
    """Print the dataset description."""
    from facegan.data.inspect import dataset_info

    print(dataset_info(args.dataset, verify=args.verify))
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Write the contact sheet."""
    from facegan.data.inspect import write_contact_sheet

    path = write_contact_sheet(args.dataset, args.out, n=args.n, seed=args.seed)
    print(f"wrote {path}")
    return 0
