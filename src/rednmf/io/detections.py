"""Detections as connected components of a binary map, written as GeoJSON and CSV.

A detection is an 8-connected group of pixels whose score exceeds the
threshold. For each one the centroid is given in pixel coordinates (row and
column of the pixel centres' mean, 0-based) and in map coordinates (the
affine transform applied to the pixel centre, ``x = a*(col+0.5) + b*(row+0.5)
+ c``), with the area (pixels and map units squared) and the peak and mean
score.

GeoJSON: the footprint of each detection is a polygon in the input's CRS;
when that CRS has an EPSG code it is named by the (GeoJSON 2008) ``crs``
member, which QGIS and GDAL honour. Without a georeference the coordinates are
pixel coordinates (x = column, y = row).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rednmf.io.writers import atomic_open, jsonable, write_csv

__all__ = [
    "Detection",
    "find_detections",
    "detections_geojson",
    "write_detections_geojson",
    "write_detections_csv",
    "CSV_COLUMNS",
]

#: The columns of the CSV file, in order.
CSV_COLUMNS = [
    "id",
    "row",
    "col",
    "x",
    "y",
    "area_px",
    "area",
    "peak_score",
    "mean_score",
    "peak_row",
    "peak_col",
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


def find_detections(
    scores: np.ndarray,
    detected: np.ndarray,
    transform: Sequence[float] | None = None,
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
        index = np.arange(1, n + 1)
        rows_c, cols_c = (
            np.asarray(v) for v in zip(*ndimage.center_of_mass(mask, labels, index), strict=True)
        )
        finite = np.where(np.isfinite(s), s, -np.inf)
        peaks = ndimage.maximum(finite, labels, index)
        peak_pos = ndimage.maximum_position(finite, labels, index)
        means = ndimage.mean(np.where(np.isfinite(s), s, 0.0), labels, index)
        areas = ndimage.sum(mask, labels, index)
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
            )
            found.append((float(peaks[k]), det, k + 1))
    found.sort(key=lambda t: -t[0])
    relabel = np.zeros(n + 1, dtype=np.int32)
    detections = []
    for new_id, (_, det, old) in enumerate(found, start=1):
        det.id = new_id
        relabel[old] = new_id
        detections.append(det)
    return detections, relabel[labels]


def _footprints(
    labels: np.ndarray, transform: Sequence[float] | None
) -> dict[int, dict[str, object]]:
    """GeoJSON geometry (Polygon or MultiPolygon) of every component id, in map coordinates."""
    from affine import Affine
    from rasterio import features

    t = Affine(*[float(v) for v in (transform or _IDENTITY)[:6]])
    polys: dict[int, list[list[object]]] = {}
    for geom, value in features.shapes(
        labels.astype(np.int32), mask=labels > 0, connectivity=8, transform=t
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
    transform: Sequence[float] | None = None,
    epsg: int | None = None,
    properties: dict[str, object] | None = None,
) -> dict[str, object]:
    """Build the GeoJSON FeatureCollection of the detections' footprints.

    Parameters
    ----------
    detections, labels :
        As returned by :func:`find_detections`.
    transform : sequence of 6 floats, optional
        Pixel-to-map transform; identity (pixel coordinates) if None.
    epsg : int, optional
        EPSG code of the map coordinates, named in the ``crs`` member.
    properties : dict, optional
        Extra members of the collection (e.g. method, threshold).
    """
    shapes = _footprints(labels, transform) if detections else {}
    features = [
        {
            "type": "Feature",
            "id": det.id,
            "geometry": shapes.get(det.id),
            "properties": asdict(det),
        }
        for det in detections
    ]
    collection: dict[str, object] = {"type": "FeatureCollection"}
    if epsg is not None:
        collection["crs"] = {
            "type": "name",
            "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}"},
        }
    if properties:
        collection.update(properties)
    collection["features"] = features
    return collection


def write_detections_geojson(
    path: str | os.PathLike[str],
    detections: list[Detection],
    labels: np.ndarray,
    *,
    transform: Sequence[float] | None = None,
    epsg: int | None = None,
    properties: dict[str, object] | None = None,
) -> Path:
    """Write :func:`detections_geojson` to ``path`` atomically and return the path."""
    collection = detections_geojson(
        detections, labels, transform=transform, epsg=epsg, properties=properties
    )
    target = Path(path)
    with atomic_open(target, "w") as fh:
        fh.write(json.dumps(jsonable(collection), allow_nan=False) + "\n")
    return target


def write_detections_csv(path: str | os.PathLike[str], detections: list[Detection]) -> Path:
    """Write one CSV row per detection (columns :data:`CSV_COLUMNS`) atomically."""
    return write_csv(path, [asdict(d) for d in detections], CSV_COLUMNS)
