"""`facegan train`'s flags and the config's fields are declared in two places (argparse and the dataclasses);
this test checks them against each other, so a new field gets a flag (or a reason not to) and a flag a field.
A family's own options need no entry here: their flags are generated from the family's dataclass."""

from __future__ import annotations

import argparse
import dataclasses

from facegan.cli.main import build_parser
from facegan.config import ModelConfig, OptimConfig, ScheduleConfig, TrainConfig

SECTIONS = (ModelConfig, OptimConfig, TrainConfig, ScheduleConfig)

RENAMED = {"name": "optimizer", "ema_decay": "ema", "keep_checkpoints": "keep",
           "time_budget_s": "time_budget_minutes", "family": "model"}  # field → the flag's dest
NO_FLAG = {  # fields set another way
    "resolution", "channels",  # from the dataset
    "condition_levels", "options",  # from the dataset's labels; the family's generated flags
    "condition_embed", "rho", "rollbacks", "health_saturation", "health_window", "health_collapse",
    "health_warmup", "condition_dropout",  # config.json or sweep --set only
    "ramp_fraction", "gamma", "ema_half_life", "aug_p",  # the schedule's ramps: the presets, config.json
}
CLI_ONLY = {"data", "out", "resume", "resume_if_exists", "show_config", "lr", "ttur", "no_progress", "report_every",
            "no_report", "eval_every", "eval_n", "func", "command", "verbose", "flip"}


def _train_dests() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest for a in sub.choices["train"]._actions if not a.dest.startswith(("help", "family_option_"))}


def test_every_config_field_has_a_flag_or_a_reason() -> None:
    dests = _train_dests()
    fields = {f.name for cls in SECTIONS for f in dataclasses.fields(cls)}
    missing = sorted(f for f in fields - NO_FLAG if RENAMED.get(f, f) not in dests)
    assert missing == []


def test_every_flag_sets_a_config_field() -> None:
    fields = {f.name for cls in SECTIONS for f in dataclasses.fields(cls)}
    targets = fields | set(RENAMED.values()) | CLI_ONLY
    assert sorted(_train_dests() - targets) == []


def test_every_flag_is_a_library_option_or_a_parameter_of_facegan_train() -> None:
    """facegan.training.options takes every flag by its name, so `facegan.train(**options)` and the CLI cannot
    drift apart; the rest are facegan.train's own parameters (data, out, resume, model, report, progress, ...)
    and --resume-if-exists, the command line's start-or-continue for torchrun's restarts (from Python: resume=)."""
    import inspect

    from facegan.api.training import train
    from facegan.training.options import OPTIONS

    own = {"data", "out", "resume", "model", "report_every", "eval_every", "eval_n"}
    assert own <= set(inspect.signature(train).parameters)
    assert set(OPTIONS) == _train_dests() - own - {"show_config", "no_progress", "no_report", "resume_if_exists"}
