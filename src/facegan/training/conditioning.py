"""The step a run trains with: its family's own or the standard one, and for a conditional run that step with G
and D bound to each batch's labels.

The batches carry each image's level indices (facegan.data.labels); fakes get the real batch's labels (an
unbiased draw of p(y)), after label dropout, so every family's step, loss and stabiliser works unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from facegan.config import RunConfig
from facegan.data.labels import level_indices
from facegan.models.conditional import level_counts
from facegan.models.family import Family, StepFn
from facegan.training.step import gan_step


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


def training_step(family: Family, config: RunConfig, batches: Any) -> StepFn:
    """The step to train with: the family's own (or the standard `gan_step`), and for a conditional run that
    step fed with each batch's labels."""
    base = family.step or gan_step
    m = config.model
    if not m.condition:
        return base
    dataset = batches.dataset
    indices = level_indices(m, np.asarray(dataset.labels), list(dataset.meta["label_names"]))
    batches.set_labels(torch.from_numpy(indices))
    return conditional_step(base, batches, level_counts(m), config.train.condition_dropout)
