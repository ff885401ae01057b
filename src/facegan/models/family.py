"""What a model family declares: its builders, its training step, its presets and its own options.

A family module (models/dcgan.py, ...) ends with `FAMILY = Family(...)`; models/__init__.py registers it with
one line. A family sits below the training loop and never imports it. Most families train with the loop's
standard step (`step` None); one with a step of its own (BEGAN's) takes the `StepContext` declared here, which the
loop fills for every step. The family's own hyperparameters are a dataclass
(`options`) whose fields carry their help text in `option(...)` metadata: the CLI makes a `--flag` of each
field, and `ModelConfig.options` holds their values as plain JSON, checked against the dataclass (`options_of`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from facegan.config import ModelConfig, RunConfig
from facegan.errors import FaceganError


@dataclass
class StepContext:
    """What a training step needs (the loop fills it; a family's own step gets it too): the nets as the step must
    call them (DDP/compile-wrapped), their optimisers, the config and a latent sampler.

    `state` holds tensors a family keeps between steps (BEGAN's k_t, say); it is saved in checkpoints.
    """

    netG: nn.Module
    netD: nn.Module
    optG: torch.optim.Optimizer
    optD: torch.optim.Optimizer
    config: RunConfig
    latents: Callable[[int], torch.Tensor]
    autocast: Callable[[], Any] = contextlib.nullcontext
    state: dict[str, torch.Tensor] = field(default_factory=dict)
    scaler: torch.amp.GradScaler | None = None  # set for --precision fp16 (the loop's precision settings)
    noise: torch.Generator | None = None  # draws of the stabilisers (augmentation, label noise), checkpointed
    step: int = 0  # steps done before this one (the loop sets it): n_critic and annealing schedules use it
    ramps: dict[str, float] = field(default_factory=dict)  # this step's ramped values (the loop's schedules)

    def backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """`loss.backward()` then `optimizer.step()`, through the GradScaler under fp16.

        Under fp16 a step whose gradients overflowed is skipped and the scale lowered; code that reads or
        clips gradients between backward and step must call `scaler.unscale_(optimizer)` first.
        """
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()


# A training step: (its context, a batch of real images) → the scalars to log.
StepFn = Callable[[StepContext, torch.Tensor], dict[str, torch.Tensor]]

Overrides = dict[str, dict[str, Any]]


def option(default: Any, help: str, flag: str | None = None, minimum: float | None = None) -> Any:
    """A field of a family's options dataclass: its default, its help line, its --flag (default --NAME) and
    the smallest value it takes. A list default is copied for every instance."""
    meta = {"help": help, "flag": flag, "minimum": minimum}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Family:
    """A model family: how to build G and D for a `ModelConfig`, how to train them, and what it offers."""

    name: str
    build_generator: Callable[[ModelConfig], nn.Module]
    build_discriminator: Callable[[ModelConfig], nn.Module]
    step: StepFn | None = None  # its own training step; None: the loop's standard one (gan_step)
    presets: dict[str, Overrides] = field(default_factory=dict)  # `--model NAME` → config overrides
    options: type | None = None  # a dataclass of the family's own hyperparameters (ModelConfig.options)
    loss: str | None = None  # the one loss it trains with, computed by its own step (None: any loss on logits)
    check: Callable[[RunConfig], None] | None = None  # refuses, in one sentence, what cannot work with it
    # fills the config's "auto" values that the family decides (DCGAN's d_norm), when a config is built
    complete: Callable[[RunConfig], None] | None = None

    def default_options(self) -> dict[str, Any]:
        """The options' defaults as plain JSON."""
        return dataclasses.asdict(self.options()) if self.options is not None else {}

    def options_of(self, cfg: ModelConfig) -> Any:
        """`cfg.options` as the family's options dataclass (defaults filled), checked field by field."""
        if self.options is None:
            if cfg.options:
                raise FaceganError(f"the {self.name} model takes no options, not {', '.join(sorted(cfg.options))}")
            return None
        specs = option_specs(self.options)
        unknown = sorted(set(cfg.options) - set(specs))
        if unknown:
            raise FaceganError(f"the {self.name} model has no option {', '.join(unknown)}; its options: "
                               f"{', '.join(specs)}")
        for name, value in cfg.options.items():
            check_option(specs[name], value, f"model.options.{name}")
        return self.options(**cfg.options)


class OptionSpec(typing.NamedTuple):
    """One field of a family's options: its type (list: of `item`), default, help, --flag and minimum."""

    name: str
    kind: type
    item: type | None
    default: Any
    help: str
    flag: str
    minimum: float | None


def option_specs(options: type) -> dict[str, OptionSpec]:
    """The fields of an options dataclass by name, with their types resolved."""
    hints = typing.get_type_hints(options)
    specs = {}
    instance = options()
    for f in dataclasses.fields(options):
        hint = hints[f.name]
        kind, item = (list, typing.get_args(hint)[0]) if typing.get_origin(hint) is list else (hint, None)
        specs[f.name] = OptionSpec(f.name, kind, item, getattr(instance, f.name), f.metadata.get("help", ""),
                                   f.metadata.get("flag") or "--" + f.name.replace("_", "-"),
                                   f.metadata.get("minimum"))
    return specs


def _fits(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def check_option(spec: OptionSpec, value: Any, where: str) -> None:
    """Raise FaceganError unless `value` has the option's type and is at least its minimum."""
    items = value if spec.kind is list and isinstance(value, list) else [value]
    ok = (isinstance(value, list) and bool(value)) if spec.kind is list else True
    if not ok or not all(_fits(v, spec.item or spec.kind) for v in items):
        what = f"a list of {spec.item.__name__}" if spec.item else f"a {spec.kind.__name__}"
        raise FaceganError(f"{where} must be {what}, not {value!r}")
    if spec.minimum is not None and any(v < spec.minimum for v in items):
        raise FaceganError(f"{where} must be at least {spec.minimum:g}, not {value!r}")


def parse_option(spec: OptionSpec, text: str, where: str) -> Any:
    """An option's value from command-line text ("8", "0.4", "on", "64,128,256")."""
    parts = [p.strip() for p in text.split(",")] if spec.kind is list else [text.strip()]
    try:
        values = [_parse_one(p, spec.item or spec.kind) for p in parts if p]
    except ValueError:
        what = f"a comma list of {spec.item.__name__}" if spec.item else f"a {spec.kind.__name__}"
        raise FaceganError(f"{where} wants {what}, not {text!r}") from None
    value = values if spec.kind is list else (values[0] if values else "")
    check_option(spec, value, where)
    return value


def _parse_one(text: str, kind: type) -> Any:
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0", "on", "off", "yes", "no"):
            raise ValueError(text)
        return text.lower() in ("true", "1", "on", "yes")
    return kind(text)
