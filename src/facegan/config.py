"""Typed run configuration: dataclasses with a strict JSON round-trip (presets: facegan.models.presets).

A `RunConfig` is saved as `config.json` in every run directory and inside every checkpoint, so a run can
be resumed and a checkpoint loaded with no other file. Configs written by older versions are migrated on load.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facegan.errors import FaceganError
from facegan.version import __version__


@dataclass
class DataConfig:
    """Which prepared dataset to train on and how to read it."""

    path: str = ""
    flip: bool = False  # random horizontal flips, drawn on the training device


@dataclass
class ModelConfig:
    """Architecture of G and D. `family` names an entry of `facegan.models.FAMILIES`; `options` holds that
    family's own hyperparameters (their schema is the family's options dataclass, e.g. BEGAN's bottleneck)."""

    family: str = "dcgan"
    resolution: int = 64
    channels: int = 3
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    latent: str = "normal"  # "normal": N(0, 1); "uniform": U(-1, 1)
    leaky_slope: float = 0.2  # negative slope of D's LeakyReLUs (seed 004 tunes it)
    d_norm: str = "auto"  # D's normalisation (dcgan): batch, layer, none; auto: layer for wgan-gp, else batch
    minibatch_std: bool = False  # append the minibatch standard deviation channel before D's last layer
    spectral_norm: bool = False  # spectral normalisation of every conv/linear weight of D (Miyato et al. 2018)
    # Conditional generation (facegan.data.labels, docs/conditional.md): label names of the dataset, their values.
    condition: list[str] = field(default_factory=list)
    condition_levels: list[list[int]] = field(default_factory=list)  # filled from the data's labels
    condition_embed: int = 8  # size of the label embedding fed to G (and to D as planes without a feature hook)
    options: dict[str, Any] = field(default_factory=dict)  # the family's own options (Family.options_of)


@dataclass
class OptimConfig:
    """Optimisers of G and D (the DCGAN paper's Adam by default)."""

    name: str = "adam"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    rho: float = 0.9  # RMSprop's decay of the squared-gradient average (Keras' rho, torch's alpha)
    grad_clip_value: float = 0.0  # clip every gradient element to ±this before each step (0: off)


@dataclass
class TrainConfig:
    """The training loop: length, loss, logging, sampling and checkpoint cadence."""

    batch_size: int = 128
    steps: int = 0  # 0: run `epochs` full passes over the data instead
    epochs: int = 5
    loss: str = "bce"
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto, fp32, bf16 (autocast) or fp16 (autocast + GradScaler); facegan.training.precision
    channels_last: str = "auto"  # auto (CUDA, or CPU with bf16/fp16), on, off
    compile: str = "off"  # torch.compile mode: off, on, reduce-overhead (CUDA graphs), max-autotune
    sync_bn: bool = False  # under torchrun: BatchNorm statistics over the global batch (CUDA only)
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    time_budget_s: float = 0.0  # stop after this much training time (0: no limit), e.g. for sweeps
    # Stabilisers (see facegan.training.stabilisers and docs/models.md); all off by default.
    n_critic: int = 1  # D steps per G step
    gp_weight: float = 10.0  # λ of WGAN-GP's gradient penalty (used with loss wgan-gp)
    label_smoothing: float = 0.0  # one-sided: D's real target is 1 - this
    label_noise: float = 0.0  # D's targets move toward the other class by U(0, this)
    instance_noise: float = 0.0  # σ of Gaussian noise added to every D input
    instance_noise_steps: int = 0  # σ falls linearly to 0 over this many steps (0: constant)
    r1_gamma: float = 0.0  # R1 penalty γ/2·E‖∇D(x)‖² on reals (0: off); rpgan: γ of its R1 + R2
    penalty_every: int = 1  # R1 (and R2) on every k-th D step only, weighted k·γ (lazy regularisation)
    feature_matching: bool = False  # G matches the mean of D's last hidden features instead of fooling D
    ema_decay: float = 0.0  # keep G_ema, an exponential moving average of G's weights (0: off; e.g. 0.999)
    diffaugment: str = ""  # DiffAugment policy for every D input: comma list of color, translation, cutout
    # Training health (facegan.training.health, docs/health.md): checked every health_every steps and before
    # checkpoints.
    health_every: int = 100  # 0: no checks
    on_nan: str = "stop"  # NaN/inf losses or weights: stop, or rollback (last good checkpoint, halved lr_g/lr_d)
    max_rollbacks: int = 3  # --on-nan rollback gives up (stops) after this many rollbacks
    rollbacks: int = 0  # rollbacks so far: each one halves lr_g and lr_d in this config
    health_saturation: float = 0.99  # D saturated: D(x) ≥ this and D(G(z)) ≤ 1 - this ...
    health_window: int = 200  # ... for this many steps in a row
    health_collapse: float = 0.2  # collapse: diversity of G on the fixed latents below this × the data's ...
    health_warmup: int = 500  # ... from this step on (an untrained G is not diverse yet)
    tensorboard: bool = False  # also write metrics and fixed-noise grids to RUN/tb/ (facegan.training.tensorboard)
    condition_dropout: float = 0.1  # conditional runs: chance a row's labels, or one label, are hidden from G and D


@dataclass
class ScheduleConfig:
    """Cosine ramps counted in images seen, R3GAN's (facegan.training.schedules); none by default.

    Each ramp is [start, end]: the value follows half a cosine from start to end over the first `ramp_kimg`
    thousand images, then stays at end. An empty list leaves that quantity to the rest of the config.
    """

    ramp_kimg: float = 0.0  # length of the ramps; 0: ramp_fraction of the run (written here when it starts)
    ramp_fraction: float = 0.5  # of the run's images, when steps/epochs give its length (time budget: 20 kimg)
    lr: list[float] = field(default_factory=list)  # factors of optim.lr_g and lr_d (R3GAN: 1 → 0.25)
    beta2: list[float] = field(default_factory=list)  # Adam's β2 (R3GAN: 0.9 → 0.99)
    gamma: list[float] = field(default_factory=list)  # γ of the zero-centred penalties (in place of train.r1_gamma)
    ema_half_life: list[float] = field(default_factory=list)  # G_ema's half-life, as fractions of the ramp length
    aug_p: list[float] = field(default_factory=list)  # probability each image D sees is augmented (train.diffaugment)


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
