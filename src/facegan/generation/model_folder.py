"""A model folder in the Hugging Face Hub's layout, read and written: `model.safetensors` (G's weights),
`config.json` (what builds G, and facegan's version), `README.md` (the model card) and `samples.png`.

Reading one executes nothing from it: the weights are safetensors (no pickle) and the config is JSON, checked
field by field; config.json records the weights' SHA-256, so a truncated or changed weights file is refused in one
sentence. `facegan.generation.hub_export` writes the folder; `load_generator` reads it like a run directory.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from facegan.config import RunConfig, check_fields
from facegan.errors import FaceganError
from facegan.models import get_family
from facegan.run.layout import CHECKPOINTS
from facegan.version import __version__

FORMAT = "facegan-model"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
SAMPLES_FILE = "samples.png"
FILES = (WEIGHTS_FILE, SAMPLES_FILE, CARD_FILE, CONFIG_FILE)  # the order they are put in place: config.json last
MAX_CONFIG_BYTES = 1 << 20


def is_model_folder(path: str | Path) -> bool:
    """Whether `path` is a model folder (or its weights file): a folder with model.safetensors, or with a
    config.json and no checkpoints/ (a run directory has both)."""
    path = Path(path)
    if path.is_file():
        return path.suffix == ".safetensors"
    if not path.is_dir():
        return False
    return (path / WEIGHTS_FILE).exists() or ((path / CONFIG_FILE).is_file() and not (path / CHECKPOINTS).exists())


def folder_of(path: str | Path) -> Path:
    """The model folder of a folder or of its weights file."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def public_config(config: RunConfig) -> RunConfig:
    """The run's config as a published model carries it: the dataset named by its folder, not by a local path."""
    public = RunConfig.from_dict(config.to_dict())
    public.data.path = Path(config.data.path).name
    return public


def weights_bytes(state: dict[str, torch.Tensor]) -> bytes:
    """G's state dict as safetensors bytes (each tensor its own contiguous CPU copy; no shared storage)."""
    tensors = {name: value.detach().cpu().clone().contiguous() for name, value in state.items()}
    return save_safetensors(tensors, metadata={"format": "pt", "library": "facegan"})


def config_document(config: RunConfig, weights: bytes, facts: dict[str, Any]) -> dict[str, Any]:
    """The config.json of a model folder: its format, the facts a reader wants first, the weights' checksum and
    the run's whole config (`config.model` is what builds G)."""
    model = config.model
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "facegan_version": __version__,
        "family": model.family, "resolution": model.resolution, "channels": model.channels, "nz": model.nz,
        "latent": model.latent, "condition": list(model.condition),
        **facts,
        "weights_file": WEIGHTS_FILE, "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "config": config.to_dict(),
    }


def _read_document(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise FaceganError(f"{folder} has no {CONFIG_FILE}, so it is not a facegan model folder "
                           "(facegan export RUN --format hub --out DIR writes one)")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise FaceganError(f"{path} is over {MAX_CONFIG_BYTES} bytes: not a facegan model config")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise FaceganError(f"{path} is not readable JSON ({type(exc).__name__})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise FaceganError(f"{path} is not a facegan model config (it lacks \"format\": \"{FORMAT}\")")
    version = document.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise FaceganError(f"{path} has no valid format_version")
    if version > FORMAT_VERSION:
        raise FaceganError(f"{path} was written by a newer facegan (format {version}); upgrade facegan")
    return document


def _count(document: dict[str, Any], key: str, path: Path) -> int:
    value = document.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FaceganError(f"{path}: {key} must be a whole number of at least 0, not {value!r}")
    return value


def read_model_folder(path: str | Path) -> dict[str, Any]:
    """A model folder (or its weights file) as a checkpoint-like dict: `config` (a checked RunConfig), `weights`
    ("G_ema" or "G": which of the run's Gs it holds) and the state dict under that name, `step`, `images_seen`,
    `elapsed_s` and `path` (the weights file)."""
    folder = folder_of(path)
    document = _read_document(folder)
    config_path = folder / CONFIG_FILE
    try:
        config = RunConfig.from_dict(document.get("config"))
        check_fields(config)
        get_family(config.model.family).options_of(config.model)
    except FaceganError as exc:
        raise FaceganError(f"{config_path}: {exc}") from None
    except (TypeError, ValueError) as exc:  # a field of the wrong shape (a list where a number goes, say)
        raise FaceganError(f"{config_path}: the config does not describe a model ({exc})") from None
    weights_path = folder / WEIGHTS_FILE
    if not weights_path.is_file():
        raise FaceganError(f"{folder} has no {WEIGHTS_FILE} (the weights of G); export the folder again")
    data = weights_path.read_bytes()
    expected = document.get("weights_sha256")
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
        raise FaceganError(f"{weights_path} does not match the checksum in {CONFIG_FILE}: the file is truncated "
                           "or was changed; download or export it again")
    try:
        state = load_safetensors(data)
    except Exception as exc:  # safetensors raises its own error types for a file that is not safetensors
        raise FaceganError(f"{weights_path} is not a readable safetensors file ({type(exc).__name__}); a pickled "
                           "checkpoint renamed to .safetensors is refused") from None
    weights = document.get("weights") if document.get("weights") in ("G", "G_ema") else "G"
    return {"config": config, weights: state, "weights": weights, "step": _count(document, "step", config_path),
            "images_seen": _count(document, "images_seen", config_path), "elapsed_s": document.get("elapsed_s"),
            "path": str(weights_path)}
