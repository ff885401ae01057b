"""`facegan compare RUN... --out DIR`: a table and overlaid loss curves of several runs."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `compare` subcommand."""
    p = subparsers.add_parser(
        "compare",
        help="compare runs: settings that differ, time, images/s, losses, SWD and face rate",
        description="Write DIR/compare.md, compare.csv, compare.html and compare-losses.png for the runs. A RUN "
        "may be a sweep directory, standing for all its runs. SWD and face rate come from each run's newest "
        "RUN/eval/<step>.json (see `facegan eval`).",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (or sweep directories)")
    p.add_argument("--out", required=True, help="folder for the comparison files")
    p.add_argument("--title", default="facegan compare", help="title of the page and the Markdown table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compare the runs and say where the files are."""
    from facegan.experiments.compare import compare

    paths = compare(args.runs, args.out, title=args.title)
    print(f"comparison: {paths['md']}, {paths['csv']}, {paths['html']}")
    return 0
