"""Typed run configuration: dataclasses with a strict JSON round-trip (presets: facegan.models.presets).

A `RunConfig` is saved as `config.json` in every run directory and inside every checkpoint, so a run can
be resumed and a checkpoint loaded with no other file. Configs written by older versions are migrated on load.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import platform
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facegan.errors import FaceganError
from facegan.version import __version__

# The allowed values of the settings that take one of a few names (the CLI's choices are these).
LATENTS = ("normal", "uniform")
D_NORMS = ("auto", "batch", "layer", "none")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
CHANNELS_LAST = ("auto", "on", "off")
COMPILE_MODES = ("off", "on", "reduce-overhead", "max-autotune")  # on: torch.compile's default mode
ON_NAN = ("stop", "rollback")


def setting(
    default: Any, *, choices: tuple[str, ...] | None = None, minimum: float | None = None,
    maximum: float | None = None, above: float | None = None, below: float | None = None, flag: str | None = None,
) -> Any:
    """A config field with the values it takes: one of `choices`, or a number within `minimum`..`maximum`,
    > `above` and < `below`; `flag` is its `facegan train` option when that is not --NAME (named in error
    messages). `check_fields` enforces these rules; the CLI takes its choices from them."""
    meta = {"choices": choices, "minimum": minimum, "maximum": maximum, "above": above, "below": below, "flag": flag}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    """Which prepared dataset to train on and how to read it."""

    path: str = setting("", flag="--data")
    flip: bool = False  # random horizontal flips, drawn on the training device


@dataclass
class ModelConfig:
    """Architecture of G and D. `family` names an entry of `facegan.models.FAMILIES`; `options` holds that
    family's own hyperparameters (their schema is the family's options dataclass, e.g. BEGAN's bottleneck)."""

    family: str = setting("dcgan", flag="--model")
    resolution: int = setting(64, minimum=1)
    channels: int = setting(3, minimum=1)
    nz: int = setting(100, minimum=1)
    ngf: int = setting(64, minimum=1)
    ndf: int = setting(64, minimum=1)
    latent: str = setting("normal", choices=LATENTS)  # "normal": N(0, 1); "uniform": U(-1, 1)
    leaky_slope: float = setting(0.2, minimum=0.0)  # negative slope of D's LeakyReLUs (seed 004 tunes it)
    # D's normalisation (dcgan): batch, layer, none; auto: the dcgan family decides (layer for a loss whose
    # penalty is per image, wgan-gp and rpgan; else batch)
    d_norm: str = setting("auto", choices=D_NORMS)
    minibatch_std: bool = False  # append the minibatch standard deviation channel before D's last layer
    spectral_norm: bool = False  # spectral normalisation of every conv/linear weight of D (Miyato et al. 2018)
    # Conditional generation (facegan.data.labels, docs/conditional.md): label names of the dataset, their values.
    condition: list[str] = field(default_factory=list)
    condition_levels: list[list[int]] = field(default_factory=list)  # filled from the data's labels
    condition_embed: int = setting(8, minimum=1)  # size of the label embedding fed to G (and D without a hook)
    options: dict[str, Any] = field(default_factory=dict)  # the family's own options (Family.options_of)


@dataclass
class OptimConfig:
    """Optimisers of G and D (the DCGAN paper's Adam by default)."""

    name: str = setting("adam", flag="--optimizer")  # facegan.training.optim.OPTIMIZERS
    lr_g: float = setting(2e-4, above=0.0)
    lr_d: float = setting(2e-4, above=0.0)
    beta1: float = setting(0.5, minimum=0.0, below=1.0)
    beta2: float = setting(0.999, minimum=0.0, below=1.0)
    rho: float = setting(0.9, minimum=0.0, below=1.0)  # RMSprop's decay of the squared-gradient average (Keras' rho)
    grad_clip_value: float = setting(0.0, minimum=0.0)  # clip every gradient element to ±this (0: off)


@dataclass
class TrainConfig:
    """The training loop: length, loss, logging, sampling and checkpoint cadence."""

    batch_size: int = setting(128, minimum=1)
    steps: int = setting(0, minimum=0)  # 0: run `epochs` full passes over the data instead
    epochs: int = setting(5, minimum=1)
    loss: str = "bce"  # facegan.losses.LOSSES
    seed: int = setting(0, minimum=0)
    device: str = "auto"
    precision: str = setting("auto", choices=PRECISIONS)  # fp32, bf16 (autocast), fp16 (+ GradScaler); auto: bf16
    # where the hardware runs it natively (facegan.training.precision)
    channels_last: str = setting("auto", choices=CHANNELS_LAST)  # auto: CUDA, or CPU with bf16/fp16
    compile: str = setting("off", choices=COMPILE_MODES)  # torch.compile mode; reduce-overhead adds CUDA graphs
    sync_bn: bool = False  # under torchrun: BatchNorm statistics over the global batch (CUDA only)
    log_every: int = setting(10, minimum=1)
    sample_every: int = setting(500, minimum=1)
    checkpoint_every: int = setting(1000, minimum=1)
    keep_checkpoints: int = setting(3, minimum=1, flag="--keep")
    # stop after this much training time (0: no limit), e.g. for sweeps
    time_budget_s: float = setting(0.0, minimum=0.0, flag="--time-budget-minutes")
    # Stabilisers (facegan.training: targets.py, augment.py, ema.py; docs/models.md); all off by default.
    n_critic: int = setting(1, minimum=1)  # D steps per G step
    gp_weight: float = setting(10.0, minimum=0.0)  # λ of WGAN-GP's gradient penalty (used with loss wgan-gp)
    label_smoothing: float = setting(0.0, minimum=0.0, below=0.5)  # one-sided: D's real target is 1 - this
    label_noise: float = setting(0.0, minimum=0.0, below=0.5)  # D's targets move toward the other class by U(0, this)
    instance_noise: float = setting(0.0, minimum=0.0)  # σ of Gaussian noise added to every D input
    instance_noise_steps: int = setting(0, minimum=0)  # σ falls linearly to 0 over this many steps (0: constant)
    r1_gamma: float = setting(0.0, minimum=0.0)  # R1 penalty γ/2·E‖∇D(x)‖² on reals (0: off); rpgan: γ of R1 + R2
    penalty_every: int = setting(1, minimum=1)  # R1 (and R2) on every k-th D step only, weighted k·γ (lazy)
    feature_matching: bool = False  # G matches the mean of D's last hidden features instead of fooling D
    ema_decay: float = setting(0.0, minimum=0.0, below=1.0, flag="--ema")  # keep G_ema, an EMA of G (0: off)
    diffaugment: str = ""  # DiffAugment policy for every D input: comma list of color, translation, cutout
    # Training health (facegan.training.health, docs/health.md): checked every health_every steps and before
    # checkpoints.
    health_every: int = setting(100, minimum=0)  # 0: no checks
    # NaN/inf losses or weights: stop, or rollback (last good checkpoint, halved lr_g/lr_d)
    on_nan: str = setting("stop", choices=ON_NAN)
    max_rollbacks: int = setting(3, minimum=0)  # --on-nan rollback gives up (stops) after this many rollbacks
    rollbacks: int = setting(0, minimum=0)  # rollbacks so far: each one halves lr_g and lr_d in this config
    health_saturation: float = setting(0.99, above=0.5, maximum=1.0)  # D saturated: D(x) ≥ this, D(G(z)) ≤ 1 - this
    health_window: int = setting(200, minimum=1)  # ... for this many steps in a row
    health_collapse: float = setting(0.2, minimum=0.0)  # collapse: diversity of G on the fixed latents below
    health_warmup: int = setting(500, minimum=0)  # this × the data's, from this step on (an untrained G is not)
    tensorboard: bool = False  # also write metrics and fixed-noise grids to RUN/tb/ (facegan.training.tensorboard)
    # conditional runs: chance a row's labels, or one label, are hidden from G and D
    condition_dropout: float = setting(0.1, minimum=0.0, below=1.0)


@dataclass
class ScheduleConfig:
    """Cosine ramps counted in images seen, R3GAN's (facegan.training.schedules); none by default.

    Each ramp is [start, end]: the value follows half a cosine from start to end over the first `ramp_kimg`
    thousand images, then stays at end. An empty list leaves that quantity to the rest of the config.
    """

    ramp_kimg: float = setting(0.0, minimum=0.0)  # length of the ramps; 0: ramp_fraction of the run (written
    # here when it starts)
    ramp_fraction: float = setting(0.5, above=0.0, maximum=1.0)  # of the run's images, when steps/epochs give
    # its length (time budget: 20 kimg)
    lr: list[float] = field(default_factory=list)  # factors of optim.lr_g and lr_d (R3GAN: 1 → 0.25)
    beta2: list[float] = field(default_factory=list)  # Adam's β2 (R3GAN: 0.9 → 0.99)
    gamma: list[float] = field(default_factory=list)  # γ of the zero-centred penalties (in place of train.r1_gamma)
    ema_half_life: list[float] = field(default_factory=list)  # G_ema's half-life, as fractions of the ramp length
    aug_p: list[float] = field(default_factory=list)  # probability each image D sees is augmented (train.diffaugment)


SECTIONS = ("data", "model", "optim", "train", "schedule")

# What a resumed run does with each field (`section.name`; model.options is the family's options, all recipe).
# A run resumes with new values of these; runtime.json records each change (facegan.training.configure):
RESUMABLE = frozenset({
    "train.steps", "train.epochs", "train.time_budget_s",  # its length
    "train.device", "train.precision", "train.channels_last", "train.compile",  # how fast it computes
    "train.log_every", "train.sample_every", "train.checkpoint_every", "train.keep_checkpoints",  # what it writes
    "train.tensorboard",
    "train.health_every", "train.on_nan", "train.max_rollbacks", "train.health_saturation", "train.health_window",
    "train.health_collapse", "train.health_warmup",  # how it is watched
    "optim.lr_g", "optim.lr_d",  # the learning rates (the health check flags the change: lr_changed)
    "train.ema_decay",  # G_ema: a run that turns it on starts it from G
    "data.path",  # where the prepared data is now (the API's resume of a moved run; its size is checked)
})
# These facegan fills itself (from the data, by rollbacks, at the start):
BOOKKEEPING = frozenset({"versions", "model.condition_levels", "train.rollbacks"})
# These are the run's recipe: what its weights, optimiser state and data order were made with. A resumed run
# refuses a new value (start a new run instead):
RECIPE = frozenset({
    "data.flip",
    "model.family", "model.resolution", "model.channels", "model.nz", "model.ngf", "model.ndf", "model.latent",
    "model.leaky_slope", "model.d_norm", "model.minibatch_std", "model.spectral_norm", "model.condition",
    "model.condition_embed", "model.options",
    "optim.name", "optim.beta1", "optim.beta2", "optim.rho", "optim.grad_clip_value",
    "train.batch_size", "train.loss", "train.seed", "train.sync_bn", "train.n_critic", "train.gp_weight",
    "train.label_smoothing", "train.label_noise", "train.instance_noise", "train.instance_noise_steps",
    "train.r1_gamma", "train.penalty_every", "train.feature_matching", "train.diffaugment",
    "train.condition_dropout",
    "schedule.ramp_kimg", "schedule.ramp_fraction", "schedule.lr", "schedule.beta2", "schedule.gamma",
    "schedule.ema_half_life", "schedule.aug_p",
})


def _field(section: str, name: str) -> dataclasses.Field:
    cls = typing.get_type_hints(RunConfig)[section]
    return next(f for f in dataclasses.fields(cls) if f.name == name)


@functools.cache
def _section_types(section: str) -> dict[str, Any]:
    return typing.get_type_hints(typing.get_type_hints(RunConfig)[section])


# What a field of each scalar type takes (an int where a float is wanted; never a bool for a number).
_ACCEPTS = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}


def _wrong_type(value: Any, kind: Any) -> bool:
    accepts = _ACCEPTS.get(kind)
    if accepts is None:
        return False
    return not isinstance(value, accepts) or (kind is not bool and isinstance(value, bool))


def field_flag(section: str, name: str) -> str:
    """The `facegan train` option that sets `section.name` (its --NAME unless the field names another)."""
    return _field(section, name).metadata.get("flag") or "--" + name.replace("_", "-")


def choices_of(section: str, name: str) -> tuple[str, ...]:
    """The values `section.name` takes (a field declared with `choices`)."""
    choices = _field(section, name).metadata.get("choices")
    assert choices, f"{section}.{name} has no choices"
    return choices


def check_value(section: str, name: str, value: Any) -> None:
    """Raise FaceganError, naming the field and its option, unless `value` obeys `section.name`'s rules."""
    meta = _field(section, name).metadata
    where = f"{section}.{name} ({field_flag(section, name)})"
    kind = _section_types(section)[name]
    if _wrong_type(value, kind):
        raise FaceganError(f"{where} must be a{'n' * (kind is int)} {kind.__name__}, not {value!r}")
    if meta.get("choices") and value not in meta["choices"]:
        raise FaceganError(f"{where} must be one of {', '.join(meta['choices'])}, not {value!r}")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if meta.get("minimum") is not None and value < meta["minimum"]:
        raise FaceganError(f"{where} must be at least {meta['minimum']:g}, not {value:g}")
    if meta.get("maximum") is not None and value > meta["maximum"]:
        raise FaceganError(f"{where} must be at most {meta['maximum']:g}, not {value:g}")
    if meta.get("above") is not None and not value > meta["above"]:
        raise FaceganError(f"{where} must be greater than {meta['above']:g}, not {value:g}")
    if meta.get("below") is not None and not value < meta["below"]:
        raise FaceganError(f"{where} must be less than {meta['below']:g}, not {value:g}")


def merge_sections(base: dict[str, dict[str, Any]], extra: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`base` with the non-None values of `extra` added, section by section; a dict value (model.options) is
    merged key by key."""
    merged = {section: dict(values) for section, values in base.items()}
    for section, values in extra.items():
        target = merged.setdefault(section, {})
        for key, value in values.items():
            if value is None:
                continue
            both_dicts = isinstance(value, dict) and isinstance(target.get(key), dict)
            target[key] = {**target[key], **value} if both_dicts else value
    return merged


def flat_fields(config: RunConfig) -> dict[str, Any]:
    """Every field as "section.name" → value ("versions" whole, model.options as one value)."""
    flat: dict[str, Any] = {"versions": config.versions}
    for section in SECTIONS:
        values = getattr(config, section)
        flat.update({f"{section}.{f.name}": getattr(values, f.name) for f in dataclasses.fields(values)})
    return flat


def check_fields(config: RunConfig) -> None:
    """Every field of `config` against the rules it was declared with (`setting`)."""
    for section in SECTIONS:
        values = getattr(config, section)
        for f in dataclasses.fields(values):
            check_value(section, f.name, getattr(values, f.name))


@dataclass
class RunConfig:
    """Everything needed to reproduce a run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form of the config."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Rebuild a config from `to_dict` output (older versions' migrated); unknown fields are a user error."""
        return _from_dict(cls, migrate(data), "config")

    def save(self, path: str | Path) -> None:
        """Write the config as JSON, atomically and durably (a run's config.json must survive a lost machine)."""
        from facegan.utils.atomic import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n", durable=True)

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


# `train.steps` of a run that only its time budget ends (train.time_budget_s).
BUDGET_ONLY_STEPS = 10**9

# Fields of facegan 0.1.0 that are now a family's options: (section, old name) → (family, option name).
MOVED_TO_OPTIONS = {
    ("model", "bottleneck"): ("began", "bottleneck"),
    ("train", "began_gamma"): ("began", "gamma"),
    ("train", "began_lambda_k"): ("began", "lambda_k"),
}


def migrate(data: Any) -> Any:
    """A config dict of an older facegan in today's shape (a copy): fields that became a family's options move
    into `model.options` for that family and are dropped for the others, which never read them."""
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        return data
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    model = data["model"]
    for (section, old), (family, new) in MOVED_TO_OPTIONS.items():
        values = data.get(section)
        if isinstance(values, dict) and old in values:
            value = values.pop(old)
            if model.get("family") == family:
                model["options"] = {**model.get("options", {}), new: value}
    return data
