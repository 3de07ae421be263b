"""ENVI reading: interleaves, byte order, bbl, no-data, georeference; detect."""

from __future__ import annotations

import json
import warnings

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
    microns = np.round(np.linspace(0.4, 2.5, crop.shape[2]), 4).tolist()
    hdr = save_envi(
        tmp_path / "airport1.hdr",
        crop,
        interleave="bil",
        wavelength=microns,
        **{"wavelength units": "Micrometers"},
    )
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
    summary = json.loads((out / "airport1_lrx" / "airport1_lrx_summary.json").read_text())
    assert summary["wavelength_units"] == "Micrometers"  # the unit of the wavelengths given
    assert summary["wavelengths"] == pytest.approx(microns)
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
    assert set(collection) == {"type", "features"}  # RFC 7946: no foreign top-level member
    assert len(collection["features"]) == record["n_detections"] > 0


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.float32, np.float64])
@pytest.mark.parametrize("interleave", ["bsq", "bip"])
def test_wrong_byte_order_is_caught(tmp_path, dtype, interleave):
    """A header that declares the wrong byte order: refused or warned, naming the fix."""
    from rednmf.datasets import make_scene

    smooth, _ = make_scene(rows=30, cols=30, bands=20, random_state=0)
    cube = (smooth * 3000).astype(dtype)
    hdr = save_envi(tmp_path / "s.hdr", cube, interleave=interleave, byteorder=1)
    good = read_scene(hdr)  # the right byte order reads as written
    np.testing.assert_array_equal(np.asarray(good.cube), cube)
    text = hdr.read_text()
    assert "byte order = 1" in text
    hdr.write_text(text.replace("byte order = 1", "byte order = 0"))
    assert _read_outcome(hdr) in ("refused", "warned")


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32])
def test_a_header_without_byte_order_reads_little_endian(tmp_path, cube, dtype):
    """As GDAL does; a warning names the line to add when the data have several bytes."""
    data = cube.astype(dtype)
    hdr = save_envi(tmp_path / "s.hdr", data % 250 if dtype == np.uint8 else data, byteorder=0)
    hdr.write_text(hdr.read_text().replace("byte order = 0\n", ""))
    assert "byte order" not in hdr.read_text()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scene = read_scene(hdr)
    np.testing.assert_array_equal(scene.cube, data % 250 if dtype == np.uint8 else data)
    said = [str(w.message) for w in caught if "byte order" in str(w.message)]
    if dtype == np.uint8:
        assert not said
    else:
        assert len(said) == 1 and "add 'byte order = 1'" in said[0]


#: ENVI data type codes of the matrix below.
_ENVI_CODES = {"int16": 2, "uint16": 12, "float32": 4, "float64": 5}


def _write_raw_envi(hdr, cube: np.ndarray, interleave: str, order: int) -> None:
    """``cube`` as raw ENVI data in ``interleave`` and byte ``order`` (0 little, 1 big)."""
    axes = {"bsq": (2, 0, 1), "bil": (0, 2, 1), "bip": (0, 1, 2)}[interleave]
    stored = np.transpose(cube, axes).astype(cube.dtype.newbyteorder("<>"[order]))
    stored.tofile(hdr.with_suffix(".img"))
    rows, cols, bands = cube.shape
    hdr.write_text(
        f"ENVI\nsamples = {cols}\nlines = {rows}\nbands = {bands}\nheader offset = 0\n"
        f"data type = {_ENVI_CODES[cube.dtype.name]}\ninterleave = {interleave}\n"
        f"byte order = {order}\n"
    )


def _read_outcome(hdr) -> str:
    """'read' (no byte-order warning), 'warned' or 'refused' (an InputError on byte order)."""
    from rednmf.exceptions import InputError
    from rednmf.io.envi import read_envi

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            read_envi(hdr)
        except InputError as exc:
            assert "byte order" in str(exc) and "set 'byte order = " in str(exc), exc
            return "refused"
    notes = [str(w.message) for w in caught if "byte order" in str(w.message)]
    assert all("set 'byte order = " in n for n in notes), notes
    return "warned" if notes else "read"


@pytest.mark.realdata
@pytest.mark.parametrize("dtype", ["int16", "uint16", "float32", "float64"])
def test_byte_order_check_on_every_real_scene(tmp_path, real_crops, dtype):
    """Each real scene in each interleave and byte order: read when declared right, caught
    (refused or warned) when declared wrong. Scenes scaled to [0, 1] are stored as counts
    (x 10000) in the integer types; negative counts are clipped to 0 in uint16."""
    hdr = tmp_path / "s.hdr"
    wrong = []
    for name, crop in real_crops.items():
        cube = crop * 10000 if crop.dtype.kind == "f" and dtype[0] in "iu" else crop
        cube = (np.clip(cube, 0, None) if dtype == "uint16" else cube).astype(dtype)
        assert np.unique(cube).size > 100  # real values, not a constant
        for interleave in ("bsq", "bil", "bip"):
            for order in (0, 1):
                _write_raw_envi(hdr, cube, interleave, order)
                right = _read_outcome(hdr)
                hdr.write_text(
                    hdr.read_text().replace(f"byte order = {order}", f"byte order = {1 - order}")
                )
                swapped = _read_outcome(hdr)
                if right != "read" or swapped == "read":
                    wrong.append((name, interleave, order, right, swapped))
    assert not wrong, wrong


@pytest.mark.realdata
def test_spectral_python_float32_of_a_real_scene_is_read(tmp_path, airport1):
    """The issue's case: envi.save_image of Airport-1 (counts 0..6604) as float32, byte order 0."""
    import spectral.io.envi as envi

    cube = np.asarray(airport1[0]).astype(np.float32)
    envi.save_image(str(tmp_path / "s.hdr"), cube, byteorder=0, force=True, ext=".img")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scene = read_scene(tmp_path / "s.hdr")
    np.testing.assert_array_equal(np.asarray(scene.cube), cube)


def test_big_endian_float64_with_no_data_stays_float64(tmp_path):
    """The no-data conversion keeps float64 whatever the byte order (>f8 is float64 too)."""
    data = np.random.default_rng(0).random((6, 5, 4)) * 1e9 + 0.123
    data[0, 0] = -9999.0
    hdr = save_envi(tmp_path / "s.hdr", data, byteorder=1, **{"data ignore value": -9999})
    for lazy in (False, True):
        cube = read_scene(hdr, lazy=lazy).cube
        got = np.asarray(cube[:, :, :])
        assert got.dtype.kind == "f" and got.dtype.itemsize == 8
        assert np.isnan(got[0, 0]).all()
        np.testing.assert_array_equal(got[1:], data[1:])


def test_a_band_first_file_is_copied_once(tmp_path):
    """BSQ is a transposed memory map: its float cube (no-data as NaN, or an integer file
    widened) is made C-ordered once, so check_cube does not copy it again. What check_cube
    allocates beyond the scene it is given (tracemalloc): boolean maps only, 0.25x the
    float32 cube (1.0x before), and for an int16 file its float32 cube (exact), 1.0x of it
    (a float64 cube before, 2.0x the float32 one)."""
    import tracemalloc

    from rednmf._validation import check_cube

    data = np.random.default_rng(0).integers(1, 3000, (120, 100, 30)).astype(np.int16)
    data[0, 0] = -9999
    hdr = save_envi(tmp_path / "s.hdr", data, interleave="bsq", **{"data ignore value": -9999})
    plain = save_envi(tmp_path / "p.hdr", data % 3000 + 1, interleave="bsq")
    extra = []
    for path in (hdr, plain):
        scene = read_scene(path)
        tracemalloc.start()
        try:
            cube = check_cube(scene.cube, allow_nan=True)
            extra.append(tracemalloc.get_traced_memory()[1] / cube.nbytes)
        finally:
            tracemalloc.stop()
        assert cube.flags.c_contiguous
        if path == hdr:
            assert cube.dtype == np.float32 and np.isnan(cube[0, 0]).all()
            np.testing.assert_array_equal(cube[1:], data[1:].astype(np.float32))
        else:  # int16 in float32: every value exact
            assert cube.dtype == np.float32
            np.testing.assert_array_equal(cube, (data % 3000 + 1).astype(np.float64))
    assert extra[0] < 0.5 and extra[1] < 1.1, extra


@pytest.mark.parametrize("lazy", [False, True])
def test_a_data_ignore_value_printed_short_of_flt_max_matches_it(tmp_path, lazy):
    """``-3.40282e+38`` in a header is float32's -FLT_MAX, whole or memory-mapped."""
    cube = np.random.default_rng(3).random((6, 5, 4), dtype=np.float32) * 6604
    cube[1, 1:3] = np.finfo(np.float32).min
    cube[4, 4] = np.float32(-3.40282e38)  # the header's value itself matches too
    hdr = save_envi(tmp_path / "f.hdr", cube, **{"data ignore value": "-3.40282e+38"})
    scene = read_scene(hdr, lazy=lazy)
    got = np.asarray(scene.cube[:, :, :])
    hit = np.zeros((6, 5), dtype=bool)
    hit[1, 1:3] = True
    hit[4, 4] = True
    np.testing.assert_array_equal(np.isnan(got).all(axis=2), hit)
    np.testing.assert_array_equal(got[~hit], cube[~hit])
