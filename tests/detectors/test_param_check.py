"""The detectors' parameter checks without importing them (rednmf.detectors.param_check)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.utils._param_validation import (
    InvalidParameterError,
    validate_parameter_constraints,
)

import rednmf
from rednmf.detectors import param_check
from rednmf.detectors.param_check import check_params, render_table
from rednmf.detectors.registry import METHODS, get_detector, get_detector_class
from rednmf.exceptions import InputError

#: Values of every kind a user can pass (CLI ``--param`` values and Python objects).
PROBES = [
    -1, 0, 1, 2, 3, 4, 9, 10, 27, -1.5, 0.0, 0.25, 0.5, 0.75, 1.0, 2.5, 1e9,
    float("inf"), float("-inf"), float("nan"), True, False, np.bool_(True), np.int64(5),
    np.float32(0.5), None, "x", "", "float32", "float16", "minmax", "hmp", "column",
    "svd", "noise", "cpu", np.float32, np.float64, np.int32, (200, 100, 50), [1, 2],
    np.zeros(2), {"a": 1},
]  # fmt: skip


def _canonical(message: str) -> str:
    """The message with the items inside each ``{...}`` sorted (sets print in any order)."""

    def sort_items(match: re.Match[str]) -> str:
        return "{" + ", ".join(sorted(match.group(1).split(", "))) + "}"

    return re.sub(r"\{([^{}]*)\}", sort_items, message)


def test_the_table_is_generated_from_the_classes():
    path = Path(param_check.__file__).with_name("_param_table.py")
    assert path.read_text() == render_table(), (
        "rednmf/detectors/_param_table.py is out of date: "
        "run python -m rednmf.detectors.param_check"
    )


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_value_is_judged_as_scikit_learn_judges_it(method):
    # Oracle: scikit-learn's validate_parameter_constraints on the class's declarations.
    cls = get_detector_class(method)
    for key, constraints in cls._parameter_constraints.items():
        if constraints == "no_validation":
            continue
        for value in PROBES:
            try:
                validate_parameter_constraints(
                    {key: constraints}, {key: value}, caller_name=cls.__name__
                )
                expected = None
            except InvalidParameterError as exc:
                expected = " ".join(str(exc).split())
            try:
                param_check._check_values(method, {key: value})
                got = None
            except InputError as exc:
                got = str(exc)
            assert (got is None) == (expected is None), (method, key, value, got, expected)
            if got is not None:
                assert _canonical(got) == _canonical(expected), (got, expected)


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("rednmf", {"foo": 1}),
        ("rednmf", {"n_jobs": 2, "nope": 0}),
        ("crd", {"lam": 1.0}),
        ("nope", {}),
        ("lrx", {"inner": 11, "outer": 9}),
        ("rednmf", {"inner": 8}),
        ("lsad-cr-idw", {"outer": 12}),
        ("rednmf", {"n_components": 0}),
    ],
)
def test_the_same_error_as_building_and_fitting_the_detector(method, params):
    with pytest.raises(InputError) as light:
        check_params(method, params)
    with pytest.raises(InputError) as full:
        get_detector(method, **params)._validate_params()
    assert _canonical(str(light.value)) == _canonical(str(full.value))
    assert "\n" not in str(light.value)


def test_valid_parameters_pass():
    check_params("rednmf", {"n_components": 4, "lam": 2.0, "inner": 7, "outer": 21})
    check_params("crd", {"reg": 0.1, "inner": 5})
    check_params("grx", None)


def test_no_scikit_learn_is_imported_to_check():
    code = (
        "import sys\n"
        "from rednmf.detectors.param_check import check_params\n"
        "check_params('rednmf', {'lam': 2.0, 'inner': 7})\n"
        "try:\n"
        "    check_params('rednmf', {'lam': -1})\n"
        "except Exception as e:\n"
        "    print(type(e).__name__)\n"
        "print('sklearn' in sys.modules, 'scipy.stats' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(rednmf.__file__).parents[1])}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.stdout.split() == ["InputError", "False", "False"], res.stdout + res.stderr


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
