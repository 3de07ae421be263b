"""The command line: detect / demo / methods end to end, and one-line errors with exit status 2."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from rednmf import cli
from rednmf.datasets import make_scene
from rednmf.detectors import registry
from rednmf.exceptions import InputError

FAST = ["--max-iter", "20", "--outer", "9", "--inner", "3"]


def _save_v73(path: Path, variables: dict[str, np.ndarray]) -> None:
    """A MATLAB v7.3-like file: HDF5 after a 512-byte header, arrays stored transposed."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, arr in variables.items():
            f.create_dataset(name, data=np.asarray(arr).T)
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file".ljust(512, b" "))


@pytest.fixture(scope="module")
def small_scene() -> tuple[np.ndarray, np.ndarray]:
    cube, gt = make_scene(rows=30, cols=30, bands=20, random_state=1)
    return cube, (np.asarray(gt) != 0).astype(np.uint8)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_user_error(code: int, out: str, err: str, needle: str = "") -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err + out
    assert needle.lower() in lines[0].lower()


@pytest.mark.parametrize("version", ["v5", "v73"])
def test_detect_end_to_end_json(tmp_path, capsys, small_scene, version):
    cube, gt = small_scene
    path = tmp_path / f"scene_{version}.mat"
    if version == "v5":
        scipy.io.savemat(path, {"data": cube, "map": gt})
    else:
        _save_v73(path, {"data": cube, "map": gt})
    out_dir = tmp_path / "out"
    code, out, err = run_cli(
        capsys, "detect", path, "--out", out_dir, "--json", "--seed", "3", *FAST
    )
    assert code == 0, err
    record = json.loads(out.strip().splitlines()[-1])
    for key in ("scene", "method", "auc", "seconds", "n_iter", "params", "files", "shape"):
        assert key in record
    assert record["scene"] == path.stem
    assert record["method"] == "rednmf"
    assert record["shape"] == [30, 30, 20]
    assert 0.5 < record["auc"] <= 1.0
    assert record["params"]["max_iter"] == 20
    assert record["params"]["scorer__outer"] == 9 and record["params"]["random_state"] == 3
    assert isinstance(record["n_iter"], int) and record["n_iter"] <= 20
    scores = np.load(record["files"]["scores_npy"])
    assert scores.shape == (30, 30)
    run = out_dir / f"{path.stem}_rednmf"
    for name in ("_scores.npy", "_overview.png", "_roc.svg", "_summary.json", "_report.html"):
        assert (run / f"{path.stem}_rednmf{name}").is_file()
    assert json.loads((run / f"{path.stem}_rednmf_summary.json").read_text()) == record


def test_v5_and_v73_give_the_same_scores(tmp_path, capsys, small_scene):
    cube, gt = small_scene
    scipy.io.savemat(tmp_path / "a.mat", {"data": cube, "map": gt})
    _save_v73(tmp_path / "b.mat", {"data": cube, "map": gt})
    for name in ("a.mat", "b.mat"):
        code, _, err = run_cli(capsys, "detect", tmp_path / name, "--out", tmp_path, *FAST)
        assert code == 0, err
    np.testing.assert_allclose(
        np.load(tmp_path / "a_rednmf" / "a_rednmf_scores.npy"),
        np.load(tmp_path / "b_rednmf" / "b_rednmf_scores.npy"),
        rtol=1e-6,
    )


def test_detect_human_summary_without_gt_and_param(tmp_path, capsys, small_scene):
    cube, _ = small_scene
    path = tmp_path / "nogt.npy"
    np.save(path, cube)
    code, out, err = run_cli(
        capsys,
        "detect",
        path,
        "--out",
        tmp_path / "o",
        "--scorer",
        "brad",
        "--param",
        "n_pca=none",
        "--rank",
        "4",
        *FAST,
    )
    assert code == 0, err
    assert "nogt" in out and "rednmf" in out and "AUC" in out
    assert (tmp_path / "o" / "nogt_rednmf" / "nogt_rednmf_overview.png").is_file()
    assert not (tmp_path / "o" / "nogt_rednmf" / "nogt_rednmf_roc.svg").exists()

    code, out, _ = run_cli(capsys, "detect", path, "--out", tmp_path / "o", "--json", *FAST)
    record = json.loads(out.strip().splitlines()[-1])
    assert record["auc"] is None


def test_parse_param():
    assert cli.parse_param("a=1") == ("a", 1)
    assert cli.parse_param("b=0.5") == ("b", 0.5)
    assert cli.parse_param("c=True") == ("c", True)
    assert cli.parse_param("d=none") == ("d", None)
    assert cli.parse_param("lam-mode=absolute") == ("lam_mode", "absolute")


@pytest.mark.parametrize(
    ("case", "extra", "needle"),
    [
        ("inf", [], "infinite"),
        ("flat", [], "3-D"),
        ("ambiguous", [], "--data-var"),
        ("text", [], "cannot read"),
        ("missing", [], "not found"),
        ("good", ["--method", "nosuch"], "unknown method"),
        ("good", ["--rank", "-3"], "n_components"),
        ("good", ["--param", "nosuch=1"], "no parameter"),
        ("good", ["--param", "novalue"], "KEY=VALUE"),
        ("good", ["--rank", "abc"], "--rank"),
        ("good", ["--data-var", "nosuch"], "available"),
    ],
)
def test_detect_user_errors(tmp_path, capsys, small_scene, case, extra, needle):
    cube, gt = small_scene
    path = tmp_path / "in.mat"
    if case == "inf":  # NaN is no-data now; inf is still an error
        bad = cube.astype(np.float64)
        bad[0, 0, 0] = np.inf
        scipy.io.savemat(path, {"data": bad, "map": gt})
    elif case == "flat":
        scipy.io.savemat(path, {"data": cube[:, :, 0], "map": gt})
    elif case == "ambiguous":
        scipy.io.savemat(path, {"data": cube, "data2": cube, "map": gt})
    elif case == "text":
        path.write_text("not a mat file\n" * 40)
    elif case == "good":
        scipy.io.savemat(path, {"data": cube, "map": gt})
    code, out, err = run_cli(capsys, "detect", path, "--out", tmp_path / "o", *extra, *FAST)
    _assert_user_error(code, out, err, needle)


def test_output_dir_is_a_file(tmp_path, capsys, small_scene):
    cube, gt = small_scene
    path = tmp_path / "in.mat"
    scipy.io.savemat(path, {"data": cube, "map": gt})
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    code, out, err = run_cli(capsys, "detect", path, "--out", blocker, *FAST)
    _assert_user_error(code, out, err, "--out")


def test_methods_and_version(capsys):
    code, out, _ = run_cli(capsys, "methods")
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines() if line.strip()]
    for name in ("rednmf", "msrx", "grx", "lrx", "nmf", "rnmf", "l1nmf", "ewnmf", "crd"):
        assert name in listed
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip().startswith("rednmf ")


def test_registry(monkeypatch):
    assert ("rednmf", registry.METHODS["rednmf"][1]) in registry.list_methods()
    det = registry.get_detector("rednmf", max_iter=5)
    assert det.name == "rednmf" and det.get_params()["max_iter"] == 5
    with pytest.raises(cli.InputError, match="known methods: .*rednmf"):
        registry.get_detector("nosuch")
    with pytest.raises(cli.InputError, match="valid parameters: .*n_components"):
        registry.get_detector("rednmf", nosuch=1)


def test_demo_synthetic(tmp_path, capsys, monkeypatch):
    """``demo`` runs the real REDNMF through the pipeline, on a shrunk scene with few iterations.

    Its run folder is the one ``detect`` publishes (same files, summary and report); with
    ``--data`` it is a batch over the folder's scenes.
    """
    import rednmf.datasets

    real_make_scene, real_get_detector = rednmf.datasets.make_scene, registry.get_detector
    monkeypatch.setattr(
        rednmf.datasets,
        "make_scene",
        lambda random_state=0: real_make_scene(rows=30, cols=30, bands=20, random_state=1),
    )
    monkeypatch.setattr(
        registry,
        "get_detector",
        lambda name, **kw: real_get_detector(name, max_iter=20, outer=9, inner=3, **kw),
    )
    code, out, err = run_cli(capsys, "demo", "--out", tmp_path / "d", "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    run = tmp_path / "d" / "synthetic_rednmf"
    assert summary["run_dir"] == str(run.resolve())
    assert summary["scene"] == "synthetic" and summary["method"] == "rednmf"
    assert summary["params"]["random_state"] == 0 and summary["auc"] > 0.5
    assert summary["inputs"][0]["source"].startswith("synthetic: rednmf.datasets.make_scene")
    names = sorted(p.name for p in run.iterdir())
    for kind in ("summary.json", "report.html", "overview.png", "roc.svg", "scores.tif"):
        assert f"synthetic_rednmf_{kind}" in names
    on_disk = json.loads((run / "synthetic_rednmf_summary.json").read_text())
    assert on_disk == summary
    assert not [p for p in (tmp_path / "d").iterdir() if p.name.startswith(".")]

    # the same scene through detect gives the same scores, threshold and detections
    cube, gt = real_make_scene(rows=30, cols=30, bands=20, random_state=1)
    np.savez(tmp_path / "synthetic.npz", data=cube, map=(gt != 0).astype(np.uint8))
    code, out, err = run_cli(
        capsys,
        "detect",
        tmp_path / "synthetic.npz",
        "--out",
        tmp_path / "e",
        "--seed",
        "0",
        "--json",
    )
    assert code == 0, err
    detected = json.loads(out.strip().splitlines()[-1])
    for key in ("threshold", "n_detections", "auc", "params", "threshold_rule"):
        assert detected[key] == summary[key], key
    np.testing.assert_array_equal(
        np.load(run / "synthetic_rednmf_scores.npy"),
        np.load(tmp_path / "e" / "synthetic_rednmf" / "synthetic_rednmf_scores.npy"),
    )

    code, out, err = run_cli(capsys, "demo", "--out", tmp_path / "d")
    assert code == 0, err
    assert "AUC" in out and "synthetic_rednmf_report.html" in out

    data = tmp_path / "scenes"
    data.mkdir()
    cube, gt = real_make_scene(rows=30, cols=30, bands=20, random_state=2)
    scipy.io.savemat(data / "one.mat", {"data": cube, "map": gt.astype(np.uint8)})
    scipy.io.savemat(data / "two.mat", {"data": cube, "map": gt, "sun_map": gt})
    code, out, err = run_cli(capsys, "demo", "--data", data, "--out", tmp_path / "o", "--json")
    assert code == 0, err
    record = json.loads(out.strip().splitlines()[-1])
    assert [s["scene"] for s in record["scenes"]] == ["one", "two"]
    assert [s["gt_var"] for s in record["scenes"]] == ["map", "map"]
    assert record["mean_auc"] is not None
    for stem in ("one", "two"):
        assert (tmp_path / "o" / f"{stem}_rednmf" / f"{stem}_rednmf_report.html").is_file()
    assert (tmp_path / "o" / "batch_summary.csv").is_file()


def test_subprocess_exit_code_and_one_line(tmp_path):
    """The real process: a user error gives status 2 and one stderr line, no traceback."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-m", "rednmf", "detect", str(tmp_path / "missing.mat")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    _assert_user_error(proc.returncode, proc.stdout, proc.stderr, "not found")


#: Short training schedules for the deep methods (their defaults take tens of seconds here).
TINY_DEEP = {"msnet": ["epochs=30", "rounds=2"], "bsdm": ["epochs=40", "embed=16"]}


@pytest.mark.parametrize("method", sorted(registry.METHODS))
def test_every_registered_method_runs_through_detect(tmp_path, capsys, method):
    """``rednmf detect --method NAME --json`` works for every method, with its defaults
    (the deep ones with a short schedule)."""
    cube, gt = make_scene(rows=30, cols=30, bands=20, n_endmembers=3, n_targets=4, random_state=1)
    path = tmp_path / "scene.mat"
    scipy.io.savemat(path, {"data": cube, "map": gt})
    tiny = [a for kv in TINY_DEEP.get(method, []) for a in ("--param", kv)]
    code, out, _ = run_cli(
        capsys, "detect", path, "--method", method, "--json", "--out", tmp_path, *tiny
    )
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["method"] == method
    assert 0.5 < summary["auc"] <= 1.0
    scores = np.load(summary["files"]["scores_npy"])
    assert scores.shape == (30, 30) and np.isfinite(scores).all()


def _detect_in_a_new_process(argv: list[str], modules: list[str]) -> tuple[list[str], str]:
    """``rednmf detect ARGV`` in a fresh interpreter: its exit status and, for each of
    ``modules``, whether it was imported (stdout tokens), and its stderr."""
    code = (
        "import sys\n"
        "from rednmf.cli import main\n"
        f"rc = main(['detect', *{argv!r}])\n"
        f"print(rc, *[m in sys.modules for m in {modules!r}])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(cli.__file__).parents[1])}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    return res.stdout.split(), res.stderr


def test_missing_file_is_reported_before_the_detectors_are_imported(tmp_path):
    # The error must not wait for scikit-learn and the detectors (seconds on a busy machine),
    # nor for NumPy (rednmf.inputs).
    out, err = _detect_in_a_new_process(
        [str(tmp_path / "missing.mat"), "--out", str(tmp_path)],
        ["sklearn", "rednmf.detectors._base", "numpy"],
    )
    assert out == ["2", "False", "False", "False"], out + [err]
    missing = tmp_path / "missing.mat"
    assert err.strip() == f"error: file not found: {missing}; check the path"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--rank", "-1"],
            "error: --rank -1: 'n_components' must be >= 1; pass --rank 1 or above",
        ),
        (["--max-iter", "0"], "error: --max-iter 0: 'max_iter' must be >= 1; pass --max-iter 1"),
        (["--tol", "-0.5"], "error: --tol -0.5: 'tol' must be >= 0; pass --tol 0 or above"),
        (["--method", "nosuch"], "error: unknown method 'nosuch'; known methods: bsdm,"),
        (["--contamination", "0.7"], "error: --contamination must be <= 0.5, got 0.7"),
        (["--far", "2"], "error: --far must be <= 0.5, got 2.0"),
        (["--threshold", "1", "--far", "0.01"], "error: --threshold and --far are exclusive"),
        (["--min-area", "0"], "error: --min-area must be >= 1, got 0"),
    ],
)
def test_typed_flag_errors_do_not_import_scikit_learn_or_scipy(tmp_path, args, message):
    # The common flags are refused by the command line or RunOptions' cheap checks, before
    # the detectors' parameters are checked by scikit-learn (which imports scipy.stats);
    # a flag below FLAG_LOW and the method's name before NumPy too.
    cube = np.random.default_rng(0).random((30, 30, 5))
    path = tmp_path / "scene.mat"
    scipy.io.savemat(path, {"data": cube})
    out, err = _detect_in_a_new_process(
        [str(path), "--out", str(tmp_path), *args], ["sklearn", "scipy", "numpy"]
    )
    numpy = args[0] not in ("--rank", "--max-iter", "--tol", "--method")
    assert out == ["2", "False", "False", str(numpy)], out + [err]
    assert err.startswith(message) and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("what", ["data-var", "infinite"])
def test_data_errors_with_default_parameters_do_not_import_scikit_learn(tmp_path, what):
    # With no --param the detector's defaults need no check, so an error in the data is
    # found by the read alone, before scikit-learn (and the detectors) are imported.
    cube = np.random.default_rng(0).random((30, 30, 5))
    if what == "infinite":
        cube[3, 4, 1] = np.inf
    path = tmp_path / "scene.mat"
    scipy.io.savemat(path, {"data": cube})
    args = ["--data-var", "nope"] if what == "data-var" else []
    out, err = _detect_in_a_new_process(
        [str(path), "--out", str(tmp_path / "o"), *args], ["sklearn", "rednmf.detectors._base"]
    )
    assert out == ["2", "False", "False"], out + [err]
    message = "error: variable 'nope' not found" if what == "data-var" else "error: cube holds 1"
    assert err.startswith(message) and len(err.strip().splitlines()) == 1, err


def test_each_flag_low_is_refused_by_every_method_that_has_the_parameter():
    # The command line refuses a flag below FLAG_LOW without asking the detectors: that is
    # right only if every method's own constraints (scikit-learn) refuse it too, and some
    # method accepts FLAG_LOW itself (the bound is not too high).
    integers = {"n_components", "max_iter", "random_state", "inner", "outer"}
    for key, low in cli.FLAG_LOW.items():
        below = low - 1 if key in integers else low - 1e-9
        having = [m for m in registry.METHODS if _takes(m, key)]
        assert having, key
        for method in having:
            with pytest.raises(InputError):
                registry.check_params(method, {key: below})
        if key in ("inner", "outer"):  # a side of 1 alone is refused by the dual window
            continue
        accepted = []
        for method in having:
            with contextlib.suppress(InputError):
                registry.check_params(method, {key: low})
                accepted.append(method)
        assert accepted, key


def _takes(method: str, key: str) -> bool:
    """Whether the method has the parameter ``key`` (itself or its scorer's)."""
    try:
        registry.get_detector(method, **{key: 5})
    except InputError:
        return False
    return True


def test_an_error_raised_while_a_signal_unwinds_is_reported_as_the_interruption(
    monkeypatch, capsys
):
    import signal

    from rednmf.exceptions import Interrupted

    def cleanup_fails(argv):
        try:
            raise Interrupted(signal.SIGTERM)
        finally:
            raise ValueError("a library's clean-up failed")  # replaces the interruption

    monkeypatch.setattr(cli, "_main", cleanup_fails)
    assert cli.main([]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: interrupted (SIGTERM)")

    def compiled_code_swallows_it(argv):
        # What pybind11 does when the signal handler raises while it converts an
        # argument (seen in CI during matplotlib's Agg drawing): the interruption is
        # dropped and a TypeError with no chain is raised instead.
        with contextlib.suppress(BaseException):
            signal.raise_signal(signal.SIGTERM)
        raise TypeError("draw_path(): incompatible function arguments")

    monkeypatch.setattr(cli, "_main", compiled_code_swallows_it)
    assert cli.main([]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: interrupted (SIGTERM)")

    def plain_bug(argv):
        raise ValueError("a bug, not an interruption")

    monkeypatch.setattr(cli, "_main", plain_bug)
    with pytest.raises(ValueError, match="a bug"):
        cli.main([])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "n_components=-1"], "The 'n_components' parameter of REDNMF must be an int"),
        (["--param", "lam=x"], "The 'lam' parameter of REDNMF must be a float"),
        (["--inner", "11", "--outer", "9"], "outer (9) must be greater than inner (11)"),
        (["--method", "crd", "--param", "lam=1"], "('lam' is now 'reg')"),
        (["--far", "2"], "far must be <= 0.5"),
    ],
)
def test_bad_options_are_reported_before_the_scene_is_read(tmp_path, args, message):
    # Checked by scikit-learn's validation of the declared constraints, before the read.
    cube = np.random.default_rng(0).random((30, 30, 5))
    path = tmp_path / "scene.mat"
    scipy.io.savemat(path, {"data": cube})
    out, err = _detect_in_a_new_process(
        [str(path), "--out", str(tmp_path), *args], ["rednmf.io.mat"]
    )
    assert out == ["2", "False"], out + [err]
    assert err.startswith("error: ") and message in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [(np.inf, "infinite value"), (1e300, "values reach 1e+300")],
)
def test_bad_data_in_memory_is_reported_before_the_fit(tmp_path, value, message):
    cube = np.random.default_rng(0).random((30, 30, 5))
    cube[4, 5, 2] = value
    path = tmp_path / "scene.mat"
    scipy.io.savemat(path, {"data": cube})
    out, err = _detect_in_a_new_process([str(path), "--out", str(tmp_path)], ["numba"])
    assert out == ["2", "False"], out + [err]  # numba: imported by the fit's first pass
    assert err.startswith("error: ") and message in err


def test_window_advice_names_parameters_in_python_and_flags_on_the_command_line(tmp_path, capsys):
    """The detector says ``outer=11``; ``detect`` says ``--outer 11``, whether typed or not."""
    from rednmf import get_detector
    from rednmf.exceptions import InputError

    cube = np.random.default_rng(0).random((12, 12, 8))
    with pytest.raises(InputError, match=r"pass outer=11 or a smaller odd side above 7"):
        get_detector("lrx").fit(cube)
    path = tmp_path / "small.npy"
    np.save(path, cube)
    code, out, err = run_cli(capsys, "detect", path, "--out", tmp_path / "o", "--method", "lrx")
    _assert_user_error(code, out, err, "pass --outer 11 or a smaller odd side above 7")
    assert "outer=" not in err
    tiny = tmp_path / "tiny.npy"
    np.save(tiny, cube[:2, :2])
    code, out, err = run_cli(capsys, "detect", tiny, "--out", tmp_path / "o", "--method", "lrx")
    _assert_user_error(code, out, err, "use the global RX (--method grx)")
    import csv

    batch = ["detect", path, tiny, "--out", tmp_path / "b", "--method", "lrx"]
    code, out, err = run_cli(capsys, *batch)  # a batch: each scene's error in its row
    assert code != 0
    with (tmp_path / "b" / "batch_summary.csv").open() as fh:
        errors = [row["error"] for row in csv.DictReader(fh)]
    assert any("pass --outer 11" in e for e in errors) and not any("outer=" in e for e in errors)
    args = ["detect", path, "--out", tmp_path / "o", "--inner", "11", "--outer", "9"]
    code, out, err = run_cli(capsys, *args)
    _assert_user_error(code, out, err, "pass a smaller --inner (odd, below 9) or a larger --outer")
