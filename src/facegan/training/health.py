"""Training health: catch NaN/inf, a saturated discriminator and mode collapse while a run trains.

The training loop calls `HealthMonitor.after_step` after every step. Between checks it only accumulates, on the
device, whether every logged value was finite and how many steps in a row D was saturated, so a step costs no
host sync. Every `train.health_every` steps, and at every step that writes a checkpoint, it looks:

- **non-finite**: a NaN/inf loss or value since the last check, or in G's or D's weights. The run stops at once
  (`TrainingHaltedError`, one line naming the step) without checkpointing the broken state, so the newest checkpoint
  is the last good one. With `train.on_nan = "rollback"` it instead goes back to that checkpoint with halved
  learning rates, at most `train.max_rollbacks` times.
- **d_saturated**: D(x) ≥ s and D(G(z)) ≤ 1 - s (s = `train.health_saturation`) for `train.health_window` steps
  in a row; G then gets almost no gradient from the saturating loss. Under a relativistic loss (RpGAN), whose
  logits may all shift together, it is the step's `d_pair` instead: the mean sigmoid(D(x_i) - D(G(z_i))) ≥ s,
  D ranking every real far above its paired fake.
- **collapse**: the diversity of G's output on the run's fixed latents, as a fraction of the training images'
  diversity (`health_diversity`), is below `train.health_collapse` after `train.health_warmup` steps.

Diversity is the mean pairwise distance between images box-filtered to at most 16×16 pixels, in RMS units per
pixel value (see `diversity`). Collapse is images that look alike at a glance, which coarse pixels show; the box
filter throws away the high-frequency noise and checkerboard texture that can make near-identical images
look different pixel by pixel, and it needs no network (none can be downloaded here) and costs one G pass.

Each check adds `health_flags` (a list, empty when healthy) and `health_diversity` to that step's line of
metrics.jsonl; the progress bar shows the flags and the report marks the steps on its plots.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facegan.errors import FaceganError
from facegan.run.checkpoint import list_checkpoints
from facegan.training import schedules

if TYPE_CHECKING:
    from facegan.run.state import TrainingRun

log = logging.getLogger("facegan.health")

FLAGS = ("non_finite", "d_saturated", "collapse", "rollback", "lr_changed")
FEATURE_SIDE = 16  # images are box-filtered to at most 16×16 before distances are taken
DATA_SAMPLE = 256  # training images whose diversity is the reference

T = TypeVar("T")


class TrainingHaltedError(FaceganError):
    """A health check stopped training: NaN/inf appeared; the newest checkpoint holds the last good state."""


def diversity_features(images: torch.Tensor) -> torch.Tensor:
    """Images N×C×H×W in [-1, 1] → N×F features: box-filtered to at most 16×16 pixels, flattened."""
    x = images.detach().float()
    if x.shape[-1] > FEATURE_SIDE or x.shape[-2] > FEATURE_SIDE:
        x = F.adaptive_avg_pool2d(x, FEATURE_SIDE)
    return x.flatten(1)


def diversity(images: torch.Tensor) -> float:
    """Mean pairwise distance of `diversity_features` over all pairs, divided by √F (an RMS pixel difference)."""
    features = diversity_features(images)
    n = features.shape[0]
    if n < 2:
        raise ValueError("diversity needs at least two images")
    distances = torch.cdist(features, features)  # N×N, zero diagonal
    return float(distances.sum() / (n * (n - 1)) / features.shape[1] ** 0.5)


def data_diversity(images: np.ndarray, count: int = DATA_SAMPLE) -> float:
    """`diversity` of `count` evenly spaced images of a uint8 N×H×W×C array (no random draws)."""
    from facegan.data.dataset import to_float_nchw

    index = np.unique(np.linspace(0, len(images) - 1, min(count, len(images))).astype(np.int64))
    return diversity(to_float_nchw(torch.from_numpy(np.asarray(images[index]))))


@torch.no_grad()
def generator_diversity(netG: nn.Module, latents: torch.Tensor, device: torch.device) -> float:
    """`diversity` of G's output on `latents`, G in eval mode (as the sample grids are made)."""
    was_training = netG.training
    netG.eval()
    try:
        return diversity(netG(latents.to(device)))
    finally:
        netG.train(was_training)


def finite_weights(nets: Iterable[nn.Module | None]) -> torch.Tensor:
    """A bool tensor: every floating-point weight and buffer of `nets` is finite (one device reduction)."""
    checks = [torch.isfinite(t).all() for net in nets if net is not None
              for t in (*net.parameters(), *net.buffers()) if t.is_floating_point()]
    return torch.stack(checks).all() if checks else torch.ones((), dtype=torch.bool)


def _join(words: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return " and ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else "".join(words)


class HealthMonitor:
    """The health checks of one call of `train`; `train.health_every = 0` turns them off."""

    def __init__(self, run: TrainingRun) -> None:
        cfg = run.config.train
        self.every = max(0, cfg.health_every)
        self.halted: str | None = None
        self.flags: list[str] = []
        self._rollback = False
        self._baseline: float | None = None
        self._finite = torch.ones((), dtype=torch.bool, device=run.device)
        self._streak = torch.zeros((), device=run.device)
        self._relativistic = False  # the step logs d_pair (RpGAN): saturation is judged on it
        self._pending: list[str] = self._apply_learning_rates(run)

    @staticmethod
    def _apply_learning_rates(run: TrainingRun) -> list[str]:
        """Give the optimisers the config's learning rates (a rollback halves them there); a flag for the first
        check if that changed the rates the checkpoint's optimisers held: rollback, or lr_changed (by hand)."""
        changed = False
        lr_g, lr_d = run.config.optim.lr_g, run.config.optim.lr_d
        if run.config.schedule.lr:  # ramped: the rate the last step used is the ramp's at the images seen before it
            ramps = schedules.values_at(run.config, max(run.images_seen - run.config.train.batch_size, 0))
            lr_g, lr_d = ramps["lr_g"], ramps["lr_d"]
        for opt, lr in ((run.optG, lr_g), (run.optD, lr_d)):
            for group in opt.param_groups:
                if group["lr"] != lr:
                    group["lr"], changed = lr, True
        if not changed:
            return []
        log.warning("learning rates now lr_g %.3g, lr_d %.3g (rollbacks so far: %d of at most %d)",
                    run.config.optim.lr_g, run.config.optim.lr_d, run.config.train.rollbacks,
                    run.config.train.max_rollbacks)
        return ["rollback"] if run.config.train.rollbacks > 0 else ["lr_changed"]

    # The loop's side -----------------------------------------------------------------------------------------

    def after_step(self, run: TrainingRun, values: dict[str, torch.Tensor]) -> dict[str, Any] | None:
        """Accumulate this step's values; on a check step, check and return notes for its metrics line."""
        if self.every == 0:
            return None
        scalars = [v.detach().float().reshape(()) for v in values.values() if torch.is_tensor(v) and v.numel() == 1]
        if scalars:
            self._finite = self._finite & torch.isfinite(torch.stack(scalars)).all()
        s = run.config.train.health_saturation
        if "d_pair" in values:  # a relativistic loss: the logits' offset is arbitrary, their pairwise gap is not
            self._relativistic = True
            self._streak = (self._streak + 1) * (values["d_pair"].detach() >= s)
        elif "d_x" in values and "d_g_z1" in values:
            saturated = (values["d_x"].detach() >= s) & (values["d_g_z1"].detach() <= 1 - s)
            self._streak = (self._streak + 1) * saturated
        step = run.step
        cadence = run.config.train
        if step % self.every != 0 and step % cadence.checkpoint_every != 0 and not self._pending:
            return None
        notes: dict[str, Any] = {}
        if not self._check_finite(run, values):
            notes["health_flags"] = [*self._pending, "non_finite"]
            return notes
        flags = [f for f in self.flags if f != "non_finite"]
        if step % self.every == 0:
            flags = self._check_saturation(run, flags)
            flags, notes["health_diversity"] = self._check_collapse(run, flags)
        self.flags = flags
        notes["health_flags"] = [*self._pending, *flags]
        if self._pending:
            notes.update(lr_g=run.config.optim.lr_g, lr_d=run.config.optim.lr_d)
            self._pending = []
        return notes

    def _check_finite(self, run: TrainingRun, values: dict[str, torch.Tensor]) -> bool:
        """True if everything stayed finite; else decide between stopping and rolling back."""
        weights_ok = finite_weights((run.netG, run.netD, run.netG_ema))
        if bool(self._finite & weights_ok.to(self._finite.device)):
            return True
        bad = [k for k, v in values.items() if torch.is_tensor(v) and not bool(torch.isfinite(v).all())]
        bad = [k for k in bad if k.startswith("loss")] or bad[:3]  # the losses say it; D(x) etc. follow them
        if not bool(weights_ok):
            nets = [name for name, net in (("G", run.netG), ("D", run.netD)) if not bool(finite_weights((net,)))]
            bad.append("the weights of " + " and ".join(nets or ["G_ema"]))
        self._on_non_finite(run, _join(bad) or "a logged value")
        return False

    def _on_non_finite(self, run: TrainingRun, what: str) -> None:
        cfg = run.config.train
        found = list_checkpoints(run.run_dir)
        newest = found[-1] if found else None
        where = (f"the newest checkpoint, {newest}, is the last good state" if newest is not None
                 else "no checkpoint had been written yet")
        message = f"training stopped at step {run.step}: {what} became NaN/inf; {where}"
        self.flags = ["non_finite"]
        if cfg.on_nan == "rollback" and newest is not None and cfg.rollbacks < cfg.max_rollbacks:
            run.config.optim.lr_g /= 2
            run.config.optim.lr_d /= 2
            cfg.rollbacks += 1
            self._rollback = True
            self.halted = message
            log.warning("step %d: %s became NaN/inf; rolling back to %s with halved learning rates (%d of %d)",
                        run.step, what, newest, cfg.rollbacks, cfg.max_rollbacks)
            return
        if cfg.on_nan == "rollback":
            message += (f"; --on-nan rollback gave up after {cfg.rollbacks} rollbacks" if newest is not None
                        else "; nothing to roll back to")
        self.halted = message + "; try a lower --lr" + ("" if cfg.on_nan == "rollback" else " or --on-nan rollback")
        log.error("%s", self.halted)

    def _check_saturation(self, run: TrainingRun, flags: list[str]) -> list[str]:
        saturated = float(self._streak) >= run.config.train.health_window
        s, steps = run.config.train.health_saturation, int(float(self._streak))
        what = (f"sigmoid(D(x) - D(G(z))) ≥ {s} over the real/fake pairs" if self._relativistic
                else f"D(x) ≥ {s} and D(G(z)) ≤ {1 - s:.3g}")
        return self._set(flags, "d_saturated", saturated, run.step, f"D is saturated: {what} for {steps} steps")

    def _check_collapse(self, run: TrainingRun, flags: list[str]) -> tuple[list[str], float]:
        if self._baseline is None:
            self._baseline = max(data_diversity(run.dataset.images), 1e-8)
        ratio = generator_diversity(run.netG, run.fixed_latents, run.device) / self._baseline
        cfg = run.config.train
        collapsed = run.step >= cfg.health_warmup and ratio < cfg.health_collapse
        flags = self._set(flags, "collapse", collapsed, run.step,
                          f"G may be collapsing: its diversity is {ratio:.2f} of the data's "
                          f"(threshold {cfg.health_collapse})")
        return flags, round(ratio, 4)

    @staticmethod
    def _set(flags: list[str], flag: str, on: bool, step: int, message: str) -> list[str]:
        if on and flag not in flags:
            log.warning("step %d: %s", step, message)
            return [*flags, flag]
        if not on and flag in flags:
            log.info("step %d: %s cleared", step, flag)
            return [f for f in flags if f != flag]
        return flags

    @property
    def stopping(self) -> bool:
        """True once a check has found NaN/inf: the loop ends after this step, with no checkpoint."""
        return self.halted is not None

    def postfix(self) -> dict[str, str]:
        """The progress bar's health entry: ok, or the active flags."""
        if self.every == 0:
            return {}
        return {"health": ",".join(self.flags) or "ok"}

    # The end of the loop ---------------------------------------------------------------------------------------

    def final_check(self, run: TrainingRun) -> bool:
        """True if the run must not write its final checkpoint: halted, or NaN/inf in the final state."""
        if self.halted is None and self.every > 0:
            self._check_finite(run, {})
        return self.halted is not None

    def finish(self, retry: Callable[[], T]) -> T:
        """After a halt: `retry()` (train again from the last good checkpoint) on a rollback, else raise."""
        if self._rollback:
            return retry()
        raise TrainingHaltedError(self.halted or "training stopped by a health check")
