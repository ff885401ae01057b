"""The defaults `facegan train --help` states: each setting's value in every preset, read from the presets.

"default V" is the value of the default preset (`--model` not given); the presets that differ follow it
("default 128; r3gan, r3gan32: 256"), so the help is true for every `--model`. `facegan train --model M
--show-config` prints one preset's whole config.
"""

from __future__ import annotations

import functools
from typing import Any

from facegan.config import RunConfig


@functools.lru_cache(maxsize=1)
def preset_configs() -> dict[str, RunConfig]:
    """Every preset's config (at its pinned size, or the default 64 px × 3 channels)."""
    from facegan.models.presets import build_config, preset_names

    return {name: build_config(name) for name in preset_names()}


def format_value(value: Any, scale: float = 1.0) -> str:
    """A config value as the help writes it: numbers with %g (times `scale`), on/off, comma lists."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return f"{value * scale:g}"
    if isinstance(value, list):
        return ",".join(format_value(v, scale) for v in value) or "none"
    return str(value) if value != "" else "none"


def preset_values(section: str, name: str, scale: float = 1.0) -> dict[str, str]:
    """{preset: the setting's value there, as the help writes it}."""
    return {preset: format_value(getattr(getattr(config, section), name), scale)
            for preset, config in preset_configs().items()}


def default_text(section: str, name: str, scale: float = 1.0) -> str:
    """"default V" (V: the default preset's value), then "P1, P2: W" for each other value the presets take."""
    from facegan.models.presets import DEFAULT_PRESET

    values = preset_values(section, name, scale)
    common = values[DEFAULT_PRESET]
    others: dict[str, list[str]] = {}
    for preset, value in values.items():
        if value != common:
            others.setdefault(value, []).append(preset)
    return "; ".join([f"default {common}", *(f"{', '.join(p)}: {v}" for v, p in others.items())])
