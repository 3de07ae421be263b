"""The parameters of a run checked before the read (rednmf.detectors.registry.check_params)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from rednmf.detectors.registry import METHODS, check_params, get_detector, get_detector_class
from rednmf.exceptions import InputError


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("rednmf", {"foo": 1}, "method 'rednmf' has no parameter 'foo'; valid parameters: "),
        ("crd", {"lam": 1.0}, "('lam' is now 'reg')"),
        ("nope", {}, "unknown method 'nope'; known methods: bsdm, crd"),
        ("lrx", {"inner": 11, "outer": 9}, "outer (9) must be greater than inner (11)"),
        ("lsad-cr-idw", {"outer": 12}, "outer must be odd, got 12"),
        ("rednmf", {"n_components": 0}, "The 'n_components' parameter of REDNMF must be an int"),
        ("rednmf", {"lam": "x"}, "The 'lam' parameter of REDNMF must be a float in the range"),
        ("grx", {"ridge": -1.0}, "The 'ridge' parameter of GRX must be a float in the range"),
    ],
)
def test_a_bad_parameter_is_one_line_naming_it(method, params, message):
    with pytest.raises(InputError) as err:
        check_params(method, params)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_the_check_is_scikit_learns_and_the_fits(method):
    """A value out of the declared constraints: scikit-learn's InvalidParameterError, and the
    same message from check_params as from fit (the one validation)."""
    cls = get_detector_class(method)
    key = "contamination"
    assert key in cls._parameter_constraints
    with pytest.raises(InvalidParameterError) as checked:
        check_params(method, {key: 0.9})
    with pytest.raises(InvalidParameterError) as fitted:
        get_detector(method, **{key: 0.9}).fit(np.ones((30, 30, 4)))
    assert str(checked.value) == str(fitted.value)
    assert "The 'contamination' parameter of" in str(checked.value)


def test_valid_parameters_give_the_detector():
    det = check_params("rednmf", {"n_components": 4, "lam": 2.0})
    assert det.get_params()["n_components"] == 4
    check_params("crd", {"reg": 0.1, "inner": 5})
    check_params("grx", None)


@pytest.mark.parametrize("method", ["rednmf", "lrx", "crd"])
def test_a_window_larger_than_the_scene_is_refused_before_the_fit(method):
    calls = []
    det = get_detector(method, inner=5, outer=25)
    cube = np.random.default_rng(0).random((20, 30, 6))
    with pytest.raises(InputError, match="smaller than the 25x25 outer window"):
        det.fit(cube, callback=lambda *a: calls.append(a))
    assert calls == []  # refused before the first iteration, not after the fit


def test_a_method_that_does_not_use_its_window_is_not_refused_for_it():
    det = get_detector("rednmf", scorer="norm", n_components=2, max_iter=3)
    scores = det.fit(np.random.default_rng(0).random((20, 20, 6))).decision_scores_
    assert scores.shape == (20, 20)
