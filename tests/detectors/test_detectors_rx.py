"""Tests of the RX detectors: global RX (GRX) and local dual-window RX (LRX)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis

from rednmf.detectors.registry import get_detector
from rednmf.detectors.rx import GRX, LRX
from rednmf.exceptions import InputError
from rednmf.metrics import roc_auc
from rednmf.scoring.cube import pca_project
from rednmf.scoring.global_rx import global_rx
from rednmf.scoring.local_rx import local_rx


@pytest.fixture
def cube() -> np.ndarray:
    rng = np.random.default_rng(1)
    mix = rng.normal(size=(5, 5))
    return rng.normal(size=(11, 10, 5)) @ mix + 3.0


@pytest.mark.parametrize("ridge", [0.0, 1e-9, 0.05])
def test_grx_matches_scipy_mahalanobis(cube, ridge):
    x = cube.reshape(-1, cube.shape[2])
    mu = x.mean(axis=0)
    cov = np.cov(x, rowvar=False, bias=True)
    cov += ridge * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
    VI = np.linalg.inv(cov)
    scores = GRX(ridge=ridge).fit(cube).decision_scores_
    rng = np.random.default_rng(0)
    for j in rng.choice(x.shape[0], size=15, replace=False):
        r, c = divmod(int(j), cube.shape[1])
        expected = mahalanobis(x[j], mu, VI) ** 2
        np.testing.assert_allclose(scores[r, c], expected, rtol=1e-8)


def test_grx_n_pca_equals_global_rx_of_projection(cube):
    got = GRX(n_pca=3).fit(cube).decision_scores_
    np.testing.assert_allclose(got, global_rx(pca_project(cube, 3), ridge=1e-9), rtol=1e-10)


def test_grx_is_invariant_to_scale_and_offset(cube):
    a = GRX().fit(cube).decision_scores_
    b = GRX().fit(250.0 * cube - 7.0).decision_scores_
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_grx_refuses_a_cube_of_identical_pixels():
    """Every band constant: no pixel can stand out; one line before the fit, not zeros."""
    from rednmf.exceptions import InputError

    with pytest.raises(InputError, match="same spectrum"):
        GRX().fit(np.ones((6, 6, 4)))


@pytest.mark.realdata
def test_grx_auc_on_airport1(airport1):
    cube, gt = airport1
    auc = roc_auc(GRX().fit(cube).decision_scores_, gt)
    assert auc == pytest.approx(0.8221, abs=1e-3)


def brute_lrx(cube: np.ndarray, inner: int, outer: int, ridge: float) -> np.ndarray:
    """Per-pixel loop: clipped dual window, biased covariance, relative ridge."""
    rows, cols, k = cube.shape
    ho, hi = outer // 2, inner // 2
    out = np.empty((rows, cols))
    for r in range(rows):
        for c in range(cols):
            ring = [
                cube[i, j]
                for i in range(max(0, r - ho), min(rows, r + ho + 1))
                for j in range(max(0, c - ho), min(cols, c + ho + 1))
                if abs(i - r) > hi or abs(j - c) > hi
            ]
            ring = np.asarray(ring)
            mu = ring.mean(axis=0)
            cov = np.cov(ring, rowvar=False, bias=True)
            cov += ridge * np.trace(cov) / k * np.eye(k)
            d = cube[r, c] - mu
            out[r, c] = d @ np.linalg.solve(cov, d)
    return out


@pytest.mark.parametrize(("inner", "outer"), [(1, 3), (3, 7), (5, 9)])
def test_lrx_matches_brute_force(cube, inner, outer):
    got = LRX(inner=inner, outer=outer, ridge=0.05, n_pca=None).fit(cube).decision_scores_
    np.testing.assert_allclose(got, brute_lrx(cube, inner, outer, 0.05), rtol=1e-8)


def test_lrx_is_local_rx_of_the_pca_projection(cube):
    det = LRX(inner=3, outer=7, ridge=0.1, n_pca=3)
    expected = local_rx(pca_project(cube, 3), inner=3, outer=7, ridge=0.1)
    np.testing.assert_allclose(det.fit(cube).decision_scores_, expected, rtol=1e-12)


@pytest.mark.parametrize("cls", [GRX, LRX])
def test_planted_targets_score_high(cls, small_scene):
    cube, gt = small_scene
    scores = cls().fit(cube).decision_scores_
    assert np.all(np.isfinite(scores))
    assert roc_auc(scores, gt) > 0.9


@pytest.mark.parametrize(
    ("cls", "params"),
    [
        (GRX, {"ridge": -1.0}),
        (GRX, {"ridge": "a"}),
        (GRX, {"n_pca": 0}),
        (GRX, {"contamination": 0.7}),
        (LRX, {"inner": 4}),
        (LRX, {"outer": 8}),
        (LRX, {"inner": 7, "outer": 5}),
        (LRX, {"ridge": float("nan")}),
        (LRX, {"n_pca": 2.5}),
    ],
)
def test_bad_parameters_raise(cls, params, cube):
    with pytest.raises(InputError):
        cls(**params).fit(cube)


def test_lrx_scene_smaller_than_window_raises(cube):
    with pytest.raises(InputError, match="smaller than"):
        LRX(inner=3, outer=13).fit(cube)


@pytest.mark.parametrize(("name", "cls"), [("grx", GRX), ("lrx", LRX)])
def test_registered(name, cls):
    det = get_detector(name)
    assert isinstance(det, cls)
    assert det.name == name
