"""The train command's options for training health, TensorBoard and conditional models (parsing only;
facegan.training.options turns them into the config)."""

from __future__ import annotations

import argparse

from facegan.cli.defaults import default_text
from facegan.config import choices_of


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Add the `health, TensorBoard, conditions` option group to the train parser."""
    g = p.add_argument_group("health, TensorBoard and conditions (docs/health.md, docs/conditional.md)")
    g.add_argument("--condition", metavar="ATTR[,ATTR...]",
                   help="train a conditional model on these labels of the dataset (its meta.json label_names, "
                   "e.g. smiling,eyeglasses or digit); sample it with `facegan sample --attr smiling=1`")
    g.add_argument("--health-every", type=int, metavar="N", help="check for NaN/inf, a saturated D and collapse "
                   f"every N steps; 0: off ({default_text('train', 'health_every')})")
    g.add_argument("--on-nan", choices=choices_of("train", "on_nan"),
                   help="when losses or weights become NaN/inf: stop, or go back to the last good checkpoint with "
                   f"halved learning rates ({default_text('train', 'on_nan')})")
    g.add_argument("--max-rollbacks", type=int, metavar="K",
                   help=f"--on-nan rollback stops after K rollbacks ({default_text('train', 'max_rollbacks')})")
    g.add_argument("--tensorboard", action="store_true", default=None,
                   help="also write the metrics and fixed-noise grids to RUN/tb/ for TensorBoard "
                   "(needs the tensorboard extra)")
