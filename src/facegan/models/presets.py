"""Presets (`--model NAME`): the ones every registered family declares, and configs built from them.

A preset is a set of overrides applied to the default RunConfig, section by section; it names its family.
docs/models.md describes each preset; a preset that names a resolution pins it.
"""

from __future__ import annotations

from typing import Any

from facegan.config import RunConfig, check_fields, migrate
from facegan.errors import FaceganError
from facegan.models import FAMILIES, complete_config

Overrides = dict[str, dict[str, Any]]

# `--model` when none is given (and `build_config`'s default).
DEFAULT_PRESET = "dcgan-lite"


def all_presets() -> dict[str, Overrides]:
    presets: dict[str, Overrides] = {}
    for family in FAMILIES.values():
        for name, overrides in family.presets.items():
            if name in presets:
                raise RuntimeError(f"two families declare the preset {name!r}")
            model = {"family": family.name, **overrides.get("model", {})}
            presets[name] = {**overrides, "model": model}
    return presets


PRESETS: dict[str, Overrides] = all_presets()


def preset_names() -> list[str]:
    """Every `--model` choice, sorted."""
    return sorted(all_presets())


def build_config(preset: str = DEFAULT_PRESET, overrides: Overrides | None = None) -> RunConfig:
    """A RunConfig from a named preset plus per-section overrides (`{"train": {"steps": 10}}`).

    A family option may be given in `model.options` or, by its name, in `model` (`{"model": {"bottleneck": 8}}`);
    the family's defaults fill the options it is not given, so config.json lists them all.
    """
    presets = all_presets()
    if preset not in presets:
        raise FaceganError(f"unknown model preset {preset!r}; choose from {', '.join(sorted(presets))}")
    merged: dict[str, Any] = RunConfig().to_dict()
    options: dict[str, Any] = {}
    for source in (presets[preset], overrides or {}):
        for section, values in source.items():
            values = {k: v for k, v in values.items() if v is not None}
            if section == "model":
                options.update(values.pop("options", None) or {})
            merged.setdefault(section, {}).update(values)
    merged = migrate(merged)  # 0.1.0 names (train.began_gamma, ...) → model.options of their family
    options = {**merged["model"].pop("options", {}), **options}
    family = FAMILIES.get(merged["model"]["family"])  # an unknown family fails where G and D are built
    model_fields = set(RunConfig().model.__dataclass_fields__)
    for name in [k for k in merged["model"] if k not in model_fields]:  # an option given by its name
        options[name] = merged["model"].pop(name)
    merged["model"]["options"] = {**(family.default_options() if family else {}), **options}
    config = RunConfig.from_dict(merged)
    complete_config(config)  # the family's "auto" values, recorded concretely in config.json
    check_fields(config)
    return config
