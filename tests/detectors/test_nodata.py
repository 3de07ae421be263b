"""No-data in the detector contract: NaN pixels, user masks, all-NaN and constant bands."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from rednmf.datasets import make_scene
from rednmf.detectors.registry import get_detector
from rednmf.exceptions import InputError
from rednmf.metrics import roc_auc

FAST = {
    "grx": {},
    "lrx": {"inner": 3, "outer": 9},
    "rednmf": {"max_iter": 5, "inner": 3, "outer": 9},
    "rnmf": {"max_iter": 5},
    "crd": {"inner": 3, "outer": 9},
}


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, np.ndarray]:
    cube, gt = make_scene(rows=30, cols=30, bands=16, n_targets=4, random_state=0)
    return cube.astype(np.float64), np.asarray(gt) != 0


@pytest.mark.parametrize("method", sorted(FAST))
def test_nan_pixels_are_scored_nan_and_left_out(scene, method):
    cube, gt = scene
    bad = cube.copy()
    bad[:3] = np.nan  # a no-data border
    bad[10, 10, 5] = np.nan  # one missing value makes the pixel invalid
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = get_detector(method, **FAST[method]).fit(bad)
    s = det.decision_scores_
    invalid = np.isnan(bad).any(axis=2)
    assert s.shape == (30, 30)
    assert np.all(np.isnan(s[invalid])) and np.all(np.isfinite(s[~invalid]))
    assert np.array_equal(det.valid_mask_, ~invalid)
    assert det.labels_[invalid].sum() == 0
    k = int(det.contamination * (~invalid).sum())  # floor: at most that fraction above
    assert det.threshold_ == np.sort(s[~invalid])[-k - 1]  # k valid scores above it
    if method in ("grx", "lrx", "crd"):  # five iterations are too few to promise an AUC
        assert roc_auc(s, gt) > 0.8


def test_invalid_pixels_do_not_influence_the_fit(scene):
    """Whatever the invalid pixels hold, GRX scores of the valid pixels are the same."""
    cube, _ = scene
    mask = np.ones((30, 30), dtype=bool)
    mask[:, :4] = False
    a = cube.copy()
    b = cube.copy()
    b[:, :4] = 1e6  # garbage outside the mask
    c = cube.copy()
    c[:, :4] = np.nan
    sa = get_detector("grx").fit(a, mask=mask).decision_scores_
    sb = get_detector("grx").fit(b, mask=mask).decision_scores_
    sc = get_detector("grx").fit(c).decision_scores_
    np.testing.assert_allclose(sa[mask], sb[mask], rtol=1e-6)
    np.testing.assert_allclose(sa[mask], sc[mask], rtol=1e-6)
    assert np.isnan(sa[~mask]).all()


def test_all_nan_and_constant_bands_are_dropped_with_one_warning(scene):
    cube, _ = scene
    bad = cube.copy()
    bad[:, :, 2] = np.nan
    bad[:, :, 7] = 3.0
    with pytest.warns(UserWarning, match="dropped 1 all-NaN and 1 constant band") as rec:
        det = get_detector("grx").fit(bad)
    assert all("\n" not in str(w.message) for w in rec)
    assert 2 not in det.bands_kept_ and 7 not in det.bands_kept_
    assert det.bands_kept_.size == 14
    ref = get_detector("grx").fit(np.delete(cube, [2, 7], axis=2)).decision_scores_
    np.testing.assert_allclose(det.decision_scores_, ref, rtol=1e-6)


def test_clean_cube_unchanged_by_the_mask_machinery(scene):
    cube, _ = scene
    a = get_detector("lrx", **FAST["lrx"]).fit(cube).decision_scores_
    b = get_detector("lrx", **FAST["lrx"]).fit(cube, mask=np.ones((30, 30))).decision_scores_
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("cube", "mask", "needle"),
    [
        (np.full((5, 5, 4), np.nan), None, "NaN"),
        (
            np.where(np.eye(5, dtype=bool)[:, :, None], np.inf, np.ones((5, 5, 3))),
            None,
            "infinite",
        ),
        (np.random.default_rng(0).random((5, 5, 4)), np.zeros((5, 5)), "excludes every pixel"),
        (np.random.default_rng(0).random((5, 5, 4)), np.ones((4, 5)), "mask has shape"),
        (np.random.default_rng(0).random((5, 5, 4)), np.arange(25).reshape(5, 5) == 3, "valid"),
    ],
)
def test_unusable_inputs_raise_one_line(cube, mask, needle):
    with pytest.raises(InputError, match=needle) as exc:
        get_detector("grx").fit(cube, mask=mask)
    assert "\n" not in str(exc.value)


def test_no_data_costs_one_copy_of_the_cube_at_most():
    """Filling the no-data pixels allocates the returned cube and small blocks, not the
    several copies of the cube (pixels, the masked bands) it took before: under 1.25x the
    cube's bytes (tracemalloc counts NumPy's allocations; 3.0x before)."""
    import tracemalloc

    from rednmf.detectors.rx import GRX

    cube = np.random.default_rng(0).random((200, 200, 40)).astype(np.float32)
    cube[:10, :20] = np.nan  # a no-data corner
    cube[50, 60, 7] = np.nan  # and one missing value
    det = GRX()
    tracemalloc.start()
    try:
        out, valid, kept = det._mask_invalid(cube, None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert valid.sum() == 200 * 200 - 201 and kept.size == 40
    assert np.isfinite(out).all() and out.shape == cube.shape
    np.testing.assert_array_equal(out[valid], cube[valid])
    np.testing.assert_allclose(out[0, 0], cube[valid].mean(axis=0, dtype=np.float64), rtol=1e-6)
    assert peak < 1.25 * cube.nbytes, peak / cube.nbytes


@pytest.mark.parametrize("method", ["crd", "lsad-cr-idw", "lsunrsorad"])
def test_collaborative_representation_survives_a_no_data_half(airport1, method):
    """A ring inside a no-data region holds identical samples: its systems are singular in
    float64, and the representation falls back to least squares instead of raising."""
    cube = airport1[0][:40, :40, :60].astype(np.float64)
    cube[20:] = np.nan
    s = get_detector(method).fit(cube).decision_scores_
    assert np.isnan(s[20:]).all() and np.isfinite(s[:20]).all()


def test_batched_solve_matches_least_squares_where_a_system_is_singular():
    from rednmf.detectors.cr import _solve_batch

    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 5, 5))
    A = A @ A.transpose(0, 2, 1) + 5 * np.eye(5)  # regular
    b = rng.standard_normal((4, 5))
    np.testing.assert_allclose(_solve_batch(A, b), np.linalg.solve(A, b[..., None])[..., 0])
    A[2] = np.ones((5, 5))  # rank one: np.linalg.solve raises on the batch
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.solve(A, b[..., None])
    x = _solve_batch(A, b)
    for p in range(4):  # each system's minimum-norm least-squares solution (the oracle)
        np.testing.assert_allclose(x[p], np.linalg.lstsq(A[p], b[p], rcond=None)[0], atol=1e-10)


@pytest.mark.parametrize("method", ["grx", "rednmf"])
def test_a_masked_arrays_masked_entries_are_no_data(scene, method):
    """np.ma input: masked pixels are left out exactly as NaN pixels are (the oracle)."""
    cube, _ = scene
    data = cube.copy()
    data[7, 9] = 1e6  # a masked pixel whose values would otherwise dominate
    masked = np.ma.masked_array(data, mask=np.zeros(data.shape, dtype=bool))
    masked.mask[7, 9, :] = True
    masked.mask[2, 3, 4] = True  # one masked entry makes the pixel no-data, as one NaN does
    nan = data.copy()
    nan[7, 9] = np.nan
    nan[2, 3, 4] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = get_detector(method, **FAST[method]).fit(masked)
        want = get_detector(method, **FAST[method]).fit(nan)
    assert not got.valid_mask_[7, 9] and not got.valid_mask_[2, 3]
    np.testing.assert_array_equal(got.decision_scores_, want.decision_scores_)


def test_a_masked_matrix_and_a_complex_masked_cube(scene):
    """The mask survives a 2-D (pixels, bands) input; a complex masked cube is refused."""
    cube, _ = scene
    X = cube.reshape(-1, cube.shape[2]).copy()
    X[7] = 50.0
    m = np.ma.masked_array(X, mask=np.zeros(X.shape, dtype=bool))
    m.mask[7] = True
    det = get_detector("grx").fit(m, image_shape=cube.shape[:2])
    assert not det.valid_mask_.ravel()[7] and np.isnan(det.decision_scores_.ravel()[7])
    z = np.ma.masked_array(cube.astype(complex), mask=np.zeros(cube.shape, dtype=bool))
    z.mask[0, 0, 0] = True
    with pytest.raises(InputError, match="complex"):
        get_detector("grx").fit(z)


@pytest.mark.parametrize(
    "dtype, want",
    [
        (np.bool_, np.float32),
        (np.uint8, np.float32),
        (np.int16, np.float32),
        (np.uint16, np.float32),
        (np.int32, np.float64),
        (np.uint64, np.float64),
        (np.float32, np.float32),
        (np.float64, np.float64),
    ],
)
def test_integer_cubes_are_widened_to_the_smallest_exact_float(dtype, want):
    """16-bit integers (most sensors' files) fit float32's 24-bit mantissa: half the memory
    of float64, and every value kept (the oracle: the values in float64)."""
    from rednmf._validation import check_cube

    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    values = np.array([0, 1]) if info is None else np.array([info.min, info.max, 12345 % info.max])
    cube = np.resize(values, (3, 4, 5)).astype(dtype)
    got = check_cube(cube)
    assert got.dtype == want
    np.testing.assert_array_equal(got.astype(np.float64), cube.astype(np.float64))
