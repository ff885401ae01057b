"""`facegan sample RUN|CHECKPOINT|FOLDER [--out faces.png|DIR/]`: generate faces from a trained model."""

from __future__ import annotations

import argparse

from facegan.errors import FaceganError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `sample` subcommand."""
    p = subparsers.add_parser(
        "sample",
        help="generate faces from a run or checkpoint",
        description="Generate faces with a trained generator. The same --seed gives the same faces. "
        "Needs nothing but the checkpoint file (a run directory means its newest checkpoint).",
    )
    p.add_argument("model", metavar="RUN|CHECKPOINT|FOLDER",
                   help="run directory, checkpoint file or model folder (facegan export --format hub)")
    p.add_argument("--out", help="a .png file for one grid, or a folder for one PNG per face (default: "
                   "RUN/samples/sample-seed<S>.png for a run directory; for a checkpoint file NAME.pt or a model "
                   "folder NAME, NAME-sample-seed<S>.png beside it; with --walk, --interpolate or --vary NAME the "
                   "same places with walk-seed<S>.gif, interpolate-seed<S>.png or vary-NAME-seed<S>.png)")
    p.add_argument("--n", type=int, default=64, help="number of faces (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents (default 0)")
    p.add_argument("--truncation", type=float, default=1.0, help="scale latents toward the mean, 0-1 (default 1)")
    p.add_argument("--nrow", type=int, default=None, help="faces per grid row (default: square)")
    p.add_argument("--device", default="cpu", help="device to run G on (default cpu)")
    p.add_argument("--interpolate", type=int, metavar="K", help="instead: K latent walks (slerp between random "
                   "latents); --out walk.png is a strip, one walk per row, --out walk.gif an animation")
    p.add_argument("--steps", type=int, default=10, metavar="S", help="faces per walk with --interpolate (default 10)")
    p.add_argument("--walk", type=int, metavar="K", help="instead: a looping video of one face walking (slerp) "
                   "through K random latents and back to the first; --out walk.gif, or walk.mp4 (extra `video`)")
    p.add_argument("--frames", type=int, default=24, metavar="F", help="frames per leg with --walk: K×F in all "
                   "(default 24)")
    p.add_argument("--fps", type=float, default=24.0, help="frames per second with --walk (default 24)")
    p.add_argument("--size", type=int, default=256, help="with --walk: enlarge frames to at least this many px "
                   "(nearest, whole factor; default 256)")
    p.add_argument("--attr", metavar="NAME=V[,NAME=V...]", help="a conditional model's attributes, e.g. "
                   "smiling=1,eyeglasses=0 (unnamed ones vary as in the data; see docs/conditional.md)")
    p.add_argument("--vary", metavar="NAME", help="instead: a grid with one row per value of this attribute of a "
                   "conditional model, the same --n latents in every row (--out grid.png)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate and write the faces."""
    from facegan.generation.sample import default_out, load_generator, write_samples

    if not 1 <= args.n <= 100_000:
        raise FaceganError("--n must be between 1 and 100000")
    if not 0.0 <= args.truncation <= 1.0:
        raise FaceganError("--truncation must be between 0 and 1")

    def out(kind: str, suffix: str = ".png") -> str:
        return args.out or str(default_out(args.model, args.seed, kind, suffix))

    if args.walk is not None:
        from facegan.generation.walk import check_walk, write_walk

        check_walk(args.walk, args.frames)
        gen = load_generator(args.model, device=args.device)
        walk = write_walk(gen, out("walk", ".gif"), args.walk, args.frames, args.seed, args.truncation, args.fps,
                          args.size)
        print(f"wrote a looping walk through {args.walk} latents ({walk.frames} frames of {walk.size} px) "
              f"from step {gen.step} to {walk.path}")
        return 0
    if args.interpolate is not None:
        from facegan.report.interpolation import check_interpolation, write_interpolation

        check_interpolation(args.interpolate, args.steps)
        gen = load_generator(args.model, device=args.device)
        path = out("interpolate")
        write_interpolation(gen, path, args.interpolate, args.steps, args.seed, args.truncation)
        print(f"wrote {args.interpolate} latent walks of {args.steps} faces from step {gen.step} to {path}")
        return 0
    from facegan.generation.attributes import parse_attr, write_attribute_grid

    attr = parse_attr(args.attr)
    gen = load_generator(args.model, device=args.device)
    if args.vary is not None:
        path = out(f"vary-{args.vary}")
        rows = write_attribute_grid(gen, path, args.vary, args.n, args.seed, args.truncation, attr)
        print(f"wrote {args.n} faces for each of {rows} values of {args.vary} from step {gen.step} to {path}")
        return 0
    path = out("sample")
    paths = write_samples(gen.sample(args.n, args.seed, args.truncation, attr=attr), path, nrow=args.nrow)
    files = f" ({len(paths)} files)" if len(paths) > 1 else ""
    print(f"wrote {args.n} faces from step {gen.step} to {path}{files}")
    return 0
