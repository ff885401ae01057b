"""The classic GAN stabilisers, each small and off by default (docs/models.md says when to reach for which).

- labels.py: one-sided label smoothing and label noise (D's targets);
- augment.py: instance noise and DiffAugment (what D sees);
- layers.py: the minibatch standard deviation layer and spectral normalisation (D's architecture);
- ema.py: the exponential moving average of G's weights (what samples, eval and serving use);
- TTUR (Heusel et al. 2017) is two learning rates, OptimConfig.lr_g/lr_d; `--ttur` sets the values below.
R1, WGAN-GP's gradient penalty and feature matching are losses: see facegan.losses. The step that applies
all of them is facegan.step.gan_step.
"""

from __future__ import annotations

from facegan.config import RunConfig
from facegan.errors import FaceganError
from facegan.losses import LABEL_LOSSES, LOSS_NAMES
from facegan.stabilisers.augment import DIFFAUGMENT, d_view, parse_policy
from facegan.stabilisers.ema import make_ema, unwrap, update_ema
from facegan.stabilisers.labels import d_targets
from facegan.stabilisers.layers import MinibatchStdDev, apply_spectral_norm, has_batch_norm

__all__ = [
    "TTUR_LR_D", "TTUR_LR_G", "MinibatchStdDev", "apply_spectral_norm", "check_stabilisers", "d_targets",
    "d_view", "has_batch_norm", "make_ema", "unwrap", "update_ema",
]

# Heusel et al.'s two time-scale update rule as SAGAN used it: D learns 4× faster than G.
TTUR_LR_G = 1e-4
TTUR_LR_D = 4e-4

D_NORMS = ("auto", "batch", "layer", "none")
# What BEGAN's autoencoder D cannot use: it has no logit to smooth, and k_t balances G and D instead.
_NOT_FOR_BEGAN = ("label_smoothing", "label_noise", "instance_noise", "r1_gamma", "feature_matching", "diffaugment")


def check_stabilisers(config: RunConfig) -> None:
    """Refuse, with one clear sentence, a loss/stabiliser combination that cannot work."""
    t, m = config.train, config.model
    if t.loss not in LOSS_NAMES:
        raise FaceganError(f"unknown loss {t.loss!r}; choose from {', '.join(LOSS_NAMES)}")
    if (m.family == "began") != (t.loss == "began"):
        raise FaceganError("the began loss and the began model go together: use --model began for both")
    if m.d_norm not in D_NORMS:
        raise FaceganError(f"unknown D normalisation {m.d_norm!r}; choose from {', '.join(D_NORMS)}")
    if t.n_critic < 1:
        raise FaceganError("n_critic must be at least 1")
    for name in ("label_smoothing", "label_noise"):
        value = getattr(t, name)
        if not 0 <= value < 0.5:
            raise FaceganError(f"{name} must be in [0, 0.5), not {value}")
        if value and t.loss not in LABEL_LOSSES:
            raise FaceganError(f"{name} needs a loss with labels ({', '.join(LABEL_LOSSES)}), not {t.loss}")
    for name in ("instance_noise", "r1_gamma", "gp_weight", "time_budget_s"):
        if getattr(t, name) < 0:
            raise FaceganError(f"{name} must not be negative")
    if not 0 <= t.ema_decay < 1:
        raise FaceganError(f"ema_decay must be in [0, 1), not {t.ema_decay}")
    unknown = [p for p in parse_policy(t.diffaugment) if p not in DIFFAUGMENT]
    if unknown:
        raise FaceganError(f"unknown DiffAugment {', '.join(unknown)}; choose from {', '.join(DIFFAUGMENT)}")
    if t.loss == "wgan-gp" and m.family == "dcgan" and m.d_norm in ("auto", "batch"):
        raise FaceganError("WGAN-GP's gradient penalty is per image, which BatchNorm in the critic breaks; "
                           "use --d-norm layer (or none)")
    if m.family == "began":
        used = [name for name in _NOT_FOR_BEGAN if getattr(t, name)]
        if used or t.n_critic != 1 or m.minibatch_std:
            names = used + (["n_critic"] if t.n_critic != 1 else []) + (["minibatch_std"] if m.minibatch_std else [])
            raise FaceganError(f"BEGAN's autoencoder D does not take {', '.join(names)} (k_t balances G and D)")
