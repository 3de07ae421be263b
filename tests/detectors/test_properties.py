"""Property tests (hypothesis) over cube shapes, dtypes and scales, with cheap detectors."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rednmf.detectors.registry import get_detector

DETECTORS = {
    "grx": {},
    "lrx": {"inner": 1, "outer": 3, "n_pca": 3},
    "rednmf": {"max_iter": 3, "n_components": 2, "inner": 1, "outer": 3, "n_pca": 2},
}
DTYPES = ["uint16", "int16", "float32", "float64"]


@st.composite
def cubes(draw):
    rows = draw(st.integers(3, 9))
    cols = draw(st.integers(3, 9))
    bands = draw(st.integers(2, 6))
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    if dtype in ("uint16", "int16"):
        hi = draw(st.sampled_from([4, 100, 30000]))
        lo = 0 if dtype == "uint16" else -hi
        cube = rng.integers(lo, hi + 1, size=(rows, cols, bands)).astype(dtype)
    else:
        scale = draw(st.sampled_from([1e-6, 1.0, 1e4, 1e30]))
        offset = draw(st.sampled_from([0.0, -0.5]))
        cube = ((rng.random((rows, cols, bands)) + offset) * scale).astype(dtype)
        if draw(st.booleans()):  # a few no-data pixels
            cube[rng.random((rows, cols)) < 0.2] = np.nan
    # every band must vary, else there is legitimately nothing to detect
    flat = cube.reshape(-1, bands).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok = np.nanmax(flat, axis=0) > np.nanmin(flat, axis=0)
    valid = ~np.isnan(flat).any(axis=1)
    if not ok.all() or valid.sum() < 2:
        cube = cube.astype(np.float64)
        cube[0, 0] = 0.0
        cube[0, 1] = 1.0
    return cube


def _fit(method: str, cube: np.ndarray):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_detector(method, **DETECTORS[method]).fit(cube)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cube=cubes(), method=st.sampled_from(sorted(DETECTORS)))
def test_scores_shape_finite_and_deterministic(cube, method):
    det = _fit(method, cube)
    s = det.decision_scores_
    assert s.shape == cube.shape[:2]
    finite_px = np.isfinite(cube.astype(np.float64)).all(axis=2)
    assert np.isfinite(s[finite_px]).all()
    assert np.isnan(s[~finite_px]).all()
    assert det.labels_.shape == s.shape and det.labels_[~finite_px].sum() == 0
    again = _fit(method, cube).decision_scores_
    np.testing.assert_array_equal(s, again)  # same seed (default), same input: same scores


@settings(max_examples=30, deadline=None)
@given(cube=cubes(), factor=st.sampled_from([1e-3, 10.0, 1e6]))
def test_grx_is_scale_invariant(cube, factor):
    """GRX scores do not change when the cube is multiplied by a positive constant."""
    x = cube.astype(np.float64)
    a = _fit("grx", x).decision_scores_
    b = _fit("grx", x * factor).decision_scores_
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8 * np.nanmax(np.abs(a)))
