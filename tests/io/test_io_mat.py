"""Reading scenes: MATLAB v5 and v7.3, .npz/.npy, variable discovery and one-line errors."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from rednmf.exceptions import InputError
from rednmf.io import Scene, read_scene, write_json, write_npy
from rednmf.io.writers import ensure_dir


def _cube_gt(rows: int = 6, cols: int = 5, bands: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    cube = rng.integers(0, 5000, size=(rows, cols, bands)).astype(np.uint16)
    gt = np.zeros((rows, cols), dtype=np.uint8)
    gt[1, 2] = 1
    gt[4, 0] = 1
    return cube, gt


def _save_v73(path: Path, variables: dict[str, np.ndarray]) -> None:
    """Write a file laid out as MATLAB's ``save -v7.3`` does.

    MATLAB writes a 512-byte text header before the HDF5 superblock and
    stores each array column-major, which h5py sees with the axes reversed.
    """
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2026 HDF5"
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, arr in variables.items():
            ds = f.create_dataset(name, data=np.asarray(arr).T)
            mclass = {"u": "uint", "i": "int"}.get(arr.dtype.kind, "")
            mclass = f"{mclass}{arr.dtype.itemsize * 8}" if mclass else "double"
            ds.attrs["MATLAB_class"] = np.bytes_(mclass)
    with open(path, "r+b") as fh:
        fh.write(header.ljust(512, b" ")[:512])


@pytest.fixture
def cube_gt() -> tuple[np.ndarray, np.ndarray]:
    return _cube_gt()


def _assert_one_line(exc: pytest.ExceptionInfo[InputError]) -> None:
    msg = str(exc.value)
    assert msg and "\n" not in msg


def test_v5_and_v73_give_identical_scenes(tmp_path, cube_gt):
    cube, gt = cube_gt
    v5 = tmp_path / "scene5.mat"
    v73 = tmp_path / "scene73.mat"
    scipy.io.savemat(v5, {"data": cube, "map": gt})
    _save_v73(v73, {"data": cube, "map": gt})
    assert h5py.is_hdf5(v73) and not h5py.is_hdf5(v5)

    s5, s73 = read_scene(v5), read_scene(v73)
    for s in (s5, s73):
        assert isinstance(s, Scene)
        assert s.cube.shape == (6, 5, 4)
        assert s.shape == (6, 5, 4)
        np.testing.assert_array_equal(s.cube, cube)
        np.testing.assert_array_equal(s.gt, gt.astype(bool))
        assert s.data_var == "data" and s.gt_var == "map"
    assert s5.name == "scene5" and s5.path == v5
    assert "data" in s73.variables and "map" in s73.variables


def test_no_ground_truth_and_explicit_names(tmp_path, cube_gt):
    cube, gt = cube_gt
    p = tmp_path / "nogt.mat"
    scipy.io.savemat(p, {"data": cube, "bands": np.arange(4.0)})
    assert read_scene(p).gt is None

    p2 = tmp_path / "two.mat"
    scipy.io.savemat(p2, {"a": cube, "b": cube[:, :, :2], "gt": gt, "other": gt})
    s = read_scene(p2, data_var="b", gt_var="other")
    assert s.cube.shape == (6, 5, 2) and s.gt_var == "other"
    with pytest.warns(UserWarning, match=r"several 6x5 variables.*using 'gt'.*--gt-var"):
        s = read_scene(p2, data_var="a")
    assert s.gt_var == "gt"  # gt is among GT_NAMES, 'other' is not


def test_npz_and_npy(tmp_path, cube_gt):
    cube, gt = cube_gt
    npz = tmp_path / "s.npz"
    np.savez(npz, cube=cube, truth=gt)
    s = read_scene(npz)
    np.testing.assert_array_equal(s.cube, cube)
    assert s.gt_var == "truth"
    npy = tmp_path / "s.npy"
    np.save(npy, cube)
    s = read_scene(npy)
    np.testing.assert_array_equal(s.cube, cube)
    assert s.gt is None


@pytest.mark.parametrize(
    ("variables", "data_var", "gt_var", "needle"),
    [
        ("two_cubes", None, None, "--data-var"),
        ("plain", "nope", None, "available"),
        ("plain", None, "nope", "available"),
        ("plain", "map", None, "3-D"),
        ("plain", None, "data", "--gt-var"),
        ("flat", None, None, "no 3-D"),
    ],
)
def test_variable_errors(tmp_path, cube_gt, variables, data_var, gt_var, needle):
    cube, gt = cube_gt
    contents = {
        "two_cubes": {"data": cube, "data2": cube + 1, "map": gt},
        "two_gts": {"data": cube, "map": gt, "sun_map": gt},
        "plain": {"data": cube, "map": gt},
        "flat": {"map": gt, "x": np.ones((3, 3))},
    }[variables]
    for path in (tmp_path / "s5.mat", tmp_path / "s73.mat"):
        if path.name == "s5.mat":
            scipy.io.savemat(path, contents)
        else:
            _save_v73(path, contents)
        with pytest.raises(InputError, match=needle) as exc:
            read_scene(path, data_var=data_var, gt_var=gt_var)
        _assert_one_line(exc)


def test_ambiguous_ground_truth_is_a_warning_naming_the_choice(tmp_path, cube_gt):
    """Several truth candidates: the first of GT_NAMES (else the file's first), with a warning."""
    cube, gt = cube_gt
    other = np.zeros_like(gt)
    p = tmp_path / "amb.mat"
    scipy.io.savemat(p, {"data": cube, "sun_map": other, "map": gt})
    with pytest.warns(UserWarning) as caught:
        s = read_scene(p)
    (note,) = [str(w.message) for w in caught]
    assert "sun_map" in note and "using 'map'" in note and "--gt-var" in note
    assert s.gt_var == "map"
    np.testing.assert_array_equal(s.gt, gt != 0)
    scipy.io.savemat(p, {"data": cube, "b_mask": gt[::-1], "a_mask": gt})
    with pytest.warns(UserWarning, match="using 'b_mask'"):
        assert read_scene(p).gt_var == "b_mask"  # no preferred name: the file's first
    assert read_scene(p, gt_var="a_mask").gt_var == "a_mask"  # explicit: no warning


def test_a_truth_candidate_that_marks_no_pixel_is_passed_over(tmp_path, cube_gt):
    """Even under a preferred name; unless every candidate is empty."""
    cube, gt = cube_gt
    empty = np.zeros_like(gt)
    p = tmp_path / "twogt.mat"
    scipy.io.savemat(p, {"data": cube, "gt": gt, "map": empty})
    with pytest.warns(UserWarning, match="using 'gt' \\('map' marks no pixel\\)"):
        assert read_scene(p).gt_var == "gt"  # 'map' comes first in GT_NAMES
    scipy.io.savemat(p, {"data": cube, "gt": empty, "map": empty})
    with pytest.warns(UserWarning, match="using 'map', pass"):
        assert read_scene(p).gt_var == "map"


def test_file_errors(tmp_path, cube_gt):
    cube, gt = cube_gt
    good5 = tmp_path / "good5.mat"
    good73 = tmp_path / "good73.mat"
    scipy.io.savemat(good5, {"data": cube, "map": gt})
    _save_v73(good73, {"data": cube, "map": gt})

    text = tmp_path / "text.mat"
    text.write_text("this is not a MATLAB file\n" * 20)
    empty = tmp_path / "empty.mat"
    empty.write_bytes(b"")
    trunc5 = tmp_path / "trunc5.mat"
    trunc5.write_bytes(good5.read_bytes()[: good5.stat().st_size // 2])
    trunc73 = tmp_path / "trunc73.mat"
    trunc73.write_bytes(good73.read_bytes()[: good73.stat().st_size // 2])
    other = tmp_path / "scene.tif"
    other.write_bytes(b"II*\x00")

    cases = [
        (tmp_path / "missing.mat", "not found"),
        (tmp_path, "directory"),
        (empty, "empty"),
        (text, "cannot read"),
        (trunc5, "cannot read"),
        (trunc73, "cannot read"),
        (other, "cannot read"),  # .tif is a supported raster now; this one is broken
    ]
    for path, needle in cases:
        with pytest.raises(InputError, match=needle) as exc:
            read_scene(path)
        _assert_one_line(exc)


def test_npy_must_be_3d(tmp_path):
    p = tmp_path / "flat.npy"
    np.save(p, np.ones((4, 4)))
    with pytest.raises(InputError, match="3-D") as exc:
        read_scene(p)
    _assert_one_line(exc)


def test_writers_are_atomic_and_check_the_directory(tmp_path):
    out = tmp_path / "a" / "b"
    target = write_npy(out / "x.npy", np.arange(5))
    np.testing.assert_array_equal(np.load(target), np.arange(5))
    write_json(out / "r.json", {"auc": np.float64(0.5), "shape": (1, 2), "bad": float("nan")})
    assert (out / "r.json").read_text().startswith("{")
    assert sorted(p.name for p in out.iterdir()) == ["r.json", "x.npy"]  # no temporary left

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        ensure_dir(blocker)
    with pytest.raises(InputError):
        write_npy(blocker / "sub" / "x.npy", np.arange(3))
