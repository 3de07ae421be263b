"""The detectors as scikit-learn estimators (issue 13): parameters, fitted state, new data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

from rednmf import cli
from rednmf.detectors._base import ParameterError
from rednmf.detectors.nmf import EWNMF, L1NMF, NMF, RNMF
from rednmf.detectors.rednmf import REDNMF
from rednmf.detectors.registry import METHODS, get_detector, get_detector_class
from rednmf.detectors.rx import GRX, LRX
from rednmf.exceptions import InputError
from rednmf.io import Scene
from rednmf.metrics import roc_auc
from rednmf.scoring.scorers import MultiScale

ALL = sorted(METHODS)


def _cube(rows=12, cols=10, bands=6, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random((rows, cols, bands)) + 0.1


@pytest.mark.parametrize("name", ALL)
def test_parameters_are_keyword_only(name):
    cls = get_detector_class(name)
    with pytest.raises(TypeError, match="positional"):
        cls(8)


def test_positional_rednmf_is_refused():
    with pytest.raises(TypeError):
        REDNMF(8, 4.0, 1.0)


@pytest.mark.parametrize("name", ALL)
def test_clone_get_set_params(name):
    det = get_detector(name, contamination=0.05)
    twin = clone(det)
    assert twin is not det
    assert twin.get_params(deep=False) == det.get_params(deep=False)
    assert twin.get_params(deep=True) == det.get_params(deep=True)
    assert twin.contamination == 0.05
    assert twin.set_params(contamination=0.02) is twin and twin.contamination == 0.02
    assert det.contamination == 0.05
    with pytest.raises(ValueError, match="Invalid parameter"):
        twin.set_params(no_such_parameter=1)


@pytest.mark.parametrize("name", ALL)
def test_not_fitted(name):
    det = get_detector(name)
    with pytest.raises(NotFittedError, match="fit"):
        check_is_fitted(det)
    for attr in ("decision_scores_", "threshold_", "labels_"):
        with pytest.raises(NotFittedError, match=attr):
            getattr(det, attr)
        assert not hasattr(det, attr)  # NotFittedError is an AttributeError too
    with pytest.raises(NotFittedError):
        det.decision_function(_cube())
    with pytest.raises(AttributeError, match="no attribute 'bogus_'"):
        det.bogus_  # noqa: B018 - an unknown name is a plain AttributeError


def test_fitted_passes_check_is_fitted():
    det = GRX().fit(_cube())
    check_is_fitted(det)
    assert det.n_features_in_ == 6


@pytest.mark.parametrize(
    ("det", "needle"),
    [
        (REDNMF(n_components=0), "'n_components' parameter of REDNMF"),
        (REDNMF(lam_mode="relative"), "'lam_mode' parameter"),
        (GRX(ridge=-1.0), "'ridge' parameter of GRX"),
        (NMF(contamination=0.7), "'contamination' parameter"),
        (
            GRX(ridge=float("inf")),
            "'ridge' parameter of GRX must be a float in the range [0.0, inf)",
        ),
        (LRX(inner=5, outer=3), "outer (3) must be greater than inner (5)"),
    ],
)
def test_bad_parameter_is_one_line_input_error(det, needle):
    with pytest.raises(ParameterError if "parameter" in needle else InputError) as info:
        det.fit(_cube())
    message = str(info.value)
    assert needle in message and "\n" not in message
    if "parameter" in needle:
        assert isinstance(info.value, InputError)
        assert isinstance(info.value, InvalidParameterError)


def test_bad_parameter_from_the_cli_is_one_line(tmp_path, capsys):
    scene = tmp_path / "scene.npy"
    np.save(scene, _cube())
    argv = ["detect", scene, "--out", tmp_path / "out", "--method", "grx", "--param", "ridge=-1"]
    code = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: The 'ridge' parameter of GRX must be a float in the range")


def test_renamed_parameter_names_its_new_name():
    with pytest.raises(InputError, match="'lam' is now 'reg'"):
        get_detector("crd", lam=0.01)
    assert get_detector("crd", reg=0.02).reg == 0.02


@pytest.mark.parametrize(("cls", "key"), [(L1NMF, "delta_mode"), (EWNMF, "gamma_mode")])
def test_the_old_mode_name_relative_is_refused(cls, key):
    with pytest.raises(InputError, match=f"The '{key}' parameter of {cls.__name__} must be"):
        cls(**{key: "relative"}).fit(_cube())


# -- input layouts ------------------------------------------------------------


@pytest.mark.parametrize(
    "det", [GRX(), NMF(n_components=2, max_iter=5), REDNMF(n_components=2, scorer="norm")]
)
def test_matrix_input_for_a_method_without_space(det):
    cube = _cube()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        on_cube = clone(det).fit(cube)
        on_matrix = clone(det).fit(cube.reshape(-1, 6))
    assert on_matrix.decision_scores_.shape == (120,)
    assert on_matrix.labels_.shape == (120,)
    np.testing.assert_allclose(
        on_matrix.decision_scores_, on_cube.decision_scores_.ravel(), rtol=1e-6
    )


@pytest.mark.parametrize(
    "det",
    [
        LRX(inner=3, outer=7),
        REDNMF(n_components=2, max_iter=3, scorer=MultiScale(inner=3, outer=7)),
    ],
)
def test_matrix_input_for_a_spatial_method_needs_image_shape(det):
    cube = _cube()
    with pytest.raises(InputError, match=r"image_shape=\(rows, cols\)"):
        clone(det).fit(cube.reshape(-1, 6))
    with pytest.raises(InputError, match="does not hold the 120 pixels"):
        clone(det).fit(cube.reshape(-1, 6), image_shape=(11, 10))
    flat = clone(det).fit(cube.reshape(-1, 6), image_shape=(12, 10)).decision_scores_
    np.testing.assert_array_equal(flat, clone(det).fit(cube).decision_scores_.ravel())


def test_fit_accepts_a_scene():
    cube = _cube()
    scene = Scene(cube=cube, gt=None, name="synthetic")
    np.testing.assert_array_equal(
        GRX().fit(scene).decision_scores_, GRX().fit(cube).decision_scores_
    )


def test_sparse_input_is_refused_in_one_line():
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(InputError, match="sparse input is not supported"):
        GRX().fit(sparse.csr_matrix(_cube().reshape(-1, 6)))


# -- new data ------------------------------------------------------------------


def test_grx_applies_the_fitted_statistics():
    cube = _cube(seed=1)
    det = GRX().fit(cube)
    np.testing.assert_array_equal(det.decision_function(cube), det.decision_scores_)
    np.testing.assert_array_equal(det.predict(cube), det.labels_)
    other = _cube(seed=2)
    assert not np.allclose(det.decision_function(other), GRX().fit(other).decision_scores_)
    with pytest.raises(InputError, match="X has 5 features, but GRX is expecting 6"):
        det.decision_function(other[:, :, :5])


def test_local_detector_scores_new_data_by_a_fitted_copy():
    a, b = _cube(seed=1), _cube(seed=2)
    det = LRX(inner=3, outer=7).fit(a)
    np.testing.assert_array_equal(
        det.decision_function(b), LRX(inner=3, outer=7).fit(b).decision_scores_
    )


def test_nan_pixels_of_new_data_score_nan():
    cube = _cube()
    det = REDNMF(n_components=2, max_iter=5, scorer=MultiScale(inner=3, outer=7)).fit(cube)
    new = _cube(seed=3)
    new[2, 3, 1] = np.nan
    scores = det.decision_function(new)
    assert np.isnan(scores[2, 3]) and np.isfinite(np.delete(scores.ravel(), 2 * 10 + 3)).all()
    assert det.predict(new)[2, 3] == 0


@pytest.mark.realdata
def test_rednmf_background_of_one_half_scores_the_other(airport1):
    """Fit REDNMF on the top half of Airport-1, score the bottom half with its ``(W, M)``.

    Measured (defaults; bottom half; benchmarks/transfer_halves.py): fitted on it
    directly, AUC 0.9991; with the model of the top half, 0.9992. Over the four DEV
    scenes with anomalies in both halves the difference ranged from +0.0000 to
    +0.0014 (docs/choices.md).
    """
    cube, gt = airport1
    top, bottom = cube[:50], cube[50:]
    direct = roc_auc(REDNMF().fit(bottom).decision_scores_, gt[50:])
    transfer = roc_auc(REDNMF().fit(top).decision_function(bottom), gt[50:])
    assert direct > 0.99
    assert transfer > direct - 0.002, (transfer, direct)


# -- scikit-learn's own checks -------------------------------------------------

#: Why the estimator checks that fail are expected to (the same for every detector run).
EXPECTED_FAILED = {
    "check_estimators_nan_inf": "NaN marks no-data by design: the pixel is scored NaN",
    "check_complex_data": "refused with our message 'cube is complex; pass real-valued ...'",
    "check_dtype_object": "refused with our message 'cube has dtype object; ...'",
    "check_estimators_empty_data_messages": "refused with our message 'cube has 0 band(s)'",
    "check_fit2d_1sample": "refused with our message 'cube has 1 pixel(s); at least 2 ...'",
    "check_fit2d_1feature": "refused with our message 'cube has 1 band(s); at least 2 ...'",
    "check_fit2d_predict1d": "refused with our message 'cube must be 3-D (rows, cols, bands)'",
}
#: Checks whose premise does not hold for the detectors that score new data by a fit.
REFIT = {
    "check_methods_subset_invariance": "decision_function fits a copy on X: one pixel is "
    "not a background",
    "check_methods_sample_order_invariance": "decision_function fits a copy on X from a "
    "random initialisation, which depends on the pixel order",
}
#: The estimators checked: the detectors whose default (or given) scorer does not use space,
#: with a rank that fits the checks' 2 to 5 features. LRX, the CR family and the deep
#: methods score a pixel against its neighbours and refuse a (samples, features) matrix.
CHECKED = [
    GRX(),
    REDNMF(n_components=2, max_iter=20, scorer="norm"),
    NMF(n_components=2, max_iter=20),
    RNMF(n_components=2, max_iter=20),
    L1NMF(n_components=2, max_iter=20),
    EWNMF(n_components=2, max_iter=20),
]


def _expected_failed(estimator) -> dict[str, str]:
    expected = dict(EXPECTED_FAILED)
    if isinstance(estimator, (NMF, RNMF, L1NMF, EWNMF)):
        expected.update(REFIT)
    return expected


@pytest.mark.filterwarnings("ignore")
@parametrize_with_checks(CHECKED, expected_failed_checks=_expected_failed)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# -- PyOD ----------------------------------------------------------------------


def test_pyod_attributes_side_by_side():
    """The same attributes, meanings and shapes as a PyOD detector on the same matrix."""
    pyod_pca = pytest.importorskip("pyod.models.pca")
    X = np.random.default_rng(0).normal(size=(300, 5))
    X[:6] += 8.0  # six outliers
    ours = GRX(contamination=0.02).fit(X)
    theirs = pyod_pca.PCA(contamination=0.02).fit(X)
    for det in (ours, theirs):
        assert det.contamination == 0.02
        assert det.decision_scores_.shape == (300,)
        assert set(np.unique(det.labels_)) == {0, 1}
        assert det.labels_.sum() == pytest.approx(6, abs=1)
        np.testing.assert_array_equal(det.labels_, det.decision_scores_ > det.threshold_)
        np.testing.assert_array_equal(det.predict(X), det.labels_)
        assert det.decision_function(X[:10]).shape == (10,)
        assert set(np.flatnonzero(det.labels_)) >= set(range(6))


@pytest.mark.parametrize("engine", [None, "memory"])
def test_engine_parameters_set_on_an_engine_given_by_name_or_left_to_its_default(
    small_scene, engine
):
    """``engine__n_jobs`` works as ``scorer__inner`` does, and changes what the fit runs on."""
    from rednmf.engines import InMemory

    det = REDNMF(engine=engine, max_iter=3).set_params(engine__n_jobs=2)
    assert isinstance(det.engine, InMemory) and det.engine.n_jobs == 2
    assert det.get_params()["engine__n_jobs"] == 2
    assert get_detector("rednmf", engine__n_jobs=2).engine.n_jobs == 2
    cube = small_scene[0]
    ref = REDNMF(engine=InMemory(n_jobs=2), max_iter=3).fit(cube)
    np.testing.assert_array_equal(det.fit(cube).decision_scores_, ref.decision_scores_)
    with pytest.raises(InputError, match="Invalid parameter 'foo' for estimator InMemory"):
        get_detector("rednmf", engine__foo=1)


def test_engine_values_are_set_before_the_engine_is_checked():
    """``engine='torch:cuda', engine__device='cpu'``: the device set wins, no CUDA needed."""
    pytest.importorskip("torch")
    det = get_detector("rednmf", engine="torch:cuda", engine__device="cpu")
    assert det.engine.device == "cpu"
    det.engine.check()  # what fit checks: a CPU device is usable here
