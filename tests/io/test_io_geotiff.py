"""GeoTIFF in and out (rasterio), detections (connected components), thresholds; detect."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import rasterio
from affine import Affine

from rednmf import cli
from rednmf.io import read_map, read_scene
from rednmf.io.detections import CSV_COLUMNS, find_detections
from rednmf.io.geotiff import describe_crs, write_geotiff
from rednmf.thresholding import choose_threshold, far_threshold
from scene_files import TRANSFORM, save_tif


def test_read_geotiff_bands_nodata_and_georeference(tmp_path):
    cube = np.random.default_rng(0).integers(1, 1000, size=(6, 4, 3)).astype(np.int16)
    cube[0, 0, :] = -9999
    scene = read_scene(save_tif(tmp_path / "s.tif", cube, nodata=-9999))
    assert scene.shape == (6, 4, 3) and scene.format == "GTiff"
    assert scene.cube.dtype == np.float32 and np.isnan(scene.cube[0, 0]).all()
    np.testing.assert_array_equal(scene.cube[1:], cube[1:])
    assert scene.nodata == -9999 and scene.nodata_mask().sum() == 1
    assert describe_crs(scene.crs).startswith("EPSG:32611")
    assert Affine(*scene.transform) == TRANSFORM


def test_write_geotiff_keeps_crs_transform_and_nan(tmp_path):
    scores = np.arange(12, dtype=np.float64).reshape(3, 4)
    scores[0, 0] = np.nan
    wkt = rasterio.crs.CRS.from_epsg(32611).to_wkt()
    path = write_geotiff(
        tmp_path / "m.tif", scores, crs=wkt, transform=tuple(TRANSFORM)[:6], nodata=float("nan")
    )
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 32611 and src.transform == TRANSFORM
        assert src.dtypes == ("float32",) and np.isnan(src.nodata)
        assert src.compression.name.lower() == "deflate"
        assert src.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR", "3") == "3"
        np.testing.assert_array_equal(src.read(1), scores.astype(np.float32))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_find_detections_components_centroids_and_map_coordinates():
    scores = np.zeros((6, 6))
    scores[1, 1], scores[1, 2] = 5.0, 3.0  # one 2-pixel component
    scores[4, 4] = 9.0  # a single pixel, the highest peak
    scores[5, 5] = 2.0  # diagonal neighbour of (4, 4): same 8-connected component
    dets, labels = find_detections(scores, scores > 1, tuple(TRANSFORM)[:6])
    assert [d.area_px for d in dets] == [2, 2]
    first, second = dets
    assert first.id == 1 and first.peak_score == 9.0 and (first.peak_row, first.peak_col) == (4, 4)
    assert (first.row, first.col) == (4.5, 4.5)
    assert first.x == 500000 + 30 * 5.0 and first.y == 4000000 - 30 * 5.0
    assert second.mean_score == 4.0 and second.area == 2 * 900.0
    assert set(np.unique(labels)) == {0, 1, 2}


def test_thresholds():
    s = np.r_[np.random.default_rng(0).lognormal(0, 0.5, 10000), [50.0, 60.0]]
    assert choose_threshold(s, threshold=3.0).value == 3.0
    t = choose_threshold(s, contamination=0.01).value
    assert (s > t).mean() == pytest.approx(0.01, abs=1e-3)
    t = far_threshold(s, 0.001)
    assert 1e-4 < (s > t).mean() < 0.01 and t < 50
    assert choose_threshold(np.r_[s, np.nan]).value == choose_threshold(s).value  # NaN ignored
    with pytest.raises(cli.InputError, match="exclusive"):
        choose_threshold(s, threshold=1.0, far=0.01)


def test_far_threshold_flags_between_the_bounds_of_all_pixels():
    # A second mode at the top 10 % (no decay in the 90-99 % window): the truncated GPD fit
    # runs off to a threshold above every score (7.6 here, the largest score 3.7).
    from rednmf.thresholding import FLAGGED_BOUNDS, choose_threshold

    lo, hi = FLAGGED_BOUNDS
    rng = np.random.default_rng(0)
    s = np.r_[rng.normal(0, 1, 1800), rng.normal(3, 0.3, 200)]
    for far in (1e-3, 1e-2, 3e-2):
        t = far_threshold(s, far)
        assert t <= s.max()
        assert lo * far - 1 / s.size <= (s > t).mean() <= hi * far + 1 / s.size
    # an exponential background (a GPD of shape 0) with as many anomalies far above it as
    # far asks for: the tail quantile flags far of the background plus the anomalies, about
    # 2 far of the pixels, inside the bounds, so the GPD decides; the background rate is
    # within 1.5x of far
    for seed in range(6):
        r = np.random.default_rng(seed)
        for far in (1e-3, 1e-2):
            n_anom = int(far * 200_000)
            ex = np.r_[r.exponential(1.0, 200_000 - n_anom), r.uniform(30, 40, n_anom)]
            choice = choose_threshold(ex, far=far)
            assert choice.fallback is None and choice.text.endswith("(GPD tail)")
            assert far / 1.5 <= (ex[: 200_000 - n_anom] > choice.value).mean() <= 1.5 * far
    # the same background with no anomaly at all: the tail quantile flags about far, under
    # the lower bound, so lo * far of the pixels are flagged and the fallback says so
    ex = np.random.default_rng(0).exponential(1.0, 200_000)  # tail quantile: 0.92 far
    capped = choose_threshold(ex, far=1e-3)
    assert "capped" in capped.fallback and capped.value == np.quantile(ex, 1 - lo * 1e-3)
    # a light-tailed window under a far heavier top: the quantile is raised to 1 - hi far
    light = np.r_[rng.uniform(0, 1, 9900), rng.uniform(50, 100, 100)]
    raised = choose_threshold(light, far=1e-3)
    assert "raised" in raised.fallback and raised.value == np.quantile(light, 1 - hi * 1e-3)


def test_read_map_variants(tmp_path):
    m = np.zeros((4, 5), dtype=np.uint8)
    m[1, 2] = 1
    np.save(tmp_path / "m.npy", m)
    np.savez(tmp_path / "m.npz", a=m, b=1 - m)
    save_tif(tmp_path / "m.tif", m[:, :, None])
    for spec in ("m.npy", "m.npz:a", "m.tif"):
        got, _ = read_map(tmp_path / spec if ":" not in spec else f"{tmp_path}/{spec}", (4, 5))
        np.testing.assert_array_equal(got, m != 0)
    with pytest.raises(cli.InputError, match="several 2-D"):
        read_map(tmp_path / "m.npz", (4, 5))


@pytest.mark.realdata
def test_detect_on_geotiff_airport1(tmp_path, capsys, airport1):
    """The done-when check: GeoTIFF in; GeoTIFF (same CRS and transform), GeoJSON, CSV out."""
    cube, gt = airport1
    crop = np.ascontiguousarray(cube[40:80, 30:70])
    crop[:2] = 0  # a no-data border
    tif = save_tif(tmp_path / "airport1.tif", crop, nodata=0)
    np.save(tmp_path / "gt.npy", gt[40:80, 30:70].astype(np.uint8))
    mask = np.ones((40, 40), dtype=np.uint8)
    mask[:, -3:] = 0
    np.save(tmp_path / "mask.npy", mask)
    out = tmp_path / "out"
    code = cli.main(
        [
            "detect",
            str(tif),
            "--out",
            str(out),
            "--gt",
            str(tmp_path / "gt.npy"),
            "--mask",
            str(tmp_path / "mask.npy"),
            "--far",
            "0.001",
            "--json",
            "--max-iter",
            "20",
            "--inner",
            "3",
            "--outer",
            "9",
            "--seed",
            "0",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    record = json.loads(captured.out.strip().splitlines()[-1])
    assert record["nodata_pixels"] == 2 * 40 + 38 * 3
    assert record["threshold_rule"].startswith("false-alarm rate")
    with rasterio.open(out / "airport1_rednmf" / "airport1_rednmf_scores.tif") as src:
        assert src.crs.to_epsg() == 32611 and src.transform == TRANSFORM
        scores = src.read(1)
    assert np.isnan(scores[:2]).all() and np.isnan(scores[:, -3:]).all()
    assert np.isfinite(scores[2:, :-3]).all()
    with rasterio.open(out / "airport1_rednmf" / "airport1_rednmf_detections.tif") as src:
        det = src.read(1)
        assert src.crs.to_epsg() == 32611 and src.transform == TRANSFORM
    assert set(np.unique(det)) <= {0, 1, 255} and (det[:2] == 255).all()
    collection = json.loads(
        (out / "airport1_rednmf" / "airport1_rednmf_detections.geojson").read_text()
    )
    feats = collection["features"]
    assert "crs" not in collection  # RFC 7946: WGS84 lon/lat
    assert len(feats) == record["n_detections"] > 0
    assert sum(f["properties"]["area_px"] for f in feats) == int((det == 1).sum())
    x0, y0 = feats[0]["properties"]["x"], feats[0]["properties"]["y"]
    assert 500000 <= x0 <= 500000 + 40 * 30 and 4000000 - 40 * 30 <= y0 <= 4000000
    lon, lat = feats[0]["properties"]["lon"], feats[0]["properties"]["lat"]
    assert -117.01 < lon < -116.98 and 36.11 < lat < 36.15  # UTM 11N near (500 km, 4000 km)
    with open(out / "airport1_rednmf" / "airport1_rednmf_detections.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == CSV_COLUMNS and len(rows) == len(feats)
    assert float(rows[0]["peak_score"]) >= float(rows[-1]["peak_score"])


def test_an_unnamed_crs_is_described_by_its_epsg_name():
    """ENVI's map info gives GDAL a CRS named 'unnamed': info names it from its EPSG code."""
    from rasterio.crs import CRS

    wkt = CRS.from_epsg(32633).to_wkt().replace("WGS 84 / UTM zone 33N", "unnamed", 1)
    assert '"unnamed"' in wkt
    assert describe_crs(wkt) == "EPSG:32633 (WGS 84 / UTM zone 33N)"


def _both_ways(path):
    """The scene read whole and read window by window (a GeoTiffCube), as arrays."""
    eager = read_scene(path, lazy=False)
    lazy = read_scene(path, lazy=True)
    return eager, np.asarray(eager.cube), np.asarray(lazy.cube[:, :, :])


def test_a_mask_band_marks_no_data_as_gdal_reads_it(tmp_path):
    rng = np.random.default_rng(0)
    cube = rng.integers(1, 1000, size=(8, 6, 4)).astype(np.int16)
    valid = np.ones((8, 6), dtype=bool)
    valid[5:, 4:] = False  # a corner masked, its values ordinary numbers
    path = tmp_path / "masked.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        save_tif(path, cube)
        with rasterio.open(path, "r+") as dst:
            dst.write_mask(valid.astype(np.uint8) * 255)
    with rasterio.open(path) as src:  # the oracle: GDAL's own mask
        oracle = src.read_masks(1) == 0
    np.testing.assert_array_equal(oracle, ~valid)
    scene, eager, lazy = _both_ways(path)
    assert scene.masked and scene.nodata is None
    for arr in (eager, lazy):
        assert arr.dtype == np.float32
        np.testing.assert_array_equal(np.isnan(arr).all(axis=2), ~valid)
        np.testing.assert_array_equal(arr[valid], cube[valid])
    assert scene.nodata_mask().sum() == (~valid).sum()


def test_a_float_no_data_value_matches_at_the_bands_precision(tmp_path):
    """Headers print -FLT_MAX as -3.40282e+38; GDAL matches it, and so must the reader."""
    rng = np.random.default_rng(1)
    cube = rng.random((5, 4, 3), dtype=np.float32) * 100
    cube[0, :2] = np.finfo(np.float32).min
    cube[1, 1] = np.float32(-3.40282e38)  # the header's value itself, as NumPy fills it
    cube[4, 3] = np.float32(0.1)  # a value written as 0.1 is float32's 0.1
    for nodata, hits in ((-3.40282e38, 3), (0.1, 1)):
        path = save_tif(tmp_path / f"f{hits}.tif", cube, nodata=nodata)
        with rasterio.open(path) as src:  # GDAL's mask is the oracle
            expected = src.read_masks(1) == 0
        assert expected.sum() == hits
        scene, eager, lazy = _both_ways(path)
        for arr in (eager, lazy):
            np.testing.assert_array_equal(np.isnan(arr).all(axis=2), expected)
            np.testing.assert_array_equal(arr[~expected], cube[~expected])


def test_the_bands_scale_and_offset_are_applied_after_no_data(tmp_path):
    rng = np.random.default_rng(2)
    dn = rng.integers(0, 8000, size=(6, 5, 3)).astype(np.int16)
    dn[2, 2] = -1  # no-data, in stored units
    scales, offsets = (1e-4, 2e-4, 1e-4), (-0.1, 0.0, 0.05)
    path = save_tif(tmp_path / "scaled.tif", dn, nodata=-1)
    with rasterio.open(path, "r+") as dst:
        dst.scales, dst.offsets = scales, offsets
    expected = dn.astype(np.float32) * np.float32(scales) + np.float32(offsets)
    scene, eager, lazy = _both_ways(path)
    assert scene.scaled and scene.nodata == -1
    for arr in (eager, lazy):
        assert arr.dtype == np.float32 and np.isnan(arr[2, 2]).all()
        keep = np.ones((6, 5), dtype=bool)
        keep[2, 2] = False
        np.testing.assert_allclose(arr[keep], expected[keep], rtol=1e-6)


def test_ground_control_points_are_named_as_not_used(tmp_path):
    from rasterio.control import GroundControlPoint
    from rasterio.crs import CRS

    cube = np.ones((4, 4, 2), dtype=np.float32)
    path = save_tif(tmp_path / "gcps.tif", cube, crs=None, transform=Affine.identity())
    gcps = [GroundControlPoint(r, c, 5e5 + 30 * c, 4.6e6 - 30 * r) for r, c in ((0, 0), (3, 3))]
    with rasterio.open(path, "r+") as dst:
        dst.gcps = (gcps, CRS.from_epsg(32633))
    with pytest.warns(UserWarning, match="2 ground control points, which rednmf does not use"):
        scene = read_scene(path)
    assert scene.crs is None and scene.transform is None


def test_footprints_are_valid_where_pixels_touch_at_a_corner_only():
    """One 8-connected detection of three parts, two of them joined at corners only."""
    from rasterio.features import rasterize

    from rednmf.io.detections import detections_pixel_json

    detected = np.zeros((6, 7), dtype=bool)
    detected[1:3, 1:3] = True  # a 2 x 2 block
    detected[3, 3] = True  # touches the block at its corner (3, 3) only
    detected[4, 4:6] = True  # touches that pixel at the corner (4, 4) only
    scores = detected.astype(float)
    detections, labels = find_detections(scores, detected)
    assert len(detections) == 1
    footprint = detections_pixel_json(detections, labels)["detections"][0]["footprint"]
    polygons = (
        footprint["coordinates"]
        if footprint["type"] == "MultiPolygon"
        else [footprint["coordinates"]]
    )
    for rings in polygons:
        for ring in rings:  # a simple ring visits each vertex once (closing point aside)
            vertices = [tuple(v) for v in ring[:-1]]
            assert len(vertices) == len(set(vertices)), ring
    assert len(polygons) == 3
    # the footprint covers exactly the detected pixels (rasterised back)
    back = rasterize([(footprint, 1)], out_shape=detected.shape, fill=0).astype(bool)
    np.testing.assert_array_equal(back, detected)


@pytest.mark.parametrize("convention", ["tags", "imagery"])
def test_band_centres_and_units_from_either_gdal_convention(tmp_path, convention):
    cube = np.ones((3, 3, 4), dtype=np.float32)
    path = save_tif(tmp_path / "wl.tif", cube)
    centres = [450.0, 550.0, 650.0, 750.0]
    with rasterio.open(path, "r+") as dst:
        for band, nm in enumerate(centres, start=1):
            if convention == "tags":  # what GDAL's ENVI driver writes
                dst.update_tags(band, wavelength=str(nm), wavelength_units="Nanometers")
            else:  # GDAL's IMAGERY domain, in micrometres
                dst.update_tags(band, ns="IMAGERY", CENTRAL_WAVELENGTH_UM=str(nm / 1000))
    scene = read_scene(path)
    scale = 1.0 if convention == "tags" else 1e-3
    np.testing.assert_allclose(scene.wavelengths, np.asarray(centres) * scale)
    assert scene.wavelength_units == ("Nanometers" if convention == "tags" else "Micrometers")


@pytest.mark.realdata
@pytest.mark.parametrize("dtype", ["int16", "uint16", "float32", "float64"])
def test_every_real_scene_reads_as_geotiff_in_each_layout_and_byte_order(
    tmp_path, real_crops, dtype
):
    """The GDAL reader (mask, scale and no-data decoding included) never refuses or alters a
    valid file: each of the 12 real scenes, band- and pixel-interleaved, little- and
    big-endian, read whole and window by window, equals what was written."""
    path = tmp_path / "s.tif"
    for crop in real_crops.values():
        cube = crop * 10000 if crop.dtype.kind == "f" and dtype[0] in "iu" else crop
        cube = (np.clip(cube, 0, None) if dtype == "uint16" else cube).astype(dtype)
        for interleave in ("band", "pixel"):
            for endian in ("little", "big"):
                save_tif(path, cube, interleave=interleave, endianness=endian)
                scene = read_scene(path, lazy=False)
                assert scene.cube.dtype == cube.dtype and not scene.masked
                np.testing.assert_array_equal(scene.cube, cube)
                lazy = read_scene(path, lazy=True)
                np.testing.assert_array_equal(np.asarray(lazy.cube[:, :, :]), cube)
