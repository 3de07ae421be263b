"""Tests of the collaborative-representation detectors: CRD, LSAD-CR-IDW, LSUNRSORAD.

The batched implementations are checked against straightforward per-pixel
loops written here from the formulas in the docstrings.
"""

from __future__ import annotations

import numpy as np
import pytest

import rednmf.detectors.cr as cr
from rednmf.detectors.cr import CRD, LSADCRIDW, LSUNRSORAD, idw_weights, ring_offsets
from rednmf.detectors.registry import get_detector
from rednmf.exceptions import InputError
from rednmf.metrics import roc_auc


@pytest.fixture
def cube() -> np.ndarray:
    """12 x 12 x 6 positive cube with two bright pixels (band-sum outliers)."""
    rng = np.random.default_rng(3)
    x = rng.uniform(0.5, 1.5, size=(12, 12, 6))
    x[4, 5] += 3.0
    x[9, 2] += 2.0
    return x


def _window_samples(
    img: np.ndarray, r: int, c: int, inner: int, outer: int
) -> tuple[np.ndarray, list[float]]:
    """Ring pixels of the dual window centred at padded position (r, c).

    ``img`` is the mirror-padded image or the image itself; positions outside
    ``img`` are skipped (clipped). Returns the samples as columns of
    ``H`` (bands x m) and their spatial distances to the window centre.
    """
    ho, hi = outer // 2, inner // 2
    cols, dist = [], []
    for i in range(r - ho, r + ho + 1):
        for j in range(c - ho, c + ho + 1):
            if abs(i - r) <= hi and abs(j - c) <= hi:
                continue
            if 0 <= i < img.shape[0] and 0 <= j < img.shape[1]:
                cols.append(img[i, j])
                dist.append(float(np.hypot(i - r, j - c)))
    return np.asarray(cols).T, dist


def _reference(cube, inner, outer, border, summed, represent):
    """Per-pixel loop; ``represent(y, H, dist) -> residual norm``."""
    rows, cols, _ = cube.shape
    hi = inner // 2
    shifts = (
        [(a, b) for a in range(-hi, hi + 1) for b in range(-hi, hi + 1)] if summed else [(0, 0)]
    )
    halo = outer // 2 + (hi if summed else 0)
    if border == "mirror":
        img = np.pad(cube, ((halo, halo), (halo, halo), (0, 0)), mode="symmetric")
        off = halo
    else:
        img, off = cube, 0
    out = np.zeros((rows, cols))
    for r in range(rows):
        for c in range(cols):
            y = cube[r, c]
            for a, b in shifts:
                H, dist = _window_samples(img, r + off + a, c + off + b, inner, outer)
                out[r, c] += represent(y, H, dist)
    return out


def _floor(cube):
    """The implementation's floor on the squared Tikhonov weights (a mirrored
    border can put the pixel's own spectrum in its ring: zero distance)."""
    x = cube.reshape(-1, cube.shape[2])
    return 1e-12 * np.mean(np.sum((x - x.mean(axis=0)) ** 2, axis=1))


def _crd_residual(y, H, dist, lam, floor, idw=False, inner=None, outer=None):
    gamma = np.linalg.norm(y[:, None] - H, axis=0)
    if idw:
        full = [
            np.hypot(i, j)
            for i in range(-(outer // 2), outer // 2 + 1)
            for j in range(-(outer // 2), outer // 2 + 1)
            if abs(i) > inner // 2 or abs(j) > inner // 2
        ]
        total = sum(d**-2 for d in full)
        gamma = gamma * np.array([d**-2 / total for d in dist])
    alpha = np.linalg.solve(H.T @ H + lam * np.diag(np.maximum(gamma**2, floor)), H.T @ y)
    return np.linalg.norm(y - H @ alpha)


def _unrs_residual(y, H, dist, lam, floor):
    sums = H.sum(axis=0)
    mu, sd = sums.mean(), sums.std(ddof=1)
    H = H[:, np.abs(sums - mu) <= 2 * sd]
    Z = H - y[:, None]
    m = H.shape[1]
    C = Z.T @ Z + lam * np.diag(np.maximum(np.sum(Z * Z, axis=0), floor))
    # KKT system of min a^T C a subject to sum(a) = 1.
    kkt = np.zeros((m + 1, m + 1))
    kkt[:m, :m] = 2.0 * C
    kkt[:m, m] = 1.0
    kkt[m, :m] = 1.0
    rhs = np.zeros(m + 1)
    rhs[m] = 1.0
    alpha = np.linalg.solve(kkt, rhs)[:m]
    return np.linalg.norm(y - H @ alpha)


WINDOWS = [(1, 3), (3, 5), (3, 7)]


def _assert_close(got, expected, border):
    # With border='mirror' a border pixel can be represented exactly by its own
    # mirrored copy: a residual ~1e-12 whose relative error is meaningless.
    atol = 1e-9 if border == "mirror" else 0.0
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=atol)


@pytest.mark.parametrize("border", ["clip", "mirror"])
@pytest.mark.parametrize(("inner", "outer"), WINDOWS)
def test_crd_matches_per_pixel_reference(cube, border, inner, outer):
    lam, fl = 0.05, _floor(cube)
    det = CRD(inner=inner, outer=outer, reg=lam, scale="none", border=border)
    expected = _reference(
        cube, inner, outer, border, False, lambda y, H, d: _crd_residual(y, H, d, lam, fl)
    )
    _assert_close(det.fit(cube).decision_scores_, expected, border)


@pytest.mark.parametrize("border", ["clip", "mirror"])
@pytest.mark.parametrize(("inner", "outer"), WINDOWS)
def test_lsad_cr_idw_matches_per_pixel_reference(cube, border, inner, outer):
    lam, fl = 0.5, _floor(cube)
    det = LSADCRIDW(inner=inner, outer=outer, reg=lam, scale="none", border=border)

    def represent(y, H, d):
        return _crd_residual(y, H, d, lam, fl, idw=True, inner=inner, outer=outer)

    expected = _reference(cube, inner, outer, border, True, represent)
    _assert_close(det.fit(cube).decision_scores_, expected, border)


@pytest.mark.parametrize("border", ["clip", "mirror"])
@pytest.mark.parametrize(("inner", "outer"), WINDOWS)
def test_lsunrsorad_matches_per_pixel_reference(cube, border, inner, outer):
    lam, fl = 0.1, _floor(cube)
    det = LSUNRSORAD(inner=inner, outer=outer, reg=lam, scale="none", border=border)
    expected = _reference(
        cube, inner, outer, border, True, lambda y, H, d: _unrs_residual(y, H, d, lam, fl)
    )
    _assert_close(det.fit(cube).decision_scores_, expected, border)


def test_outlier_removal_is_exercised(cube):
    """The bright pixel (4, 5) is a band-sum outlier of the ring around (4, 7)."""
    H, _ = _window_samples(cube, 4, 7, 3, 5)
    sums = H.sum(axis=0)
    out = np.abs(sums - sums.mean()) > 2 * sums.std(ddof=1)
    assert out.sum() == 1
    assert sums[out][0] == pytest.approx(cube[4, 5].sum())


def test_minmax_scaling_equals_prescaled_input(cube):
    scaled = (cube - cube.min()) / (cube.max() - cube.min())
    for cls in (CRD, LSADCRIDW, LSUNRSORAD):
        a = cls(inner=1, outer=3).fit(cube).decision_scores_
        b = cls(inner=1, outer=3, scale="none").fit(scaled).decision_scores_
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_block_size_does_not_change_scores(cube, monkeypatch):
    full = LSUNRSORAD(inner=3, outer=5).fit(cube).decision_scores_
    monkeypatch.setattr(cr, "_BLOCK_ELEMENTS", 7 * 16 * 6)
    blocked = LSUNRSORAD(inner=3, outer=5).fit(cube).decision_scores_
    np.testing.assert_allclose(blocked, full, rtol=1e-12)


@pytest.mark.parametrize("border", ["clip", "mirror"])
def test_bands_of_rows_match_per_pixel_reference(cube, border, monkeypatch):
    """The scene read two rows at a time (a pair table per band) gives the per-pixel scores."""
    # padded width 12 + 2 * 3 = 18, 41 table offsets for outer 5: two output rows per band
    monkeypatch.setattr(cr, "_TABLE_ELEMENTS", 18 * 41 * 8)
    lam, fl = 0.1, _floor(cube)

    def lsad(y, H, d):
        return _crd_residual(y, H, d, lam, fl, idw=True, inner=3, outer=5)

    def unrs(y, H, d):
        return _unrs_residual(y, H, d, lam, fl)

    for cls, represent in ((LSADCRIDW, lsad), (LSUNRSORAD, unrs)):
        det = cls(inner=3, outer=5, reg=lam, scale="none", border=border)
        expected = _reference(cube, 3, 5, border, True, represent)
        _assert_close(det.fit(cube).decision_scores_, expected, border)


def test_float32_cube_is_scaled_in_float64(cube):
    """A float32 cube scores as its exact float64 copy: no float32 arithmetic on the way."""
    x32 = cube.astype(np.float32)
    for cls in (CRD, LSUNRSORAD):
        a = cls(inner=1, outer=3).fit(x32).decision_scores_
        b = cls(inner=1, outer=3).fit(x32.astype(np.float64)).decision_scores_
        np.testing.assert_array_equal(a, b)


def test_working_memory_does_not_grow_with_the_rows(monkeypatch):
    """The scene is read a band of rows at a time: no float64 copy of it, whatever its rows.

    With bands of 4 rows, 40 more rows of a 40-column, 30-band float32 scene add the score
    maps (a few float64 values per pixel), not a float64 copy of those rows (30 per pixel).
    """
    import tracemalloc

    monkeypatch.setattr(cr, "_TABLE_ELEMENTS", (40 + 8) * 145 * 12)  # CRD: outer 9, 4 rows
    rng = np.random.default_rng(5)
    peaks = []
    for rows in (40, 80):
        cube = rng.uniform(0.5, 1.5, size=(rows, 40, 30)).astype(np.float32)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            CRD().fit(cube)
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
        finally:
            tracemalloc.stop()
    copy_of_the_rows = 40 * 40 * 30 * 8
    assert peaks[1] - peaks[0] < 0.5 * copy_of_the_rows, peaks


def test_idw_weights():
    w = idw_weights(3, 7)
    dr, dc = ring_offsets(3, 7)
    assert w.shape == (40,) and dr.shape == (40,)
    assert w.sum() == pytest.approx(1.0)
    d2 = dr**2 + dc**2
    np.testing.assert_allclose(w * d2, (w * d2)[0])  # w proportional to 1 / d^2


def test_n_pca_runs_and_is_finite(cube):
    scores = CRD(inner=1, outer=5, n_pca=3).fit(cube).decision_scores_
    assert np.all(np.isfinite(scores))


def test_duplicate_pixels_stay_finite():
    x = np.ones((8, 8, 4))
    x[3, 3] = 2.0
    for cls in (CRD, LSADCRIDW, LSUNRSORAD):
        scores = cls(inner=1, outer=3).fit(x).decision_scores_
        assert np.all(np.isfinite(scores))


@pytest.mark.parametrize("cls", [CRD, LSADCRIDW, LSUNRSORAD])
def test_planted_targets_score_high(cls, small_scene):
    cube, gt = small_scene
    scores = cls(n_pca=10).fit(cube).decision_scores_
    assert np.all(np.isfinite(scores))
    assert roc_auc(scores, gt) > 0.9


@pytest.mark.parametrize("cls", [CRD, LSADCRIDW, LSUNRSORAD])
@pytest.mark.parametrize(
    "params",
    [
        {"inner": 2},
        {"outer": 6},
        {"inner": 5, "outer": 3},
        {"reg": 0.0},
        {"reg": -1.0},
        {"n_pca": 0},
        {"scale": "max"},
        {"border": "wrap"},
    ],
)
def test_bad_parameters_raise(cls, params, cube):
    with pytest.raises(InputError):
        cls(**params).fit(cube)


def test_scene_smaller_than_window_raises(cube):
    with pytest.raises(InputError, match="smaller than"):
        CRD(inner=3, outer=13).fit(cube)


@pytest.mark.parametrize(
    ("name", "cls"), [("crd", CRD), ("lsad-cr-idw", LSADCRIDW), ("lsunrsorad", LSUNRSORAD)]
)
def test_registered(name, cls):
    det = get_detector(name)
    assert isinstance(det, cls)
    assert det.name == name
