"""A run's config from a preset and its dataset, and the checks a config must pass against the data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facegan.config import RunConfig
from facegan.data.dataset import PreparedDataset
from facegan.data.labels import check_condition
from facegan.errors import FaceganError
from facegan.models import check_model_config
from facegan.models.presets import all_presets, build_config
from facegan.run.checkpoint import load_checkpoint
from facegan.training.schedules import check_schedule
from facegan.training.stabilisers import check_stabilisers


def check_model_fits_data(config: RunConfig, dataset: PreparedDataset) -> None:
    """The model's resolution and channels must be the dataset's, and its condition labels the dataset's."""
    m = config.model
    if (m.resolution, m.channels) != (dataset.resolution, dataset.channels):
        raise FaceganError(
            f"the model is {m.resolution} px × {m.channels} channels but {dataset.path} holds "
            f"{dataset.resolution} px × {dataset.channels}; prepare the data with --res {m.resolution} "
            f"--channels {m.channels}, or pick a model of the data's size"
        )
    check_condition(config, dataset)  # fills model.condition_levels from the labels


def config_for_data(
    preset: str, data_path: str | Path, overrides: dict[str, dict[str, Any]] | None = None
) -> RunConfig:
    """A config from a preset and overrides whose model size is the dataset's (a preset's pinned size must match)."""
    dataset = PreparedDataset.open(data_path)
    overrides = {k: dict(v) for k, v in (overrides or {}).items()}
    overrides.setdefault("data", {})["path"] = str(data_path)
    pinned = all_presets().get(preset, {}).get("model", {})
    model = overrides.setdefault("model", {})
    model.setdefault("resolution", pinned.get("resolution", dataset.resolution))
    model.setdefault("channels", pinned.get("channels", dataset.channels))
    config = build_config(preset, overrides)
    check_model_fits_data(config, dataset)
    check_config(config)
    return config


def check_config(config: RunConfig) -> None:
    """Refuse, in one sentence, a config that cannot train: its loss, stabilisers and ramps, then its family's
    checks."""
    check_stabilisers(config)
    check_schedule(config.schedule)
    if config.schedule.aug_p and not config.train.diffaugment:
        raise FaceganError("schedule.aug_p ramps the augmentation probability: give --diffaugment POLICY too")
    if config.schedule.beta2 and config.optim.name != "adam":
        raise FaceganError(f"schedule.beta2 ramps Adam's β2; the {config.optim.name} optimiser has none")
    check_model_config(config)


def resume_config(run_dir: str | Path, steps: int | None = None, epochs: int | None = None) -> RunConfig:
    """The config of a run's newest checkpoint, with its length optionally extended."""
    config = load_checkpoint(run_dir)["config"]
    if steps is not None:
        config.train.steps = steps
    if epochs is not None:
        config.train.epochs, config.train.steps = epochs, 0
    return config
