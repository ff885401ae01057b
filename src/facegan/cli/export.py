"""`facegan export RUN|CHECKPOINT|FOLDER --format onnx|torchscript|hub --out FILE|DIR`: the generator as a file
other runtimes load, or as a model folder the Hugging Face Hub publishes."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `export` subcommand."""
    p = subparsers.add_parser(
        "export",
        help="export the generator to ONNX, TorchScript or a Hugging Face Hub model folder, checked against PyTorch",
        description="Write G as an ONNX model (input `z`: batch×nz float32, output `images`: batch×C×H×W in "
        "[-1, 1]) or a TorchScript archive, with any batch size: the file is run back (ONNX Runtime / "
        "torch.jit.load) at two batch sizes and compared with PyTorch before it is written; the run's config "
        "travels inside it. ONNX needs the onnx extra: pip install 'facegan[onnx]'. --format hub writes a model "
        "folder in the Hugging Face Hub's layout instead: model.safetensors (G, or G_ema when the run keeps one), "
        "config.json, a README.md model card and samples.png, loaded back and checked to give the same faces; "
        "`huggingface-cli upload USER/REPO DIR` publishes it, and facegan loads it like a run.",
        epilog="Examples: facegan export runs/faces --format onnx --out faces.onnx; "
        "facegan export runs/faces --format hub --out faces-model --license mit",
    )
    p.add_argument("model", metavar="RUN|CHECKPOINT|FOLDER", help="run directory, checkpoint file or model folder")
    p.add_argument("--out", required=True, metavar="FILE|DIR",
                   help="file to write (.onnx, or .pt for TorchScript), or the model folder for --format hub")
    p.add_argument("--format", choices=("onnx", "torchscript", "hub"),
                   help="default: from the --out suffix (no suffix: hub)")
    p.add_argument("--license", metavar="ID", help="with --format hub: the licence in the model card's metadata, "
                   "a Hub licence id such as mit or cc-by-nc-4.0 (default: none stated)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export, verify and report."""
    from facegan.generation.export import export_generator
    from facegan.generation.hub_export import ModelFolderExport

    r = export_generator(args.model, args.out, args.format, license=args.license)
    if isinstance(r, ModelFolderExport):
        print(f"wrote the model folder {r.path} ({', '.join(r.files)}; {r.bytes / 1e6:.2f} MB, weights {r.weights}); "
              f"loaded back, it gives the same faces bit for bit at batch sizes {', '.join(map(str, r.batches))}")
        return 0
    print(f"wrote {r.path} ({r.format}, {r.bytes / 1e6:.2f} MB); matches PyTorch at batch sizes "
          f"{', '.join(map(str, r.batches))}: max |difference| {r.max_abs_diff:.2g} (tolerance {r.tolerance:g})")
    return 0
