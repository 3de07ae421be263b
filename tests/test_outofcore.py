"""REDNMF out of core: an ENVI scene read block by block gives the in-memory scores."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from rednmf import REDNMF, make_scene
from rednmf.exceptions import InputError
from rednmf.io import read_scene
from rednmf.outofcore import CubeMatrix, is_memory_mapped, scan_cube
from scene_files import save_envi


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    cube, _ = make_scene(rows=60, cols=50, bands=24, n_targets=6, random_state=0)
    return (cube * 1000).astype(np.int16)


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9 * float(np.nanmax(np.abs(b))))


@pytest.mark.parametrize("interleave", ["bip", "bsq"])
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"scorer": "norm"},
        {"sparsity": "none"},
        {"init": "random", "tol": 1e-3},
        {"scorer__pool_global": True, "scorer__robust_global": True},
    ],
)
def test_out_of_core_scores_equal_in_memory(tmp_path, data, interleave, kw):
    scene = read_scene(save_envi(tmp_path / "s.hdr", data, interleave=interleave))
    assert is_memory_mapped(scene.cube)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning with tol
        mem = REDNMF(max_iter=20).set_params(**kw).fit(scene.cube)
        ooc = REDNMF(max_iter=20, engine="out-of-core").set_params(**kw).fit(scene.cube)
    with pytest.raises(InputError, match="out of core"):
        ooc.anomaly(scene.cube)  # not kept
    assert ooc.n_iter_ == mem.n_iter_
    _close(ooc.decision_scores_, mem.decision_scores_)
    _close(ooc.components_, mem.components_)
    assert ooc.threshold_ == pytest.approx(mem.threshold_, rel=1e-6)


def test_out_of_core_with_nodata_and_bad_bands(tmp_path, data):
    raw = data.copy()
    raw[3, 4, :] = -1  # a no-data pixel
    raw[10:12, 20, 5] = -1  # two missing values
    raw[:, :, 7] = 123  # a constant band
    hdr = save_envi(
        tmp_path / "s.hdr",
        raw,
        interleave="bip",
        **{"data ignore value": "-1", "bbl": ["1"] * 23 + ["0"]},
    )
    scene = read_scene(hdr)
    mask = np.ones(raw.shape[:2], dtype=bool)
    mask[40:, 45:] = False
    with pytest.warns(UserWarning, match="constant"):
        mem = REDNMF(max_iter=15).fit(scene.cube, mask=mask)
    with pytest.warns(UserWarning, match="constant"):
        ooc = REDNMF(max_iter=15, engine="out-of-core").fit(scene.cube, mask=mask)
    np.testing.assert_array_equal(ooc.valid_mask_, mem.valid_mask_)
    np.testing.assert_array_equal(ooc.bands_kept_, mem.bands_kept_)
    assert np.isnan(ooc.decision_scores_[3, 4]) and np.isnan(ooc.decision_scores_[50, 48])
    _close(ooc.decision_scores_, mem.decision_scores_)


def test_cube_matrix_blocks_are_the_scaled_matrix(data):
    cube = data[:7, :9]  # 63 pixels
    valid, kept, fill, lo, hi = scan_cube(cube, None, 2, "t")
    X = CubeMatrix(
        cube, np.float32, kept=kept, valid=valid, fill=fill, lo=lo, hi=hi, scale="minmax"
    )
    full = cube.reshape(-1, cube.shape[2]).T.astype(np.float32)
    ref = (full - full.min()) / (full.max() - full.min())
    np.testing.assert_array_equal(X[:, 5:41], ref[:, 5:41])  # across rows of the cube
    np.testing.assert_array_equal(X[:, 60:100], ref[:, 60:])
    for a, b in [(10, 14), (9, 18), (0, 3), (62, 63)]:  # within one row: only those columns
        np.testing.assert_array_equal(X[:, a:b], ref[:, a:b])
    assert X.mean() == pytest.approx(float(ref.mean(dtype=np.float64)), rel=1e-12)


def test_out_of_core_needs_the_block_engine(data):
    with pytest.raises(InputError, match="block engine"):
        REDNMF(engine="out-of-core", lam_mode="adaptive").fit(data.astype(float))


def test_infinite_values_are_rejected(data):
    bad = data.astype(np.float32)
    bad[2, 2, 2] = np.inf
    with pytest.raises(InputError, match="infinite"):
        REDNMF(engine="out-of-core").fit(bad)


def test_cli_out_of_core(tmp_path, data, capsys):
    from rednmf import cli

    hdr = save_envi(tmp_path / "s.hdr", data, interleave="bip")
    code = cli.main(["detect", str(hdr), "--out", str(tmp_path / "o"), "--max-iter", "5",
                     "--out-of-core", "--json"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    ref = REDNMF(max_iter=5).fit(read_scene(hdr).cube).decision_scores_
    _close(np.load(tmp_path / "o" / "s_rednmf" / "s_rednmf_scores.npy"), ref)
