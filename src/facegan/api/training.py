"""Prepare and train from Python: `facegan.prepare(SOURCE, DIR)` and `facegan.train(DIR, RUN)` → a `FaceGAN`.

The same code as `facegan prepare` and `facegan train`: the config is built by facegan.training.options from
options named as the CLI's flags, checked by the same checks, trained by the same loop into the same run
directory (hooks from `training_hooks`, the report at the end). Ctrl-C, or a notebook's interrupt button, stops
after the current step with a checkpoint, and the model comes back as it is then.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from facegan.api.model import FaceGAN, load
from facegan.data.decode import DEFAULT_MAX_PIXELS
from facegan.errors import FaceganError
from facegan.metrics.during_training import DEFAULT_EVAL_N
from facegan.run.state import Hook

log = logging.getLogger("facegan.api")


def prepare(source: str | Path, out: str | Path, res: int = 64, channels: int = 3, *, n: int | None = None,
            seed: int = 0, crop: str = "center", workers: int = 1, limit: int | None = None, dedupe: bool = False,
            attrs: str | Path | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, force: bool = False,
            progress: bool = True) -> Path:
    """`facegan prepare SOURCE --out OUT --res RES ...`: decode a folder, archive, IDX/array file or
    `builtin:synthetic-faces` (`n` faces from `seed`) once into a prepared dataset; returns its folder."""
    from facegan.data.prepare import prepare as prepare_dataset
    from facegan.data.prepare import summary_line

    meta = prepare_dataset(str(source), out, resolution=res, channels=channels, count=n, seed=seed,
                           workers=workers, force=force, show_progress=progress, crop=crop, limit=limit,
                           dedupe=dedupe, attrs=attrs, max_pixels=max_pixels)
    log.info("%s", summary_line(meta, out))
    return Path(out)


def training_hooks(eval_every: int | None = None, eval_n: int = DEFAULT_EVAL_N,
                   report_every: int | None = None) -> list[Hook]:
    """The hooks `--eval-every` and `--report-every` add to a run (the evaluation first, so a report shows it)."""
    hooks: list[Hook] = []
    if eval_every is not None:
        from facegan.metrics.during_training import EvalDuringTraining

        hooks.append(EvalDuringTraining(eval_every, eval_n))
    if report_every is not None:
        from facegan.report import report_hook

        hooks.append(report_hook(report_every))
    return hooks


def train(data: str | Path | None = None, out: str | Path | None = None, model: str | None = None, *,
          minutes: float | None = None, steps: int | None = None, epochs: int | None = None,
          resume: str | Path | None = None, eval_every: int | None = None, eval_n: int = DEFAULT_EVAL_N,
          report_every: int | None = None, report: bool = True, progress: bool = True,
          **options: Any) -> FaceGAN:
    """`facegan train --data DATA --out OUT --model MODEL ...`: train a GAN and return it as a `FaceGAN`.

    `model` is a preset (default: `facegan.models.presets.DEFAULT_PRESET`); the length is `minutes` of training
    alone, or `steps`/`epochs` (with `minutes` as a cap); `**options` are `facegan train`'s flags named with `_`
    (`batch_size=64`, `ngf=48`, `ema=0.999`, a family's own options by name). `resume=RUN` continues that run,
    its length the new total. Ctrl-C or a notebook's interrupt stops after the current step with a checkpoint;
    the model is then returned as it stands (resume it with `train(resume=RUN, ...)`).
    """
    from facegan.training.loop import train as train_loop
    from facegan.training.options import new_run_config, resumed_run_config
    from facegan.utils.device import resolve_device

    given = {"time_budget_minutes": minutes, "steps": steps, "epochs": epochs, **options}
    hooks = training_hooks(eval_every, eval_n, report_every)
    if resume is not None:
        if data is not None or out is not None:
            raise FaceganError("train(resume=RUN) takes its data and output from the run; drop data and out")
        config, run_dir = resumed_run_config(resume, model, given), Path(resume)
    else:
        if data is None or out is None:
            raise FaceganError("give the prepared dataset and the run directory to create: train(data, out), "
                               "or resume=RUN")
        config, run_dir = new_run_config(data, model, given), Path(out)
    result = train_loop(config, run_dir, resume=resume is not None, hooks=hooks, show_progress=progress)
    if result.status != "finished":
        log.warning("training %s at step %d; facegan.train(resume=%r) continues it", result.status, result.step,
                    str(run_dir))
    if report and result.rank == 0:
        from facegan.report import try_build_report

        try_build_report(result.run_dir)
    return load(run_dir, device=str(resolve_device(config.train.device)))  # where it trained
