"""`facegan report RUN [--out DIR]`: build the HTML training report of a run."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `report` subcommand."""
    p = subparsers.add_parser(
        "report",
        help="build the HTML report of a run (plots, real vs fake, progress GIF, interpolation)",
        description="Write RUN/report/index.html: loss and D(x)/D(G(z)) plots, training speed, real vs generated "
        "faces, the fixed-noise grids as a GIF, latent interpolation, config and evaluation tables. The page "
        "opens from disk with no server. Safe to run while the run is still training.",
    )
    p.add_argument("run", metavar="RUN", help="run directory made by `facegan train`")
    p.add_argument("--out", help="folder for the report (default RUN/report); an earlier report there is replaced")
    p.add_argument("--seed", type=int, default=0, help="seed of the real/fake grids and the latent walks (default 0)")
    p.add_argument("--device", default="cpu", help="device to run G on (default cpu)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the report and print where it is."""
    from facegan.report import build_report

    index = build_report(args.run, args.out, device=args.device, seed=args.seed)
    print(f"report written to {index}")
    return 0
