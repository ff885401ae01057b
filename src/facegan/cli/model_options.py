"""Options of `facegan train` for model variants, losses and stabilisers (parsed here; facegan.training.options
turns them into the config)."""

from __future__ import annotations

import argparse
from typing import Any

from facegan.cli.defaults import default_text
from facegan.config import choices_of
from facegan.errors import FaceganError


def add_model_options(p: argparse.ArgumentParser) -> None:
    """Add the `model variants` and `stabilisers` option groups to the train parser."""
    from facegan.training.augment import DIFFAUGMENT
    from facegan.training.optim import OPTIMIZERS, TTUR_LR_D, TTUR_LR_G

    on_off = argparse.BooleanOptionalAction
    v = p.add_argument_group("model variants")
    v.add_argument("--leaky-slope", type=float,
                   help=f"negative slope of D's LeakyReLUs ({default_text('model', 'leaky_slope')})")
    v.add_argument("--d-norm", choices=choices_of("model", "d_norm"),
                   help="D's normalisation (dcgan): auto is layer for a loss whose penalty is per image (wgan-gp, "
                   f"rpgan), else batch ({default_text('model', 'd_norm')})")
    v.add_argument("--minibatch-std", action=on_off, help="minibatch standard deviation layer before D's last layer "
                   f"({default_text('model', 'minibatch_std')})")
    v.add_argument("--spectral-norm", action=on_off,
                   help=f"spectral normalisation of D's weights ({default_text('model', 'spectral_norm')})")
    v.add_argument("--optimizer", choices=sorted(OPTIMIZERS),
                   help=f"optimiser of G and D ({default_text('optim', 'name')})")
    v.add_argument("--grad-clip-value", type=float, metavar="C",
                   help=f"clip each gradient element to ±C, 0: off ({default_text('optim', 'grad_clip_value')})")
    v.add_argument("--ttur", action="store_true",
                   help=f"two time-scale learning rates: G {TTUR_LR_G:g}, D {TTUR_LR_D:g} (unless --lr* given)")
    s = p.add_argument_group("stabilisers")
    s.add_argument("--n-critic", type=int, help=f"D steps per G step ({default_text('train', 'n_critic')})")
    s.add_argument("--gp-weight", type=float,
                   help=f"λ of WGAN-GP's gradient penalty ({default_text('train', 'gp_weight')})")
    s.add_argument("--label-smoothing", type=float, metavar="S",
                   help=f"one-sided: D's real target is 1 - S ({default_text('train', 'label_smoothing')})")
    s.add_argument("--label-noise", type=float, metavar="A", help="move D's targets toward the other class by "
                   f"U(0, A) ({default_text('train', 'label_noise')})")
    s.add_argument("--instance-noise", type=float, metavar="SIGMA",
                   help=f"Gaussian noise σ on every image D sees ({default_text('train', 'instance_noise')})")
    s.add_argument("--instance-noise-steps", type=int, metavar="N", help="anneal the instance noise to 0 over N "
                   f"steps, 0: constant ({default_text('train', 'instance_noise_steps')})")
    s.add_argument("--r1-gamma", type=float, metavar="GAMMA", help="R1 penalty γ/2·E‖∇D(x)‖² on real images; rpgan: "
                   f"γ of its R1 + R2 ({default_text('train', 'r1_gamma')})")
    s.add_argument("--penalty-every", type=int, metavar="K",
                   help="lazy regularisation: R1 (and rpgan's R2) on every K-th D step only, weighted K·γ "
                        f"({default_text('train', 'penalty_every')})")
    s.add_argument("--feature-matching", action=on_off, help="G matches the mean of D's last hidden features "
                   f"({default_text('train', 'feature_matching')})")
    s.add_argument("--ema", type=float, metavar="DECAY",
                   help=f"keep an EMA of G's weights, e.g. 0.999; 0: off ({default_text('train', 'ema_decay')})")
    s.add_argument("--diffaugment", metavar="POLICY", help="DiffAugment of every image D sees: comma list of "
                   f"{', '.join(DIFFAUGMENT)} ({default_text('train', 'diffaugment')})")
    s.add_argument("--ramp-kimg", type=float, metavar="K",
                   help="length of the cosine ramps of lr, β2, γ, EMA half-life and augmentation (r3gan presets) in "
                        "thousands of images; 0: half the run, 20 for a run only a time budget ends "
                        f"({default_text('schedule', 'ramp_kimg')})")
    s.add_argument("--time-budget-minutes", type=float, metavar="M",
                   help="stop after M minutes of training (without --steps/--epochs it alone sets the length); "
                   f"0: no limit ({default_text('train', 'time_budget_s', scale=1 / 60)})")
    add_family_options(p)


def family_option_specs() -> dict[str, tuple[list[str], Any]]:
    """Every --flag a registered family's options declare: flag → (the families that take it, its spec)."""
    from facegan.models import FAMILIES
    from facegan.models.family import option_specs

    flags: dict[str, tuple[list[str], Any]] = {}
    for family in FAMILIES.values():
        for spec in option_specs(family.options).values() if family.options is not None else ():
            if spec.flag in flags and flags[spec.flag][1][:3] != spec[:3]:
                raise RuntimeError(f"families declare {spec.flag} with different names or types")
            flags.setdefault(spec.flag, ([], spec))[0].append(family.name)
    return flags


def _dest(flag: str) -> str:
    return "family_option_" + flag.removeprefix("--").replace("-", "_")


def add_family_options(p: argparse.ArgumentParser) -> None:
    """Add one --flag per option of every registered family (the help text comes from the family's dataclass)."""
    g = p.add_argument_group("family options (each model family's own; see docs/models.md)")
    for flag, (families, spec) in family_option_specs().items():
        kind = f"comma list of {spec.item.__name__}" if spec.item else spec.kind.__name__
        g.add_argument(flag, dest=_dest(flag), metavar=spec.name.upper(),
                       help=f"{spec.help} [{', '.join(families)}; {kind}]")


def family_option_values(args: argparse.Namespace, family: str) -> dict[str, Any] | None:
    """The family options the user gave, parsed and checked; an option of another family is a user error."""
    from facegan.models.family import parse_option

    values: dict[str, Any] = {}
    for flag, (families, spec) in family_option_specs().items():
        text = getattr(args, _dest(flag), None)
        if text is None:
            continue
        if family not in families:
            raise FaceganError(f"{flag} is an option of the {' and '.join(families)} model, not {family}")
        values[spec.name] = parse_option(spec, text, flag)
    return values or None
