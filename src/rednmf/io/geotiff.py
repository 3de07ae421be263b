"""Read any raster GDAL reads, and write single-band GeoTIFFs, with rasterio.

Bands become the third axis of the cube; the no-data value, the coordinate
reference system (kept as WKT) and the affine transform (kept as the six
numbers ``a, b, c, d, e, f`` of :class:`affine.Affine`) are returned with it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rednmf.exceptions import InputError
from rednmf.io.mat import _one_line, check_file
from rednmf.io.writers import atomic_path

__all__ = [
    "Raster",
    "read_raster",
    "read_georef",
    "write_geotiff",
    "describe_crs",
    "epsg_code",
]

#: An affine transform ``(a, b, c, d, e, f)``: x = a*col + b*row + c, y = d*col + e*row + f.
Transform = tuple[float, float, float, float, float, float]


@dataclass
class Raster:
    """What :func:`read_raster` found in a raster file.

    Attributes
    ----------
    cube : numpy.ndarray of shape (rows, cols, bands)
        The bands, in the stored dtype.
    driver : str
        GDAL's driver name, e.g. ``'GTiff'``.
    nodata : float or None
        The no-data value of the first band (GDAL's ``nodata``).
    crs : str or None
        The coordinate reference system as WKT.
    transform : tuple of 6 floats or None
        The affine transform; None when the file has no georeference.
    wavelengths : numpy.ndarray or None
        Band centres from the band metadata (``wavelength`` tag), if every
        band has one.
    """

    cube: np.ndarray
    driver: str
    nodata: float | None
    crs: str | None
    transform: Transform | None
    wavelengths: np.ndarray | None


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence rasterio's warnings (e.g. NotGeoreferencedWarning) and GDAL's logging."""
    import logging

    logger = logging.getLogger("rasterio")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _transform_of(src: object) -> Transform | None:
    from affine import Affine

    t = src.transform  # type: ignore[attr-defined]
    if src.crs is None and t == Affine.identity():  # type: ignore[attr-defined]
        return None
    return (float(t.a), float(t.b), float(t.c), float(t.d), float(t.e), float(t.f))


def _wavelengths(src: object) -> np.ndarray | None:
    values = []
    for i in range(1, src.count + 1):  # type: ignore[attr-defined]
        tags = {k.lower(): v for k, v in src.tags(i).items()}  # type: ignore[attr-defined]
        try:
            values.append(float(tags["wavelength"]))
        except (KeyError, ValueError):
            return None
    return np.asarray(values) if values else None


def read_raster(path: str | os.PathLike[str]) -> Raster:
    """Read every band of a raster file (GeoTIFF or any format GDAL reads).

    Parameters
    ----------
    path : str or path-like
        The raster file.

    Returns
    -------
    Raster

    Raises
    ------
    InputError
        If GDAL cannot open or read the file, or it holds complex numbers.
    """
    import rasterio

    p = check_file(path)
    try:
        with _quiet(), rasterio.open(p) as src:
            dtypes = set(src.dtypes)
            if any(d.startswith("complex") for d in dtypes):
                raise InputError(f"{p.name} holds complex bands; pass real-valued data")
            data = src.read()  # (bands, rows, cols)
            raster = Raster(
                cube=np.ascontiguousarray(np.moveaxis(data, 0, -1)),
                driver=str(src.driver),
                nodata=None if src.nodata is None else float(src.nodata),
                crs=None if src.crs is None else src.crs.to_wkt(),
                transform=_transform_of(src),
                wavelengths=_wavelengths(src),
            )
    except InputError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # RasterioIOError, CPLE_* errors of a damaged file
        raise InputError(
            f"cannot read {p} as a raster ({_one_line(exc)}); pass a complete GeoTIFF, "
            "ENVI, .mat, .npz or .npy file"
        ) from exc
    return raster


def read_georef(path: str | os.PathLike[str]) -> tuple[str | None, Transform | None]:
    """Return ``(crs_wkt, transform)`` of a raster through GDAL, or ``(None, None)``."""
    try:
        import rasterio

        with _quiet(), rasterio.open(Path(path)) as src:
            return (None if src.crs is None else src.crs.to_wkt()), _transform_of(src)
    except Exception:  # no georeference GDAL can read: none
        return None, None


def describe_crs(wkt: str | None) -> str:
    """A short name of a CRS: ``'EPSG:32611 (WGS 84 / UTM zone 11N)'``, or ``'none'``."""
    if not wkt:
        return "none"
    try:
        from rasterio.crs import CRS

        crs = CRS.from_wkt(wkt)
        epsg = crs.to_epsg()
        name = _wkt_name(crs.to_wkt())
        if epsg is not None:
            return f"EPSG:{epsg} ({name})" if name else f"EPSG:{epsg}"
        return name or "custom CRS"
    except Exception:
        return "unparsed CRS"


def _wkt_name(wkt: str) -> str:
    start = wkt.find('"')
    end = wkt.find('"', start + 1)
    return wkt[start + 1 : end] if 0 <= start < end else ""


def epsg_code(wkt: str | None) -> int | None:
    """The EPSG code of a WKT CRS, or None."""
    if not wkt:
        return None
    try:
        from rasterio.crs import CRS

        return CRS.from_wkt(wkt).to_epsg()
    except Exception:
        return None


def write_geotiff(
    path: str | os.PathLike[str],
    array: np.ndarray,
    *,
    crs: str | None = None,
    transform: Sequence[float] | None = None,
    nodata: float | None = None,
) -> Path:
    """Write a 2-D array as a single-band, deflate-compressed GeoTIFF, atomically.

    Parameters
    ----------
    path : str or path-like
        The ``.tif`` to write.
    array : numpy.ndarray of shape (rows, cols)
        Floats are written as float32 (predictor 3), integers in their dtype
        (predictor 2).
    crs : str, optional
        WKT (or ``'EPSG:n'``) of the coordinate reference system.
    transform : sequence of 6 floats, optional
        ``(a, b, c, d, e, f)`` of the affine transform.
    nodata : float, optional
        The no-data value; NaN for a float map.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    InputError
        If the file cannot be written.
    """
    import rasterio
    from affine import Affine
    from rasterio.crs import CRS

    arr = np.asarray(array)
    if arr.ndim != 2:
        raise InputError(f"a GeoTIFF map must be 2-D, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        arr = arr.astype(np.float32)
        predictor = 3
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
        predictor = 2
    else:
        predictor = 2
    profile = {
        "driver": "GTiff",
        "height": arr.shape[0],
        "width": arr.shape[1],
        "count": 1,
        "dtype": arr.dtype.name,
        "compress": "deflate",
        "predictor": predictor,
        "nodata": nodata,
    }
    if crs:
        profile["crs"] = CRS.from_user_input(crs)
    if transform is not None:
        profile["transform"] = Affine(*[float(v) for v in list(transform)[:6]])
    target = Path(path)
    with atomic_path(target) as tmp:
        try:
            with _quiet(), rasterio.open(tmp, "w", **profile) as dst:
                dst.write(arr, 1)
        except Exception as exc:
            raise InputError(f"cannot write {target} ({_one_line(exc)})") from exc
    return target
