"""Detectors of the NMF family (NMF, RNMF, L1NMF, EWNMF) and their shared base."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from rednmf.datasets import make_scene
from rednmf.detectors.nmf import EWNMF, L1NMF, NMF, RNMF
from rednmf.detectors.registry import get_detector, list_methods
from rednmf.exceptions import ConvergenceWarning, InputError
from rednmf.metrics import roc_auc
from rednmf.preprocessing import scale_data
from rednmf.scoring.scorers import BRAD
from rednmf.solvers import ewnmf as EW
from rednmf.solvers import l1nmf as L1
from rednmf.solvers import nmf as N
from rednmf.solvers import rnmf as RN
from rednmf.solvers.init import initialize_factors

CLASSES = [NMF, RNMF, L1NMF, EWNMF]
FAST = {"n_components": 4, "max_iter": 60}


@pytest.fixture(scope="module")
def scene():
    """The synthetic 40 x 40 x 50 scene with 6 planted targets."""
    return make_scene(rows=40, cols=40, bands=50, n_endmembers=3, n_targets=6, random_state=0)


def _fit(det, cube):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return det.fit(cube)


@pytest.mark.parametrize("cls", CLASSES)
def test_planted_anomalies_score_high(scene, cls):
    cube, gt = scene
    det = _fit(cls(**FAST), cube)
    assert roc_auc(det.decision_scores_, gt) > 0.9
    assert det.decision_scores_.shape == cube.shape[:2]
    assert det.labels_.sum() == pytest.approx(0.01 * gt.size, abs=2)
    assert det.components_.shape == (50, 4) and det.coefficients_.shape == (4, 1600)
    assert det.components_.min() >= 0 and det.coefficients_.min() >= 0
    assert det.n_iter_ == len(det.objective_) <= 60
    assert det.components_.dtype == np.float32


@pytest.mark.parametrize("cls", CLASSES)
def test_same_seed_same_scores_and_seed_matters(scene, cls):
    cube, _ = scene
    a = _fit(cls(**FAST, random_state=3), cube).decision_scores_
    b = _fit(cls(**FAST, random_state=3), cube).decision_scores_
    c = _fit(cls(**FAST, random_state=4), cube).decision_scores_
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("cls", CLASSES)
def test_scale_free_and_brad_scorer(scene, cls):
    cube, gt = scene
    base = _fit(cls(**FAST, dtype="float64"), cube).decision_scores_
    scaled = _fit(cls(**FAST, dtype="float64"), cube * 1000.0 + 7.0).decision_scores_
    np.testing.assert_allclose(scaled, base, rtol=1e-6, atol=1e-9)
    det = _fit(cls(**FAST, scorer=BRAD(inner=3, outer=9, n_pca=5, ridge=0.1)), cube)
    assert np.all(np.isfinite(det.decision_scores_))


def test_method_attributes(scene):
    cube, _ = scene
    r = _fit(RNMF(**FAST), cube)
    assert r.lam_history_.shape == (r.n_iter_,) and not hasattr(r, "anomaly_")
    l1 = _fit(L1NMF(**FAST), cube)
    assert l1.delta_history_.shape == (l1.n_iter_,) and not hasattr(l1, "weights_")
    e = _fit(EWNMF(**FAST), cube)
    assert e.gamma_history_.shape == (e.n_iter_,) and not hasattr(e, "weights_")


@pytest.mark.parametrize("cls", CLASSES)
def test_a_scene_read_by_blocks_scores_as_its_scaled_copy(scene, cls):
    """Above ``_stored_bytes`` the cube is scaled block by block: the very same scores."""
    cube, _ = scene
    stored = _fit(cls(**FAST), cube).decision_scores_
    det = cls(**FAST)
    det._stored_bytes = 0  # every scene is read by blocks
    np.testing.assert_array_equal(_fit(det, cube).decision_scores_, stored)


@pytest.mark.parametrize(
    "cls,solve,kw,keep",
    [
        (RNMF, RN.rnmf_solve, {"lam": 4.0}, "S"),
        (L1NMF, L1.l1nmf_solve, {"delta": 0.5}, None),
        (EWNMF, EW.ewnmf_solve, {"gamma": 3.0}, "weights"),
        (NMF, N.nmf_solve, {}, None),
    ],
)
def test_evidence_formed_by_blocks_is_the_solvers_own(scene, cls, solve, kw, keep):
    """The scores are the column norms of the evidence the solver keeps when asked to."""
    cube, _ = scene
    det = _fit(cls(**FAST, dtype="float64"), cube)
    X = scale_data(cube.reshape(-1, cube.shape[2]).T, "minmax", dtype=np.float64)
    W, H, _ = initialize_factors(X, 4, "random", np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = solve(X, W, H, max_iter=60, **kw)
    if keep == "S":
        E = res.S
    elif keep == "weights":
        E = EW.weighted_residual(X, res.W, res.H, res.weights)
    else:
        E = X - res.W @ res.H
    expect = np.linalg.norm(E, axis=0).reshape(cube.shape[:2])
    np.testing.assert_allclose(det.decision_scores_, expect, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "cls,params",
    [
        (cls, p)
        for cls in CLASSES
        for p in (
            {"n_components": 0},
            {"n_components": 2.5},
            {"n_components": 51},  # more than the 50 bands
            {"max_iter": 0},
            {"tol": -1.0},
            {"init": "svd"},
            {"random_state": -1},
            {"scorer": "rx"},
            {"scorer": BRAD(n_pca=0)},
            {"scorer": BRAD(ridge=-0.1)},
            {"scale": "zscore"},
            {"dtype": "int32"},
            {"contamination": 0.9},
        )
    ]
    + [
        (RNMF, {"lam": -1.0}),
        (RNMF, {"lam_mode": "fixed"}),
        (L1NMF, {"delta": 0.0}),
        (L1NMF, {"delta_mode": "fixed"}),
        (EWNMF, {"gamma": 0.0}),
        (EWNMF, {"gamma": float("inf")}),
        (EWNMF, {"gamma_mode": "fixed"}),
    ],
)
def test_bad_parameters_raise_input_error(scene, cls, params):
    cube, _ = scene
    with pytest.raises(InputError):
        cls(**{**FAST, **params}).fit(cube)


@pytest.mark.parametrize("cls", CLASSES)
def test_bad_cube_raises_input_error(cls):
    with pytest.raises(InputError):
        cls().fit(np.ones((4, 4)))
    with pytest.raises(InputError):
        cls(n_components=1, max_iter=2).fit(np.full((4, 4, 3), 2.0))  # constant cube


def test_registry_entries():
    names = dict(list_methods())
    for name, cls in (("nmf", NMF), ("rnmf", RNMF), ("l1nmf", L1NMF), ("ewnmf", EWNMF)):
        assert name in names
        det = get_detector(name, n_components=3)
        assert type(det) is cls and det.n_components == 3 and det.name == name
        assert det.get_params()["scorer"] == "norm"


def test_defaults():
    assert NMF().get_params() == {
        "n_components": 8,
        "max_iter": 200,
        "tol": 1e-4,
        "init": "random",
        "random_state": 0,
        "scorer": "norm",
        "scale": "minmax",
        "dtype": "float32",
        "contamination": 0.01,
    }
    assert (RNMF().lam, RNMF().lam_mode) == (4.0, "adaptive")
    assert (L1NMF().delta, L1NMF().delta_mode) == (0.5, "adaptive")
    assert (EWNMF().gamma, EWNMF().gamma_mode) == (3.0, "adaptive")
