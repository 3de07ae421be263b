"""The ``scorer=`` object of the detectors that score an evidence cube (issue 24)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from sklearn.base import clone

from rednmf.datasets import make_scene
from rednmf.detectors.nmf import NMF
from rednmf.detectors.rednmf import REDNMF
from rednmf.detectors.registry import METHODS, get_detector, get_detector_class
from rednmf.detectors.rx import MSRX
from rednmf.exceptions import InputError
from rednmf.scoring.cube import multiscale
from rednmf.scoring.scorers import BRAD, MultiScale, Norm, resolve_scorer


@pytest.fixture(scope="module")
def cube():
    return make_scene(rows=30, cols=30, bands=12, n_targets=3, random_state=0)[0]


def test_rednmf_keeps_its_model_parameters_only():
    params = inspect.signature(REDNMF).parameters
    assert len(params) <= 15
    assert "scorer" in params and not {"inner", "outer", "n_pca", "pool"} & set(params)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_no_placeholder_parameter_is_left(name):
    params = get_detector_class(name)().get_params(deep=True)
    assert "deprecated" not in [v for v in params.values() if isinstance(v, str)]


@pytest.mark.parametrize("cls", [REDNMF, MSRX])
def test_nested_parameters_get_set_clone(cls):
    det = cls()
    deep = det.get_params(deep=True)
    assert deep["scorer"] == "multiscale" and deep["scorer__inner"] == 9
    assert det.set_params(scorer__inner=7, scorer__pool=5) is det
    assert isinstance(det.scorer, MultiScale)
    assert (det.scorer.inner, det.scorer.pool, det.scorer.outer) == (7, 5, 27)
    assert cls().scorer == "multiscale"  # nothing shared between instances
    twin = clone(det)
    assert twin.scorer is not det.scorer
    same = {k: v for k, v in det.get_params(deep=True).items() if k != "scorer"}
    assert {k: v for k, v in twin.get_params(deep=True).items() if k != "scorer"} == same
    twin.set_params(scorer__inner=3)
    assert det.scorer.inner == 7


def test_a_scorer_object_a_name_and_the_command_lines_names_score_alike(cube):
    kw = {"n_components": 3, "max_iter": 10}
    by_object = REDNMF(scorer=MultiScale(inner=5, outer=15), **kw).fit(cube).decision_scores_
    by_nested = REDNMF(**kw).set_params(scorer__inner=5, scorer__outer=15).fit(cube)
    by_flags = get_detector("rednmf", inner=5, outer=15, **kw).fit(cube)  # --inner, --outer
    np.testing.assert_array_equal(by_nested.decision_scores_, by_object)
    np.testing.assert_array_equal(by_flags.decision_scores_, by_object)
    default = REDNMF(**kw).fit(cube).decision_scores_
    assert not np.array_equal(default, by_object)  # the window reached the scoring


def test_msrx_is_multiscale_on_the_cube(cube):
    """Oracle: the scoring function itself, with the scorer's parameters."""
    sc = MultiScale(inner=5, outer=15, n_pca=6, pool=1, combine="max", robust_global=False)
    got = MSRX(scorer=sc).fit(cube).decision_scores_
    want = multiscale(
        cube, inner=5, outer=15, n_pca=6, ridge=0.01, pool=1, noise_var="estimate",
        combine="max", pool_global=True, robust_global=False,
    )  # fmt: skip
    np.testing.assert_array_equal(got, want)


def test_the_nmf_family_names_a_scorer_with_its_own_ridge(cube):
    assert NMF(scorer="brad").get_params()["scorer__ridge"] == 0.1
    a = NMF(scorer="brad", n_components=3, max_iter=20).fit(cube).decision_scores_
    b = NMF(scorer=BRAD(ridge=0.1), n_components=3, max_iter=20).fit(cube).decision_scores_
    np.testing.assert_array_equal(a, b)
    assert REDNMF(scorer="brad").get_params()["scorer__ridge"] == 0.01


@pytest.mark.parametrize(
    ("det", "match"),
    [
        (REDNMF(scorer=MultiScale(inner=0)), "The 'inner' parameter of MultiScale must be"),
        (REDNMF(scorer=MultiScale(combine="mean")), "The 'combine' parameter of MultiScale"),
        (REDNMF(scorer=MultiScale(inner=9, outer=7)), "outer (7) must be greater than inner"),
        (REDNMF(scorer="magic"), "The 'scorer' parameter of REDNMF must be"),
        (MSRX(scorer=BRAD()), "The 'scorer' parameter of MSRX must be"),
    ],
)
def test_a_bad_scorer_is_one_line(cube, det, match):
    with pytest.raises(InputError) as err:
        det.fit(cube)
    assert match in str(err.value) and "\n" not in str(err.value)


def test_score_cube_belongs_to_the_scorer(cube):
    kw = {"n_components": 3, "max_iter": 10}
    alone = REDNMF(scorer=MultiScale(score_cube=False), **kw).fit(cube)
    both = REDNMF(**kw).fit(cube)
    assert not np.array_equal(alone.decision_scores_, both.decision_scores_)
    assert MultiScale().score_params()["suspect_level"] == 0.05
    assert "score_cube" not in MultiScale().score_params()


def test_the_norm_scorer_has_no_window():
    assert Norm().window is None and not REDNMF(scorer="norm").needs_space()
    assert resolve_scorer("brad", ridge=0.3, pool=9).get_params() == {
        "inner": 9, "outer": 27, "n_pca": 20, "ridge": 0.3,
    }  # fmt: skip
    with pytest.raises(InputError, match="is not a scorer"):
        resolve_scorer(3)
