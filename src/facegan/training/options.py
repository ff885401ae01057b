"""A run's options by name, and the config they make: one implementation behind `facegan train --batch-size 64`
and `facegan.train(..., batch_size=64)`.

An option's name is its `facegan train` flag without the dashes, `-` written `_` (`--lr-g` is `lr_g`); a model
family's own options come by their field names (`bottleneck`, `widths`). A value may be typed (the API) or the
text of a flag for a family option (the CLI); None means "not given": the preset's, or the resumed run's, value.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from facegan.config import BUDGET_ONLY_STEPS, RunConfig
from facegan.errors import FaceganError
from facegan.models import FAMILIES
from facegan.models.family import OptionSpec, check_option, option_specs, parse_option
from facegan.models.presets import DEFAULT_PRESET, all_presets, build_config
from facegan.training.configure import config_for_data, preset_differences, resume_config, with_overrides
from facegan.training.optim import TTUR_LR_D, TTUR_LR_G

Overrides = dict[str, dict[str, Any]]

# Every option a run takes, by name (the family options come on top of these).
OPTIONS = (
    "nz", "ngf", "ndf", "latent",  # model
    "batch_size", "steps", "epochs", "lr", "lr_g", "lr_d", "beta1", "beta2", "loss", "flip",  # optimisation
    "seed", "device", "log_every", "sample_every", "checkpoint_every", "keep",  # running
    "precision", "channels_last", "compile", "sync_bn",  # speed and scale
    "leaky_slope", "d_norm", "minibatch_std", "spectral_norm", "optimizer", "grad_clip_value", "ttur",  # variants
    "n_critic", "gp_weight", "label_smoothing", "label_noise", "instance_noise", "instance_noise_steps",
    "r1_gamma", "penalty_every", "feature_matching", "ema", "diffaugment", "ramp_kimg",
    "time_budget_minutes",  # stabilisers and budget
    "condition", "health_every", "on_nan", "max_rollbacks", "tensorboard",  # health, TensorBoard, conditions
)
LENGTH = ("steps", "epochs")  # a resumed run's new total, set by `resume_config`


def preset_family(preset: str | None) -> str:
    """The model family of a preset (None: the default preset, `DEFAULT_PRESET`)."""
    presets = all_presets()
    name = preset or DEFAULT_PRESET
    if name not in presets:
        raise FaceganError(f"unknown model preset {name!r}; choose from {', '.join(sorted(presets))}")
    return presets[name]["model"]["family"]


def family_specs() -> dict[str, OptionSpec]:
    """The own options of every registered family, by name (the first family's spec where two share a name)."""
    specs: dict[str, OptionSpec] = {}
    for family in FAMILIES.values():
        for name, spec in (option_specs(family.options) if family.options is not None else {}).items():
            specs.setdefault(name, spec)
    return specs


def check_names(options: Mapping[str, Any]) -> None:
    """Refuse, naming the closest one, an option no run takes."""
    known = set(OPTIONS) | set(family_specs())
    for name in sorted(set(options) - known):
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise FaceganError(f"unknown training option {name!r}{hint} (the options are facegan train's flags "
                           "named with _, e.g. batch_size for --batch-size)")


def family_values(options: Mapping[str, Any], family: str) -> dict[str, Any] | None:
    """The family options among `options`, as values of `family`'s options (text is parsed as a flag's), checked;
    an option of another family is a user error."""
    owned = FAMILIES[family].options if family in FAMILIES else None
    specs = option_specs(owned) if owned is not None else {}
    values: dict[str, Any] = {}
    for name, value in options.items():
        if name in OPTIONS or value is None:
            continue
        if name not in specs:
            owners = [f.name for f in FAMILIES.values() if f.options is not None and name in option_specs(f.options)]
            raise FaceganError(f"{name} is an option of the {' and '.join(owners)} model, not {family}")
        spec = specs[name]
        if isinstance(value, str) and spec.kind is not str:
            value = parse_option(spec, value, name)
        check_option(spec, value, name)
        values[name] = value
    return values or None


def _number(options: Mapping[str, Any], name: str) -> float | None:
    value = options.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise FaceganError(f"{name} must be a number, not {value!r}")
    return value


def _condition(value: Any) -> list[str] | None:
    """Label names from "smiling,eyeglasses" or a list of names."""
    if value is None:
        return None
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise FaceganError(f"condition wants label names, e.g. 'smiling,eyeglasses', not {value!r}")
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise FaceganError("--condition wants label names separated by commas, e.g. smiling,eyeglasses")
    return names


def overrides_from_options(options: Mapping[str, Any], family: str) -> Overrides:
    """Config sections from the options given (None: keep the preset's, or the resumed run's, value); `family`:
    the model family whose own options may be given. Every value is checked with the config it makes."""
    check_names(options)
    get = options.get
    lr, budget = _number(options, "lr"), _number(options, "time_budget_minutes")
    optim: dict[str, Any] = {"name": get("optimizer"), "grad_clip_value": get("grad_clip_value"),
                             "lr_g": get("lr_g") or lr, "lr_d": get("lr_d") or lr,
                             "beta1": get("beta1"), "beta2": get("beta2")}
    if get("ttur"):
        optim["lr_g"] = get("lr_g") or lr or TTUR_LR_G
        optim["lr_d"] = get("lr_d") or lr or TTUR_LR_D
    # A budget with no steps/epochs is the run's length on its own (not a cap on the default 5 epochs).
    alone = budget is not None and get("steps") is None and get("epochs") is None
    length = {"steps": BUDGET_ONLY_STEPS} if alone else {}
    if get("tensorboard"):
        from facegan.training.tensorboard import require_tensorboard

        require_tensorboard()  # before the run directory exists
    train = {
        "batch_size": get("batch_size"), "steps": get("steps"), "epochs": get("epochs"), "loss": get("loss"),
        "seed": get("seed"), "device": get("device"), "log_every": get("log_every"),
        "sample_every": get("sample_every"), "checkpoint_every": get("checkpoint_every"),
        "keep_checkpoints": get("keep"), "precision": get("precision"), "channels_last": get("channels_last"),
        "compile": get("compile"), "sync_bn": get("sync_bn"),
        "n_critic": get("n_critic"), "gp_weight": get("gp_weight"), "label_smoothing": get("label_smoothing"),
        "label_noise": get("label_noise"), "instance_noise": get("instance_noise"),
        "instance_noise_steps": get("instance_noise_steps"), "r1_gamma": get("r1_gamma"),
        "penalty_every": get("penalty_every"), "feature_matching": get("feature_matching"),
        "ema_decay": get("ema"), "diffaugment": get("diffaugment"),
        "time_budget_s": budget * 60.0 if budget is not None else None, **length,
        "health_every": get("health_every"), "on_nan": get("on_nan"), "max_rollbacks": get("max_rollbacks"),
        "tensorboard": get("tensorboard"),
    }
    model = {"nz": get("nz"), "ngf": get("ngf"), "ndf": get("ndf"), "latent": get("latent"),
             "leaky_slope": get("leaky_slope"), "d_norm": get("d_norm"), "minibatch_std": get("minibatch_std"),
             "spectral_norm": get("spectral_norm"), "condition": _condition(get("condition")),
             "options": family_values(options, family)}
    return {"data": {"flip": get("flip")}, "model": model, "optim": optim, "train": train,
            "schedule": {"ramp_kimg": get("ramp_kimg")}}


def new_run_config(data: str | Path | None, model: str | None = None,
                   options: Mapping[str, Any] | None = None) -> RunConfig:
    """The config of a new run: the preset `model` (None: `DEFAULT_PRESET`), the options given, and the size of the
    dataset at `data` (None: the preset's size). Checked as a whole by `check_config` when it trains."""
    preset = model or DEFAULT_PRESET
    overrides = overrides_from_options(options or {}, preset_family(preset))
    if data is None:
        return build_config(preset, overrides)
    return config_for_data(preset, data, overrides)


def resumed_run_config(run_dir: str | Path, model: str | None = None,
                       options: Mapping[str, Any] | None = None) -> RunConfig:
    """The config of the run in `run_dir` with the options given applied (`steps`/`epochs`: its new total); a
    `model` preset that is not the run's is refused (the loop refuses any other change of the recipe)."""
    options = options or {}
    config = resume_config(run_dir, steps=options.get("steps"), epochs=options.get("epochs"))
    if model is not None and (differ := preset_differences(config, model)):
        what = (f"it is a {config.model.family} run" if "model.family" in differ
                else f"{', '.join(differ)} differ")
        raise FaceganError(f"--model {model} is not the model of {run_dir} ({what}); resume without --model")
    overrides = overrides_from_options(options, config.model.family)
    for name in LENGTH:
        overrides["train"].pop(name, None)
    return with_overrides(config, overrides)
