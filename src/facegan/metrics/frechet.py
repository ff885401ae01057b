"""Fréchet distance and kernel distance (KID) between two sets of feature vectors.

Shared by FID (Inception-v3 pool features) and the face-embedding distance (dlib descriptors).
- Fréchet distance (Heusel et al. 2017): fit a Gaussian to each set (mean, covariance with N-1), then
  d² = |μ₁ - μ₂|² + Tr(Σ₁ + Σ₂ - 2 (Σ₁ Σ₂)^½). Computed as pytorch-fid does (float64, scipy's sqrtm, a 1e-6
  ridge when the product is singular, imaginary round-off dropped), so FID values agree with it.
- KID (Bińkowski et al. 2018): the unbiased estimator of the squared MMD with the cubic polynomial kernel
  k(x, y) = (xᵀy / d + 1)³, averaged over random subsets (100 subsets of up to 1000 per set, as
  stylegan2-ada does). Unbiased: its expectation is 0 when both sets come from one distribution, so it can
  come out slightly negative; unlike FID it does not depend on the sample count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.linalg

log = logging.getLogger("facegan.metrics")


@dataclass
class GaussianStats:
    """Mean and covariance of a feature set (float64)."""

    mu: np.ndarray
    sigma: np.ndarray
    count: int


def gaussian_stats(features: np.ndarray) -> GaussianStats:
    """Mean and unbiased covariance of N×D features (as np.cov(rowvar=False))."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need at least 2 feature vectors as an N×D array, got shape {features.shape}")
    return GaussianStats(mu=features.mean(axis=0), sigma=np.cov(features, rowvar=False), count=len(features))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"statistics differ in shape: {mu1.shape}/{sigma1.shape} vs {mu2.shape}/{sigma2.shape}")
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        log.warning("Fréchet distance: singular product of covariances; adding %g to the diagonals", eps)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        largest = np.max(np.abs(np.diagonal(covmean).imag))
        if largest > 1e-3:
            raise ValueError(f"Fréchet distance: imaginary component {largest:.3g} in sqrtm (degenerate features?)")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def frechet_distance_of(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two N×D feature sets.

    With at least D+1 vectors per set (FID's usual 10k × 2048) this is pytorch-fid's computation. With fewer,
    both covariances are singular, sqrtm of their product is ill-conditioned, and the exact low-rank identity
    Tr (Σ₁Σ₂)^½ = ‖X₁ X₂ᵀ‖_* / √((N₁-1)(N₂-1)) (X: centred features, ‖·‖_*: sum of singular values) is used
    instead — the same value, computed on an N₁×N₂ matrix.
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if min(len(a), len(b)) > a.shape[1]:
        sa, sb = gaussian_stats(a), gaussian_stats(b)
        return frechet_distance(sa.mu, sa.sigma, sb.mu, sb.sigma)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two N×D feature sets with N ≥ 2, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    xa, xb = a - mu_a, b - mu_b
    scale_a, scale_b = len(a) - 1, len(b) - 1
    tr_a, tr_b = (xa * xa).sum() / scale_a, (xb * xb).sum() / scale_b
    tr_covmean = np.linalg.svd(xa @ xb.T, compute_uv=False).sum() / np.sqrt(scale_a * scale_b)
    diff = mu_a - mu_b
    return float(diff @ diff + tr_a + tr_b - 2.0 * tr_covmean)


def polynomial_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased squared MMD between two m×D samples with the kernel (xᵀy/D + 1)³."""
    m, dim = x.shape
    if y.shape != x.shape or m < 2:
        raise ValueError(f"need two m×D samples of equal shape with m ≥ 2, got {x.shape} and {y.shape}")
    k_xx = (x @ x.T / dim + 1.0) ** 3
    k_yy = (y @ y.T / dim + 1.0) ** 3
    k_xy = (x @ y.T / dim + 1.0) ** 3
    # Within-set sums leave out the diagonal (k(x_i, x_i)): that is what makes the estimator unbiased.
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())


def kernel_distance(features_a: np.ndarray, features_b: np.ndarray, num_subsets: int = 100,
                    subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID: mean and standard deviation over random subsets of the unbiased polynomial-kernel MMD²."""
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    m = min(len(a), len(b), subset_size)
    if m < 2:
        raise ValueError("KID needs at least 2 feature vectors per set")
    rng = np.random.default_rng(seed)
    values = [polynomial_mmd2_unbiased(a[rng.choice(len(a), m, replace=False)],
                                       b[rng.choice(len(b), m, replace=False)]) for _ in range(num_subsets)]
    return float(np.mean(values)), float(np.std(values))
