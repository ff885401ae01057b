"""Cosine ramps counted in images seen (R3GAN's), evaluated before each step and applied to the run.

R3GAN (Huang et al. 2024; their training loop's `cosine_decay_with_warmup`) ramps five quantities over the first
N images of training:
    value(n) = start + (end - start)·(1 - cos(π·n/N))/2   for n ≤ N images seen,   `end` after.
Their FFHQ-64 preset: lr 2e-4 → 5e-5 (a factor 1 → 0.25 here), Adam β2 0.9 → 0.99 (β1 = 0), γ 2 → 0.2, the
EMA half-life 0 → 0.5 M images and the augmentation probability 0 → 0.3, all over N = 20 M images.

Here (`ScheduleConfig`, the `schedule` section of config.json) N is `ramp_kimg`, or `ramp_fraction` of the
run's images when the run's length is known (steps or epochs), else `BUDGET_RAMP_KIMG` for runs that only a
time budget ends; the resolved N is written into the config when the run starts, so a resumed run (even one
given more steps) continues the same ramps. The EMA half-life is given as fractions of N (their FFHQ-64: 0 →
1/40), so it scales with the run. The values depend only on the images seen, so a resumed run is exact.
"""

from __future__ import annotations

import math

import torch

from facegan.config import BUDGET_ONLY_STEPS, RunConfig, ScheduleConfig
from facegan.errors import FaceganError

# Ramp length of a run that only its time budget ends (its length in images is not known at the start).
BUDGET_RAMP_KIMG = 20.0

RAMPS = ("lr", "beta2", "gamma", "ema_half_life", "aug_p")


def cosine_ramp(start: float, end: float, images_seen: float, ramp_images: float) -> float:
    """start → end along half a cosine over the first `ramp_images` images seen; `end` from then on."""
    if ramp_images <= 0 or images_seen >= ramp_images:
        return float(end)
    progress = max(float(images_seen), 0.0) / float(ramp_images)
    return float(start) + (float(end) - float(start)) * (1.0 - math.cos(math.pi * progress)) / 2.0


def ema_beta(batch: int, half_life_images: float) -> float:
    """G_ema's decay for one step of `batch` images: 0.5 ** (batch / half_life) (half-life 0: G_ema copies G)."""
    if half_life_images <= 0:
        return 0.0
    return 0.5 ** (batch / float(half_life_images))


def is_on(schedule: ScheduleConfig) -> bool:
    """True if any quantity is ramped."""
    return any(getattr(schedule, name) for name in RAMPS)


def check_schedule(schedule: ScheduleConfig) -> None:
    """Refuse, in one sentence, a ramp that is not [start, end] or a value out of its range (the ramp's length
    is a field checked with the others: facegan.config.check_fields)."""
    limits = {"lr": (0.0, math.inf), "beta2": (0.0, 1.0), "gamma": (0.0, math.inf),
              "ema_half_life": (0.0, math.inf), "aug_p": (0.0, 1.0)}
    for name in RAMPS:
        ramp = getattr(schedule, name)
        low, high = limits[name]
        if ramp and (len(ramp) != 2 or not all(isinstance(v, (int, float)) and low <= v <= high for v in ramp)):
            raise FaceganError(f"schedule.{name} must be [start, end] with values in [{low:g}, {high:g}], not {ramp!r}")
    if schedule.beta2 and max(schedule.beta2) >= 1:
        raise FaceganError(f"schedule.beta2 must stay below 1, not {schedule.beta2!r}")


def resolve_ramp(config: RunConfig, total_steps: int) -> bool:
    """Write the ramp length (kimg) into `config.schedule` when it is 0 and something ramps; True if it did."""
    schedule = config.schedule
    if schedule.ramp_kimg > 0 or not is_on(schedule):
        return False
    if config.train.steps >= BUDGET_ONLY_STEPS:  # only the time budget ends it: its length is unknown
        schedule.ramp_kimg = BUDGET_RAMP_KIMG
    else:
        schedule.ramp_kimg = round(total_steps * config.train.batch_size * schedule.ramp_fraction / 1000, 6)
    return True


def values_at(config: RunConfig, images_seen: int) -> dict[str, float]:
    """The ramped quantities after `images_seen` images, as applied and logged (empty when nothing ramps).

    Keys: lr_g, lr_d (lr), beta2, gamma, ema_half_life_kimg and ema_beta (ema_half_life), aug_p.
    """
    schedule = config.schedule
    ramp_images = schedule.ramp_kimg * 1000

    def at(name: str) -> float:
        start, end = getattr(schedule, name)
        return cosine_ramp(start, end, images_seen, ramp_images)

    values: dict[str, float] = {}
    if schedule.lr:
        factor = at("lr")
        values["lr_g"], values["lr_d"] = config.optim.lr_g * factor, config.optim.lr_d * factor
    if schedule.beta2:
        values["beta2"] = at("beta2")
    if schedule.gamma:
        values["gamma"] = at("gamma")
    if schedule.ema_half_life:
        half_life = at("ema_half_life") * ramp_images
        values["ema_half_life_kimg"] = half_life / 1000
        values["ema_beta"] = ema_beta(config.train.batch_size, half_life)
    if schedule.aug_p:
        values["aug_p"] = at("aug_p")
    return values


def apply_to_optimizers(values: dict[str, float], optG: torch.optim.Optimizer, optD: torch.optim.Optimizer) -> None:
    """Put the ramped lr and Adam β2 into the optimisers' parameter groups (β1 as configured)."""
    for optimizer, lr_key in ((optG, "lr_g"), (optD, "lr_d")):
        for group in optimizer.param_groups:
            if lr_key in values:
                group["lr"] = values[lr_key]
            if "beta2" in values and "betas" in group:
                group["betas"] = (group["betas"][0], values["beta2"])
