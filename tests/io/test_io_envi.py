"""ENVI reading (Spectral Python): interleaves, byte order, bbl, no-data, georeference; detect."""

from __future__ import annotations

import json

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from rednmf import cli
from rednmf.io import read_scene
from scene_files import EPSG, save_envi

TRANSFORM = (30.0, 0.0, 500000.0, 0.0, -30.0, 4000000.0)


@pytest.fixture(scope="module")
def cube() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 4000, size=(7, 5, 6)).astype(np.uint16)


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
@pytest.mark.parametrize("byteorder", [0, 1])
def test_interleaves_and_byte_orders(tmp_path, cube, interleave, byteorder):
    hdr = save_envi(tmp_path / "s.hdr", cube, interleave=interleave, byteorder=byteorder)
    scene = read_scene(hdr)
    np.testing.assert_array_equal(scene.cube, cube)
    assert scene.shape == (7, 5, 6) and scene.name == "s"
    assert scene.format.startswith(f"ENVI ({interleave}")
    assert CRS.from_wkt(scene.crs).to_epsg() == EPSG
    assert Affine(*scene.transform).almost_equals(Affine(*TRANSFORM))
    # the data file can be named instead of the header
    np.testing.assert_array_equal(read_scene(tmp_path / "s.img").cube, cube)


def test_clean_cube_stays_memory_mapped(tmp_path, cube):
    scene = read_scene(save_envi(tmp_path / "s.hdr", cube))
    assert isinstance(scene.cube, np.memmap) or isinstance(scene.cube.base, np.memmap)


def test_wavelength_bbl_and_nodata(tmp_path, cube):
    data = cube.copy()
    data[0, 0, :] = 0  # a no-data pixel
    data[1, 1, 3] = 0  # one missing value
    hdr = save_envi(
        tmp_path / "s.hdr",
        data,
        wavelength=[400, 500, 600, 700, 800, 900],
        bbl=[1, 0, 1, 1, 0, 1],
        **{"data ignore value": 0, "wavelength units": "Nanometers"},
    )
    scene = read_scene(hdr)
    assert scene.shape == (7, 5, 4)
    np.testing.assert_array_equal(scene.bad_bands, [1, 4])
    np.testing.assert_array_equal(scene.wavelengths, [400, 600, 700, 900])
    assert scene.wavelength_units == "Nanometers"
    assert scene.nodata == 0.0
    assert scene.cube.dtype == np.float32
    assert np.isnan(scene.cube[0, 0]).all() and np.isnan(scene.cube[1, 1, 2])
    np.testing.assert_array_equal(scene.cube[2, 2], data[2, 2, [0, 2, 3, 5]])
    assert scene.nodata_mask().sum() == 2


def test_info_prints_what_the_reader_found(tmp_path, capsys, cube):
    hdr = save_envi(
        tmp_path / "s.hdr",
        cube,
        wavelength=[400, 500, 600, 700, 800, 900],
        bbl=[1, 1, 1, 1, 1, 0],
        **{"data ignore value": 65535},
    )
    assert cli.main(["info", str(hdr)]) == 0
    out = capsys.readouterr().out
    for needle in (
        "ENVI (bsq",
        "7 rows x 5 cols x 5 bands",
        "uint16",
        "400 .. 800",
        "1 dropped: [5]",
        "65535",
        "EPSG:32611",
    ):
        assert needle in out, out
    assert cli.main(["info", str(hdr), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["shape"] == [7, 5, 5] and facts["bad_bands"] == [5]
    assert facts["transform"] == list(TRANSFORM)


@pytest.mark.realdata
def test_detect_on_envi_airport1(tmp_path, capsys, airport1):
    """The done-when check: ENVI in, a GeoTIFF with the input's CRS and transform out."""
    import rasterio

    cube, gt = airport1
    crop = np.ascontiguousarray(cube[40:80, 30:70])
    hdr = save_envi(tmp_path / "airport1.hdr", crop, interleave="bil")
    np.save(tmp_path / "gt.npy", gt[40:80, 30:70].astype(np.uint8))
    out = tmp_path / "out"
    code = cli.main(
        [
            "detect",
            str(hdr),
            "--out",
            str(out),
            "--gt",
            str(tmp_path / "gt.npy"),
            "--method",
            "lrx",
            "--inner",
            "3",
            "--outer",
            "9",
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    record = json.loads(captured.out.strip().splitlines()[-1])
    assert record["format"].startswith("ENVI") and record["auc"] > 0.8
    with rasterio.open(out / "airport1_lrx" / "airport1_lrx_scores.tif") as src:
        assert src.crs.to_epsg() == EPSG
        assert src.transform.almost_equals(Affine(*TRANSFORM))
        assert (
            src.dtypes == ("float32",) and src.count == 1 and (src.height, src.width) == (40, 40)
        )
        assert src.compression.name.lower() == "deflate"
        npy = np.load(out / "airport1_lrx" / "airport1_lrx_scores.npy")
        np.testing.assert_allclose(src.read(1), npy, rtol=1e-6)
    run = out / "airport1_lrx"
    collection = json.loads((run / "airport1_lrx_detections.geojson").read_text())
    assert "crs" not in collection and collection["coordinates"].startswith("WGS84")
    assert len(collection["features"]) == record["n_detections"] > 0


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.float32, np.float64])
@pytest.mark.parametrize("interleave", ["bsq", "bip"])
def test_wrong_byte_order_is_refused(tmp_path, dtype, interleave):
    """A header that declares the wrong byte order: one line naming it, not silent noise."""
    from rednmf.datasets import make_scene
    from rednmf.exceptions import InputError

    smooth, _ = make_scene(rows=30, cols=30, bands=20, random_state=0)
    cube = (smooth * 3000).astype(dtype)
    hdr = save_envi(tmp_path / "s.hdr", cube, interleave=interleave, byteorder=1)
    good = read_scene(hdr)  # the right byte order reads as written
    np.testing.assert_array_equal(np.asarray(good.cube), cube)
    text = hdr.read_text()
    assert "byte order = 1" in text
    hdr.write_text(text.replace("byte order = 1", "byte order = 0"))
    with pytest.raises(InputError, match=r"byte order = 0.*set 'byte order = 1'"):
        read_scene(hdr)
