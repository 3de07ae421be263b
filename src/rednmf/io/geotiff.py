"""Read any raster GDAL reads, and write single-band GeoTIFFs, with rasterio.

Bands become the third axis of the cube; the no-data value, the coordinate
reference system (kept as WKT) and the affine transform (kept as the six
numbers ``a, b, c, d, e, f`` of :class:`affine.Affine`) are returned with it.

A raster larger than memory is opened lazily instead (:class:`GeoTiffCube`,
``read_raster(path, lazy=True)``): a read-only ``(rows, cols, bands)`` cube
whose slices read only their window of the file, for the out-of-core fit
(:mod:`rednmf.outofcore`), as a memory-mapped ENVI cube is read.
"""

from __future__ import annotations

import operator
import os
import threading
import warnings
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rednmf.exceptions import InputError, one_line
from rednmf.io.lazy import DiskCube, nan_dtype, nodata_dtype, nodata_hits, split_key
from rednmf.io.mat import check_file
from rednmf.io.writers import atomic_path

__all__ = [
    "GeoTiffCube",
    "Raster",
    "read_raster",
    "read_georef",
    "write_geotiff",
    "describe_crs",
]

#: An affine transform ``(a, b, c, d, e, f)``: x = a*col + b*row + c, y = d*col + e*row + f.
Transform = tuple[float, float, float, float, float, float]


@dataclass
class Raster:
    """What :func:`read_raster` found in a raster file.

    Attributes
    ----------
    cube : numpy.ndarray or GeoTiffCube of shape (rows, cols, bands)
        The bands: in the stored dtype when no pixel is no-data or masked and no
        band is scaled, else float32 (float64 if stored so) with those pixels
        NaN and the scales applied; a :class:`GeoTiffCube` (read window by
        window, the same way) when read with ``lazy=True``.
    driver : str
        GDAL's driver name, e.g. ``'GTiff'``.
    nodata : float or None
        The no-data value of the first band (GDAL's ``nodata``).
    crs : str or None
        The coordinate reference system as WKT.
    transform : tuple of 6 floats or None
        The affine transform; None when the file has no georeference.
    wavelengths : numpy.ndarray or None
        Band centres from the band metadata (GDAL's ``IMAGERY`` domain or the
        ``wavelength`` tag), if every band has one.
    wavelength_units : str or None
        Their units, where the metadata say.
    stored_dtype : numpy.dtype
        The bands' dtype in the file.
    masked : bool
        Whether the file has a mask band (or an alpha band) besides its
        no-data value: its masked pixels are NaN in ``cube``.
    scaled : bool
        Whether the bands carry a scale or an offset (GDAL's per-band
        ``scale``/``offset``): ``cube`` holds ``stored * scale + offset``.
    """

    cube: np.ndarray | GeoTiffCube
    driver: str
    nodata: float | None
    crs: str | None
    transform: Transform | None
    wavelengths: np.ndarray | None
    wavelength_units: str | None
    stored_dtype: np.dtype
    masked: bool = False
    scaled: bool = False


@dataclass(frozen=True)
class _Decoding:
    """How a raster's stored values become the cube's, as GDAL defines them.

    The pixels equal to the no-data value (:func:`rednmf.io.lazy.nodata_hits`)
    or masked by a mask band become NaN; the others become
    ``stored * scale + offset`` where a band has a scale or an offset.
    """

    nodata: float | None
    masked: bool
    scales: np.ndarray | None
    offsets: np.ndarray | None

    @classmethod
    def of(cls, src: object) -> _Decoding:
        from rasterio.enums import MaskFlags

        flags = src.mask_flag_enums  # type: ignore[attr-defined]
        masked = any(MaskFlags.all_valid not in f and MaskFlags.nodata not in f for f in flags)
        scales = np.asarray(src.scales, dtype=np.float64)  # type: ignore[attr-defined]
        offsets = np.asarray(src.offsets, dtype=np.float64)  # type: ignore[attr-defined]
        if np.all(scales == 1) and np.all(offsets == 0):
            scales = offsets = None
        return cls(_nodata_of(src), masked, scales, offsets)

    def dtype(self, stored: np.dtype) -> np.dtype:
        """The cube's dtype: the stored one unless pixels may become NaN or be scaled."""
        if self.masked or self.scales is not None:
            return nan_dtype(stored)
        return nodata_dtype(stored, self.nodata)

    def read(self, src: object, bands: list[int], window: object = None) -> np.ndarray:
        """The 1-based ``bands`` of ``window`` (None: all of it) as ``(rows, cols, bands)``.

        In the stored dtype when no pixel is no-data and nothing is scaled;
        else in :meth:`dtype`.
        """
        data = src.read(bands, window=window)  # type: ignore[attr-defined]
        block = np.ascontiguousarray(np.moveaxis(data, 0, -1))
        del data
        hit = None
        if self.nodata is not None and not np.isnan(self.nodata):
            hit = nodata_hits(block, self.nodata)
        if self.masked:
            masks = src.read_masks(bands, window=window)  # type: ignore[attr-defined]
            invalid = np.moveaxis(masks, 0, -1) == 0
            hit = invalid if hit is None else hit | invalid
        if self.scales is None and (hit is None or not hit.any()):
            return block
        out = block.astype(self.dtype(block.dtype), copy=False)
        if self.scales is not None:
            index = np.asarray(bands) - 1
            out *= self.scales[index].astype(out.dtype)
            out += self.offsets[index].astype(out.dtype)  # type: ignore[index]
        if hit is not None:
            out[hit] = np.nan
        return out


def _gcps_warning(src: object, p: Path) -> str | None:
    """The warning for a raster georeferenced by ground control points only (not used)."""
    gcps = src.gcps[0]  # type: ignore[attr-defined]
    if not gcps or src.crs is not None:  # type: ignore[attr-defined]
        return None
    return (
        f"{p.name} is georeferenced by {len(gcps)} ground control points, which rednmf does "
        "not use: its outputs are in pixel coordinates; warp the file first (e.g. gdalwarp) "
        "to georeference them"
    )


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


def _wavelengths(src: object) -> tuple[np.ndarray | None, str | None]:
    """Band centres and their units, from the bands' metadata, if every band has one.

    The ``wavelength`` tag (and ``wavelength_units``) that GDAL's ENVI driver
    writes into each band's default domain, in the units the file gives, else
    GDAL's ``IMAGERY`` domain (``CENTRAL_WAVELENGTH_UM``, micrometres).
    """
    for domain, key, unit_key, default_unit in (
        (None, "wavelength", "wavelength_units", None),
        ("IMAGERY", "central_wavelength_um", None, "Micrometers"),
    ):
        values, units = [], set()
        for i in range(1, src.count + 1):  # type: ignore[attr-defined]
            tags = src.tags(i, ns=domain) if domain else src.tags(i)  # type: ignore[attr-defined]
            tags = {k.lower(): v for k, v in tags.items()}
            try:
                values.append(float(tags[key]))
            except (KeyError, ValueError):
                break
            units.add(tags.get(unit_key, default_unit) if unit_key else default_unit)
        else:
            if values:
                unit = units.pop() if len(units) == 1 else None
                return np.asarray(values), unit
    return None, None


def read_raster(path: str | os.PathLike[str], *, lazy: bool = False) -> Raster:
    """Read every band of a raster file (GeoTIFF or any format GDAL reads).

    Parameters
    ----------
    path : str or path-like
        The raster file.
    lazy : bool, default=False
        Read nothing but the metadata: ``cube`` is then a :class:`GeoTiffCube`
        whose slices read their window from the file (for scenes larger than
        memory).

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
    cube: np.ndarray | GeoTiffCube | None = GeoTiffCube(p) if lazy else None
    try:
        with _quiet(), rasterio.open(p) as src:
            decoding = _Decoding.of(src)
            wavelengths, units = _wavelengths(src)
            if cube is None:
                _check_real(src, p)
                cube = decoding.read(src, list(range(1, src.count + 1)))
            raster = Raster(
                cube=cube,
                driver=str(src.driver),
                nodata=decoding.nodata,
                crs=None if src.crs is None else src.crs.to_wkt(),
                transform=_transform_of(src),
                wavelengths=wavelengths,
                wavelength_units=units,
                stored_dtype=np.dtype(src.dtypes[0]),
                masked=decoding.masked,
                scaled=decoding.scales is not None,
            )
            gcps = _gcps_warning(src, p)
    except InputError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # RasterioIOError, CPLE_* errors of a damaged file
        raise _unreadable(p, exc) from exc
    if gcps:
        warnings.warn(gcps, UserWarning, stacklevel=2)
    return raster


def _check_real(src: object, p: Path) -> None:
    if any(str(d).startswith("complex") for d in src.dtypes):  # type: ignore[attr-defined]
        raise InputError(f"{p.name} holds complex bands; pass real-valued data")


def _nodata_of(src: object) -> float | None:
    nodata = src.nodata  # type: ignore[attr-defined]
    return None if nodata is None else float(nodata)


def _unreadable(p: Path, exc: BaseException) -> InputError:
    """The error of a damaged raster, with GDAL's own reason (the exception it chains to)."""
    reasons: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(reasons) < 3:
        text = one_line(seen).replace("See previous exception for details.", "").strip()
        if text and text not in reasons:
            reasons.append(text.rstrip("."))
        seen = seen.__cause__ or seen.__context__
    return InputError(
        f"cannot read {p} as a raster ({': '.join(reasons) or type(exc).__name__}); "
        "the file may be truncated or damaged; pass a complete GeoTIFF, ENVI, .mat, .npz or "
        ".npy file"
    )


def _axis_window(key: object, n: int, axis: str) -> tuple[int, int, np.ndarray | None, bool]:
    """``(start, stop, local, drop)``: the rows (columns) to read for ``key`` on an axis of ``n``.

    ``local`` picks the selected ones out of ``start:stop`` (None: all of
    them); ``drop`` is True for an integer index (the axis disappears).
    """
    if isinstance(key, slice):
        start, stop, step = key.indices(n)
        idx = range(start, stop, step)
        if len(idx) == 0:
            return 0, 0, None, False
        lo, hi = min(idx[0], idx[-1]), max(idx[0], idx[-1]) + 1
        local = None if step == 1 else np.arange(len(idx)) * step + (idx[0] - lo)
        return lo, hi, local, False
    if isinstance(key, bool | np.bool_):
        raise IndexError(f"GeoTiffCube: a boolean {axis} index is not supported")
    try:
        i = operator.index(key)  # type: ignore[arg-type]
    except TypeError:
        raise IndexError(
            f"GeoTiffCube supports integers and slices on the {axis} axis, got {key!r}; "
            "use np.asarray(cube) for other indexing (it reads the whole raster)"
        ) from None
    if not -n <= i < n:
        raise IndexError(f"index {i} is out of bounds for the {axis} axis of size {n}")
    i %= n
    return i, i + 1, None, True


def _band_indexes(key: object, n: int) -> tuple[list[int], bool]:
    """0-based band indices selected by ``key`` and whether the band axis disappears."""
    if isinstance(key, slice):
        return list(range(*key.indices(n))), False
    if np.ndim(key) == 0 and not isinstance(key, bool | np.bool_):
        start, _, _, _ = _axis_window(key, n, "band")
        return [start], True
    arr = np.asarray(key)
    if arr.ndim != 1:
        raise IndexError(f"GeoTiffCube: band index must be 1-D, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        if arr.size != n:
            raise IndexError(f"boolean band index has {arr.size} entries for {n} bands")
        return [int(i) for i in np.flatnonzero(arr)], False
    if arr.size and arr.dtype.kind not in "iu":
        raise IndexError(f"GeoTiffCube: band indices must be integers, got {arr.dtype}")
    if arr.size and not ((arr >= -n) & (arr < n)).all():
        raise IndexError(f"band index out of bounds for {n} bands")
    return [int(i) % n for i in arr], False


class GeoTiffCube(DiskCube):
    """A raster's ``(rows, cols, bands)`` cube on disk, read window by window.

    The lazy, read-only counterpart of the cube :func:`read_raster` loads:
    ``cube[r0:r1]``, ``cube[r0:r1, c0:c1]``, ``cube[r, c]``, ``cube[..., k]``
    (integers and slices on rows and columns; integers, slices, or integer or
    boolean arrays on bands) read only the rows and columns asked for, through
    a rasterio :class:`~rasterio.windows.Window`, and return a NumPy array
    with the bands last. Values equal to the no-data value become NaN, as
    :func:`rednmf.io.scene.read_scene` does for an eagerly read cube; ``dtype``
    is then float32 (float64 if stored so) whether or not the file holds the
    value. ``np.asarray(cube)`` reads the whole raster.

    With ``shape``, ``dtype``, ``ndim`` and this slicing it is what the
    out-of-core REDNMF fit (:mod:`rednmf.outofcore`) reads a memory-mapped
    ENVI cube with; ``on_disk`` marks it as such for
    :func:`rednmf._memory.is_memory_mapped`.

    The file is opened on the first read and kept open, read under a lock
    (the solver reads blocks from several threads; a GDAL dataset is not
    thread-safe), and closed by :meth:`close`, on leaving a ``with`` block or
    when the cube is garbage-collected; a later read opens it again. A pickled
    cube (e.g. sent to another process) carries the path only and opens its
    own handle; so does a forked process.

    Parameters
    ----------
    path : str or path-like
        The raster file (GeoTIFF or any raster GDAL reads).

    Raises
    ------
    InputError
        If GDAL cannot open the file, or it holds complex numbers or bands of
        different dtypes.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import rasterio

        p = check_file(path)
        try:
            with _quiet(), rasterio.open(p) as src:
                _check_real(src, p)
                dtypes = {np.dtype(d) for d in src.dtypes}
                if len(dtypes) != 1:
                    raise InputError(
                        f"{p.name} has bands of different dtypes "
                        f"({', '.join(sorted(map(str, dtypes)))}); pass one dtype for all bands"
                    )
                rows, cols, bands = int(src.height), int(src.width), int(src.count)
                decoding = _Decoding.of(src)
        except InputError:
            raise
        except Exception as exc:
            raise _unreadable(p, exc) from exc
        self.path = p
        self.shape = (rows, cols, bands)
        self.stored_dtype = dtypes.pop()
        self.nodata = decoding.nodata
        self._decoding = decoding
        self.dtype = decoding.dtype(self.stored_dtype)
        self._init_handle()

    # -- the file handle --------------------------------------------------------------

    def _init_handle(self) -> None:
        self._lock = threading.Lock()
        self._src: object | None = None
        self._pid = os.getpid()
        self._finalizer: weakref.finalize | None = None

    def _dataset(self) -> object:
        """The open dataset (opened here if needed); call with ``self._lock`` held."""
        import rasterio

        if self._src is None:
            with _quiet():
                src = rasterio.open(self.path)
            if (int(src.height), int(src.width), int(src.count)) != self.shape:
                shape = (int(src.height), int(src.width), int(src.count))
                src.close()
                raise InputError(
                    f"{self.path} changed on disk: it is now {'x'.join(map(str, shape))}, "
                    f"was {'x'.join(map(str, self.shape))}; read the scene again"
                )
            self._src = src
            self._finalizer = weakref.finalize(self, src.close)
        return self._src

    def close(self) -> None:
        """Close the file now (a later read opens it again)."""
        with self._lock:
            if self._finalizer is not None:
                self._finalizer()  # closes the dataset once, and forgets it
            self._src, self._finalizer = None, None

    @property
    def closed(self) -> bool:
        """Whether no file handle is open."""
        return self._src is None

    def __enter__(self) -> GeoTiffCube:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        for key in ("_lock", "_src", "_pid", "_finalizer"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._init_handle()

    def _check_process(self) -> None:
        """In a forked child, drop the parent's handle and lock (never close them here)."""
        if self._pid != os.getpid():
            if self._finalizer is not None:
                self._finalizer.detach()
            self._init_handle()

    # -- array protocol ---------------------------------------------------------------

    def __repr__(self) -> str:
        return f"GeoTiffCube({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"

    def __getitem__(self, key: object) -> np.ndarray:
        keys = split_key(key, "GeoTiffCube")
        rows, cols, bands = self.shape
        r0, r1, r_local, r_drop = _axis_window(keys[0], rows, "row")
        c0, c1, c_local, c_drop = _axis_window(keys[1], cols, "column")
        band_list, b_drop = _band_indexes(keys[2], bands)
        block = self.read_window(r0, r1, c0, c1, band_list)
        if r_local is not None:
            block = block[r_local]
        if c_local is not None:
            block = block[:, c_local]
        drop = tuple(ax for ax, d in enumerate((r_drop, c_drop, b_drop)) if d)
        return block.squeeze(axis=drop) if drop else block

    def read_window(
        self, r0: int, r1: int, c0: int, c1: int, bands: Sequence[int] | None = None
    ) -> np.ndarray:
        """Rows ``r0:r1``, columns ``c0:c1`` (and 0-based ``bands``) as ``(rows, cols, bands)``.

        One windowed read of the file (and of its mask band, if any); no-data and
        masked pixels become NaN, and a band's scale and offset are applied.
        """
        from rasterio.windows import Window

        band_list = list(range(self.shape[2])) if bands is None else list(bands)
        h, w = max(0, r1 - r0), max(0, c1 - c0)
        if h == 0 or w == 0 or not band_list:
            return np.empty((h, w, len(band_list)), dtype=self.dtype)
        self._check_process()
        try:
            with self._lock:
                src = self._dataset()
                block = self._decoding.read(src, [b + 1 for b in band_list], Window(c0, r0, w, h))
        except InputError:
            raise
        except MemoryError:
            raise
        except Exception as exc:
            raise InputError(
                f"cannot read rows {r0}-{r1 - 1}, columns {c0}-{c1 - 1} of {self.path} "
                f"({one_line(exc)}); check that the file is complete"
            ) from exc
        return block.astype(self.dtype, copy=False)


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
        if epsg is not None and name in ("", "unnamed"):  # e.g. from an ENVI map info
            name = _wkt_name(CRS.from_epsg(epsg).to_wkt())
        if epsg is not None:
            return f"EPSG:{epsg} ({name})" if name else f"EPSG:{epsg}"
        return name or "custom CRS"
    except Exception:
        return "unparsed CRS"


def grid_mismatch(
    crs: str | None,
    transform: Sequence[float] | None,
    other_crs: str | None,
    other_transform: Sequence[float] | None,
) -> str | None:
    """How two georeferenced grids of the same size differ, or None when they agree.

    Grids that are not both georeferenced (a CRS or a transform missing on
    either side) cannot be compared: None. The CRSs are compared by GDAL
    (``rasterio.crs.CRS``), the transforms to a thousandth of a pixel.
    """
    if not (crs and other_crs and transform is not None and other_transform is not None):
        return None
    from rasterio.crs import CRS

    try:
        same_crs = CRS.from_wkt(crs) == CRS.from_wkt(other_crs)
    except Exception:
        same_crs = crs == other_crs
    if not same_crs:
        return f"its CRS is {describe_crs(other_crs)}, the scene's {describe_crs(crs)}"
    a, b = np.asarray(transform[:6], float), np.asarray(other_transform[:6], float)
    pixel = max(abs(a[0]), abs(a[1]), abs(a[3]), abs(a[4]), 1e-12)
    if np.abs(a - b).max() > 1e-3 * pixel:
        numbers = lambda t: "(" + ", ".join(f"{v:.12g}" for v in t) + ")"  # noqa: E731
        return f"its transform is {numbers(b)}, the scene's {numbers(a)}"
    return None


def _wkt_name(wkt: str) -> str:
    start = wkt.find('"')
    end = wkt.find('"', start + 1)
    return wkt[start + 1 : end] if 0 <= start < end else ""


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
            raise InputError(f"cannot write {target} ({one_line(exc)})") from exc
    return target
