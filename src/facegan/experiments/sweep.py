"""`facegan sweep`: train every combination of a hyperparameter grid as an ordinary run, then compare them.

A grid is `KEY=V1,V2 ...`; KEY is a short name (`beta1`, `slope`, `batch`, `lr`, ...: see ALIASES), a
`section.field` of the run config (`model.ngf`, `train.loss`), or a field name found in one section only. A
list value separates its items with `/` (commas separate the values tried): `widths=256/128/64/32,128/64/32/16`,
`schedule.lr=1/0.25,1/1`.
Every combination becomes the run directory SWEEP/<key-value_...>, trained with `facegan.training.loop.train` from the
same preset, data, seed and fixed overrides, for `--steps` steps and/or `--budget-minutes` of training time
each. After training, each run's final checkpoint is evaluated (`facegan.metrics.evaluation.evaluate`: SWD and
the face-detection rate of `eval_n` fakes, into RUN/eval/<step>.json). Runs already in SWEEP are kept (and
evaluated if they were not), so an interrupted sweep continues where it stopped. SWEEP/sweep.json records the
plan; the comparison (facegan.experiments.compare) is written to SWEEP/compare.{md,csv,html}.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from facegan.config import BUDGET_ONLY_STEPS, RunConfig
from facegan.errors import FaceganError
from facegan.models.presets import DEFAULT_PRESET
from facegan.run.checkpoint import list_checkpoints
from facegan.run.layout import config_path
from facegan.utils.atomic import atomic_write_text

# The training loop's `train(config, run_dir, show_progress=...)`, passed in by the CLI.
Trainer = Callable[..., Any]

log = logging.getLogger("facegan.sweep")

# Short names of the settings studies tune most; seed 004's grid uses beta1, slope, batch and lr.
ALIASES: dict[str, tuple[tuple[str, str], ...]] = {
    "beta1": (("optim", "beta1"),),
    "beta2": (("optim", "beta2"),),
    "lr": (("optim", "lr_g"), ("optim", "lr_d")),
    "lr_g": (("optim", "lr_g"),),
    "lr_d": (("optim", "lr_d"),),
    "slope": (("model", "leaky_slope"),),
    "batch": (("train", "batch_size"),),
    "loss": (("train", "loss"),),
    "seed": (("train", "seed"),),
}
SECTIONS = ("data", "model", "optim", "train")


@dataclass
class PlannedRun:
    """One combination of the grid: its name (the run directory's), its settings and its full config."""

    name: str
    settings: dict[str, str]
    config: RunConfig


@dataclass
class SweepResult:
    """The run directories of a sweep (in grid order) and the comparison files written for them."""

    out_dir: Path
    runs: list[Path]
    comparison: dict[str, Path]


# Separates the items of one list value in a grid or --set entry (a comma separates the values tried).
LIST_SEPARATOR = "/"


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """["beta1=0.2,0.5", "lr=1e-4"] → {"beta1": ["0.2", "0.5"], "lr": ["1e-4"]} (order kept)."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        choices = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key or not choices:
            raise FaceganError(f"grid entry {item!r} should look like KEY=V1,V2 (e.g. beta1=0.2,0.5)")
        if key in grid:
            raise FaceganError(f"grid key {key!r} is given twice")
        resolve_key(key)
        grid[key] = choices
    return grid


def resolve_key(key: str) -> tuple[tuple[str, str], ...]:
    """The (section, field) pairs a grid key sets."""
    if key in ALIASES:
        return ALIASES[key]
    fields = {s: {f.name for f in dataclasses.fields(getattr(RunConfig(), s))} for s in (*SECTIONS, "schedule")}
    section, dot, name = key.partition(".")
    if dot:
        if section in fields and name in fields[section]:
            return ((section, name),)
    else:
        found = [s for s in SECTIONS if key in fields[s]]
        if len(found) == 1:
            return ((found[0], key),)
    name = key.removeprefix("model.").removeprefix("options.")
    if name in _family_options() and (not dot or key.startswith("model.")):
        return (("model", name),)  # a family's option: build_config files it under model.options
    raise FaceganError(f"unknown grid key {key!r}: use {', '.join(ALIASES)}, or section.field (e.g. model.ngf)")


def _family_options() -> dict[str, Any]:
    """The option specs of every registered family, by option name."""
    from facegan.models import FAMILIES
    from facegan.models.family import option_specs

    return {name: spec for family in FAMILIES.values() if family.options is not None
            for name, spec in option_specs(family.options).items()}


def _typed(section: str, name: str, text: str) -> Any:
    """`text` as the type of the config field (bool, int, float, str or a list of floats, items separated by
    `/`) or of the family option (its list items too)."""
    if section == "model" and not hasattr(RunConfig().model, name):
        from facegan.models.family import parse_option

        return parse_option(_family_options()[name], text.replace(LIST_SEPARATOR, ","), f"model.options.{name}")
    default = getattr(getattr(RunConfig(), section), name)
    try:
        if isinstance(default, list):
            return [float(item) for item in text.split(LIST_SEPARATOR)]
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0", "on", "off"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "on")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        kind = f"list of numbers separated by {LIST_SEPARATOR}" if isinstance(default, list) else type(default).__name__
        raise FaceganError(f"{section}.{name} needs a {kind}, not {text!r}") from None
    return text


def overrides_for(settings: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Config overrides, section by section, for {grid key: value text}."""
    overrides: dict[str, dict[str, Any]] = {}
    for key, text in settings.items():
        for section, name in resolve_key(key):
            overrides.setdefault(section, {})[name] = _typed(section, name, text)
    return overrides


def combinations(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    """Every combination of the grid, the last key varying fastest."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


def run_name(settings: dict[str, str]) -> str:
    """A directory name for a combination: `beta1-0.2_slope-0.06_batch-32_lr-1e-4`."""
    return "_".join(f"{key}-{re.sub(r'[^A-Za-z0-9.+-]', '_', value)}" for key, value in settings.items())


def _merge(*sources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for source in sources:
        for section, values in source.items():
            merged.setdefault(section, {}).update(values)
    return merged


def plan_sweep(
    grid: dict[str, list[str]], data: str | Path, preset: str = DEFAULT_PRESET,
    fixed: dict[str, dict[str, Any]] | None = None, budget_minutes: float | None = None, steps: int | None = None,
) -> list[PlannedRun]:
    """The configs of every combination, all checked before any training starts."""
    from facegan.training.configure import check_config, config_for_data

    length: dict[str, Any] = {}
    if budget_minutes is not None:
        if budget_minutes <= 0:
            raise FaceganError("--budget-minutes must be positive")
        length["time_budget_s"] = budget_minutes * 60.0
        length["steps"] = BUDGET_ONLY_STEPS  # the budget, not an epoch count, ends the run
    if steps is not None:
        length["steps"] = steps
    planned = []
    for settings in combinations(grid):
        config = config_for_data(preset, data, _merge({"train": length}, fixed or {}, overrides_for(settings)))
        check_config(config)
        planned.append(PlannedRun(run_name(settings), settings, config))
    return planned


DEFAULT_EVAL_N = 1000
DEFAULT_EVAL_METRICS = "swd,faces"


def evaluate_run(run_dir: str | Path, n: int, metrics: str = DEFAULT_EVAL_METRICS) -> None:
    """Evaluate a run's newest checkpoint into RUN/eval/<step>.json unless that file exists already."""
    from facegan.metrics.evaluation import eval_path, evaluate
    from facegan.run.checkpoint import load_checkpoint

    ckpt = load_checkpoint(run_dir)
    if eval_path(run_dir, ckpt["step"]).exists():
        return
    evaluate(run_dir, n=n, metrics=metrics, device=ckpt["config"].train.device, show_progress=False)


def _train_one(train: Trainer, config: dict[str, Any], run_dir: str, threads: int, eval_n: int = 0,
               eval_metrics: str = DEFAULT_EVAL_METRICS) -> str:
    """Train (and evaluate) one run in a worker process (`jobs` > 1) with its share of the CPU threads."""
    import torch

    from facegan.utils.logs import setup_logging

    setup_logging()
    torch.set_num_threads(threads)
    status = train(RunConfig.from_dict(config), run_dir, show_progress=False).status
    if eval_n:
        evaluate_run(run_dir, eval_n, eval_metrics)
    return status


def _done(run_dir: Path) -> bool:
    return config_path(run_dir).exists() and bool(list_checkpoints(run_dir))


def run_sweep(
    planned: Sequence[PlannedRun], out_dir: str | Path, train: Trainer, jobs: int = 1, compare_runs: bool = True,
    description: dict[str, Any] | None = None, eval_n: int = 0, eval_metrics: str = DEFAULT_EVAL_METRICS,
) -> SweepResult:
    """Train the planned runs into `out_dir` with `train` (`facegan.training.loop.train`, given by the caller:
    only the CLI and the API import the loop), `jobs` at a time, skipping finished ones, evaluate them (`eval_n`
    fakes; 0: no evaluation), then compare them."""
    if jobs < 1:
        raise FaceganError("--jobs must be at least 1")
    if eval_n < 0 or eval_n == 1:
        raise FaceganError("--eval-n must be 0 (no evaluation) or at least 2")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "sweep.json", json.dumps(
        {**(description or {}), "runs": [{"name": p.name, "settings": p.settings} for p in planned]}, indent=2) + "\n")
    todo = []
    for plan in planned:
        if _done(out_dir / plan.name):
            log.info("%s: already trained, kept", plan.name)
        elif (out_dir / plan.name).exists() and any((out_dir / plan.name).iterdir()):
            raise FaceganError(f"{out_dir / plan.name} holds an unfinished run with no checkpoint; remove it first")
        else:
            todo.append(plan)
    started = time.perf_counter()
    if jobs == 1 or len(todo) <= 1:
        for i, plan in enumerate(todo, 1):
            log.info("run %d/%d: %s", i, len(todo), plan.name)
            train(plan.config, out_dir / plan.name, show_progress=False)
            if eval_n:
                evaluate_run(out_dir / plan.name, eval_n, eval_metrics)
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_train_one, train, p.config.to_dict(), str(out_dir / p.name), threads, eval_n,
                                   eval_metrics): p for p in todo}
            for future, plan in futures.items():
                log.info("%s: %s", plan.name, future.result())
    log.info("trained %d runs in %.0f s", len(todo), time.perf_counter() - started)
    if eval_n:  # runs kept from an earlier call that were not evaluated yet
        for plan in planned:
            if plan not in todo:
                evaluate_run(out_dir / plan.name, eval_n, eval_metrics)
    runs = [out_dir / p.name for p in planned]
    comparison: dict[str, Path] = {}
    if compare_runs:
        from facegan.experiments.compare import compare

        comparison = compare(runs, out_dir, title=f"facegan sweep {out_dir.name}")
    return SweepResult(out_dir=out_dir, runs=runs, comparison=comparison)


def sweep(
    grid_items: Sequence[str], data: str | Path, out_dir: str | Path, train: Trainer, preset: str = DEFAULT_PRESET,
    fixed_items: Sequence[str] = (), budget_minutes: float | None = None, steps: int | None = None, jobs: int = 1,
    eval_n: int = DEFAULT_EVAL_N, eval_metrics: str = DEFAULT_EVAL_METRICS,
) -> SweepResult:
    """Plan, train and compare a sweep from command-line style arguments (`KEY=V1,V2`, `section.field=value`)."""
    grid = parse_grid(grid_items)
    fixed_grid = parse_grid(fixed_items)
    if any(len(values) != 1 for values in fixed_grid.values()):
        raise FaceganError("--set takes one value per key (KEY=VALUE); put lists of values in --grid")
    shared = set(grid) & set(fixed_grid)
    if shared:
        raise FaceganError(f"{', '.join(sorted(shared))} is both in --grid and --set")
    fixed = overrides_for({k: v[0] for k, v in fixed_grid.items()})
    planned = plan_sweep(grid, data, preset, fixed, budget_minutes, steps)
    description = {"preset": preset, "data": str(data), "grid": grid, "fixed": {k: v[0] for k, v in fixed_grid.items()},
                   "budget_minutes": budget_minutes, "steps": steps, "jobs": jobs, "eval_n": eval_n,
                   "eval_metrics": eval_metrics}
    log.info("sweep of %d runs into %s", len(planned), out_dir)
    return run_sweep(planned, out_dir, train, jobs, description=description, eval_n=eval_n, eval_metrics=eval_metrics)
