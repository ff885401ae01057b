"""`facegan train --data DIR --out RUN` (or `--resume RUN`): train a GAN."""

from __future__ import annotations

import argparse

from facegan.cli.model_options import add_model_options, merge_overrides, model_overrides
from facegan.cli.run_options import add_run_options, apply_to_resumed, run_overrides
from facegan.errors import FaceganError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train` subcommand."""
    from facegan.losses import LOSS_NAMES
    from facegan.models.presets import preset_names

    p = subparsers.add_parser(
        "train",
        help="train a GAN on a prepared dataset, or resume a run",
        description="Train a GAN on a prepared dataset (see `facegan prepare`). The run directory gets "
        "config.json, metrics.jsonl (one line per step), samples/ (fixed-noise 8×8 grids) and checkpoints/. "
        "Ctrl-C or SIGTERM stops after the current step with a checkpoint; --resume continues exactly.",
    )
    p.explain_absent("train takes the resolution and channels from the prepared dataset (set them with "
                     "facegan prepare SOURCE --out DIR --res N --channels C)",
                     "--res", "--resolution", "--channels")
    where = p.add_argument_group("what to train")
    where.add_argument("--data", help="prepared dataset directory")
    where.add_argument("--out", help="run directory to create")
    where.add_argument("--resume", metavar="RUN", help="continue the run in RUN from its newest checkpoint")
    where.add_argument("--model", default="dcgan", choices=preset_names(),
                       help="model preset: a family's named settings (default dcgan; docs/models.md)")
    model = p.add_argument_group("model")
    model.add_argument("--nz", type=int, help="latent size (default 100)")
    model.add_argument("--ngf", type=int, help="G width: feature maps of its last hidden layer (default 64)")
    model.add_argument("--ndf", type=int, help="D width: feature maps of its first layer (default 64)")
    model.add_argument("--latent", choices=("normal", "uniform"),
                       help="latent prior: N(0,1) or U(-1,1) (default normal)")
    opt = p.add_argument_group("optimisation")
    opt.add_argument("--batch-size", type=int, help="images per step (default 128)")
    opt.add_argument("--steps", type=int, help="total steps (overrides --epochs; with --resume, the new total)")
    opt.add_argument("--epochs", type=int, help="passes over the data (default 5)")
    opt.add_argument("--lr", type=float, help="learning rate of both G and D (default 2e-4)")
    opt.add_argument("--lr-g", type=float, help="learning rate of G")
    opt.add_argument("--lr-d", type=float, help="learning rate of D")
    opt.add_argument("--beta1", type=float, help="Adam β1 (default 0.5)")
    opt.add_argument("--beta2", type=float, help="Adam β2 (default 0.999)")
    opt.add_argument("--loss", choices=LOSS_NAMES, help="adversarial loss (default bce; began with --model began)")
    opt.add_argument("--flip", action="store_true", default=None, help="random horizontal flips of real images")
    run = p.add_argument_group("running")
    run.add_argument("--seed", type=int, help="seed of weights, data order and noise (default 0)")
    run.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    speed = p.add_argument_group("speed and scale (see README: Multi-GPU and multi-node)")
    speed.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"),
                       help="auto: bf16 autocast where the CPU/GPU runs bf16 natively, else fp32; fp16 adds a "
                       "GradScaler (default auto)")
    speed.add_argument("--channels-last", choices=("auto", "on", "off"),
                       help="NHWC memory layout (default auto: on for CUDA, and on the CPU with bf16/fp16)")
    speed.add_argument("--compile", nargs="?", const="on", choices=("off", "on", "reduce-overhead", "max-autotune"),
                       help="torch.compile G and D; reduce-overhead adds CUDA graphs (default off)")
    speed.add_argument("--sync-bn", action="store_true", default=None,
                       help="under torchrun: BatchNorm statistics over the global batch (CUDA only)")
    run.add_argument("--log-every", type=int, help="steps between metric flushes/progress updates (default 10)")
    run.add_argument("--sample-every", type=int, help="steps between fixed-noise grids (default 500)")
    run.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (default 1000)")
    run.add_argument("--keep", type=int, help="checkpoints to keep (default 3)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--report-every", type=int, metavar="N",
                     help="rebuild RUN/report/index.html every N steps (default: only at the end)")
    run.add_argument("--no-report", action="store_true", help="do not build RUN/report/ when training ends")
    run.add_argument("--eval-every", type=int, metavar="N", help="every N steps write RUN/eval/<step>.json (SWD "
                     "and face rate of --eval-n fakes) and keep RUN/checkpoints/best.pt by lowest SWD")
    run.add_argument("--eval-n", type=int, default=1000, help="images per set for --eval-every (default 1000)")
    add_model_options(p)
    add_run_options(p)
    p.set_defaults(func=run_train)


def overrides_from_args(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    """Config sections from the options the user gave (None = keep the preset's value)."""
    lr = args.lr
    base = {
        "data": {"flip": args.flip},
        "model": {"nz": args.nz, "ngf": args.ngf, "ndf": args.ndf, "latent": args.latent},
        "optim": {"lr_g": args.lr_g or lr, "lr_d": args.lr_d or lr, "beta1": args.beta1, "beta2": args.beta2},
        "train": {
            "batch_size": args.batch_size, "steps": args.steps, "epochs": args.epochs, "loss": args.loss,
            "seed": args.seed, "device": args.device, "log_every": args.log_every,
            "sample_every": args.sample_every, "checkpoint_every": args.checkpoint_every,
            "keep_checkpoints": args.keep, "precision": args.precision, "channels_last": args.channels_last,
            "compile": args.compile, "sync_bn": args.sync_bn,
        },
    }
    return merge_overrides(merge_overrides(base, model_overrides(args)), run_overrides(args))


def _check_positive(args: argparse.Namespace) -> None:
    for name in ("nz", "ngf", "ndf", "batch_size", "steps", "epochs", "log_every", "sample_every",
                 "checkpoint_every", "keep"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise FaceganError(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("lr", "lr_g", "lr_d"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise FaceganError(f"--{name.replace('_', '-')} must be positive")


def run_train(args: argparse.Namespace) -> int:
    """Start or resume training; exit 0 when finished, 130 when stopped by a signal."""
    from facegan.training.configure import config_for_data, resume_config
    from facegan.training.loop import train

    _check_positive(args)
    hooks = []
    if args.eval_every is not None:  # before the report hook, so a report shows the newest evaluation
        from facegan.metrics.during_training import EvalDuringTraining

        hooks.append(EvalDuringTraining(args.eval_every, args.eval_n))
    if args.report_every is not None:
        from facegan.report import report_hook

        hooks.append(report_hook(args.report_every))
    if args.resume:
        if args.data or args.out:
            raise FaceganError("--resume RUN takes its data and output from the run; drop --data/--out")
        config = resume_config(args.resume, steps=args.steps, epochs=args.epochs)
        apply_to_resumed(config, args)
        result = train(config, args.resume, resume=True, hooks=hooks, show_progress=not args.no_progress)
    else:
        if not args.data or not args.out:
            raise FaceganError("give --data DIR and --out RUN (or --resume RUN)")
        config = config_for_data(args.model, args.data, overrides_from_args(args))
        result = train(config, args.out, hooks=hooks, show_progress=not args.no_progress)
    if result.rank != 0:  # under torchrun, rank 0 reports for the job
        return 0 if result.status == "finished" else 130
    print(f"{result.status} at step {result.step}: samples in {result.run_dir / 'samples'}, "
          f"checkpoint {result.checkpoint}")
    if not args.no_report:
        from facegan.report import try_build_report

        if (index := try_build_report(result.run_dir)) is not None:
            print(f"report: {index}")
    return 0 if result.status == "finished" else 130
