"""Input and parameter checks, declared once and shared by every detector.

A cube is ``(rows, cols, bands)`` at the edges of the library; inside the
solvers it is the matrix ``X`` of shape ``(bands, pixels)`` as in the paper.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np

from rednmf.exceptions import InputError

__all__ = [
    "check_cube",
    "cube_to_matrix",
    "matrix_to_cube",
    "check_int",
    "MAX_MAGNITUDE",
    "all_finite",
    "check_magnitude",
    "check_real",
    "check_choice",
    "check_dtype",
    "check_not_all_constant",
    "exact_float",
    "masked_to_nan",
]


def all_finite(arr: np.ndarray) -> bool:
    """Whether every entry of a float array is finite.

    One summation (no temporary array): a NaN or an infinite entry makes the
    sum non-finite, so a finite sum proves the array finite; only when the sum
    is not finite (a NaN, an infinity, or an overflow of the sum itself) are
    the entries tested one by one.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(arr)):
            return True
    return bool(np.all(np.isfinite(arr)))


def exact_float(dtype: np.dtype) -> np.dtype:
    """The smallest float dtype that holds every value of ``dtype`` exactly.

    float32 for booleans and integers of at most 16 bits (24 bits of mantissa),
    float64 for wider integers; a float dtype is kept.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return dtype
    return np.dtype(np.float32 if dtype.kind == "b" or dtype.itemsize <= 2 else np.float64)


def masked_to_nan(cube: np.ma.MaskedArray) -> np.ndarray:
    """The data of a masked array, NaN where masked (in :func:`exact_float`'s dtype)."""
    mask = np.ma.getmaskarray(cube)
    if not mask.any() or cube.dtype.kind not in "biuf":  # check_cube names other dtypes
        return np.asarray(cube.data)
    arr = np.array(cube.data, dtype=exact_float(cube.dtype), order="C")
    arr[mask] = np.nan
    return arr


def check_cube(
    cube: object, *, min_pixels: int = 2, min_bands: int = 2, allow_nan: bool = False
) -> np.ndarray:
    """Validate a hyperspectral cube and return it as a floating-point array.

    Parameters
    ----------
    cube : array-like of shape (rows, cols, bands)
        The scene. Integers of at most 16 bits (and booleans) are converted to
        float32, which holds them exactly, wider integers to float64
        (:func:`exact_float`); float32 and float64 are kept. The masked entries
        of a :class:`numpy.ma.MaskedArray` become NaN (no-data), as in a NumPy
        array with NaN.
    min_pixels, min_bands : int
        Smallest acceptable number of pixels and bands.
    allow_nan : bool, default=False
        Accept NaN values (no-data, handled by
        :meth:`rednmf.detectors._base.BaseDetector.fit`) as long as the cube is
        not entirely NaN. Infinite values are always rejected.

    Returns
    -------
    numpy.ndarray
        The cube as float32 or float64, C-contiguous.

    Raises
    ------
    InputError
        If the array is not 3-D, holds infinite values (or NaN values when
        ``allow_nan`` is False, or only NaN values), or is too small.
    """
    arr = masked_to_nan(cube) if np.ma.isMaskedArray(cube) else np.asarray(cube)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise InputError(
            f"cube has dtype {arr.dtype}; pass a numeric array of shape (rows, cols, bands)"
        )
    if np.iscomplexobj(arr):
        raise InputError("cube is complex; pass real-valued reflectance or radiance")
    if arr.ndim != 3:
        raise InputError(
            f"cube must be 3-D (rows, cols, bands), got shape {arr.shape}; "
            "reshape it or pick the right variable"
        )
    rows, cols, bands = arr.shape
    if rows * cols < min_pixels:
        raise InputError(
            f"cube has {rows * cols} pixel(s); at least {min_pixels} are needed for a background"
        )
    if bands < min_bands:
        raise InputError(
            f"cube has {bands} band(s); at least {min_bands} are needed "
            "(check the axis order: bands must be the last axis)"
        )
    if arr.dtype not in (np.float32, np.float64):
        # a band-first cube: one copy, not two
        arr = arr.astype(exact_float(arr.dtype), order="C")
    if arr.dtype.kind == "f" and not all_finite(arr):
        n_inf = int(np.count_nonzero(np.isinf(arr)))
        if n_inf:
            raise InputError(
                f"cube holds {n_inf} infinite value(s); replace them by NaN (no-data) or "
                "clip them before detection"
            )
        if not allow_nan:
            n_nan = int(np.count_nonzero(np.isnan(arr)))
            raise InputError(
                f"cube holds {n_nan} NaN value(s); replace or mask them before detection"
            )
        if np.all(np.isnan(arr)):
            raise InputError(
                "cube is all NaN (no valid pixel); check the file, the variable and its "
                "no-data value"
            )
    return np.ascontiguousarray(arr)


#: Largest magnitude accepted: squares stay finite in float64, values finite in float32.
MAX_MAGNITUDE = 1e36


def check_magnitude(data: np.ndarray) -> None:
    """Refuse values so large that squaring them (or casting to float32) overflows."""
    if data.dtype.kind != "f" or data.size == 0:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        top = max(abs(float(np.nanmax(data))), abs(float(np.nanmin(data))))
    if top > MAX_MAGNITUDE:
        power = int(np.floor(np.log10(top)))
        raise InputError(
            f"values reach {top:.3g}: the detectors' squares and float32 arithmetic overflow "
            f"above {MAX_MAGNITUDE:g}; if they mark no-data, declare that value in the file "
            "(GDAL's nodata, ENVI's 'data ignore value'), else divide the cube by a constant "
            f"(e.g. 1e{power}) first"
        )


def cube_to_matrix(cube: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Reshape a ``(rows, cols, bands)`` cube into ``X`` of shape ``(bands, pixels)``.

    Pixels are taken in row-major (C) order, so pixel ``j`` is
    ``(j // cols, j % cols)``.
    """
    rows, cols, bands = cube.shape
    return np.ascontiguousarray(cube.reshape(rows * cols, bands).T), (rows, cols)


def matrix_to_cube(X: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`cube_to_matrix`: ``(bands, pixels)`` to ``(rows, cols, bands)``."""
    rows, cols = shape
    return np.ascontiguousarray(X.T.reshape(rows, cols, X.shape[0]))


def check_int(name: str, value: object, *, low: int | None = None, high: int | None = None) -> int:
    """Check that ``value`` is an integer in ``[low, high]`` and return it."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InputError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if low is not None and value < low:
        raise InputError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise InputError(f"{name} must be <= {high}, got {value}")
    return value


def check_real(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
) -> float:
    """Check that ``value`` is a finite real number in the given range and return it."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InputError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise InputError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (not low_inclusive and value == low)):
        op = ">=" if low_inclusive else ">"
        raise InputError(f"{name} must be {op} {low}, got {value}")
    if high is not None and value > high:
        raise InputError(f"{name} must be <= {high}, got {value}")
    return value


def check_choice(name: str, value: object, choices: tuple[object, ...]) -> object:
    """Check that ``value`` is one of ``choices`` and return it."""
    if value not in choices:
        opts = ", ".join(repr(c) for c in choices)
        raise InputError(f"{name} must be one of {opts}, got {value!r}")
    return value


def check_dtype(value: object) -> np.dtype:
    """Accept ``'float32'``/``'float64'`` (or the numpy types) and return the dtype."""
    try:
        dt = np.dtype(value)
    except TypeError as exc:
        raise InputError(f"dtype must be 'float32' or 'float64', got {value!r}") from exc
    if dt not in (np.float32, np.float64):
        raise InputError(f"dtype must be 'float32' or 'float64', got {value!r}")
    return dt


def drop_all_nan_bands(all_nan: np.ndarray, kept: np.ndarray, dropped: list[str]) -> np.ndarray:
    """The bands of ``kept`` that are not NaN over every usable pixel.

    ``all_nan[i]`` says whether band ``kept[i]`` is NaN everywhere; a note is appended
    to ``dropped``. Raises :class:`InputError` when no band is left.
    """
    if all_nan.all():
        raise InputError(
            "every band is NaN over the usable pixels (no valid pixel); check the "
            "no-data value and the mask"
        )
    if all_nan.any():
        dropped.append(f"{int(all_nan.sum())} all-NaN")
        return kept[~all_nan]
    return kept


def check_not_all_constant(constant: np.ndarray, n_valid: int) -> None:
    """Refuse a cube whose every band is constant over its ``n_valid`` valid pixels.

    Every pixel then has the same spectrum: no pixel can stand out, and the
    detectors' background statistics are singular. One line, before the fit.
    """
    if constant.all():
        raise InputError(
            f"every band is constant over the {n_valid} valid pixels (they all have the same "
            "spectrum), so no pixel can stand out; check that the file holds the scene "
            "(its no-data value, --mask)"
        )
