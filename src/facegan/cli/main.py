"""Entry point of the `facegan` command: builds the parser from the subcommand modules and runs one."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from facegan.cli import compare, data, export, prepare, project, report, sample, serve, sweep, train
from facegan.cli import eval as eval_cmd
from facegan.cli.parser import FaceganParser
from facegan.errors import FaceganError
from facegan.utils.logs import setup_logging
from facegan.version import __version__

# Each module has `register(subparsers)`, which adds its parser and sets `func` to a function of args → exit code.
COMMANDS = (prepare, train, sample, report, data, serve, sweep, compare, eval_cmd, project, export)


def build_parser() -> FaceganParser:
    """The full `facegan` argument parser (every subcommand parser is a FaceganParser too: no option prefixes)."""
    parser = FaceganParser(
        prog="facegan",
        description="Train GANs on face images and generate faces of people who do not exist.",
        epilog="Typical use: facegan prepare builtin:synthetic-faces --out data/faces; "
        "facegan train --data data/faces --out runs/faces; facegan sample runs/faces --out faces.png",
    )
    parser.add_argument("--version", action="version", version=f"facegan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the facegan command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except FaceganError as exc:
        print(f"facegan: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("facegan: interrupted", file=sys.stderr)
        return 130
    finally:
        logging.shutdown()


if __name__ == "__main__":
    sys.exit(main())
