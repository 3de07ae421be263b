"""Detections as connected components of a binary map, written as GeoJSON and CSV.

A detection is an 8-connected group of pixels whose score exceeds the
threshold. For each one the centroid is given in pixel coordinates (row and
column of the pixel centres' mean, 0-based) and in map coordinates (the
affine transform applied to the pixel centre, ``x = a*(col+0.5) + b*(row+0.5)
+ c``), with the area (pixels and map units squared) and the peak and mean
score.

With a CRS, each detection also has its centroid in WGS84 longitude and
latitude and its area in square metres: the map area times the square of the
CRS's linear unit in metres for a projected CRS, and for a geographic CRS
(degrees) the area of its footprint projected to a Lambert azimuthal
equal-area projection centred on it.

Outputs, with a CRS: GeoJSON per RFC 7946 (footprints reprojected to WGS84
lon/lat with GDAL/PROJ through :func:`rasterio.warp.transform_geom`; a
FeatureCollection with ``type`` and ``features`` only, no foreign top-level
member) and the same footprints in the native CRS as a GeoPackage layer
(through Fiona), which QGIS opens as is. Without a CRS a GIS could only place
the footprints near (0, 0) on the globe, so neither is written: the footprints
go to a plain JSON file in pixel space instead (:func:`detections_pixel_json`;
x = column, y = row from the image's top-left corner), named
``..._detections_pixels.json``. The CSV table is always written.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rednmf.io.writers import atomic_open, write_csv

__all__ = [
    "Detection",
    "find_detections",
    "detections_geojson",
    "detections_pixel_json",
    "write_detections_json",
    "write_detections_csv",
    "write_detections_gpkg",
    "keep_detections",
    "CSV_COLUMNS",
]

#: The columns of the CSV file, in order.
CSV_COLUMNS = [
    "id",
    "row",
    "col",
    "x",
    "y",
    "lon",
    "lat",
    "area_px",
    "area",
    "area_m2",
    "peak_score",
    "mean_score",
    "peak_row",
    "peak_col",
    "border_distance",
]

_IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


@dataclass
class Detection:
    """One connected component of the detection map."""

    id: int
    row: float
    col: float
    x: float
    y: float
    area_px: int
    area: float
    peak_score: float
    mean_score: float
    peak_row: int
    peak_col: int
    border_distance: int = 0
    lon: float | None = None
    lat: float | None = None
    area_m2: float | None = None

    def record(self) -> dict[str, object]:
        """The fields by name, in order (``dataclasses.asdict`` without its deep copy)."""
        return dict(vars(self))

    def json_record(self) -> dict[str, object]:
        """:meth:`record` with NaN and infinite values as None (strict JSON, empty CSV cells).

        The fields are Python numbers (or None) already: no recursive conversion needed.
        """
        return {
            k: None if type(v) is float and not math.isfinite(v) else v
            for k, v in vars(self).items()
        }


def find_detections(
    scores: np.ndarray,
    detected: np.ndarray,
    transform: Sequence[float] | None = None,
    *,
    crs: str | None = None,
) -> tuple[list[Detection], np.ndarray]:
    """Label the 8-connected components of ``detected`` and describe each.

    Parameters
    ----------
    scores : numpy.ndarray of shape (rows, cols)
        The score map (NaN at no-data pixels).
    detected : numpy.ndarray of shape (rows, cols)
        The binary detection map (nonzero = detected).
    transform : sequence of 6 floats, optional
        ``(a, b, c, d, e, f)`` from pixel to map coordinates; identity if None.
    crs : str, optional
        WKT (or ``EPSG:n``) of the map coordinates: fills ``lon``, ``lat``
        and ``area_m2``.

    Returns
    -------
    detections : list of Detection
        Sorted by decreasing peak score; ids are 1-based in that order.
    labels : numpy.ndarray of shape (rows, cols), int32
        Component id of each pixel (0 = none), matching the ids.
    """
    from scipy import ndimage

    s = np.asarray(scores, dtype=np.float64)
    mask = np.asarray(detected) != 0
    if s.shape != mask.shape or s.ndim != 2:
        raise ValueError(f"scores {s.shape} and detection map {mask.shape} must be equal 2-D")
    a, b, c, d, e, f = (float(v) for v in (transform or _IDENTITY)[:6])
    pixel_area = abs(a * e - b * d)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    found: list[tuple[float, Detection, int]] = []
    if n:
        # statistics over the detected pixels only (sorting 10^6 pixels for the maxima
        # took most of the time at 10^6 pixels): their flat indices, ids, rows and columns
        index = np.arange(1, n + 1)
        flat = np.flatnonzero(labels)
        lab = labels.ravel()[flat]
        r_px, c_px = np.divmod(flat, mask.shape[1])
        vals = s.ravel()[flat]
        ok = np.isfinite(vals)
        areas = np.bincount(lab, minlength=n + 1)[1:]
        rows_c = np.bincount(lab, weights=r_px, minlength=n + 1)[1:] / areas
        cols_c = np.bincount(lab, weights=c_px, minlength=n + 1)[1:] / areas
        finite = np.where(ok, vals, -np.inf)
        peaks = ndimage.maximum(finite, lab, index)
        peak_at = flat[np.asarray(ndimage.maximum_position(finite, lab, index)).ravel()]
        peak_pos = np.column_stack(np.divmod(peak_at, mask.shape[1]))
        means = np.bincount(lab, weights=np.where(ok, vals, 0.0), minlength=n + 1)[1:] / areas
        edge = np.minimum(
            np.minimum(r_px, mask.shape[0] - 1 - r_px), np.minimum(c_px, mask.shape[1] - 1 - c_px)
        )
        border = ndimage.minimum(edge, lab, index)
        for k in range(n):
            r, cc = float(rows_c[k]), float(cols_c[k])
            x = a * (cc + 0.5) + b * (r + 0.5) + c
            y = d * (cc + 0.5) + e * (r + 0.5) + f
            det = Detection(
                id=0,
                row=r,
                col=cc,
                x=x,
                y=y,
                area_px=int(areas[k]),
                area=float(areas[k]) * pixel_area,
                peak_score=float(peaks[k]),
                mean_score=float(means[k]),
                peak_row=int(peak_pos[k][0]),
                peak_col=int(peak_pos[k][1]),
                border_distance=int(border[k]),
            )
            found.append((float(peaks[k]), det, k + 1))
    found.sort(key=lambda t: -t[0])
    relabel = np.zeros(n + 1, dtype=np.int32)
    detections = []
    for new_id, (_, det, old) in enumerate(found, start=1):
        det.id = new_id
        relabel[old] = new_id
        detections.append(det)
    labels = relabel[labels]
    if crs and detections:
        _georeference(detections, labels, transform, crs)
    return detections, labels


def _crs(crs: str) -> object:
    from rasterio.crs import CRS

    return CRS.from_user_input(crs)


def _georeference(
    detections: list[Detection],
    labels: np.ndarray,
    transform: Sequence[float] | None,
    crs: str,
) -> None:
    """Fill lon, lat (WGS84) and area_m2 of every detection."""
    from rasterio.warp import transform as warp_points

    src = _crs(crs)
    lons, lats = warp_points(
        src, "EPSG:4326", [d.x for d in detections], [d.y for d in detections]
    )
    for det, lon, lat in zip(detections, lons, lats, strict=True):
        det.lon, det.lat = float(lon), float(lat)
    if src.is_projected:
        factor = float(src.linear_units_factor[1])
        for det in detections:
            det.area_m2 = det.area * factor * factor
        return
    from rasterio.warp import transform_geom

    shapes = _footprints(labels, transform)
    for det in detections:
        laea = f"+proj=laea +lat_0={det.lat} +lon_0={det.lon} +datum=WGS84 +units=m"
        geom = transform_geom(src, laea, shapes[det.id])
        det.area_m2 = _polygon_area(geom)


def _ring_area(ring: Sequence[Sequence[float]]) -> float:
    xy = np.asarray(ring, dtype=np.float64)
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _polygon_area(geom: dict[str, object]) -> float:
    """Planar area of a GeoJSON Polygon or MultiPolygon (holes subtracted)."""
    polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
    total = 0.0
    for poly in polys:  # type: ignore[union-attr]
        rings = list(poly)
        total += abs(_ring_area(rings[0])) - sum(abs(_ring_area(r)) for r in rings[1:])
    return total


def keep_detections(
    detections: list[Detection],
    labels: np.ndarray,
    *,
    min_area: int = 1,
    exclude_border: int = 0,
) -> tuple[list[Detection], np.ndarray]:
    """Drop detections smaller than ``min_area`` pixels or within ``exclude_border`` of an edge.

    Parameters
    ----------
    detections, labels :
        As returned by :func:`find_detections`.
    min_area : int, default 1
        Smallest kept area, in pixels.
    exclude_border : int, default 0
        Drop a detection with a pixel in the outer ``exclude_border`` rows or
        columns of the image (0 keeps all).

    Returns
    -------
    detections, labels
        The kept detections renumbered 1.. in the same (peak score) order, and
        the label map with the dropped components set to 0.
    """
    keep = [
        d
        for d in detections
        if d.area_px >= min_area and (exclude_border <= 0 or d.border_distance >= exclude_border)
    ]
    relabel = np.zeros(len(detections) + 1, dtype=np.int32)
    for new_id, det in enumerate(keep, start=1):
        relabel[det.id] = new_id
        det.id = new_id
    return keep, relabel[labels]


def _footprints(
    labels: np.ndarray, transform: Sequence[float] | None
) -> dict[int, dict[str, object]]:
    """GeoJSON geometry (Polygon or MultiPolygon) of every component id, in map coordinates.

    A component is 8-connected, but its footprint is traced 4-connected: pixels
    that touch at a corner only become two polygons of a MultiPolygon that
    share that corner. Traced 8-connected, they would be one ring through the
    corner twice, which the OGC simple-features rules (and GIS validity checks)
    reject as a self-intersection.
    """
    from affine import Affine
    from rasterio import features

    t = Affine(*[float(v) for v in (transform or _IDENTITY)[:6]])
    polys: dict[int, list[list[object]]] = {}
    for geom, value in features.shapes(
        labels.astype(np.int32), mask=labels > 0, connectivity=4, transform=t
    ):
        polys.setdefault(int(value), []).append(geom["coordinates"])
    out: dict[int, dict[str, object]] = {}
    for k, rings in polys.items():
        if len(rings) == 1:
            out[k] = {"type": "Polygon", "coordinates": rings[0]}
        else:
            out[k] = {"type": "MultiPolygon", "coordinates": rings}
    return out


def detections_geojson(
    detections: list[Detection],
    labels: np.ndarray,
    *,
    transform: Sequence[float] | None,
    crs: str,
) -> dict[str, object]:
    """Build the RFC 7946 FeatureCollection of the detections' footprints (WGS84 lon/lat).

    Parameters
    ----------
    detections, labels :
        As returned by :func:`find_detections` (or :func:`keep_detections`).
    transform : sequence of 6 floats or None
        Pixel-to-map transform (identity if None).
    crs : str
        WKT (or ``EPSG:n``) of the map coordinates; the footprints are
        reprojected to WGS84 longitude/latitude as RFC 7946 requires.

    Returns
    -------
    dict
        ``{"type": "FeatureCollection", "features": [...]}``: one Feature per
        detection, its ``properties`` the CSV columns. No other top-level member.
    """
    from rasterio.warp import transform_geom

    shapes = _footprints(labels, transform) if detections else {}
    src = _crs(crs)
    shapes = {k: transform_geom(src, "EPSG:4326", g) for k, g in shapes.items()}
    features = [
        {
            "type": "Feature",
            "id": det.id,
            "geometry": shapes.get(det.id),
            "properties": det.json_record(),
        }
        for det in detections
    ]
    return {"type": "FeatureCollection", "features": features}


#: What the coordinates of :func:`detections_pixel_json` are.
PIXEL_SPACE = (
    "pixel space: x = column, y = row, from the top-left corner of the image; pixel (row r, "
    "column c) covers x c..c+1, y r..r+1. Not geographic: the scene has no CRS"
)


def detections_pixel_json(detections: list[Detection], labels: np.ndarray) -> dict[str, object]:
    """The detections' footprints in pixel space, for a scene without a CRS (not GeoJSON).

    Returns
    -------
    dict
        ``{"coordinates": PIXEL_SPACE, "detections": [{"id", "footprint", "properties"}]}``:
        ``footprint`` a GeoJSON-style Polygon or MultiPolygon in pixel coordinates,
        ``properties`` the CSV columns.
    """
    shapes = _footprints(labels, None) if detections else {}
    return {
        "coordinates": PIXEL_SPACE,
        "detections": [
            {"id": det.id, "footprint": shapes.get(det.id), "properties": det.json_record()}
            for det in detections
        ],
    }


def write_detections_json(path: str | os.PathLike[str], document: dict[str, object]) -> Path:
    """Write a detections document (:func:`detections_geojson`, :func:`detections_pixel_json`)
    to ``path`` atomically and return the path."""
    target = Path(path)
    with atomic_open(target, "w") as fh:
        # the footprints are plain floats (rasterio), the properties json_record()s:
        # no recursive conversion of every coordinate (0.5 s at 10^4 detections)
        fh.write(json.dumps(document, allow_nan=False) + "\n")
    return target


def write_detections_gpkg(
    path: str | os.PathLike[str],
    detections: list[Detection],
    labels: np.ndarray,
    *,
    transform: Sequence[float] | None,
    crs: str,
) -> Path:
    """Write the footprints in the native CRS as the GeoPackage layer ``detections``.

    Parameters
    ----------
    path : str or path-like
        The ``.gpkg`` to write (atomically).
    detections, labels :
        As returned by :func:`find_detections`.
    transform : sequence of 6 floats or None
        Pixel-to-map transform.
    crs : str
        WKT (or ``EPSG:n``) of the map coordinates, stored in the GeoPackage.
    """
    import fiona
    from fiona.crs import CRS as FionaCRS

    from rednmf.io.writers import atomic_path

    shapes = _footprints(labels, transform) if detections else {}
    schema = {
        "geometry": "MultiPolygon",
        "properties": {
            c: "float"
            if c not in ("id", "area_px", "peak_row", "peak_col", "border_distance")
            else "int"
            for c in CSV_COLUMNS
        },
    }
    target = Path(path)
    options: dict[str, object] = {
        "driver": "GPKG",
        "schema": schema,
        "layer": "detections",
        "crs": FionaCRS.from_user_input(crs),
    }
    with atomic_path(target) as tmp:
        tmp.unlink()  # GDAL creates the file itself
        with fiona.open(tmp, "w", **options) as dst:
            for det in detections:
                geom = shapes[det.id]
                if geom["type"] == "Polygon":
                    geom = {"type": "MultiPolygon", "coordinates": [geom["coordinates"]]}
                row = det.record()
                props = {c: row[c] for c in CSV_COLUMNS}
                dst.write({"geometry": geom, "properties": props})
    return target


def write_detections_csv(path: str | os.PathLike[str], detections: list[Detection]) -> Path:
    """Write one CSV row per detection (columns :data:`CSV_COLUMNS`) atomically."""
    return write_csv(path, [d.json_record() for d in detections], CSV_COLUMNS)
