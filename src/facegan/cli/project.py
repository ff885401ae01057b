"""`facegan project RUN photo.png --out DIR`: find the latent whose generated face is closest to a photo."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `project` subcommand."""
    p = subparsers.add_parser(
        "project",
        help="find the latent of a photo (GAN inversion) and show the reconstruction",
        description="Crop the photo as the training data was cropped, then search the latent space with Adam "
        "(several restarts) for the face closest to it in pixels and in the discriminator's features. Writes "
        "DIR/target.png (the photo as prepared), reconstruction.png, latent.npy, strip.png (photo, then the "
        "face along the way, random start first), walk.gif (a random face turning into the photo's) and "
        "projection.json (losses, settings).",
        epilog="Example: facegan project runs/faces me.jpg --steps 500 --out projected/",
    )
    p.add_argument("model", metavar="RUN|CHECKPOINT|FOLDER",
                   help="run directory, checkpoint file or model folder (a model folder holds no D: the pixel "
                   "loss only)")
    p.add_argument("photo", help="image file of a face (any format Pillow reads)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the results (created)")
    p.add_argument("--steps", type=int, default=300, help="Adam steps per restart (default 300)")
    p.add_argument("--restarts", type=int, default=4, help="starting latents optimised together (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the starting latents (default 0)")
    p.add_argument("--crop", choices=("center", "celeba", "none"),
                   help="crop of the photo (default: the one the training data was prepared with)")
    p.add_argument("--device", default="cpu", help="device to run G and D on (default cpu)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Project the photo and write the files."""
    from facegan.generation.project import write_projection

    out = write_projection(args.model, args.photo, args.out, steps=args.steps, restarts=args.restarts,
                           seed=args.seed, device=args.device, crop=args.crop, show_progress=True)
    r = out.result
    print(f"projected {args.photo} ({r.crop} crop) in {r.seconds:.1f} s: pixel MSE {r.pixel_mse:.4f} "
          f"(images in [-1, 1]); results in {out.out_dir}")
    return 0
