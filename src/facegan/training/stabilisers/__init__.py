"""The classic GAN stabilisers, each small and off by default (docs/models.md says when to reach for which).

- labels.py: one-sided label smoothing and label noise (D's targets);
- augment.py: instance noise and DiffAugment (what D sees);
- layers.py: the minibatch standard deviation layer and spectral normalisation (D's architecture);
- ema.py: the exponential moving average of G's weights (what samples, eval and serving use);
- TTUR (Heusel et al. 2017) is two learning rates, OptimConfig.lr_g/lr_d; `--ttur` sets the values below.
R1, WGAN-GP's gradient penalty and feature matching are losses: see facegan.training.losses. The step that applies
all of them is facegan.training.step.gan_step.
"""

from __future__ import annotations

from facegan.config import RunConfig
from facegan.errors import FaceganError
from facegan.training.losses import LOSSES, get_loss
from facegan.training.stabilisers.augment import DIFFAUGMENT, d_view, parse_policy
from facegan.training.stabilisers.ema import make_ema, update_ema
from facegan.training.stabilisers.labels import d_targets
from facegan.training.stabilisers.layers import MinibatchStdDev, apply_spectral_norm, has_batch_norm

__all__ = [
    "TTUR_LR_D", "TTUR_LR_G", "MinibatchStdDev", "apply_spectral_norm", "check_stabilisers", "d_targets",
    "d_view", "has_batch_norm", "make_ema", "update_ema",
]

# Heusel et al.'s two time-scale update rule as SAGAN used it: D learns 4× faster than G.
TTUR_LR_G = 1e-4
TTUR_LR_D = 4e-4

D_NORMS = ("auto", "batch", "layer", "none")


def check_stabilisers(config: RunConfig) -> None:
    """Refuse, with one clear sentence, a loss/stabiliser combination that cannot work (the family's own
    checks are `facegan.models.check_model_config`)."""
    t, m = config.train, config.model
    loss = get_loss(t.loss)
    if loss.family is not None and loss.family != m.family:
        raise FaceganError(f"the {loss.name} loss and the {loss.family} model go together: "
                           f"use --model {loss.family} for both")
    if m.d_norm not in D_NORMS:
        raise FaceganError(f"unknown D normalisation {m.d_norm!r}; choose from {', '.join(D_NORMS)}")
    for name in ("n_critic", "penalty_every"):
        if getattr(t, name) < 1:
            raise FaceganError(f"{name} must be at least 1")
    for name in ("label_smoothing", "label_noise"):
        value = getattr(t, name)
        if not 0 <= value < 0.5:
            raise FaceganError(f"{name} must be in [0, 0.5), not {value}")
        if value and not loss.takes_labels:
            labelled = [n for n, other in LOSSES.items() if other.takes_labels]
            raise FaceganError(f"{name} needs a loss with labels ({', '.join(labelled)}), not {t.loss}")
    for name in ("instance_noise", "r1_gamma", "gp_weight", "time_budget_s"):
        if getattr(t, name) < 0:
            raise FaceganError(f"{name} must not be negative")
    if not 0 <= t.ema_decay < 1:
        raise FaceganError(f"ema_decay must be in [0, 1), not {t.ema_decay}")
    unknown = [p for p in parse_policy(t.diffaugment) if p not in DIFFAUGMENT]
    if unknown:
        raise FaceganError(f"unknown DiffAugment {', '.join(unknown)}; choose from {', '.join(DIFFAUGMENT)}")
