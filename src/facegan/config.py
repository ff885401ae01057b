"""Typed run configuration: dataclasses with a strict JSON round-trip and named presets.

A `RunConfig` is saved as `config.json` in every run directory and inside every checkpoint, so a run can
be resumed and a checkpoint loaded with no other file.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facegan import __version__
from facegan.errors import FaceganError


@dataclass
class DataConfig:
    """Which prepared dataset to train on and how to read it."""

    path: str = ""
    flip: bool = False  # random horizontal flips, drawn on the training device


@dataclass
class ModelConfig:
    """Architecture of G and D. `family` names an entry of `facegan.models.FAMILIES`."""

    family: str = "dcgan"
    resolution: int = 64
    channels: int = 3
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    latent: str = "normal"  # "normal": N(0, 1); "uniform": U(-1, 1)


@dataclass
class OptimConfig:
    """Optimisers of G and D (the DCGAN paper's Adam by default)."""

    name: str = "adam"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999


@dataclass
class TrainConfig:
    """The training loop: length, loss, logging, sampling and checkpoint cadence."""

    batch_size: int = 128
    steps: int = 0  # 0: run `epochs` full passes over the data instead
    epochs: int = 5
    loss: str = "bce"
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3


@dataclass
class RunConfig:
    """Everything needed to reproduce a run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form of the config."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Rebuild a config from `to_dict` output; unknown fields are a user error."""
        return _from_dict(cls, data, "config")

    def save(self, path: str | Path) -> None:
        """Write the config as JSON, atomically."""
        from facegan.utils.atomic import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Read a config written by `save`."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise FaceganError(f"cannot read config {path}: {exc}") from None
        return cls.from_dict(data)


def _from_dict(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise FaceganError(f"{where} should be a JSON object")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise FaceganError(f"{where} has unknown field(s) {', '.join(unknown)} (made by a newer facegan?)")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _from_dict(hint, value, f"{where}.{name}")
        else:
            kwargs[name] = value
    return cls(**kwargs)


def current_versions() -> dict[str, str]:
    """Versions of facegan, torch, numpy and Python, recorded in every run."""
    import numpy
    import torch

    return {
        "facegan": __version__,
        "torch": str(torch.__version__),
        "numpy": str(numpy.__version__),
        "python": platform.python_version(),
    }


# A preset is a set of overrides applied to the default RunConfig, section by section.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "dcgan": {"model": {"family": "dcgan"}},
}


def build_config(preset: str = "dcgan", overrides: dict[str, dict[str, Any]] | None = None) -> RunConfig:
    """A RunConfig from a named preset plus per-section overrides (`{"train": {"steps": 10}}`)."""
    if preset not in PRESETS:
        raise FaceganError(f"unknown model preset {preset!r}; choose from {', '.join(sorted(PRESETS))}")
    merged: dict[str, dict[str, Any]] = RunConfig().to_dict()
    for source in (PRESETS[preset], overrides or {}):
        for section, values in source.items():
            merged[section].update({k: v for k, v in values.items() if v is not None})
    return RunConfig.from_dict(merged)
