"""Fréchet distance and KID against closed forms and independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from facegan.metrics.frechet import (
    frechet_distance,
    frechet_distance_of,
    gaussian_stats,
    kernel_distance,
    polynomial_mmd2_unbiased,
)


def _random_cov(rng: np.random.Generator, dim: int) -> np.ndarray:
    a = rng.normal(size=(dim, dim))
    return a @ a.T / dim + 0.1 * np.eye(dim)


def test_diagonal_gaussians_match_the_closed_form() -> None:
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 0.25])
    closed = np.sum((mu1 - mu2) ** 2) + np.sum(var1 + var2 - 2 * np.sqrt(var1 * var2))
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(closed, rel=1e-10)
    # 1-D: (μ₁ - μ₂)² + (σ₁ - σ₂)²
    assert frechet_distance([1.0], [[9.0]], [-1.0], [[4.0]]) == pytest.approx(4.0 + 1.0)


def test_full_covariances_match_an_eigenvalue_computation() -> None:
    rng = np.random.default_rng(0)
    dim = 12
    s1, s2 = _random_cov(rng, dim), _random_cov(rng, dim)
    mu1, mu2 = rng.normal(size=dim), rng.normal(size=dim)
    # Independent route: Tr (Σ₁Σ₂)^½ = Tr (Σ₁^½ Σ₂ Σ₁^½)^½ = Σ √λ of a symmetric PSD matrix (eigh only).
    w, v = scipy.linalg.eigh(s1)
    root1 = v @ np.diag(np.sqrt(w)) @ v.T
    tr_sqrt = np.sqrt(np.clip(scipy.linalg.eigvalsh(root1 @ s2 @ root1), 0, None)).sum()
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-8)


def test_fitted_gaussians_approach_the_closed_form() -> None:
    rng = np.random.default_rng(1)
    dim = 4
    s1, s2 = _random_cov(rng, dim), _random_cov(rng, dim)
    mu1, mu2 = np.zeros(dim), np.full(dim, 0.5)
    a = rng.multivariate_normal(mu1, s1, size=40_000)
    b = rng.multivariate_normal(mu2, s2, size=40_000)
    stats = gaussian_stats(a)
    np.testing.assert_allclose(stats.sigma, np.cov(a, rowvar=False))
    assert frechet_distance_of(a, b) == pytest.approx(frechet_distance(mu1, s1, mu2, s2), abs=0.03)


def test_low_rank_route_equals_the_sqrtm_route() -> None:
    # Fewer samples than dimensions: the covariances are singular and the exact low-rank identity is used.
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(30, 64)), rng.normal(0.2, 1.3, size=(45, 64))
    sa, sb = gaussian_stats(a), gaussian_stats(b)
    assert frechet_distance_of(a, b) == pytest.approx(frechet_distance(sa.mu, sa.sigma, sb.mu, sb.sigma), rel=1e-6)


def test_unbiased_mmd_matches_a_direct_double_sum() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(7, 3)), rng.normal(1.0, 1.0, size=(7, 3))

    def k(u: np.ndarray, v: np.ndarray) -> float:
        return (u @ v / 3 + 1) ** 3

    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert polynomial_mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)


def test_kid_is_unbiased_near_zero_for_one_distribution_and_positive_for_two() -> None:
    rng = np.random.default_rng(4)
    dim = 8
    same = [kernel_distance(rng.normal(size=(100, dim)), rng.normal(size=(100, dim)), num_subsets=3,
                            subset_size=100, seed=i)[0] for i in range(20)]
    shifted, _ = kernel_distance(rng.normal(size=(100, dim)), rng.normal(0.5, 1.0, size=(100, dim)),
                                 num_subsets=3, subset_size=100)
    # Unbiased: the mean over independent draws is ~0 (within its standard error) and draws fall on both sides.
    mean, sem = np.mean(same), np.std(same) / np.sqrt(len(same))
    assert abs(mean) < 3 * sem
    assert min(same) < 0 < max(same)
    assert shifted > 5 * max(abs(v) for v in same)
    value, std = kernel_distance(rng.normal(size=(50, dim)), rng.normal(size=(80, dim)), num_subsets=4,
                                 subset_size=1000)
    assert np.isfinite(value) and std >= 0  # subsets shrink to the smaller set
