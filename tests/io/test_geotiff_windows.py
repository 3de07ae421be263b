"""A GeoTIFF read window by window (GeoTiffCube): the eager cube's values, fitted out of core."""

from __future__ import annotations

import json
import pickle
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.io

from rednmf import REDNMF, cli, make_scene
from rednmf.engines import InMemory, OutOfCore
from rednmf.exceptions import InputError
from rednmf.io import read_scene
from rednmf.io.geotiff import GeoTiffCube
from rednmf.outofcore import is_memory_mapped
from scene_files import TRANSFORM, save_tif

NODATA = -9999

LAYOUTS = {
    "pixel-strips": {"interleave": "pixel"},
    "band-tiled": {"interleave": "band", "tiled": True, "blockxsize": 16, "blockysize": 16},
}


def write_tif(path: Path, cube: np.ndarray, *, nodata=NODATA, **profile) -> Path:
    """Write a (rows, cols, bands) cube as a multi-band, georeferenced GeoTIFF."""
    return save_tif(path, cube, nodata=nodata, **profile)


def synthetic(rows: int, cols: int, bands: int, seed: int = 0) -> np.ndarray:
    """A make_scene cube (planted anomalies) as int16, with no-data pixels and values."""
    cube, _ = make_scene(rows=rows, cols=cols, bands=bands, n_targets=6, random_state=seed)
    raw = (cube * 1000).astype(np.int16)
    raw[3, 4, :] = NODATA  # a no-data pixel
    raw[10:12, 20, 5] = NODATA  # two missing values
    raw[rows - 1, :3, :] = NODATA  # no-data in the last row
    return raw


@pytest.fixture(scope="module")
def raw() -> np.ndarray:
    return synthetic(60, 50, 24)


@pytest.fixture(scope="module", params=list(LAYOUTS))
def tif(request, tmp_path_factory, raw) -> Path:
    path = tmp_path_factory.mktemp(request.param) / "s.tif"
    return write_tif(path, raw, **LAYOUTS[request.param])


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9 * float(np.nanmax(np.abs(b))))


KEYS = [
    np.s_[:],
    np.s_[3:9],
    np.s_[3:9, 2:5],
    np.s_[4],
    np.s_[4, 5],
    np.s_[4, 5, 2],
    np.s_[-1],
    np.s_[..., 3],
    np.s_[..., 1:3, :],
    np.s_[10:40:7, ::-3, 1::4],
    np.s_[:, :, [5, 0, 5]],
    np.s_[5:2],
    np.s_[2:8, 40:100],
]


def test_lazy_slices_equal_the_eager_cube(tif, raw):
    eager = read_scene(tif, lazy=False)
    lazy = read_scene(tif, lazy=True)
    cube = lazy.cube
    assert isinstance(cube, GeoTiffCube) and isinstance(eager.cube, np.ndarray)
    assert cube.shape == eager.cube.shape == raw.shape and cube.ndim == 3
    assert cube.dtype == eager.cube.dtype == np.float32
    assert np.isnan(cube[3, 4]).all() and np.isnan(cube[10:12, 20, 5]).all()
    for key in KEYS:
        got, want = cube[key], eager.cube[key]
        assert got.shape == want.shape and got.dtype == want.dtype, key
        np.testing.assert_array_equal(got, want, err_msg=str(key))
    np.testing.assert_array_equal(np.asarray(cube), eager.cube)
    np.testing.assert_array_equal(lazy.nodata_mask(), eager.nodata_mask())
    assert lazy.nodata == eager.nodata == NODATA and lazy.crs == eager.crs
    assert lazy.transform == eager.transform and lazy.variables == eager.variables
    assert is_memory_mapped(cube) and not is_memory_mapped(eager.cube)


def test_lazy_cube_without_nodata_keeps_the_stored_dtype(tmp_path, raw):
    clean = np.abs(raw)
    plain = write_tif(tmp_path / "plain.tif", clean, nodata=None)
    cube = read_scene(plain, lazy=True).cube
    assert cube.dtype == np.int16
    np.testing.assert_array_equal(cube[7:19, 3:40], clean[7:19, 3:40])
    # a no-data value no pixel holds: float32 (declared up front), same values
    unused = write_tif(tmp_path / "unused.tif", clean, nodata=NODATA)
    cube = read_scene(unused, lazy=True).cube
    assert cube.dtype == np.float32
    np.testing.assert_array_equal(cube[:], read_scene(unused, lazy=False).cube)


def test_lazy_cube_rejects_indexing_it_cannot_window(tif):
    cube = read_scene(tif, lazy=True).cube
    with pytest.raises(IndexError, match="out of bounds"):
        cube[60]
    with pytest.raises(IndexError):
        cube[np.ones(60, dtype=bool)]
    with pytest.raises(IndexError, match="too many"):
        cube[0, 0, 0, 0]
    with pytest.raises(IndexError):
        cube[:, :, 24:25, None]


def test_handle_is_closed_reopened_and_pickled(tif, raw):
    cube = read_scene(tif, lazy=True).cube
    assert cube.closed  # nothing read yet
    first = cube[0:5]
    assert not cube.closed
    with cube:
        pass
    assert cube.closed
    np.testing.assert_array_equal(cube[0:5], first)  # opens again
    copy = pickle.loads(pickle.dumps(cube))
    assert copy.closed and copy.shape == cube.shape and copy.dtype == cube.dtype
    np.testing.assert_array_equal(copy[20:30, 5:9], cube[20:30, 5:9])
    copy.close()
    cube.close()


def test_concurrent_reads_are_consistent(tif):
    cube = read_scene(tif, lazy=True).cube
    full = np.asarray(cube)
    starts = [(r, c) for r in range(0, 55, 5) for c in range(0, 45, 9)]

    def read(rc):
        r, c = rc
        return cube[r : r + 7, c : c + 11]

    with ThreadPoolExecutor(max_workers=4) as pool:
        blocks = list(pool.map(read, starts))
    for (r, c), block in zip(starts, blocks, strict=True):
        np.testing.assert_array_equal(block, full[r : r + 7, c : c + 11])
    cube.close()


def test_file_changed_on_disk_is_an_input_error(tmp_path, raw):
    path = write_tif(tmp_path / "s.tif", raw)
    cube = read_scene(path, lazy=True).cube
    write_tif(path, raw[:10])
    with pytest.raises(InputError, match="changed on disk"):
        cube[0:2]


@pytest.mark.parametrize(
    ("kw", "n_jobs"),
    [
        ({}, None),
        ({"scorer": "norm"}, 2),
        ({"sparsity": "none"}, None),
        ({"init": "random"}, None),
    ],
)
def test_out_of_core_fit_on_windows_equals_the_eager_fits(tif, kw, n_jobs):
    lazy = read_scene(tif, lazy=True).cube
    eager = read_scene(tif, lazy=False).cube
    mask = np.ones(eager.shape[:2], dtype=bool)
    mask[40:, 45:] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ooc = OutOfCore(n_jobs=n_jobs)
        windows = REDNMF(max_iter=15, engine=ooc, **kw).fit(lazy, mask=mask)
        on_array = REDNMF(max_iter=15, engine=ooc, **kw).fit(eager, mask=mask)
        in_memory = REDNMF(max_iter=15, engine=InMemory(n_jobs=n_jobs), **kw).fit(eager, mask=mask)
    with pytest.raises(InputError, match="out of core"):
        windows.anomaly(lazy)
    assert in_memory.anomaly(eager, mask=mask).shape == eager.shape
    # the same blocks of the same values: the same fit
    np.testing.assert_array_equal(windows.decision_scores_, on_array.decision_scores_)
    np.testing.assert_array_equal(windows.components_, on_array.components_)
    # and the in-memory one up to the order of float sums
    np.testing.assert_array_equal(windows.valid_mask_, in_memory.valid_mask_)
    np.testing.assert_array_equal(windows.bands_kept_, in_memory.bands_kept_)
    assert np.isnan(windows.decision_scores_[3, 4]) and np.isnan(windows.decision_scores_[50, 48])
    assert np.isnan(windows.decision_scores_[59, 0])
    _close(windows.decision_scores_, in_memory.decision_scores_)
    _close(windows.components_, in_memory.components_)
    assert windows.threshold_ == pytest.approx(in_memory.threshold_, rel=1e-6)


def test_a_raster_that_would_not_fit_is_read_lazily_and_fitted_out_of_core(tif, monkeypatch):
    small = read_scene(tif)  # fits: read into memory, as before
    assert isinstance(small.cube, np.ndarray)
    ref = REDNMF(max_iter=8).fit(small.cube)
    monkeypatch.setattr("rednmf._memory.available_memory", lambda: 1 << 16)
    scene = read_scene(tif)
    assert isinstance(scene.cube, GeoTiffCube)
    det = REDNMF(max_iter=8).fit(scene.cube)  # engine=None
    with pytest.raises(InputError, match="out of core"):
        det.anomaly(scene.cube)  # it went out of core
    _close(det.decision_scores_, ref.decision_scores_)


@pytest.fixture
def reads(monkeypatch):
    """Every rasterio read of a dataset: (height, width, bands), None for a whole-raster read."""
    seen: list[tuple[int, int, int] | None] = []
    original = rasterio.io.DatasetReader.read

    def spy(self, indexes=None, *args, window=None, **kwargs):
        n = self.count if indexes is None else np.size(indexes)
        seen.append(None if window is None else (int(window.height), int(window.width), n))
        return original(self, indexes, *args, window=window, **kwargs)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", spy)
    return seen


def test_out_of_core_fit_reads_windows_only(tmp_path, reads):
    rows, cols, bands = 200, 180, 10  # 36000 pixels: more than one block of every scan
    path = write_tif(tmp_path / "big.tif", synthetic(rows, cols, bands, seed=1), tiled=True)
    scene = read_scene(path, lazy=True)
    assert reads == []  # opening reads no pixel
    det = REDNMF(max_iter=3, scorer="norm", engine="out-of-core").fit(scene.cube)
    assert np.isnan(det.decision_scores_[3, 4])
    with pytest.raises(InputError, match="out of core"):
        det.anomaly(scene.cube)
    assert len(reads) > 10 and None not in reads
    assert max(h * w for h, w, _ in reads) < rows * cols  # never the whole raster
    assert max(h for h, _, _ in reads) < rows
    scene.cube.close()


def test_cli_detect_geotiff_out_of_core(tmp_path, raw, capsys, monkeypatch):
    path = write_tif(tmp_path / "s.tif", raw)
    fitted: list[type] = []
    fit = REDNMF.fit

    def spy(self, cube, *args, **kwargs):
        fitted.append(type(cube))
        return fit(self, cube, *args, **kwargs)

    monkeypatch.setattr(REDNMF, "fit", spy)
    out = tmp_path / "o"
    code = cli.main(["detect", str(path), "--out", str(out), "--max-iter", "5",
                     "--out-of-core", "--json"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert fitted == [GeoTiffCube]
    record = json.loads(captured.out.strip().splitlines()[-1])
    assert record["shape"] == list(raw.shape) and record["format"] == "GTiff"
    assert record["nodata_pixels"] == 1 + 2 + 3  # (3, 4), (10:12, 20), (59, :3)
    run = out / "s_rednmf"
    for name in ("scores.tif", "scores.npy", "overview.png", "detections.tif",
                 "detections.geojson", "detections.gpkg", "detections.csv"):  # fmt: skip
        assert (run / f"s_rednmf_{name}").is_file(), name
    with rasterio.open(run / "s_rednmf_scores.tif") as src:
        assert src.crs.to_epsg() == 32611 and src.transform == TRANSFORM
    monkeypatch.setattr(REDNMF, "fit", fit)
    ref = REDNMF(max_iter=5).fit(read_scene(path, lazy=False).cube).decision_scores_
    _close(np.load(run / "s_rednmf_scores.npy"), ref)
