"""`facegan eval RUN` (score a trained model) or `facegan eval --real DIR --fake DIR` (score two image sets)."""

from __future__ import annotations

import argparse
import json

from facegan.errors import FaceganError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `eval` subcommand."""
    from facegan.metrics.metric import FACEFD_MAX_N
    from facegan.metrics.registry import METRICS

    listing = "; ".join(f"{name} ({metric.description})" for name, metric in METRICS.items())
    p = subparsers.add_parser(
        "eval",
        help=f"judge image quality offline: {', '.join(METRICS)}",
        description="Score a run's generator against its training data and write RUN/eval/<step>.json "
        "(and RUN/eval/<step>-memo.png), or compare two image sets with --real/--fake. Metrics: "
        f"{listing}. Default: every metric whose requirements are installed. See docs/metrics.md.",
    )
    p.add_argument("model", nargs="?", metavar="RUN|CHECKPOINT|FOLDER",
                   help="run directory, checkpoint file or model folder")
    p.add_argument("--real", metavar="DIR", help="real images: a prepared dataset or an image folder "
                   "(default for RUN: the run's training data)")
    p.add_argument("--fake", metavar="DIR", help="with --real and no RUN: the generated images to score")
    p.add_argument("--n", type=int, default=10_000, help="images per set (default 10000)")
    p.add_argument("--metrics", help=f"comma-separated: {','.join(METRICS)} (default: all available)")
    p.add_argument("--inception-weights", metavar="PATH",
                   help="pt_inception-2015-12-05-6726825d.pth for FID (default: $FACEGAN_INCEPTION_WEIGHTS)")
    p.add_argument("--facefd-n", type=int, default=FACEFD_MAX_N,
                   help=f"images per set for facefd (dlib takes ~0.1 s per face on a CPU; default {FACEFD_MAX_N})")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents and of the real subset (default 0)")
    p.add_argument("--device", default="auto", help="device for G and Inception (default auto)")
    p.add_argument("--out", metavar="FILE.json", help="with --real/--fake: also write the result here")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a summary")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print a summary."""
    from facegan.metrics.evaluation import compare_sets, evaluate, summary_lines

    if args.n < 2:
        raise FaceganError("--n must be at least 2")
    if args.facefd_n < 2:
        raise FaceganError("--facefd-n must be at least 2")
    common = {"n": args.n, "metrics": args.metrics, "seed": args.seed, "device": args.device,
              "inception_weights": args.inception_weights, "facefd_n": args.facefd_n,
              "show_progress": not args.no_progress}
    if args.model:
        if args.fake:
            raise FaceganError("--fake is for comparing two folders; with RUN the fakes come from its generator")
        if args.out:
            raise FaceganError("--out is for --real/--fake; a run's evaluation goes to RUN/eval/<step>.json")
        result = evaluate(args.model, real_dataset=args.real, **common)
    else:
        if not (args.real and args.fake):
            raise FaceganError("give a RUN to evaluate, or --real DIR and --fake DIR to compare two image sets")
        result = compare_sets(args.real, args.fake, out=args.out, **common)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    where = f"step {result['step']} of {args.model}" if args.model else f"{args.fake} against {args.real}"
    print(f"{where}: {result['n']} fakes, {result['n_real']} reals")
    for line in summary_lines(result):
        print(f"  {line}")
    if "path" in result:
        print(f"wrote {result['path']}")
    return 0
