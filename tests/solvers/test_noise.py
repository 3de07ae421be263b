"""The noise estimate and the noise-aware threshold of REDNMF's S step."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from rednmf.solvers.noise import band_noise_variance, noise_scale


def _low_rank_plus_noise(n=4000, d=30, rank=3, sigma=None, seed=0):
    rng = np.random.default_rng(seed)
    signal = rng.random((n, rank)) @ rng.random((rank, d))
    sigma = np.linspace(0.01, 0.05, d) if sigma is None else sigma
    return signal + rng.normal(size=(n, d)) * sigma, sigma


def test_band_noise_variance_is_the_regression_residual_variance():
    """Oracle: scikit-learn's least squares of each band on the others, with intercept."""
    X, _ = _low_rank_plus_noise(n=1500, d=12)
    cov = np.cov(X, rowvar=False, bias=True)
    got = band_noise_variance(cov)
    for b in range(X.shape[1]):
        others = np.delete(X, b, axis=1)
        fit = LinearRegression().fit(others, X[:, b])
        resid = X[:, b] - fit.predict(others)
        assert got[b] == pytest.approx(np.mean(resid**2), rel=1e-6)


def test_band_noise_variance_recovers_planted_noise():
    """An upper bound: the other bands' noise leaks into the regression (measured ratio to the
    planted std 0.992-1.122 over 100 bands; 0.99-1.63 over 30 bands, where fewer regressors
    average the noise less)."""
    X, sigma = _low_rank_plus_noise(n=20000, d=100, sigma=np.linspace(0.01, 0.05, 100))
    ratio = np.sqrt(band_noise_variance(np.cov(X, rowvar=False, bias=True))) / sigma
    assert ratio.min() > 0.98
    assert ratio.max() < 1.15
    assert np.median(ratio) < 1.03


def test_one_band_has_no_noise_estimate():
    assert band_noise_variance(np.array([[2.0]])).tolist() == [0.0]


def _subspace(X, r):
    G = X.T @ X
    return np.linalg.eigh(G)[1][:, -r:]


def test_noise_scale_follows_its_formula():
    X, _ = _low_rank_plus_noise()
    cov = np.cov(X, rowvar=False, bias=True)
    U = _subspace(X, 3)
    median = float(np.median(np.linalg.norm(X.T - U @ (U.T @ X.T), axis=0)))
    ns = noise_scale(cov, U, median, lam=4.0, margin=3.0)
    var = band_noise_variance(cov)
    outside = 1 - (U**2).sum(axis=1)
    assert ns.noise_energy == pytest.approx(np.sum(var * outside))
    assert ns.noise_energy_sd == pytest.approx(np.sqrt(2 * np.sum((var * outside) ** 2)))
    m = np.sqrt(max(median**2 - ns.noise_energy, 0.0))
    assert ns.structured == pytest.approx(m)
    assert ns.fit_threshold == pytest.approx(
        np.sqrt(ns.noise_energy + 3 * ns.noise_energy_sd + (2 * m) ** 2)
    )
    assert ns.evidence_threshold == pytest.approx(2 * m)


def test_noise_dominated_residual_puts_the_threshold_above_the_noise():
    """Pure noise outside the subspace: almost every pixel's residual stays below tau."""
    X, _ = _low_rank_plus_noise(sigma=np.full(30, 0.05))
    U = _subspace(X, 3)
    norms = np.linalg.norm(X.T - U @ (U.T @ X.T), axis=0)
    ns = noise_scale(np.cov(X, rowvar=False, bias=True), U, float(np.median(norms)), 4.0, 3.0)
    assert ns.structured < 0.2 * np.sqrt(ns.noise_energy)  # the median is noise
    assert np.mean(norms > ns.fit_threshold) < 0.01
    # the 'svd' threshold (lam / 2 times the median) would exceed every pixel
    assert np.mean(norms > 2 * np.median(norms)) == 0.0


def test_without_noise_the_threshold_is_the_svd_one():
    """Exactly low-rank data plus structured (not noise-like) misfit: no noise energy."""
    rng = np.random.default_rng(1)
    X = rng.random((3000, 4)) @ rng.random((4, 20))  # rank 4, fitted by a rank-3 subspace
    U = _subspace(X, 3)
    median = float(np.median(np.linalg.norm(X.T - U @ (U.T @ X.T), axis=0)))
    ns = noise_scale(np.cov(X, rowvar=False, bias=True), U, median, 4.0, 3.0)
    assert ns.fit_threshold == pytest.approx(2 * median, rel=1e-3)
