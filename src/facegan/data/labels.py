"""Dataset labels, the data side of conditional generation: which labels a run conditions on and their levels.

A conditional run (`facegan train --condition smiling,eyeglasses`) names columns of the prepared dataset's
labels.npy (`meta["label_names"]`: the synthetic faces' attributes, CelebA's 40 ±1 attributes, MNIST's digit).
Their values are recorded in the config (`model.condition_levels`), so a checkpoint alone knows how to turn
`--attr smiling=1` into the index of a level (facegan.generation.attributes). Training feeds the level indices
of each batch to G and D (facegan.training.conditioning); the networks are wrapped by facegan.models.conditional.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from facegan.config import ModelConfig, RunConfig
from facegan.errors import FaceganError


def attribute_levels(values: np.ndarray) -> list[int]:
    """The levels of one label column: its distinct values, except that a ±1 column's 0 means "no label".

    CelebA's attribute table holds -1/1 and facegan's reader writes 0 for an image without a row.
    """
    levels = sorted(int(v) for v in np.unique(np.asarray(values)))
    if {-1, 1} <= set(levels) <= {-1, 0, 1}:
        return [-1, 1]
    return levels


def label_columns(label_names: list[str], wanted: list[str], where: str) -> list[int]:
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
    columns = label_columns(names, m.condition, str(dataset.path))
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
    columns = label_columns(label_names, cfg.condition, "the dataset")
    out = np.empty((len(labels), len(columns)), dtype=np.int64)
    for k, (column, levels) in enumerate(zip(columns, cfg.condition_levels, strict=True)):
        values = np.asarray(labels[:, column], dtype=np.int64)
        table = np.asarray(levels, dtype=np.int64)
        pos = np.clip(np.searchsorted(table, values), 0, len(table) - 1)
        out[:, k] = np.where(table[pos] == values, pos, len(table))
    return out
