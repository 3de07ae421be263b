"""Tests of the pixel scorers: local RX, PCA projection, BRAD and column norms."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from sklearn.decomposition import PCA

from rednmf.exceptions import InputError
from rednmf.scoring import column_norm
from rednmf.scoring.cube import brad, pca_project
from rednmf.scoring.local_rx import local_rx


def brute_local_rx(cube: np.ndarray, inner: int, outer: int, ridge: float) -> np.ndarray:
    """Per-pixel reference: gather the ring pixels explicitly and solve."""
    rows, cols, k = cube.shape
    ho, hi = outer // 2, inner // 2
    out = np.empty((rows, cols))
    for r in range(rows):
        for c in range(cols):
            mask = np.zeros((rows, cols), dtype=bool)
            mask[max(0, r - ho) : r + ho + 1, max(0, c - ho) : c + ho + 1] = True
            mask[max(0, r - hi) : r + hi + 1, max(0, c - hi) : c + hi + 1] = False
            ring = cube[mask]
            mu = np.mean(ring, axis=0)
            cov = np.cov(ring, rowvar=False, bias=True)
            cov = cov + ridge * np.trace(cov) / k * np.eye(k)
            d = cube[r, c] - mu
            out[r, c] = d @ np.linalg.solve(cov, d)
    return out


@pytest.fixture
def small_cube() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(13, 12, 4)) + 5.0


@pytest.mark.parametrize("ridge", [0.0, 0.01, 0.1, 1.0])
@pytest.mark.parametrize(("inner", "outer"), [(3, 7), (1, 5), (5, 11)])
def test_local_rx_matches_brute_force(small_cube, ridge, inner, outer):
    got = local_rx(small_cube, inner=inner, outer=outer, ridge=ridge)
    want = brute_local_rx(small_cube, inner, outer, ridge)
    assert got.shape == (13, 12)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-8)


def test_local_rx_finds_planted_anomaly():
    rng = np.random.default_rng(1)
    rows, cols, k = 30, 30, 6
    yy, xx = np.mgrid[0:rows, 0:cols] / 30.0
    base = rng.normal(size=k)
    grad = rng.normal(size=(2, k))
    cube = base + yy[..., None] * grad[0] + xx[..., None] * grad[1]
    cube = cube + 0.01 * rng.normal(size=cube.shape)
    cube[17, 11] += 0.5 * rng.normal(size=k)
    scores = local_rx(cube, inner=3, outer=9)
    assert np.unravel_index(np.argmax(scores), scores.shape) == (17, 11)


def test_brad_equals_local_rx_on_independent_pca():
    rng = np.random.default_rng(2)
    cube = rng.normal(size=(16, 15, 8)) @ rng.normal(size=(8, 8))
    got = brad(cube, inner=3, outer=7, n_pca=5, ridge=0.1)
    proj = PCA(n_components=5, svd_solver="full").fit_transform(cube.reshape(-1, 8))
    want = local_rx(proj.reshape(16, 15, 5), inner=3, outer=7, ridge=0.1)
    np.testing.assert_allclose(got, want, rtol=1e-7)
    # n_pca=None (or >= bands) keeps all bands: plain local RX.
    np.testing.assert_allclose(
        brad(cube, inner=3, outer=7, n_pca=None),
        local_rx(cube, inner=3, outer=7),
        rtol=1e-9,
    )


def test_pca_project_is_deterministic_and_orthogonal():
    rng = np.random.default_rng(3)
    cube = rng.normal(size=(10, 9, 6))
    proj = pca_project(cube, 3)
    assert proj.shape == (10, 9, 3)
    np.testing.assert_array_equal(proj, pca_project(cube.copy(), 3))
    flat = proj.reshape(-1, 3)
    np.testing.assert_allclose(flat.mean(axis=0), 0.0, atol=1e-12)
    gram = flat.T @ flat
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0.0, atol=1e-9)
    assert np.all(np.diff(np.diag(gram)) <= 0)
    centred = pca_project(cube, 6)
    np.testing.assert_allclose(centred, cube - cube.reshape(-1, 6).mean(axis=0))


def test_local_rx_is_scale_invariant(small_cube):
    a = local_rx(small_cube, inner=3, outer=7)
    b = local_rx(1000.0 * small_cube, inner=3, outer=7)
    np.testing.assert_allclose(b, a, rtol=1e-6)


def test_constant_cube_gives_finite_scores():
    cube = np.full((12, 12, 5), 3.7)
    for ridge in (0.0, 0.1):
        scores = local_rx(cube, inner=3, outer=7, ridge=ridge)
        assert np.all(np.isfinite(scores))
    assert np.all(np.isfinite(brad(cube, inner=3, outer=7, n_pca=2)))


def test_rank_deficient_windows_with_zero_ridge_stay_finite():
    rng = np.random.default_rng(4)
    cube = rng.normal(size=(9, 9, 30))  # ring of 1..24 pixels, fewer than k + 1
    assert np.all(np.isfinite(local_rx(cube, inner=3, outer=5, ridge=0.0)))


@pytest.mark.parametrize(
    ("inner", "outer"), [(4, 9), (3, 8), (0, 5), (7, 7), (9, 5), (3.0, 7), (True, 7)]
)
def test_bad_windows_raise(small_cube, inner, outer):
    with pytest.raises(InputError):
        local_rx(small_cube, inner=inner, outer=outer)


def test_scene_smaller_than_window_raises(small_cube):
    rows, cols = small_cube.shape[:2]
    side = min(rows, cols) - (1 - min(rows, cols) % 2)
    with pytest.raises(InputError, match=f"pass outer={side} or a smaller"):
        local_rx(small_cube, inner=3, outer=side + 2)
    local_rx(small_cube, inner=3, outer=side)  # the side the message names fits
    with pytest.raises(InputError, match=f"pass inner={side - 2}, outer={side}"):
        local_rx(small_cube, inner=side, outer=side + 2)
    with pytest.raises(InputError):
        brad(small_cube, inner=3, outer=15, n_pca=2)


def test_bad_parameters_raise(small_cube):
    with pytest.raises(InputError):
        local_rx(small_cube, inner=3, outer=7, ridge=-1.0)
    with pytest.raises(InputError):
        local_rx(small_cube, inner=3, outer=7, dtype="int32")
    with pytest.raises(InputError):
        pca_project(small_cube, 0)
    with pytest.raises(InputError):
        local_rx(small_cube[..., 0], inner=3, outer=7)


def test_float32_input_and_output(small_cube):
    cube32 = small_cube.astype(np.float32)
    ref = local_rx(small_cube, inner=3, outer=7)
    got = local_rx(cube32, inner=3, outer=7)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=1e-4)
    got32 = local_rx(cube32, inner=3, outer=7, dtype="float32")
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, ref, rtol=1e-3)
    assert brad(cube32, inner=3, outer=7, n_pca=2).shape == (13, 12)
    assert pca_project(cube32, 2).dtype == np.float32


def test_row_blocks_match_single_block(monkeypatch):
    mod = importlib.import_module("rednmf.scoring.local_rx")

    rng = np.random.default_rng(5)
    cube = rng.normal(size=(25, 11, 3))
    whole = local_rx(cube, inner=3, outer=7)
    monkeypatch.setattr(mod, "_BLOCK_ELEMENTS", 11 * 9 * 10)  # a few rows per block
    np.testing.assert_allclose(local_rx(cube, inner=3, outer=7), whole, rtol=1e-10)


def test_column_norm():
    rng = np.random.default_rng(6)
    cube = rng.normal(size=(4, 5, 3))
    np.testing.assert_allclose(column_norm(cube), np.sqrt((cube**2).sum(axis=2)))
    assert column_norm(cube).shape == (4, 5)
    with pytest.raises(InputError):
        column_norm(np.ones((4, 5)))


@pytest.mark.parametrize(
    ("inner", "outer", "hint"),
    [(101, 27, "inner window of at most 97"), (31, 27, "outer window between 33 and 99")],
)
def test_window_hints_name_a_size_that_fits(inner, outer, hint):
    with pytest.raises(InputError, match=hint):
        local_rx(np.random.default_rng(0).random((100, 100, 3)), inner=inner, outer=outer)
