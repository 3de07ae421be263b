"""ENVI cubes with bad bands or a no-data value stay on disk (MemmapCube) when read lazily."""

from __future__ import annotations

import numpy as np
import pytest

from rednmf import REDNMF, make_scene
from rednmf.exceptions import InputError
from rednmf.io import read_scene
from rednmf.io.lazy import MemmapCube, nodata_to_nan, split_key
from rednmf.outofcore import is_memory_mapped
from scene_files import save_envi

NODATA = -1


@pytest.fixture(scope="module")
def raw() -> np.ndarray:
    cube, _ = make_scene(rows=40, cols=36, bands=20, n_targets=5, random_state=1)
    out = (cube * 1000).astype(np.int16)
    out[3, 4, :] = NODATA  # a no-data pixel
    out[10:12, 20, 5] = NODATA  # two missing values
    return out


BBL = ["1"] * 17 + ["0", "1", "0"]  # bands 17 and 19 are bad


@pytest.fixture()
def hdr(tmp_path, raw):
    extra = {"data ignore value": str(NODATA), "bbl": BBL}
    return save_envi(tmp_path / "s.hdr", raw, interleave="bip", **extra)


def _eager(raw: np.ndarray) -> np.ndarray:
    keep = [b for b in range(raw.shape[2]) if BBL[b] == "1"]
    out = raw[:, :, keep].astype(np.float32)
    out[raw[:, :, keep] == NODATA] = np.nan
    return out


def test_lazy_envi_is_a_memmap_cube_equal_to_the_eager_one(hdr, raw):
    lazy = read_scene(hdr, lazy=True).cube
    eager = read_scene(hdr, lazy=False).cube
    assert isinstance(lazy, MemmapCube) and is_memory_mapped(lazy)
    assert isinstance(eager, np.ndarray) and not is_memory_mapped(eager)
    ref = _eager(raw)
    np.testing.assert_array_equal(eager, ref)
    assert lazy.shape == ref.shape and lazy.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(lazy), ref)
    for key in [
        np.s_[2:9],
        np.s_[3],
        np.s_[3, 4],
        np.s_[10:12, 18:22],
        np.s_[..., 5],
        np.s_[:, 7, 2:6],
        np.s_[1:30:4, ::3, [0, 5, 17]],
        np.s_[-3:],
    ]:
        np.testing.assert_array_equal(lazy[key], ref[key], err_msg=str(key))


def test_without_bad_bands_or_nodata_envi_stays_the_memmap(tmp_path, raw):
    clean = np.where(raw == NODATA, 0, raw).astype(np.int16)
    cube = read_scene(save_envi(tmp_path / "c.hdr", clean, interleave="bip"), lazy=True).cube
    assert isinstance(cube, np.memmap)


def test_bad_bands_only_keep_the_stored_dtype(tmp_path, raw):
    clean = np.where(raw == NODATA, 0, raw).astype(np.int16)
    cube = read_scene(save_envi(tmp_path / "b.hdr", clean, interleave="bsq", bbl=BBL), lazy=True)
    lazy = cube.cube
    assert isinstance(lazy, MemmapCube) and lazy.dtype == np.int16
    keep = [b for b in range(raw.shape[2]) if BBL[b] == "1"]
    np.testing.assert_array_equal(lazy[5:9], clean[5:9][:, :, keep])


def test_out_of_core_fit_of_the_lazy_cube_equals_the_eager_one(hdr):
    lazy = read_scene(hdr, lazy=True).cube
    eager = read_scene(hdr, lazy=False).cube
    a = REDNMF(max_iter=15, engine="out-of-core").fit(lazy)
    b = REDNMF(max_iter=15, engine="out-of-core").fit(eager)
    mem = REDNMF(max_iter=15).fit(eager)
    np.testing.assert_array_equal(a.decision_scores_, b.decision_scores_)
    np.testing.assert_array_equal(a.valid_mask_, mem.valid_mask_)
    assert np.isnan(a.decision_scores_[3, 4])
    np.testing.assert_allclose(
        a.decision_scores_, mem.decision_scores_, rtol=1e-6,
        atol=1e-9 * float(np.nanmax(mem.decision_scores_)),
    )  # fmt: skip


def test_the_fit_reads_slices_not_the_whole_cube(tmp_path, monkeypatch):
    cube, _ = make_scene(rows=200, cols=180, bands=12, n_targets=5, random_state=2)
    big = (cube * 1000).astype(np.int16)  # 36,000 pixels: more than a scan block
    big[0, 0, :] = NODATA
    hdr = save_envi(tmp_path / "big.hdr", big, interleave="bip", **{"data ignore value": "-1"})
    lazy = read_scene(hdr, lazy=True).cube
    rows: list[int] = []
    get = MemmapCube.__getitem__

    def spy(self, key):
        out = get(self, key)
        rows.append(out.shape[0] if out.ndim == 3 else 1)
        return out

    monkeypatch.setattr(MemmapCube, "__getitem__", spy)
    REDNMF(max_iter=2, engine="out-of-core").fit(lazy)
    assert rows and max(rows) < lazy.shape[0]


def test_a_cube_that_would_not_fit_is_read_lazily_and_fitted_out_of_core(hdr, monkeypatch):
    monkeypatch.setattr("rednmf._memory.available_memory", lambda: 1 << 16)
    cube = read_scene(hdr).cube  # lazy=None
    assert isinstance(cube, MemmapCube)
    det = REDNMF(max_iter=3).fit(cube)  # engine=None decides
    with pytest.raises(InputError, match="out of core"):
        det.anomaly(cube)  # no S kept


def test_helpers():
    assert split_key(np.s_[..., 2], "X") == (slice(None), slice(None), 2)
    assert split_key(5, "X") == (5, slice(None), slice(None))
    with pytest.raises(IndexError, match="too many"):
        split_key((1, 2, 3, 4), "X")
    with pytest.raises(IndexError, match="newaxis"):
        split_key((None, 1), "X")
    block = np.array([[1, -1], [2, 3]], dtype=np.int16)
    out = nodata_to_nan(block, -1.0, np.dtype(np.float32))
    assert out.dtype == np.float32 and np.isnan(out[0, 1]) and block[0, 1] == -1
    assert nodata_to_nan(block, None, np.dtype(np.float32)) is block
