"""Progress reporting of long fits: the fit callback, the CLI progress bar and --verbose."""

from __future__ import annotations

import io

import numpy as np
import scipy.io
from rich.console import Console

from rednmf import cli
from rednmf.datasets import make_scene
from rednmf.detectors.rednmf import REDNMF
from rednmf.detectors.rx import GRX


def _scene():
    cube, gt = make_scene(rows=24, cols=24, bands=16, random_state=2)
    return cube, (np.asarray(gt) != 0).astype(np.uint8)


def test_fit_callback_sees_every_iteration_and_its_objective():
    cube, _ = _scene()
    seen: list[tuple[int, float]] = []
    det = REDNMF(max_iter=12, outer=9, inner=3).fit(
        cube, callback=lambda t, f: seen.append((t, f))
    )
    assert [t for t, _ in seen] == list(range(1, det.n_iter_ + 1))
    np.testing.assert_array_equal([f for _, f in seen], det.objective_)
    assert not hasattr(det, "_callback")
    # The callback does not change the fit.
    again = REDNMF(max_iter=12, outer=9, inner=3).fit(cube)
    np.testing.assert_array_equal(again.decision_scores_, det.decision_scores_)


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
