"""`facegan export RUN --format onnx|torchscript --out FILE`: the generator as a file other runtimes load."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `export` subcommand."""
    p = subparsers.add_parser(
        "export",
        help="export the generator to ONNX or TorchScript (dynamic batch), checked against PyTorch",
        description="Write G as an ONNX model (input `z`: batch×nz float32, output `images`: batch×C×H×W in "
        "[-1, 1]) or a TorchScript archive, with any batch size. The file is run back (ONNX Runtime / "
        "torch.jit.load) at two batch sizes and compared with PyTorch before it is written; the run's config "
        "travels inside it. ONNX needs the onnx extra: pip install 'facegan[onnx]'.",
        epilog="Example: facegan export runs/faces --format onnx --out faces.onnx",
    )
    p.add_argument("model", metavar="RUN|CHECKPOINT", help="run directory or checkpoint file")
    p.add_argument("--out", required=True, metavar="FILE", help="file to write (.onnx, or .pt for TorchScript)")
    p.add_argument("--format", choices=("onnx", "torchscript"), help="default: from the --out suffix")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export, verify and report."""
    from facegan.generation.export import export_generator

    r = export_generator(args.model, args.out, args.format)
    print(f"wrote {r.path} ({r.format}, {r.bytes / 1e6:.2f} MB); matches PyTorch at batch sizes "
          f"{', '.join(map(str, r.batches))}: max |difference| {r.max_abs_diff:.2g} (tolerance {r.tolerance:g})")
    return 0
