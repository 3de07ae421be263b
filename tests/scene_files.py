"""Scene files written for the tests: a georeferenced ENVI image and a multi-band GeoTIFF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
import spectral.io.envi as envi
from affine import Affine
from rasterio.crs import CRS

#: UTM 11N, 30 m pixels: the georeference of both writers.
EPSG = 32611
TRANSFORM = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4000000.0)


def save_envi(path: Path, cube: np.ndarray, *, interleave="bsq", byteorder=0, **extra) -> Path:
    """Write an ENVI image with a UTM 11N georeference (map info + WKT)."""
    meta = {
        "map info": [
            "UTM",
            "1",
            "1",
            "500000.0",
            "4000000.0",
            "30.0",
            "30.0",
            "11",
            "North",
            "WGS-84",
            "units=Meters",
        ],
        "coordinate system string": CRS.from_epsg(EPSG).to_wkt(),
        **extra,
    }
    envi.save_image(
        str(path),
        cube,
        interleave=interleave,
        byteorder=byteorder,
        metadata=meta,
        force=True,
        ext=".img",
    )
    return path


def save_tif(
    path: Path, cube: np.ndarray, *, nodata=None, crs="EPSG:32611", transform=TRANSFORM, **profile
):
    """Write a (rows, cols, bands) cube as a multi-band GeoTIFF (``profile``: creation options)."""
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=cube.shape[0],
        width=cube.shape[1],
        count=cube.shape[2],
        dtype=cube.dtype.name,
        crs=crs,
        transform=transform,
        nodata=nodata,
        **profile,
    ) as dst:
        dst.write(np.moveaxis(cube, -1, 0))
    return path
