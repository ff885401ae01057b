"""`facegan serve RUN|CHECKPOINT|FOLDER`: a local web page and HTTP API over a trained generator."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `serve` subcommand."""
    p = subparsers.add_parser(
        "serve",
        help="serve a page and an HTTP API that generate faces",
        description="Start a local web server over a trained generator: a page to generate, explore, "
        "interpolate and download faces, and an HTTP API (documented at /docs) to do the same from a program. "
        "Listens on 127.0.0.1 only unless --host says otherwise.",
    )
    p.add_argument("model", metavar="RUN|CHECKPOINT|FOLDER", help="run directory (its newest checkpoint), "
                   "checkpoint file or model folder (facegan export --format hub)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--workers", type=int, default=2, help="generation threads (default 2)")
    p.add_argument("--runtime", choices=("torch", "onnx", "auto"), default="auto",
                   help="auto (default): G in ONNX Runtime when it is installed (facegan[onnx]), G is on the CPU "
                   "and one face is faster there, measured at start (the export adds a few seconds to it), else "
                   "in PyTorch; torch: always PyTorch; onnx: always ONNX Runtime (CPU)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    from facegan.serve.server import run_server

    run_server(args.model, host=args.host, port=args.port, device=args.device, workers=args.workers,
               announce=lambda line: print(line, flush=True), runtime=args.runtime)
    return 0
