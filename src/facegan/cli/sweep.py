"""`facegan sweep --data DIR --out SWEEP --grid KEY=V1,V2 ...`: train a hyperparameter grid and compare the runs."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `sweep` subcommand."""
    from facegan.experiments.sweep import ALIASES, DEFAULT_EVAL_METRICS, DEFAULT_EVAL_N
    from facegan.models.presets import DEFAULT_PRESET, preset_names

    p = subparsers.add_parser(
        "sweep",
        help="train every combination of a hyperparameter grid, then compare the runs",
        description="Train every combination of --grid as an ordinary run in SWEEP/<settings>/ (same preset, "
        "data and seed), then write SWEEP/compare.md, .csv and .html. Seed 004's study: --model dcgan --grid "
        "beta1=0.2,0.5 slope=0.06,0.2 batch=32,128 lr=1e-4,2e-4. Runs already in SWEEP are kept, so a stopped "
        "sweep continues.",
    )
    p.add_argument("--data", required=True, help="prepared dataset directory")
    p.add_argument("--out", required=True, help="sweep directory (one run directory per combination)")
    p.add_argument("--grid", nargs="+", required=True, metavar="KEY=V1,V2",
                   help=f"values to try; KEY is {', '.join(ALIASES)} or section.field (e.g. model.ngf); a list "
                        "value's items are separated by / (widths=256/128/64/32,128/64/32/16)")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="fixed",
                   help="settings shared by every run (e.g. model.ngf=32 train.log_every=5)")
    p.add_argument("--model", default=DEFAULT_PRESET, choices=preset_names(),
                   help=f"model preset (default {DEFAULT_PRESET}, as for train)")
    p.add_argument("--budget-minutes", type=float, metavar="M", help="training time of each run, in minutes")
    p.add_argument("--steps", type=int, help="steps of each run (with --budget-minutes: whichever ends first)")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once, each in its own process (default 1)")
    p.add_argument("--eval-n", type=int, default=DEFAULT_EVAL_N,
                   help=f"fakes scored per run after training (default {DEFAULT_EVAL_N}; 0: no evaluation)")
    p.add_argument("--eval-metrics", default=DEFAULT_EVAL_METRICS,
                   help=f"metrics of that evaluation (default {DEFAULT_EVAL_METRICS}; see facegan eval)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the sweep and say where the comparison is."""
    from facegan.experiments.sweep import sweep
    from facegan.training.loop import train

    result = sweep(args.grid, args.data, args.out, train, preset=args.model, fixed_items=args.fixed,
                   budget_minutes=args.budget_minutes, steps=args.steps, jobs=args.jobs, eval_n=args.eval_n,
                   eval_metrics=args.eval_metrics)
    print(f"{len(result.runs)} runs in {result.out_dir}; comparison {result.comparison.get('html', '-')}")
    return 0
