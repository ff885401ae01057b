"""Attributes of a conditional model at generation time: `--attr` parsing, labels asking for attribute values,
grids with one row per value, and the pattern of `attr` strings the web API documents."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from facegan.config import ModelConfig
from facegan.errors import FaceganError
from facegan.models.conditional import unknown_labels

_TRUE = {"yes", "true", "on"}
_FALSE = {"no", "false", "off"}


def parse_attr(text: str | None) -> dict[str, int]:
    """`"smiling=1,eyeglasses=0"` → {"smiling": 1, "eyeglasses": 0}; yes/no and true/false also work."""
    attr: dict[str, int] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip().lower()
        if not sep or not name or not value:
            raise FaceganError(f"--attr wants NAME=VALUE pairs separated by commas, not {part.strip()!r}")
        if value in _TRUE or value in _FALSE:
            attr[name] = int(value in _TRUE)
            continue
        try:
            attr[name] = int(value)
        except ValueError:
            raise FaceganError(f"--attr {name}: {value!r} is not an integer (or yes/no)") from None
    return attr


def labels_for(cfg: ModelConfig, attr: dict[str, int] | None, n: int,
               device: torch.device | str = "cpu") -> torch.Tensor | None:
    """N×A level indices asking for `attr` (every other attribute unknown); None when nothing is asked.

    Raises FaceganError for a model trained without --condition, an attribute it was not conditioned on, or
    a value that attribute never took. For a ±1 attribute (CelebA) 0 means -1.
    """
    if not attr:
        return None
    if not cfg.condition:
        raise FaceganError("this model was trained without --condition, so it takes no attributes")
    labels = unknown_labels(cfg, n, device)
    columns = {name.lower(): k for k, name in enumerate(cfg.condition)}
    for name, value in attr.items():
        k = columns.get(name.lower())
        if k is None:
            raise FaceganError(f"the model is conditioned on {', '.join(cfg.condition)}, not {name!r}")
        levels = cfg.condition_levels[k]
        if levels == [-1, 1] and value == 0:
            value = -1
        if value not in levels:
            raise FaceganError(f"{cfg.condition[k]} takes the values {', '.join(map(str, levels))}, not {value}")
        labels[:, k] = levels.index(value)
    return labels


def describe_condition(cfg: ModelConfig) -> list[dict[str, Any]]:
    """The attributes a model takes and their values, for the CLI, the web page and the API."""
    return [{"name": name, "values": list(levels)} for name, levels in zip(cfg.condition, cfg.condition_levels,
                                                                          strict=True)]


def attribute_grid(gen: Any, name: str, n: int, seed: int = 0, truncation: float = 1.0,
                   attr: dict[str, int] | None = None) -> tuple[np.ndarray, list[int]]:
    """A uint8 grid with one row per value of attribute `name` and the same n latents in every column.

    `gen` is a `facegan.generation.sample.LoadedGenerator`; `attr` fixes other attributes. Returns (grid, the values).
    """
    from facegan.utils.images import make_grid

    cfg = gen.config.model
    if not cfg.condition:
        raise FaceganError("this model was trained without --condition, so it has no attribute to vary")
    columns = {c.lower(): k for k, c in enumerate(cfg.condition)}
    if name.lower() not in columns:
        raise FaceganError(f"the model is conditioned on {', '.join(cfg.condition)}, not {name!r}")
    k = columns[name.lower()]
    others = {key: value for key, value in (attr or {}).items() if key.lower() != name.lower()}
    z = gen.latents(n, seed, truncation)
    levels = list(cfg.condition_levels[k])
    rows = [gen.images(z, gen.labels(n, {**others, cfg.condition[k]: value})) for value in levels]
    return make_grid(np.concatenate(rows), nrow=n), levels


def write_attribute_grid(gen: Any, out: str, name: str, n: int, seed: int = 0, truncation: float = 1.0,
                         attr: dict[str, int] | None = None) -> int:
    """Save `attribute_grid` as the PNG `out`; returns how many values (rows) it shows."""
    from pathlib import Path

    from facegan.utils.images import save_png

    if Path(out).suffix.lower() != ".png":
        raise FaceganError("--vary writes one grid: give --out a .png file")
    grid, levels = attribute_grid(gen, name, n, seed, truncation, attr)
    save_png(grid, out)
    return len(levels)


def attr_pattern(cfg: ModelConfig) -> str:
    """A regular expression of the canonical `attr` strings a model takes: NAME=VALUE pairs joined by commas,
    with the model's names and values exactly (the web API documents and checks it); only "" if unconditional."""
    import re

    items = [f"{re.escape(name)}=({'|'.join(str(v) for v in levels)})"
             for name, levels in zip(cfg.condition, cfg.condition_levels, strict=True)]
    if not items:
        return "^$"
    item = "(" + "|".join(items) + ")"
    return f"^({item}(,{item})*)?$"
