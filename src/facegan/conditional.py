"""Conditional generation: which labels a run conditions on, how they reach G and D, and `--attr` parsing.

A conditional run (`facegan train --condition smiling,eyeglasses`) names columns of the prepared dataset's
labels.npy (`meta["label_names"]`: the synthetic faces' attributes, CelebA's 40 ±1 attributes, MNIST's digit).
Their values are recorded in the config (`model.condition_levels`), so a checkpoint alone knows how to turn
`--attr smiling=1` into the index of a level. The networks are wrapped by `facegan.models.conditional`; this
module feeds them: the batches carry each image's level indices, and the family's own step function runs
with G and D bound to those labels (fakes get the real batch's labels, an unbiased draw of p(y)), so every
family's step, loss and stabiliser works unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from facegan.config import ModelConfig, RunConfig
from facegan.errors import FaceganError
from facegan.models.conditional import level_counts, unknown_labels

_TRUE = {"yes", "true", "on"}
_FALSE = {"no", "false", "off"}


def attribute_levels(values: np.ndarray) -> list[int]:
    """The levels of one label column: its distinct values, except that a ±1 column's 0 means "no label".

    CelebA's attribute table holds -1/1 and facegan's reader writes 0 for an image without a row.
    """
    levels = sorted(int(v) for v in np.unique(np.asarray(values)))
    if {-1, 1} <= set(levels) <= {-1, 0, 1}:
        return [-1, 1]
    return levels


def _columns(label_names: list[str], wanted: list[str], where: str) -> list[int]:
    """Indices of `wanted` among the dataset's label names, matched without regard to case."""
    lower = {name.lower(): i for i, name in enumerate(label_names)}
    missing = [name for name in wanted if name.lower() not in lower]
    if missing:
        known = ", ".join(label_names) if label_names else "none"
        raise FaceganError(f"{where} has no label {', '.join(map(repr, missing))}; its labels: {known}")
    return [lower[name.lower()] for name in wanted]


def check_condition(config: RunConfig, dataset: Any) -> None:
    """Validate `model.condition` against the dataset's labels; fill `model.condition_levels` from the data.

    `dataset` is an opened `PreparedDataset`. A config that already has levels (a resumed run) keeps them.
    """
    m = config.model
    if not m.condition:
        return
    if m.condition_embed < 1:
        raise FaceganError(f"model.condition_embed must be at least 1, not {m.condition_embed}")
    if not 0 <= config.train.condition_dropout < 1:
        raise FaceganError(f"train.condition_dropout must be in [0, 1), not {config.train.condition_dropout}")
    names = list(dataset.meta.get("label_names") or [])
    if dataset.labels is None or not names:
        raise FaceganError(f"--condition needs labels, but {dataset.path} has none (labels come from "
                           "builtin:synthetic-faces, CelebA's list_attr_celeba.txt or MNIST's idx1 file)")
    if len(set(name.lower() for name in m.condition)) != len(m.condition):
        raise FaceganError(f"--condition names an attribute twice: {','.join(m.condition)}")
    columns = _columns(names, m.condition, str(dataset.path))
    m.condition = [names[c] for c in columns]  # the dataset's spelling
    if not m.condition_levels:
        m.condition_levels = [attribute_levels(dataset.labels[:, c]) for c in columns]
    if len(m.condition_levels) != len(m.condition):
        raise FaceganError("model.condition_levels must list the levels of every attribute in model.condition")
    for name, levels in zip(m.condition, m.condition_levels, strict=True):
        if len(levels) < 2:
            raise FaceganError(f"label {name!r} has the single value {levels[0]} in {dataset.path}: "
                               "nothing to condition on")


def level_indices(cfg: ModelConfig, labels: np.ndarray, label_names: list[str]) -> np.ndarray:
    """N×A int64 level indices of the conditioned columns of a dataset's N×L labels (unknown level for values
    outside the recorded levels, such as CelebA's 0 for an image without a row)."""
    columns = _columns(label_names, cfg.condition, "the dataset")
    out = np.empty((len(labels), len(columns)), dtype=np.int64)
    for k, (column, levels) in enumerate(zip(columns, cfg.condition_levels, strict=True)):
        values = np.asarray(labels[:, column], dtype=np.int64)
        table = np.asarray(levels, dtype=np.int64)
        pos = np.clip(np.searchsorted(table, values), 0, len(table) - 1)
        out[:, k] = np.where(table[pos] == values, pos, len(table))
    return out


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


def drop_labels(labels: torch.Tensor, counts: list[int], p: float,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Labels with some set to unknown: each row entirely with probability p, and each entry with probability p.

    The first teaches G the unconditional mix (what `netG(z)` without labels gives); the second teaches
    partial conditions (`--attr smiling=1` leaves the others free).
    """
    if p <= 0:
        return labels
    n, a = labels.shape
    device = generator.device if generator is not None else labels.device
    draws = torch.rand(n, a + 1, generator=generator, device=device).to(labels.device)
    drop = (draws[:, :a] < p) | (draws[:, a:] < p)
    unknown = torch.tensor(counts, dtype=labels.dtype, device=labels.device).expand(n, -1)
    return torch.where(drop, unknown, labels)


class _Bound:
    """A network called with fixed labels: `bound(x, ...)` is `net(x, labels, ...)`; other attributes pass through."""

    def __init__(self, net: Any, labels: torch.Tensor) -> None:
        self._net = net
        self._labels = labels

    def __call__(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        return self._net(x, self._labels, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._net, name)


def conditional_step(base: Callable[..., dict[str, torch.Tensor]], batches: Any, counts: list[int],
                     dropout: float) -> Callable[..., dict[str, torch.Tensor]]:
    """The family's step with G and D bound to the labels of the batch `batches` just gave (after dropout)."""

    def step(ctx: Any, real: torch.Tensor) -> dict[str, torch.Tensor]:
        labels = batches.batch_labels
        if labels is None or labels.shape[0] != real.shape[0]:
            raise RuntimeError("a conditional step needs the batch's labels (BatchIterator.set_labels)")
        labels = drop_labels(labels, counts, dropout, ctx.noise)
        view = dataclasses.replace(ctx, netG=_Bound(ctx.netG, labels), netD=_Bound(ctx.netD, labels))
        return base(view, real)  # view.state is ctx.state: a family's step state (BEGAN's k_t) persists

    return step


def for_training(family: Any, config: RunConfig, batches: Any) -> Any:
    """The family to train with: itself, or (conditional runs) its step fed with each batch's labels."""
    m = config.model
    if not m.condition:
        return family
    dataset = batches.dataset
    indices = level_indices(m, np.asarray(dataset.labels), list(dataset.meta["label_names"]))
    batches.set_labels(torch.from_numpy(indices))
    return family._replace(step=conditional_step(family.step, batches, level_counts(m),
                                                 config.train.condition_dropout))


def attribute_grid(gen: Any, name: str, n: int, seed: int = 0, truncation: float = 1.0,
                   attr: dict[str, int] | None = None) -> tuple[np.ndarray, list[int]]:
    """A uint8 grid with one row per value of attribute `name` and the same n latents in every column.

    `gen` is a `facegan.sample.LoadedGenerator`; `attr` fixes other attributes. Returns (grid, the values).
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
