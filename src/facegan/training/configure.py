"""A run's config from a preset and its dataset, the one check a config must pass before it trains, and what may
change when a run is resumed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facegan.config import (
    BOOKKEEPING,
    BUDGET_ONLY_STEPS,
    RECIPE,
    RESUMABLE,
    RunConfig,
    check_fields,
    field_flag,
    flat_fields,
    merge_sections,
)
from facegan.data.dataset import PreparedDataset
from facegan.data.labels import check_condition
from facegan.errors import FaceganError
from facegan.losses import LOSSES, get_loss
from facegan.models import check_model_config
from facegan.models.presets import all_presets, build_config
from facegan.run.checkpoint import load_checkpoint
from facegan.training.augment import DIFFAUGMENT, parse_policy
from facegan.training.optim import get_optimizer
from facegan.training.schedules import check_schedule


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
    """A config from a preset and overrides whose model size is the dataset's (a preset's pinned size must match).

    Its fields are checked before the dataset is opened (`build_config`); the whole config is checked by
    `check_config` when it trains.
    """
    overrides = {k: dict(v) for k, v in (overrides or {}).items()}
    overrides.setdefault("data", {})["path"] = str(data_path)
    config = build_config(preset, overrides)
    dataset = PreparedDataset.open(data_path)
    given = overrides.get("model", {})
    pinned = all_presets().get(preset, {}).get("model", {})
    for name in ("resolution", "channels"):
        if given.get(name) is None and name not in pinned:
            setattr(config.model, name, getattr(dataset, name))
    check_model_fits_data(config, dataset)
    return config


def check_config(config: RunConfig) -> None:
    """Refuse, in one sentence, a config that cannot train: every field against its declared rules, the
    registries' names, the rules between fields, the ramps, then the family's checks. The one check of a config."""
    check_fields(config)
    t = config.train
    loss = get_loss(t.loss)
    get_optimizer(config.optim.name)
    for name in ("label_smoothing", "label_noise"):
        if getattr(t, name) and not loss.takes_labels:
            labelled = [n for n, other in LOSSES.items() if other.takes_labels]
            raise FaceganError(f"{name} needs a loss with labels ({', '.join(labelled)}), not {t.loss}")
    unknown = [p for p in parse_policy(t.diffaugment) if p not in DIFFAUGMENT]
    if unknown:
        raise FaceganError(f"unknown DiffAugment {', '.join(unknown)}; choose from {', '.join(DIFFAUGMENT)}")
    if t.steps >= BUDGET_ONLY_STEPS and not t.time_budget_s > 0:
        raise FaceganError("a run whose length only its time budget sets needs a positive --time-budget-minutes")
    check_schedule(config.schedule)
    if config.schedule.aug_p and not t.diffaugment:
        raise FaceganError("schedule.aug_p ramps the augmentation probability: give --diffaugment POLICY too")
    if config.schedule.beta2 and config.optim.name != "adam":
        raise FaceganError(f"schedule.beta2 ramps Adam's β2; the {config.optim.name} optimiser has none")
    check_model_config(config)


def with_overrides(config: RunConfig, overrides: dict[str, dict[str, Any]]) -> RunConfig:
    """A copy of `config` with the non-None values of `overrides` (per section; model.options merged)."""
    return RunConfig.from_dict(merge_sections(config.to_dict(), overrides))


def _option_name(key: str) -> str:
    section, _, name = key.partition(".")
    return field_flag(section, name) if name else key


def resume_changes(saved: RunConfig, wanted: RunConfig) -> dict[str, list[Any]]:
    """What `wanted` changes of a run saved with `saved`: {"section.name": [old, new]} of the settings a resumed
    run may change (facegan.config.RESUMABLE); a change of its recipe is one clear FaceganError naming the option."""
    old, new = flat_fields(saved), flat_fields(wanted)
    changes: dict[str, list[Any]] = {}
    for key in old:
        if old[key] == new[key] or key in BOOKKEEPING:
            continue
        if key not in RESUMABLE:
            raise FaceganError(f"{_option_name(key)} cannot change when resuming: the run has {key} = {old[key]!r}, "
                               f"not {new[key]!r} (it is part of the run's recipe); resume without it, or start a "
                               "new run with --out")
        changes[key] = [old[key], new[key]]
    return changes


def check_same_data(saved: RunConfig, data_path: str | Path, run_dir: str | Path) -> None:
    """The command that started a run continues it only with the run's data (the same folder)."""
    if Path(data_path).resolve() != Path(saved.data.path).resolve():
        raise FaceganError(f"{run_dir} trains on {saved.data.path}, not {data_path}: give its --data to continue it, "
                           "or another --out to start a new run")


def check_start_again(saved: RunConfig, wanted: RunConfig, run_dir: str | Path) -> None:
    """A run stopped before its first checkpoint (`saved`: its config.json) starts again from step 0 only with the
    data and recipe it was started with; a change is one clear FaceganError."""
    check_same_data(saved, wanted.data.path, run_dir)
    wanted = RunConfig.from_dict(wanted.to_dict())
    if not wanted.schedule.ramp_kimg:  # config.json holds the ramp length its start resolved from the same recipe
        wanted.schedule.ramp_kimg = saved.schedule.ramp_kimg
    resume_changes(saved, wanted)


def preset_differences(config: RunConfig, preset: str) -> list[str]:
    """The recipe settings that `preset` sets (its family and its own overrides, family options included) to
    other values than `config` has."""
    built, have = flat_fields(build_config(preset)), flat_fields(config)
    named = {"model.family"} | {f"{section}.{name}" for section, values in all_presets()[preset].items()
                                for name in values if name != "options"}
    differ = [key for key in named if key in RECIPE and built[key] != have[key]]
    options = all_presets()[preset].get("model", {}).get("options", {})
    differ += [f"model.options.{k}" for k, v in options.items() if config.model.options.get(k) != v]
    return sorted(differ)


def resume_config(run_dir: str | Path, steps: int | None = None, epochs: int | None = None) -> RunConfig:
    """The config of a run's newest checkpoint, with its length optionally extended."""
    config = load_checkpoint(run_dir)["config"]
    if steps is not None:
        config.train.steps = steps
    if epochs is not None:
        config.train.epochs, config.train.steps = epochs, 0
    return config
