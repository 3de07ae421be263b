"""The bad-input catalogue: each case exits 2 with one ``error:`` line, no traceback, no output.

Plus the inputs that look odd but are handled (documented, not errors): ground
truth without anomaly, huge magnitudes, negative reflectance, NaN pixels.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import spectral.io.envi as envi

from rednmf import cli

FAST = ["--max-iter", "5", "--inner", "3", "--outer", "7"]


def _cube(rows=12, cols=12, bands=8, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random((rows, cols, bands)) + 0.1


def _npy(tmp: Path, arr: np.ndarray, name="scene.npy") -> Path:
    np.save(tmp / name, arr)
    return tmp / name


def _mat(tmp: Path, name="scene.mat", **variables) -> Path:
    scipy.io.savemat(tmp / name, variables)
    return tmp / name


def _envi(tmp: Path, cube=None, **meta) -> Path:
    envi.save_image(
        str(tmp / "e.hdr"),
        _cube() if cube is None else cube,
        metadata=meta,
        force=True,
        ext=".img",
    )
    return tmp / "e.hdr"


def _edit_header(hdr: Path, old: str, new: str) -> Path:
    text = hdr.read_text()
    assert old in text
    hdr.write_text(text.replace(old, new))
    return hdr


def _truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _text(tmp: Path, name: str) -> Path:
    (tmp / name).write_text("this is not a hyperspectral scene\n" * 20)
    return tmp / name


def _good(tmp: Path) -> Path:
    return _npy(tmp, _cube())


def _gt_file(tmp: Path, shape, name="gt.npy") -> str:
    gt = np.zeros(shape, dtype=np.uint8)
    gt[1, 1] = 1
    np.save(tmp / name, gt)
    return str(tmp / name)


def _mask_file(tmp: Path, arr: np.ndarray) -> str:
    np.save(tmp / "mask.npy", arr)
    return str(tmp / "mask.npy")


def _fifo(tmp: Path) -> Path:
    import os

    os.mkfifo(tmp / "pipe.mat")
    return tmp / "pipe.mat"


def _loop(tmp: Path) -> Path:
    (tmp / "a.mat").symlink_to(tmp / "b.mat")
    (tmp / "b.mat").symlink_to(tmp / "a.mat")
    return tmp / "a.mat"


def _dangling(tmp: Path) -> Path:
    (tmp / "d.mat").symlink_to(tmp / "nowhere.mat")
    return tmp / "d.mat"


def _all_nan(tmp):
    return [_npy(tmp, np.full((6, 6, 4), np.nan))]


def _with_inf(tmp):
    c = _cube()
    c[3, 3, 2] = np.inf
    return [_npy(tmp, c)]


# Each case: (id, build(tmp) -> argv after "detect", needle in the error line).
CASES: list[tuple[str, Callable[[Path], list], str]] = [
    ("inf-in-cube", _with_inf, "infinite"),
    ("all-nan-cube", _all_nan, "NaN"),
    ("all-constant-cube", lambda t: [_npy(t, np.ones((8, 8, 4)))], "constant"),
    ("one-band", lambda t: [_npy(t, _cube(bands=1))], "band"),
    ("one-pixel", lambda t: [_npy(t, _cube(1, 1, 8)), "--method", "grx"], "pixel"),
    ("one-pixel-rednmf", lambda t: [_npy(t, _cube(1, 1, 8))], "pixel"),
    ("smaller-than-window", lambda t: [_npy(t, _cube(5, 5)), "--method", "lrx"], "smaller"),
    ("complex-cube", lambda t: [_npy(t, _cube() + 1j)], "complex"),
    ("text-array-npy", lambda t: [_npy(t, np.array([["a", "b"]]))], "numeric"),
    ("2d-npy", lambda t: [_npy(t, np.ones((5, 5)))], "3-D"),
    ("gt-shape-mismatch", lambda t: [_good(t), "--gt", _gt_file(t, (5, 5))], "but the scene is"),
    (
        "gt-var-shape",
        lambda t: [_mat(t, data=_cube(), gt=np.ones((3, 3))), "--gt-var", "gt"],
        "ground truth",
    ),
    ("gt-var-missing", lambda t: [_mat(t, data=_cube()), "--gt-var", "nosuch"], "not found"),
    (
        "gt-file-var-missing",
        lambda t: [_good(t), "--gt", f"{_mat(t, 'g.mat', gt=np.ones((12, 12)))}:nosuch"],
        "not found",
    ),
    (
        "gt-and-gt-var",
        lambda t: [_mat(t, data=_cube()), "--gt", _gt_file(t, (12, 12)), "--gt-var", "x"],
        "exclusive",
    ),
    ("data-var-missing", lambda t: [_mat(t, data=_cube()), "--data-var", "nosuch"], "available"),
    ("ambiguous-cube", lambda t: [_mat(t, a=_cube(), b=_cube())], "--data-var"),
    ("no-cube-variable", lambda t: [_mat(t, x=np.ones((4, 4)))], "no 3-D"),
    ("empty-file", lambda t: [(t / "e.mat").write_bytes(b"") or t / "e.mat"], "empty"),
    ("truncated-mat", lambda t: [_truncate(_mat(t, data=_cube()))], "cannot read"),
    ("truncated-npy", lambda t: [_truncate(_good(t))], "cannot read"),
    ("truncated-tif", lambda t: [_truncate(_tif(t))], "truncated or damaged"),
    ("text-named-mat", lambda t: [_text(t, "s.mat")], "cannot read"),
    ("text-named-tif", lambda t: [_text(t, "s.tif")], "cannot read"),
    ("unknown-extension", lambda t: [_text(t, "s.xyz")], "unsupported file type"),
    ("missing-file", lambda t: [t / "nosuch.mat"], "not found"),
    ("directory", lambda t: [t], "directory"),
    (
        "envi-wrong-header",
        lambda t: [_edit_header(_envi(t), "ENVI\n", "NOT AN ENVI HEADER\n")],
        "ENVI header",
    ),
    ("envi-missing-bands", lambda t: [_edit_header(_envi(t), "bands = 8\n", "")], "lacks"),
    (
        "envi-size-mismatch",
        lambda t: [_edit_header(_envi(t), "lines = 12", "lines = 13")],
        "bytes",
    ),
    ("envi-no-data-file", lambda t: [_envi(t), (t / "e.img").unlink()][:1], "no ENVI data"),
    (
        "envi-bad-interleave",
        lambda t: [_edit_header(_envi(t), "interleave = bip", "interleave = xyz")],
        "interleave",
    ),
    ("envi-all-bands-bad", lambda t: [_envi(t, bbl=[0] * 8)], "bbl"),
    ("envi-wavelength-count", lambda t: [_envi(t, wavelength=[1, 2, 3])], "wavelengths"),
    (
        "envi-complex",
        lambda t: [
            _edit_header(
                _envi(t, cube=_cube().astype(np.float32)), "data type = 4", "data type = 6"
            )
        ],
        "data type",
    ),
    ("unknown-method", lambda t: [_good(t), "--method", "nosuch"], "unknown method"),
    ("rank-zero", lambda t: [_good(t), "--rank", "0"], "--rank 0: 'n_components' must be >= 1"),
    ("rank-negative", lambda t: [_good(t), "--rank", "-3"], "--rank -3:"),
    ("seed-negative", lambda t: [_good(t), "--seed", "-1"], "--seed -1:"),
    (
        "window-larger-than-scene",
        lambda t: [_good(t), "--method", "lrx", "--inner", "3", "--outer", "31"],
        "--outer 31:",
    ),
    ("inner-for-grx", lambda t: [_good(t), "--method", "grx", "--inner", "3"], "--inner 3:"),
    (
        "identical-pixels",
        lambda t: [_npy(t, np.tile(_cube(1, 1, 8), (12, 12, 1))), "--method", "crd"],
        "same spectrum",
    ),
    (
        "identical-pixels-rednmf",
        lambda t: [_npy(t, np.tile(_cube(1, 1, 8), (12, 12, 1)))],
        "same spectrum",
    ),
    (
        "identical-pixels-grx",
        lambda t: [_npy(t, np.tile(_cube(1, 1, 8), (12, 12, 1))), "--method", "grx"],
        "same spectrum",
    ),
    (
        "bands-first-mat",
        lambda t: [_mat(t, data=_cube(20, 12, 12), map=np.zeros((12, 12)))],
        "bands first",
    ),
    ("fifo", lambda t: [_fifo(t)], "FIFO"),
    ("device", lambda t: ["/dev/zero"], "device"),
    ("symlink-loop", lambda t: [_loop(t)], "cannot be followed"),
    ("dangling-symlink", lambda t: [_dangling(t)], "does not exist"),
    ("rank-too-large", lambda t: [_good(t), "--rank", "50"], "exceeds"),
    ("rank-not-a-number", lambda t: [_good(t), "--rank", "abc"], "--rank"),
    ("lambda-negative", lambda t: [_good(t), "--lam", "-1"], "lam"),
    ("beta-negative", lambda t: [_good(t), "--beta", "-0.5"], "beta"),
    ("max-iter-zero", lambda t: [_good(t), "--max-iter", "0"], "max_iter"),
    ("unknown-param", lambda t: [_good(t), "--param", "nosuch=1"], "no parameter"),
    ("param-without-value", lambda t: [_good(t), "--param", "novalue"], "KEY=VALUE"),
    (
        "even-window",
        lambda t: [_good(t), "--method", "lrx", "--inner", "3", "--outer", "8"],
        "odd",
    ),
    (
        "two-threshold-rules",
        lambda t: [_good(t), "--threshold", "1", "--far", "0.01"],
        "exclusive",
    ),
    ("contamination-too-large", lambda t: [_good(t), "--contamination", "0.9"], "contamination"),
    ("far-zero", lambda t: [_good(t), "--far", "0"], "far"),
    ("mask-shape", lambda t: [_good(t), "--mask", _mask_file(t, np.ones((3, 3)))], "mask"),
    ("mask-empty", lambda t: [_good(t), "--mask", _mask_file(t, np.zeros((12, 12)))], "every"),
    ("mask-nan", lambda t: [_good(t), "--mask", _mask_file(t, np.full((12, 12), np.nan))], "NaN"),
]


# Output-location cases: argv replaces the default --out.
def _blocker(tmp: Path, *parts: str) -> str:
    (tmp / "blocker").write_text("x")
    return str(Path(tmp, "blocker", *parts))


OUT_CASES: list[tuple[str, Callable[[Path], str], str]] = [
    ("out-is-a-file", lambda t: _blocker(t), "not a directory"),
    ("out-under-a-file", lambda t: _blocker(t, "sub"), "is a file"),
    ("out-unwritable", lambda t: "/proc/rednmf-out", "--out"),
]


def _tif(tmp: Path) -> Path:
    import rasterio

    cube = _cube(32, 32, 8).astype(np.float32)
    path = tmp / "s.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=32,
        width=32,
        count=8,
        dtype="float32",
        crs="EPSG:32611",
        transform=rasterio.Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4000000.0),
    ) as dst:
        dst.write(np.moveaxis(cube, -1, 0))
    return path


def _run(capsys, argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_one_line_error(code, out, err, needle):
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in out + err
    assert needle.lower() in lines[0].lower(), lines[0]


def test_catalogue_has_at_least_30_cases():
    assert len(CASES) + len(OUT_CASES) >= 30


@pytest.mark.parametrize(("build", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(tmp_path, capsys, build, needle):
    src = tmp_path / "in"
    src.mkdir()
    argv = build(src)
    out = tmp_path / "out"
    fast = [] if "--method" in argv else FAST  # the fast options are REDNMF's
    code, stdout, err = _run(capsys, ["detect", *argv[:1], "--out", out, *fast, *argv[1:]])
    _assert_one_line_error(code, stdout, err, needle)
    assert not out.exists(), list(out.iterdir())


@pytest.mark.parametrize(
    ("make_out", "needle"), [c[1:] for c in OUT_CASES], ids=[c[0] for c in OUT_CASES]
)
def test_bad_output_location(tmp_path, capsys, make_out, needle):
    scene = _good(tmp_path)
    out = make_out(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, stdout, err = _run(capsys, ["detect", scene, "--out", out, *FAST])
    _assert_one_line_error(code, stdout, err, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_failed_write_leaves_no_output(tmp_path, capsys, monkeypatch):
    """A failure while writing removes what this run wrote: no partial result."""
    from rednmf import overview
    from rednmf.exceptions import InputError

    def broken(*args, **kwargs):
        raise InputError("cannot write the PNG (disk full)")

    monkeypatch.setattr(overview, "save_overview", broken)
    out = tmp_path / "out"
    argv = ["detect", _good(tmp_path), "--out", out, "--method", "grx"]
    code, stdout, err = _run(capsys, argv)
    _assert_one_line_error(code, stdout, err, "disk full")
    assert not out.exists()


def test_info_bad_input_is_one_line(tmp_path, capsys):
    code, out, err = _run(capsys, ["info", _text(tmp_path, "s.mat")])
    _assert_one_line_error(code, out, err, "cannot read")


# -- handled, not errors ------------------------------------------------------
def _detect_json(capsys, argv) -> tuple[dict, str]:
    code, out, err = _run(capsys, ["detect", *argv, "--json"])
    assert code == 0, err
    assert "Traceback" not in err
    return json.loads(out.strip().splitlines()[-1]), err


def test_gt_without_anomaly_reports_auc_undefined(tmp_path, capsys):
    path = _mat(tmp_path, data=_cube(), gt=np.zeros((12, 12)))
    record, err = _detect_json(capsys, [path, "--out", tmp_path / "o", *FAST])
    assert record["auc"] is None and "AUC not computed" in err


@pytest.mark.parametrize("method", ["rednmf", "grx", "lrx"])
@pytest.mark.parametrize("scale", [1e30, -1.0])
def test_huge_and_negative_values_are_handled(tmp_path, capsys, method, scale):
    """1e30 magnitudes and negative reflectance give finite scores (documented in README)."""
    path = _npy(tmp_path, _cube() * scale)
    record, _ = _detect_json(
        capsys,
        [
            path,
            "--out",
            tmp_path / "o",
            "--method",
            method,
            *{"rednmf": FAST, "grx": [], "lrx": ["--inner", "3", "--outer", "7"]}[method],
        ],
    )
    scores = np.load(record["files"]["scores_npy"])
    assert np.isfinite(scores).all()


def test_nan_pixels_are_no_data(tmp_path, capsys):
    cube = _cube()
    cube[:2] = np.nan
    record, _ = _detect_json(capsys, [_npy(tmp_path, cube), "--out", tmp_path / "o", *FAST])
    scores = np.load(record["files"]["scores_npy"])
    assert record["nodata_pixels"] == 24 and np.isnan(scores[:2]).all()
    assert np.isfinite(scores[2:]).all()


def test_all_finite_agrees_with_the_entrywise_test():
    from rednmf._validation import all_finite

    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        a = rng.random((7, 5, 3)).astype(dtype)
        assert all_finite(a)
        for bad in (np.nan, np.inf, -np.inf):
            b = a.copy()
            b[3, 2, 1] = bad
            assert not all_finite(b)
        big = np.full((4, 4, 2), np.finfo(dtype).max / 2, dtype=dtype)  # the sum overflows
        assert all_finite(big)


@pytest.mark.parametrize("shape", [(1, 40, 8), (40, 1, 8)])
def test_one_pixel_wide_scene_runs_with_grx(tmp_path, capsys, shape):
    """1 x N and N x 1: the overview has rings but no contour (a contour needs 2 x 2)."""
    args = [_npy(tmp_path, _cube(*shape)), "--out", tmp_path / "o", "--method", "grx"]
    summary, err = _detect_json(capsys, [*args, "--contamination", "0.05"])
    assert summary["shape"] == list(shape) and Path(summary["files"]["overview"]).is_file()
    assert summary["n_above_threshold"] == 2 and not err  # floor(0.05 x 40)
    summary, err = _detect_json(capsys, args)  # the default 0.01 of 40 pixels: none, said
    assert summary["n_above_threshold"] == 0
    assert (
        err.strip() == "warning: contamination 0.01 of 40 valid pixels flags none; pass "
        "--contamination 0.025 or more to flag one"
    )


def test_no_stray_library_warning_is_printed(tmp_path, capsys):
    """An all-NaN band: one note from the run, no NumPy RuntimeWarning lines."""
    cube = _cube()
    cube[:, :, 3] = np.nan
    summary, err = _detect_json(capsys, [_npy(tmp_path, cube), "--out", tmp_path / "o",
                                         "--method", "grx"])  # fmt: skip
    assert err.splitlines() == ["warning: dropped 1 all-NaN band(s) of 8; 7 band(s) used"]
    assert summary["warnings"] == ["dropped 1 all-NaN band(s) of 8; 7 band(s) used"]


def test_small_messages(tmp_path, capsys):
    """info --json: no CRS is null; the summary's environment; a batch's JSON has status."""
    scene = _good(tmp_path)
    code, out, _ = _run(capsys, ["info", scene, "--json"])
    assert code == 0 and json.loads(out)["crs"] is None
    summary, _ = _detect_json(capsys, [scene, "--out", tmp_path / "o", "--method", "grx"])
    env = summary["environment"]
    for name in ("scikit-learn", "numba", "rasterio", "torch"):
        assert name in env
    import sklearn

    assert env["scikit-learn"] == sklearn.__version__
    code, out, _ = _run(capsys, ["detect", scene, _text(tmp_path, "bad.mat"), "--out",
                                 tmp_path / "b", "--method", "grx", "--json"])  # fmt: skip
    assert code == 1
    statuses = [s["status"] for s in json.loads(out.strip().splitlines()[-1])["scenes"]]
    assert statuses == ["ok", "error"]  # in the order given: scene.npy, then bad.mat


def test_wait_says_it_waits(tmp_path, capsys):
    """--wait behind a held folder: one 'waiting:' line, then the run."""
    import fcntl
    import os
    import threading

    out = tmp_path / "o"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    threading.Timer(1.0, lambda: os.close(fd)).start()  # the other run ends after 1 s
    summary, err = _detect_json(capsys, [_good(tmp_path), "--out", out, "--method", "grx",
                                         "--wait"])  # fmt: skip
    assert err.startswith(f"waiting: another rednmf run is writing to {out}")
    assert Path(summary["run_dir"]).is_dir()
