"""A hyperspectral scene read from disk: the cube, its ground truth and where it came from.

:func:`read_scene` reads MATLAB (.mat v5 and v7.3), NumPy (.npy, .npz), ENVI
(.hdr + data, via Spectral Python) and any raster GDAL reads (GeoTIFF, via
rasterio). For ENVI and rasters, bands flagged bad (ENVI ``bbl``) are dropped,
values equal to the no-data value become NaN (the cube is then float32, or
float64 if it was), and the CRS and affine transform are kept. NaN marks
no-data throughout: the detectors leave such pixels out (see
:class:`rednmf.detectors._base.BaseDetector`).

Scenes larger than memory stay on disk. An ENVI cube without bad bands or a
no-data value is always the read-only memory map of its data file; with
either, it is a :class:`rednmf.io.lazy.MemmapCube` over that map (dropping the
``bbl`` bands and setting the no-data value to NaN slice by slice) when its
in-memory detection would not fit, or always with ``lazy=True``, else an
in-memory copy. A GDAL raster is a :class:`rednmf.io.geotiff.GeoTiffCube`,
read window by window, under the same rule. :class:`rednmf.detectors.rednmf.REDNMF`
fits a cube on disk out of core when it does not fit in memory (or always with
``engine="out-of-core"``); the other detectors read it into memory.

In .mat and .npz files, :func:`read_scene` picks the cube and the ground truth
among the variables:

* the cube is the unique 3-D numeric variable (``--data-var`` otherwise);
* the ground truth is the 2-D numeric variable whose shape equals the cube's
  ``(rows, cols)``; ``None`` when there is none. When several match, those
  that mark no pixel are passed over (unless all are empty), and the first of
  :data:`GT_NAMES` among the rest (else the first in the file) is taken with a
  warning naming the choice; ``--gt-var`` chooses another. ``detect``, ``info``,
  ``demo`` and :func:`rednmf.datasets.load_benchmark` all use this one rule.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rednmf._memory import fits_in_memory
from rednmf.exceptions import InputError
from rednmf.io.lazy import MemmapCube, nodata_dtype, nodata_hits
from rednmf.io.mat import check_file, is_numeric, load_mat, load_npy, load_npz

if TYPE_CHECKING:
    from rednmf.io.geotiff import GeoTiffCube

__all__ = [
    "GT_NAMES",
    "Scene",
    "list_variables",
    "read_scene",
    "read_map",
    "select_variables",
    "split_var",
]

#: Ground-truth names preferred, in this order (case-insensitive), when several
#: variables of a file match the cube's ``(rows, cols)``.
GT_NAMES = ("map", "gt", "groundtruth", "ground_truth")

_SUFFIXES = (".mat", ".npy", ".npz")
_RASTER_HINT = "pass a .mat, .npz, .npy, ENVI .hdr or GeoTIFF file"


@dataclass
class Scene:
    """A hyperspectral scene.

    Attributes
    ----------
    cube : numpy.ndarray, GeoTiffCube or MemmapCube of shape (rows, cols, bands)
        The data, in the dtype it was stored with; a read-only memory map for
        ENVI (a :class:`~rednmf.io.lazy.MemmapCube` over it when bands are
        dropped or a no-data value is set and the cube is read lazily), a
        :class:`~rednmf.io.geotiff.GeoTiffCube` (read window by window) for a
        raster read lazily.
    gt : numpy.ndarray of shape (rows, cols) or None
        Ground truth as a boolean map (True = anomaly), or None.
    name : str
        Short name, the file's stem.
    path : pathlib.Path or None
        The file the scene was read from.
    variables : dict
        ``{name: description}`` of every variable in the file, e.g.
        ``{"data": "100x100x205 uint16"}``, for messages and reports.
    data_var, gt_var : str or None
        The variables chosen as cube and ground truth.
    format : str
        What was read, e.g. ``'MATLAB v5'``, ``'ENVI (bsq, little-endian)'``,
        ``'GTiff'``.
    wavelengths : numpy.ndarray or None
        Centre wavelengths of the cube's bands.
    wavelength_units : str or None
    bad_bands : numpy.ndarray
        0-based indices (in the file) of the bands dropped as bad.
    nodata : float or None
        The file's no-data value (its pixels are NaN in ``cube``).
    masked : bool
        Whether the file's mask band marked pixels as no-data (NaN in ``cube``).
    scaled : bool
        Whether ``cube`` holds the file's values with its bands' scale and
        offset applied.
    crs : str or None
        Coordinate reference system as WKT.
    transform : tuple of 6 floats or None
        Affine transform ``(a, b, c, d, e, f)`` from (col, row) to map x, y.
    """

    cube: np.ndarray | GeoTiffCube | MemmapCube
    gt: np.ndarray | None
    name: str
    path: Path | None = None
    variables: dict[str, str] = field(default_factory=dict)
    data_var: str | None = None
    gt_var: str | None = None
    format: str = ""
    wavelengths: np.ndarray | None = None
    wavelength_units: str | None = None
    bad_bands: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    nodata: float | None = None
    masked: bool = False
    scaled: bool = False
    crs: str | None = None
    transform: tuple[float, float, float, float, float, float] | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(rows, cols, bands)`` of the cube."""
        rows, cols, bands = self.cube.shape
        return int(rows), int(cols), int(bands)

    def _row_blocks(self) -> Iterator[np.ndarray]:
        """The cube in blocks of rows (the whole cube when it is in memory)."""
        if isinstance(self.cube, np.ndarray):
            yield self.cube
            return
        rows, cols, bands = self.shape
        step = max(1, (1 << 22) // max(1, cols * bands))
        for r in range(0, rows, step):
            yield np.asarray(self.cube[r : r + step])

    def all_nan_bands(self) -> np.ndarray:
        """Indices of the bands that are NaN (no-data) at every pixel: detectors drop them."""
        if self.cube.dtype.kind != "f":
            return np.zeros(0, dtype=np.intp)
        every = np.ones(self.shape[2], dtype=bool)
        for block in self._row_blocks():
            every &= np.isnan(block).all(axis=(0, 1))
        return np.flatnonzero(every)

    def _used_bands(self) -> np.ndarray:
        """Bool per band: not NaN everywhere (:meth:`all_nan_bands`), as detectors keep them."""
        used = np.ones(self.shape[2], dtype=bool)
        used[self.all_nan_bands()] = False
        return used

    def partial_nodata_pixels(self) -> int:
        """The no-data pixels (:meth:`nodata_mask`) that are NaN in some of its bands only.

        A no-data value that also occurs in valid data marks such pixels; a
        detector leaves them out like any no-data pixel.
        """
        if self.cube.dtype.kind != "f":
            return 0
        used = self._used_bands()
        n = 0
        for block in self._row_blocks():
            nan = np.isnan(_bands(block, used))
            n += int(np.count_nonzero(nan.any(axis=2) & ~nan.all(axis=2)))
        return n

    def nodata_mask(self) -> np.ndarray:
        """``(rows, cols)`` bool map of the no-data pixels: a NaN in any band that is not
        NaN everywhere (:meth:`all_nan_bands`, which the detectors drop).

        A cube on disk (:class:`~rednmf.io.geotiff.GeoTiffCube`,
        :class:`~rednmf.io.lazy.MemmapCube`) is read in blocks of rows.
        """
        if self.cube.dtype.kind != "f":
            return np.zeros(self.cube.shape[:2], dtype=bool)
        used = self._used_bands()
        if not used.any():  # NaN everywhere: every pixel is no-data
            return np.ones(self.shape[:2], dtype=bool)
        return np.concatenate(
            [np.isnan(_bands(block, used)).any(axis=2) for block in self._row_blocks()]
        )


def _bands(block: np.ndarray, used: np.ndarray) -> np.ndarray:
    """``block[:, :, used]``, without a copy when every band is used."""
    return block if used.all() else block[:, :, used]


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        shape = "x".join(str(n) for n in value.shape) or "scalar"
        return f"{shape} {value.dtype}"
    return str(value)


def _listing(variables: dict[str, object], names: Sequence[str] | None = None) -> str:
    names = list(variables) if names is None else list(names)
    if not names:
        return "none"
    return ", ".join(f"{n} ({_describe(variables[n])})" for n in names)


def _named_variable(variables: dict[str, object], name: str, source: str, flag: str) -> object:
    """The variable ``name`` of the file ``source``; if missing, an error listing the others.

    ``flag`` is the option to name another with (``'--data-var'``).
    """
    if name not in variables:
        raise InputError(
            f"variable {name!r} not found in {source}; "
            f"available: {_listing(variables)}; pass {flag} with one of these"
        )
    return variables[name]


def select_variables(
    variables: dict[str, object],
    *,
    source: str,
    data_var: str | None = None,
    gt_var: str | None = None,
) -> tuple[str, str | None]:
    """Choose the cube and ground-truth variables of a file.

    Parameters
    ----------
    variables : dict
        ``{name: value}`` as returned by :func:`rednmf.io.mat.load_mat`.
    source : str
        The file name, used in messages.
    data_var, gt_var : str, optional
        Explicit choices; they must exist. Without ``gt_var``, several
        ground-truth candidates are settled by :data:`GT_NAMES` (else the first
        in the file), with a ``UserWarning`` naming the choice.

    Returns
    -------
    (str, str or None)
        The cube's and the ground truth's variable names.

    Raises
    ------
    InputError
        If a named variable is missing or unsuitable, or the cube is ambiguous.
    """
    numeric = {n: v for n, v in variables.items() if is_numeric(v)}

    if data_var is not None:
        value = _named_variable(variables, data_var, source, "--data-var")
        if not (is_numeric(value) and value.ndim == 3):
            raise InputError(
                f"variable {data_var!r} in {source} is {_describe(value)}, not a 3-D numeric "
                "cube (rows, cols, bands); pass --data-var with a 3-D variable"
            )
        cube_name = data_var
    else:
        cubes = [n for n, v in numeric.items() if v.ndim == 3]
        if not cubes:
            raise InputError(
                f"no 3-D numeric variable (rows, cols, bands) in {source}; "
                f"found: {_listing(variables)}; save the cube as a 3-D array"
            )
        if len(cubes) > 1:
            raise InputError(
                f"{source} holds several 3-D variables: {_listing(variables, cubes)}; "
                "pass --data-var NAME to choose the cube"
            )
        cube_name = cubes[0]

    shape = numeric[cube_name].shape
    rows, cols = shape[:2]
    _check_bands_last(numeric, cube_name, source, gt_var)

    if gt_var is not None:
        value = _named_variable(variables, gt_var, source, "--gt-var")
        if not (is_numeric(value) and value.shape == (rows, cols)):
            raise InputError(
                f"ground truth {gt_var!r} in {source} is {_describe(value)}, but the cube is "
                f"{rows}x{cols}; pass --gt-var with a {rows}x{cols} variable"
            )
        return cube_name, gt_var

    gts = [n for n, v in numeric.items() if n != cube_name and v.shape == (rows, cols)]
    if len(gts) > 1:
        # a map that marks no pixel cannot be the truth of a detection, if another marks some
        marked = [n for n in gts if np.any(np.asarray(numeric[n]) != 0)] or gts
        preferred = [n for p in GT_NAMES for n in marked if n.lower() == p]
        choice = (preferred or marked)[0]
        empty = [n for n in gts if n not in marked]
        passed = f" ({', '.join(map(repr, empty))} marks no pixel)" if empty else ""
        warnings.warn(
            f"{source} holds several {rows}x{cols} variables that could be the ground truth "
            f"({_listing(variables, gts)}); using {choice!r}{passed}, pass --gt-var NAME to "
            "choose another",
            UserWarning,
            stacklevel=3,
        )
        return cube_name, choice
    return cube_name, (gts[0] if gts else None)


def _check_bands_last(
    numeric: dict[str, np.ndarray], cube_name: str, source: str, gt_var: str | None
) -> None:
    """Refuse a cube stored bands first: a truth matching its last two axes, not its first two.

    ``data`` of 60 x 40 x 40 beside a 40 x 40 ``map`` would otherwise run as a 60 x 40 image
    of 40 bands, without its ground truth.
    """
    shape = numeric[cube_name].shape
    if shape[1:] == shape[:2]:
        return  # both readings give a map of the same shape: nothing to tell them apart
    names = [gt_var] if gt_var is not None else list(numeric)
    maps = [n for n in names if n in numeric and numeric[n].ndim == 2]
    if any(numeric[n].shape == shape[:2] for n in maps):
        return
    late = [n for n in maps if numeric[n].shape == shape[1:]]
    if late:
        dims = "x".join(str(n) for n in shape)
        raise InputError(
            f"cube {cube_name!r} in {source} is {dims} and {late[0]!r} is "
            f"{shape[1]}x{shape[2]}, its last two axes: the cube looks stored bands first "
            f"({shape[0]} bands of {shape[1]}x{shape[2]}); save it as rows x cols x bands "
            f"(NumPy: np.moveaxis(cube, 0, -1); MATLAB: permute(cube, [2 3 1]))"
        )


def read_scene(
    path: str | os.PathLike[str],
    data_var: str | None = None,
    gt_var: str | None = None,
    *,
    lazy: bool | None = None,
) -> Scene:
    """Read a hyperspectral scene from a .mat, .npz, .npy, ENVI or GDAL-readable file.

    Parameters
    ----------
    path : str or path-like
        A MATLAB file (v5 or v7.3), a ``.npz`` archive, a ``.npy`` file
        holding the 3-D cube alone, an ENVI header (``.hdr``) or data file
        with its ``.hdr`` beside it (BSQ, BIL or BIP, either byte order), or
        any raster GDAL reads (GeoTIFF: bands are the third axis).
    data_var : str, optional
        Name of the cube variable; needed only when the file holds several
        3-D arrays.
    gt_var : str, optional
        Name of the ground-truth variable; without it, several 2-D arrays
        matching the cube's ``(rows, cols)`` are settled by :data:`GT_NAMES`
        with a warning (:func:`select_variables`).
    lazy : bool or None, default=None
        For a GDAL raster (GeoTIFF): return its cube as a
        :class:`~rednmf.io.geotiff.GeoTiffCube`, which reads only the window
        each slice asks for (``True``), or read it into memory (``False``).
        ``None``: lazy exactly when the in-memory detector path would not fit
        in the memory available (:func:`rednmf._memory.fits_in_memory`), so
        that ``REDNMF()`` (its default engine) then fits it out of core, as it does
        a memory-mapped ENVI cube. ENVI: an image without bad bands or a no-data
        value is always memory mapped; with either, ``lazy`` decides in the same
        way between a :class:`~rednmf.io.lazy.MemmapCube` and an in-memory
        copy. Other formats ignore it.

    Returns
    -------
    Scene
        The cube as stored (any numeric dtype; float with NaN at no-data
        values; an ENVI cube without dropped bands or no-data stays memory
        mapped; a lazy raster's is a ``GeoTiffCube``), the ground truth as a
        boolean map (nonzero = anomaly) or None, and the wavelengths, bad
        bands, no-data value, CRS and transform where the file has them.

    Raises
    ------
    InputError
        If the file cannot be read, a named variable is missing, or the cube is ambiguous;
        the message is one line naming the problem and the fix.
    """
    if lazy not in (None, True, False):
        raise InputError(f"lazy must be None, True or False, got {lazy!r}")
    p = check_file(path)
    suffix = p.suffix.lower()
    if suffix not in _SUFFIXES:
        if data_var is not None or gt_var is not None:
            raise InputError(
                f"{p.name} is an image file; --data-var and --gt-var apply to .mat and .npz "
                "files only (use --gt FILE for a separate ground truth)"
            )
        return _read_image(p, lazy=lazy)

    if suffix == ".npy":
        if data_var is not None or gt_var is not None:
            raise InputError(
                f"{p.name} is a .npy file holding one array; --data-var and --gt-var "
                "apply to .mat and .npz files only"
            )
        arr = load_npy(p)
        if not (is_numeric(arr) and arr.ndim == 3):
            raise InputError(
                f"{p.name} holds a {_describe(arr)} array; a .npy scene must be a 3-D "
                "numeric cube (rows, cols, bands)"
            )
        return Scene(
            cube=arr,
            gt=None,
            name=p.stem,
            path=p,
            variables={"array": _describe(arr)},
            data_var=None,
            format="NumPy .npy",
        )

    variables = load_npz(p) if suffix == ".npz" else load_mat(p)
    fmt = "NumPy .npz" if suffix == ".npz" else _mat_format(p)
    cube_name, gt_name = select_variables(
        variables, source=p.name, data_var=data_var, gt_var=gt_var
    )
    cube = variables[cube_name]
    assert isinstance(cube, np.ndarray)
    gt = None
    if gt_name is not None:
        gt_arr = variables[gt_name]
        assert isinstance(gt_arr, np.ndarray)
        if np.iscomplexobj(gt_arr) or not np.all(np.isfinite(gt_arr)):
            raise InputError(
                f"ground truth {gt_name!r} in {p.name} holds complex, NaN or infinite values; "
                "it must be a 0/1 map"
            )
        gt = np.asarray(gt_arr != 0)
    return Scene(
        cube=cube,
        gt=gt,
        name=p.stem,
        path=p,
        variables={n: _describe(v) for n, v in variables.items()},
        data_var=cube_name,
        gt_var=gt_name,
        format=fmt,
    )


def list_variables(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{name: 'ROWSxCOLS dtype'}`` of the variables of a .mat or .npz file ({} for others).

    For ``info``, which shows what a file holds even when :func:`read_scene`
    cannot choose its cube.
    """
    p = check_file(path)
    suffix = p.suffix.lower()
    if suffix not in (".mat", ".npz"):
        return {}
    variables = load_npz(p) if suffix == ".npz" else load_mat(p)
    return {n: _describe(v) for n, v in variables.items()}


def _mat_format(p: Path) -> str:
    with open(p, "rb") as fh:
        head = fh.read(128)
    return "MATLAB v7.3 (HDF5)" if b"MATLAB 7.3" in head[:20] else "MATLAB v5"


def _apply_nodata(cube: np.ndarray, nodata: float | None) -> np.ndarray:
    """Return ``cube`` with the no-data value replaced by NaN (as float32/float64)."""
    if nodata is None or np.isnan(nodata):
        return cube
    hit = nodata_hits(cube, nodata)
    if not hit.any():
        return cube
    # C order: a band-first (BSQ) memory map is copied once here, not again by check_cube
    out = cube.astype(nodata_dtype(cube.dtype, nodata), order="C")
    out[hit] = np.nan
    return out


def _envi_cube(
    data: np.ndarray, bad: np.ndarray, nodata: float | None, lazy: bool | None
) -> np.ndarray | MemmapCube:
    """The cube of an ENVI memory map ``data``, bands ``bad`` dropped, ``nodata`` as NaN.

    Without either the memory map itself. Otherwise, when ``lazy`` (or, for
    ``None``, when the in-memory detector path would not fit) a
    :class:`~rednmf.io.lazy.MemmapCube` that applies both slice by slice, else
    an in-memory copy.
    """
    has_nodata = nodata is not None and not np.isnan(nodata)
    if bad.size == 0 and not has_nodata:
        return data
    keep = np.setdiff1d(np.arange(data.shape[2]), bad)
    if lazy is None:
        lazy = not fits_in_memory((*data.shape[:2], keep.size))
    if lazy:
        return MemmapCube(data, keep if bad.size else None, nodata)
    cube = np.ascontiguousarray(data[:, :, keep]) if bad.size else data
    return _apply_nodata(cube, nodata)


def _read_image(p: Path, lazy: bool | None = False) -> Scene:
    """Read an ENVI image or a GDAL raster into a Scene (``lazy``: see :func:`read_scene`)."""
    from rednmf.io.envi import find_envi_header, read_envi

    suffix = p.suffix.lower()
    header = find_envi_header(p)
    if suffix == ".hdr" or (header is not None and suffix not in (".tif", ".tiff")):
        from rednmf.io.geotiff import read_georef

        img = read_envi(p, drop_bad_bands=False)
        crs, transform = read_georef(img.data_file)
        cube = _envi_cube(img.cube, img.bad_bands, img.nodata, lazy)
        return Scene(
            cube=cube,
            gt=None,
            name=img.header.stem,
            path=p,
            variables={"image": f"{'x'.join(map(str, cube.shape))} {img.cube.dtype}"},
            format=f"ENVI ({img.interleave}, {img.byte_order})",
            wavelengths=img.wavelengths,
            wavelength_units=img.wavelength_units,
            bad_bands=img.bad_bands,
            nodata=img.nodata,
            crs=crs,
            transform=transform,
        )

    from rednmf.io.geotiff import read_raster

    def read(lazy_read: bool):
        if suffix in (".tif", ".tiff", ".vrt", ".jp2", ".img", ".nc", ".h5", ".hdf"):
            return read_raster(p, lazy=lazy_read)
        # Let GDAL try any other raster, but say clearly what is expected if it fails.
        try:
            return read_raster(p, lazy=lazy_read)
        except InputError as exc:
            raise InputError(
                f"unsupported file type {p.suffix or '(no extension)'!r} for {p}; {_RASTER_HINT}"
            ) from exc

    if lazy is False:
        raster = read(False)
    else:
        raster = read(True)  # the metadata only
        if lazy is None and fits_in_memory(raster.cube.shape):
            raster = read(False)
    cube = raster.cube
    if cube.ndim != 3:  # pragma: no cover - rasterio always gives (bands, rows, cols)
        raise InputError(f"{p.name} is not a 3-D raster; {_RASTER_HINT}")
    return Scene(
        cube=cube,
        gt=None,
        name=p.stem,
        path=p,
        variables={"bands": f"{'x'.join(map(str, cube.shape))} {raster.stored_dtype}"},
        format=raster.driver,
        wavelengths=raster.wavelengths,
        wavelength_units=raster.wavelength_units,
        nodata=raster.nodata,
        masked=raster.masked,
        scaled=raster.scaled,
        crs=raster.crs,
        transform=raster.transform,
    )


def split_var(spec: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """Split ``FILE[:VAR]`` into the path and the variable name.

    The part after the last ``:`` is a variable name only when it holds no path
    separator and the whole string is not an existing file.
    """
    text = os.fspath(spec)
    head, sep, tail = text.rpartition(":")
    plain = bool(sep and head and tail) and "/" not in tail and "\\" not in tail
    if plain and not Path(text).exists():
        return Path(head), tail
    return Path(text), None


def read_map(
    spec: str | os.PathLike[str],
    shape: tuple[int, int],
    *,
    what: str = "ground truth",
    option: str = "--gt",
    grid: tuple[str | None, Sequence[float] | None] | None = None,
) -> tuple[np.ndarray, str | None]:
    """Read a 2-D map (ground truth or mask) of ``shape`` from ``FILE[:VAR]``.

    Parameters
    ----------
    spec : str or path-like
        ``FILE`` or ``FILE:VAR``: a .mat/.npz (the unique 2-D numeric variable,
        or ``VAR``), a 2-D .npy, or a single-band raster (GeoTIFF, ENVI).
    shape : (int, int)
        The scene's ``(rows, cols)``; the map must match it.
    what, option : str
        Words for the messages, e.g. ``"mask"`` and ``"--mask"``.
    grid : (crs, transform), optional
        The scene's georeference: a georeferenced raster map must be on the
        same grid (:func:`rednmf.io.geotiff.grid_mismatch`).

    Returns
    -------
    (numpy.ndarray of bool, str or None)
        The map (nonzero = True) and the variable read.

    Raises
    ------
    InputError
        If the file cannot be read, the variable is missing or ambiguous, the
        map is not 2-D, holds NaN or infinite values, has another shape, or is
        georeferenced on another grid than ``grid``.
    """
    path, var = split_var(spec)
    p = check_file(path)
    suffix = p.suffix.lower()
    rows, cols = shape
    if suffix in (".mat", ".npz"):
        variables = load_npz(p) if suffix == ".npz" else load_mat(p)
        if var is not None:
            arr = _named_variable(variables, var, p.name, f"{option} {p.name}:NAME")
        else:
            maps = [n for n, v in variables.items() if is_numeric(v) and v.ndim == 2]
            if len(maps) != 1:
                found = "no" if not maps else "several"
                raise InputError(
                    f"{p.name} holds {found} 2-D variables ({_listing(variables, maps)}); "
                    f"pass {option} {p.name}:NAME to choose the {what}"
                )
            var = maps[0]
            arr = variables[var]
    elif var is not None:
        raise InputError(
            f"{option} {p.name}:{var}: a variable name applies to .mat and .npz files only"
        )
    elif suffix == ".npy":
        arr = load_npy(p)
    else:
        image = _read_image(p)
        arr = image.cube
        if grid is not None:
            from rednmf.io.geotiff import grid_mismatch

            differs = grid_mismatch(grid[0], grid[1], image.crs, image.transform)
            if differs is not None:
                raise InputError(
                    f"{what} {p.name} is not on the scene's grid: {differs}; pass a {what} "
                    "with the scene's CRS and transform"
                )
        if arr.ndim == 3:
            if arr.shape[2] != 1:
                raise InputError(
                    f"{what} {p.name} has {arr.shape[2]} bands; pass a single-band map"
                )
            arr = arr[:, :, 0]
    if not isinstance(arr, np.ndarray) or not is_numeric(arr) or arr.ndim != 2:
        raise InputError(
            f"{what} in {p.name} is {_describe(arr)}, not a 2-D numeric map; "
            f"pass a {rows}x{cols} 0/1 map"
        )
    if arr.shape != (rows, cols):
        raise InputError(
            f"{what} in {p.name} is {arr.shape[0]}x{arr.shape[1]} but the scene is "
            f"{rows}x{cols}; pass a map of the same scene"
        )
    if np.iscomplexobj(arr) or (arr.dtype.kind == "f" and not np.all(np.isfinite(arr))):
        raise InputError(
            f"{what} in {p.name} holds complex, NaN or infinite values; it must be a 0/1 map"
        )
    return np.asarray(arr != 0), var
