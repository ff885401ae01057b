"""`facegan train --data DIR --out RUN` (or `--resume RUN`): train a GAN."""

from __future__ import annotations

import argparse
from typing import Any

from facegan.cli.defaults import default_text
from facegan.cli.model_options import add_model_options, family_option_values
from facegan.cli.run_options import add_run_options
from facegan.config import RunConfig, choices_of
from facegan.errors import FaceganError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train` subcommand."""
    from facegan.losses import LOSS_NAMES
    from facegan.metrics.during_training import DEFAULT_EVAL_N
    from facegan.models.presets import DEFAULT_PRESET, preset_names

    p = subparsers.add_parser(
        "train",
        help="train a GAN on a prepared dataset, or resume a run",
        description="Train a GAN on a prepared dataset (see `facegan prepare`). The run directory gets "
        "config.json, metrics.jsonl (one line per step), samples/ (fixed-noise 8×8 grids) and checkpoints/. "
        "Ctrl-C or SIGTERM stops after the current step with a checkpoint; --resume continues exactly. Under "
        "torchrun's elastic restarts, --resume-if-exists makes one command start and continue the run "
        "(docs/long-runs.md).",
    )
    p.explain_absent("train takes the resolution and channels from the prepared dataset (set them with "
                     "facegan prepare SOURCE --out DIR --res N --channels C)",
                     "--res", "--resolution", "--channels")
    where = p.add_argument_group("what to train")
    where.add_argument("--data", help="prepared dataset directory")
    where.add_argument("--out", help="run directory to create")
    where.add_argument("--resume", metavar="RUN",
                       help="continue the run in RUN from its newest checkpoint; options given with it change the "
                       "run's length, speed, output cadence, health checks and learning rates (runtime.json records "
                       "each change), and a change of its recipe (model, data, batch size, loss, ...) is refused")
    where.add_argument("--resume-if-exists", action="store_true",
                       help="with --data and --out: continue the run in --out from its newest loadable checkpoint "
                       "as --resume would (the same data, the recipe unchanged), or start it when it has none; the "
                       "one command torchrun --max-restarts reruns after a lost process (docs/long-runs.md)")
    where.add_argument("--model", choices=preset_names(),
                       help=f"model preset: a family's named settings (default {DEFAULT_PRESET}; docs/models.md). "
                       "Every other default below is the preset's: --show-config prints them")
    where.add_argument("--show-config", action="store_true",
                       help="print the config these options make (with --data: for that dataset) and exit")
    model = p.add_argument_group("model")
    model.add_argument("--nz", type=int, help=f"latent size ({default_text('model', 'nz')})")
    model.add_argument("--ngf", type=int,
                       help=f"G width: feature maps of its last hidden layer ({default_text('model', 'ngf')})")
    model.add_argument("--ndf", type=int,
                       help=f"D width: feature maps of its first layer ({default_text('model', 'ndf')})")
    model.add_argument("--latent", choices=choices_of("model", "latent"),
                       help=f"latent prior: N(0,1) or U(-1,1) ({default_text('model', 'latent')})")
    opt = p.add_argument_group("optimisation")
    opt.add_argument("--batch-size", type=int, help=f"images per step ({default_text('train', 'batch_size')})")
    opt.add_argument("--steps", type=int, help="total steps (overrides --epochs; with --resume, the new total)")
    opt.add_argument("--epochs", type=int, help=f"passes over the data ({default_text('train', 'epochs')})")
    opt.add_argument("--lr", type=float, help=f"learning rate of both G and D (G: {default_text('optim', 'lr_g')}; "
                     f"D: {default_text('optim', 'lr_d')})")
    opt.add_argument("--lr-g", type=float, help="learning rate of G")
    opt.add_argument("--lr-d", type=float, help="learning rate of D")
    opt.add_argument("--beta1", type=float, help=f"Adam β1 ({default_text('optim', 'beta1')})")
    opt.add_argument("--beta2", type=float, help=f"Adam β2 ({default_text('optim', 'beta2')})")
    opt.add_argument("--loss", choices=LOSS_NAMES, help=f"adversarial loss ({default_text('train', 'loss')})")
    opt.add_argument("--flip", action="store_true", default=None, help="random horizontal flips of real images")
    run = p.add_argument_group("running")
    run.add_argument("--seed", type=int,
                     help=f"seed of weights, data order and noise ({default_text('train', 'seed')})")
    run.add_argument("--device", help=f"auto, cpu, cuda, cuda:N or mps ({default_text('train', 'device')})")
    speed = p.add_argument_group("speed and scale (see README: Multi-GPU and multi-node)")
    speed.add_argument("--precision", choices=choices_of("train", "precision"),
                       help="auto: bf16 autocast where the CPU/GPU runs bf16 natively, else fp32; fp16 adds a "
                       f"GradScaler ({default_text('train', 'precision')})")
    speed.add_argument("--channels-last", choices=choices_of("train", "channels_last"),
                       help="NHWC memory layout; auto: on for CUDA, and on the CPU with bf16/fp16 "
                       f"({default_text('train', 'channels_last')})")
    speed.add_argument("--compile", nargs="?", const="on", choices=choices_of("train", "compile"),
                       help="torch.compile G and D; reduce-overhead adds CUDA graphs "
                       f"({default_text('train', 'compile')})")
    speed.add_argument("--sync-bn", action="store_true", default=None,
                       help="under torchrun: BatchNorm statistics over the global batch (CUDA only)")
    run.add_argument("--log-every", type=int,
                     help=f"steps between metric flushes/progress updates ({default_text('train', 'log_every')})")
    run.add_argument("--sample-every", type=int,
                     help=f"steps between fixed-noise grids ({default_text('train', 'sample_every')})")
    run.add_argument("--checkpoint-every", type=int,
                     help=f"steps between checkpoints ({default_text('train', 'checkpoint_every')})")
    run.add_argument("--keep", type=int, help=f"checkpoints to keep ({default_text('train', 'keep_checkpoints')})")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--report-every", type=int, metavar="N",
                     help="rebuild RUN/report/index.html every N steps (default: only at the end)")
    run.add_argument("--no-report", action="store_true", help="do not build RUN/report/ when training ends")
    run.add_argument("--eval-every", type=int, metavar="N", help="every N steps write RUN/eval/<step>.json (SWD "
                     "and face rate of --eval-n fakes) and keep RUN/checkpoints/best.pt by lowest SWD")
    run.add_argument("--eval-n", type=int, default=DEFAULT_EVAL_N,
                     help=f"images per set for --eval-every (default {DEFAULT_EVAL_N})")
    add_model_options(p)
    add_run_options(p)
    p.set_defaults(func=run_train)


def options_from_args(args: argparse.Namespace, family: str) -> dict[str, Any]:
    """The run options the user gave, by name (facegan.training.options), the family options parsed from their
    flags (a flag of another family is refused here, by the flag's name)."""
    from facegan.training.options import OPTIONS

    options = {name: getattr(args, name, None) for name in OPTIONS}
    options.update(family_option_values(args, family) or {})
    return options


def overrides_from_args(args: argparse.Namespace, family: str | None = None) -> dict[str, dict[str, object]]:
    """Config sections from the options the user gave (None = keep the preset's, or the resumed run's, value);
    `family`: the model family whose options may be given (default: the --model preset's)."""
    from facegan.training.options import overrides_from_options, preset_family

    family = family or preset_family(args.model)
    return overrides_from_options(options_from_args(args, family), family)


def resumed_config(args: argparse.Namespace, run: str | None = None) -> RunConfig:
    """The config of the run resumed (`run`, else --resume RUN) with the options given applied
    (facegan.training.loop refuses a recipe change)."""
    from facegan.run.checkpoint import load_checkpoint
    from facegan.training.options import resumed_run_config

    if run is None:
        if args.data or args.out:
            raise FaceganError("--resume RUN takes its data and output from the run; drop --data/--out")
        run = args.resume
    family = load_checkpoint(run)["config"].model.family
    return resumed_run_config(run, args.model, options_from_args(args, family))


def new_config(args: argparse.Namespace) -> RunConfig:
    """The config of a new run: the preset, the options given, the dataset's size (without --data: the preset's)."""
    from facegan.training.options import new_run_config, preset_family

    return new_run_config(args.data, args.model, options_from_args(args, preset_family(args.model)))


def planned_run(args: argparse.Namespace) -> tuple[RunConfig, str | None, bool]:
    """The config to train, its run directory, and whether it continues that run (--resume RUN, or
    --resume-if-exists on an --out that holds a checkpoint) rather than starting it."""
    if args.resume_if_exists:
        from facegan.run.checkpoint import list_checkpoints
        from facegan.training.configure import check_same_data

        if args.resume or not args.data or not args.out:
            raise FaceganError("--resume-if-exists goes with --data DIR and --out RUN (the command that starts the "
                               "run), not with --resume RUN")
        if not list_checkpoints(args.out):
            return new_config(args), args.out, False
        config = resumed_config(args, args.out)
        check_same_data(config, args.data, args.out)
        return config, args.out, True
    if args.resume:
        return resumed_config(args), args.resume, True
    if not args.show_config and (not args.data or not args.out):
        raise FaceganError("give --data DIR and --out RUN (or --resume RUN)")
    return new_config(args), args.out, False


def run_train(args: argparse.Namespace) -> int:
    """Start or resume training (or, with --show-config, print the config); exit 0 when finished, 130 when
    stopped by a signal."""
    from facegan.api.training import training_hooks
    from facegan.training.loop import train

    # first: a bad --eval-every is said before data is opened
    hooks = [] if args.show_config else training_hooks(args.eval_every, args.eval_n, args.report_every)
    config, run_dir, continuing = planned_run(args)
    if args.show_config:
        import json

        from facegan.run.checkpoint import load_checkpoint
        from facegan.training.configure import check_config, resume_changes

        check_config(config)
        if continuing:
            resume_changes(load_checkpoint(run_dir)["config"], config)
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    result = train(config, run_dir, resume=continuing, hooks=hooks, show_progress=not args.no_progress,
                   start_over=args.resume_if_exists)
    if result.rank != 0:  # under torchrun, rank 0 reports for the job
        return 0 if result.status == "finished" else 130
    print(f"{result.status} at step {result.step}: samples in {result.run_dir / 'samples'}, "
          f"checkpoint {result.checkpoint}")
    if not args.no_report:
        from facegan.report import try_build_report

        if (index := try_build_report(result.run_dir)) is not None:
            print(f"report: {index}")
    return 0 if result.status == "finished" else 130
