"""Progress reporting of long fits: the fit callback, the CLI progress bar and --verbose."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import scipy.io
from rich.console import Console

from rednmf import cli
from rednmf.datasets import make_scene
from rednmf.detectors.rednmf import REDNMF
from rednmf.detectors.registry import get_detector
from rednmf.detectors.rx import GRX
from rednmf.exceptions import ConvergenceWarning
from rednmf.scoring.scorers import MultiScale
from rednmf.solvers._driver import Iterate, as_fit_callback, iterate


def _scene():
    cube, gt = make_scene(rows=24, cols=24, bands=16, random_state=2)
    return cube, (np.asarray(gt) != 0).astype(np.uint8)


def test_fit_callback_sees_every_iteration_and_its_objective():
    cube, _ = _scene()
    seen: list[tuple[int, float]] = []
    det = REDNMF(max_iter=12, scorer=MultiScale(inner=3, outer=9)).fit(
        cube, callback=lambda t, f: seen.append((t, f))
    )
    assert [t for t, _ in seen] == list(range(1, det.n_iter_ + 1))
    np.testing.assert_array_equal([f for _, f in seen], det.objective_)
    assert not hasattr(det, "_callback")  # nothing set on the estimator during a fit
    # The callback does not change the fit.
    again = REDNMF(max_iter=12, scorer=MultiScale(inner=3, outer=9)).fit(cube)
    np.testing.assert_array_equal(again.decision_scores_, det.decision_scores_)


#: Every iterative factorisation, and REDNMF's whole-matrix loop (adaptive lambda).
ITERATIVE = [
    ("nmf", {}),
    ("rnmf", {}),
    ("l1nmf", {}),
    ("ewnmf", {}),
    ("rednmf", {"inner": 3, "outer": 9}),
    ("rednmf", {"lam_mode": "adaptive", "inner": 3, "outer": 9}),
]


@pytest.mark.parametrize("method, params", ITERATIVE)
def test_every_factorisation_reports_each_iteration_with_its_iterate(method, params):
    cube, _ = _scene()
    seen: list[tuple[int, float]] = []
    last: dict[str, np.ndarray] = {}

    def callback(t: int, f: float, state: Iterate) -> None:
        seen.append((t, f))
        assert isinstance(state, Iterate) and state.X.shape == (16, 24 * 24)
        if state.W is not None:
            last["W"], last["H"] = state.W.copy(), state.H.copy()
        last["norm"] = np.float64(state.residual_norm())

    det = get_detector(method, max_iter=9, tol=1e-12, **params)
    with pytest.warns(ConvergenceWarning):
        det.fit(cube, callback=callback)
    assert [t for t, _ in seen] == list(range(1, det.n_iter_ + 1)) == list(range(1, 10))
    np.testing.assert_array_equal([f for _, f in seen], det.objective_)
    assert last["norm"] > 0
    if "W" in last:  # the whole-matrix loops hand the factors of the iteration
        np.testing.assert_array_equal(last["W"], det.components_)
        np.testing.assert_array_equal(last["H"], det.coefficients_)
    # The callback changes nothing.
    plain = get_detector(method, max_iter=9, tol=1e-12, **params)
    with pytest.warns(ConvergenceWarning):
        plain.fit(cube)
    np.testing.assert_array_equal(plain.decision_scores_, det.decision_scores_)


def test_block_engine_fit_term_is_the_residual_of_the_iterate():
    """REDNMF's block engine reports ||X - WH - S||^2; on its last iteration that is the fit's."""
    cube, _ = _scene()
    fits: list[float] = []
    det = REDNMF(max_iter=6, tol=1e-12, scorer=MultiScale(inner=3, outer=9), dtype="float64")
    with pytest.warns(ConvergenceWarning):
        det.fit(cube, callback=lambda t, f, state: fits.append(state.fit))
    X = det._data_matrix(cube)[0]
    R = X - det.components_ @ det.coefficients_ - det.anomaly(cube).reshape(-1, 16).T
    assert fits[-1] == pytest.approx(float(np.sum(R * R)), rel=1e-10)


def test_two_argument_callbacks_are_wrapped_and_three_argument_ones_kept():
    calls: list[tuple] = []

    def three(t, f, state):
        calls.append((t, f, state))

    assert as_fit_callback(three) is three
    assert as_fit_callback(None) is None
    wrapped = as_fit_callback(lambda t, f: calls.append((t, f)))
    wrapped(1, 2.0, Iterate(X=np.zeros((1, 1))))
    assert calls == [(1, 2.0)]


def test_driver_stops_at_tol_and_warns_when_max_iter_runs_out():
    values = iter([8.0, 4.0, 3.9, 3.899, 3.8989])
    run = iterate(lambda: next(values), max_iter=5, tol=1e-3, method="X")
    assert run.converged and run.n_iter == 4
    np.testing.assert_array_equal(run.objective, [8.0, 4.0, 3.9, 3.899])
    halves = iter([1.0, 0.5])
    with pytest.warns(ConvergenceWarning, match="X stopped at max_iter=2"):
        run = iterate(lambda: next(halves), max_iter=2, tol=1e-9, method="X")
    assert not run.converged and run.n_iter == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tol = 0: every iteration, and no warning
        run = iterate(lambda: 1.0, max_iter=3, tol=0, method="X")
    assert run.n_iter == 3 and not run.converged


def test_detectors_without_iterations_ignore_the_callback():
    cube, _ = _scene()
    seen: list[int] = []
    GRX().fit(cube, callback=lambda t, f: seen.append(t))
    assert seen == []


def test_progress_bar_advances_to_the_last_iteration():
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120)
    bar, callback = cli._progress_bar(console, "rednmf on test", total=5)
    with bar:
        for t in range(1, 6):
            callback(t, 10.0 / t)
    task = bar.tasks[0]
    assert task.completed == 5 and task.finished
    assert task.fields["objective"] == "2"


def test_detect_verbose_prints_the_objective_history(tmp_path, capsys):
    cube, gt = _scene()
    path = tmp_path / "scene.mat"
    scipy.io.savemat(path, {"data": cube, "map": gt})
    code = cli.main(
        ["detect", str(path), "--out", str(tmp_path / "out"), "--max-iter", "7", "--verbose"]
        + ["--outer", "9", "--inner", "3"]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    lines = err.strip().splitlines()
    start = lines.index("iteration objective")
    rows = [line.split() for line in lines[start + 1 : start + 8]]
    assert [int(r[0]) for r in rows] == list(range(1, 8))
    values = np.array([float(r[1]) for r in rows])
    assert np.all(np.isfinite(values)) and np.all(values > 0)
