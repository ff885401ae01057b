"""FID and KID with the FID Inception-v3 network, computed as pytorch-fid computes them.

Images (uint8 N×H×W×C; grey is repeated to RGB) become floats in [0, 1], the network resizes them to 299 px and
returns 2048-d pool features; FID is the Fréchet distance of the two feature Gaussians and KID the unbiased
polynomial-kernel MMD² (see `facegan.metrics.frechet`). Needs the user's weights file (see `inception.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from facegan.metrics.frechet import frechet_distance_of, kernel_distance
from facegan.metrics.inception import FIDInceptionV3, load_inception, weights_available
from facegan.metrics.metric import Metric, MetricOptions, ScoreContext, fmt
from facegan.utils.progress import progress_bar

BATCH_SIZE = 50  # pytorch-fid's default batch size


@torch.no_grad()
def inception_features(images: np.ndarray, net: FIDInceptionV3, batch_size: int = BATCH_SIZE,
                       on_progress: Callable[[int], object] | None = None) -> np.ndarray:
    """2048-d pool features (float64 N×2048) of uint8 N×H×W×C images."""
    device = next(net.parameters()).device
    out = np.empty((len(images), 2048), dtype=np.float64)
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(np.array(images[start : start + batch_size])).to(device)
        x = batch.permute(0, 3, 1, 2).float().div_(255.0)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        out[start : start + len(batch)] = net(x).double().cpu().numpy()
        if on_progress is not None:
            on_progress(len(batch))
    return out


def fid_kid(fakes: np.ndarray, reals: np.ndarray, weights: str | Path | None = None,
            device: str | torch.device = "cpu", net: FIDInceptionV3 | None = None, seed: int = 0,
            on_progress: Callable[[int], object] | None = None) -> dict[str, float]:
    """{"fid", "kid", "kid_std"} between two uint8 image sets (KID as in stylegan2-ada: subsets of ≤1000)."""
    net = net or load_inception(weights, device)
    real = inception_features(reals, net, on_progress=on_progress)
    fake = inception_features(fakes, net, on_progress=on_progress)
    kid, kid_std = kernel_distance(fake, real, seed=seed)
    return {"fid": frechet_distance_of(fake, real), "kid": kid, "kid_std": kid_std}


def _score(fakes: np.ndarray, reals: np.ndarray, ctx: ScoreContext) -> dict[str, float]:
    with progress_bar(len(fakes) + len(reals), "fid", unit="img", enabled=ctx.show_progress) as bar:
        return fid_kid(fakes, reals, net=ctx.resource, seed=ctx.seed, on_progress=bar.update)


def _prepare(options: MetricOptions) -> FIDInceptionV3:
    return load_inception(options.inception_weights, options.device)


def _summary(result: dict[str, object], label: str) -> str:
    return f"{label}: {fmt(result, 'fid', '{:.3f}')}  kid: {fmt(result, 'kid')} ± {fmt(result, 'kid_std')}"


METRIC = Metric(
    "fid", key="fid", title="FID",
    description="FID and KID of Inception-v3 features (needs the Inception weights file; lower is better)",
    score=_score, summary=_summary, available=lambda options: weights_available(options.inception_weights),
    prepare=_prepare,
)
