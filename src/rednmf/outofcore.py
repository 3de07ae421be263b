"""REDNMF on a scene larger than memory: the cube stays on disk, block by block.

The in-memory detector path makes several full copies of the scene (a float
cube, ``X``, the scaled ``X``, ``S``, the anomaly cube). For a memory-mapped
cube (the ENVI reader's), or a raster read window by window
(:class:`rednmf.io.geotiff.GeoTiffCube`, a GeoTIFF's),
:class:`rednmf.detectors.rednmf.REDNMF` with ``engine=OutOfCore()`` (or
automatically, when the scene would not fit) instead

* scans the cube once in blocks of rows for no-data, unusable bands, the fill
  spectrum and the global minimum and maximum (:func:`scan_cube`);
* hands the solver :class:`CubeMatrix`, a ``bands x pixels`` view whose
  ``X[:, a:b]`` reads the pixels ``a:b`` from the file, drops bad bands, fills
  no-data and scales them, so the solver's block sweeps read the file once per
  iteration and no scaled copy exists;
* keeps ``S`` in a temporary :class:`numpy.memmap` (set up by the engine,
  :meth:`rednmf.engines.Engine.out_of_core_data`) and scores it block by
  block (:func:`rednmf.scoring.from_matrix.score_matrix`: the PCA from
  blockwise sums, then the detectors on the projected cube, ``n_pca``
  bands at most).

What stays in memory is ``H`` (rank x pixels), a few ``bands x bands`` sums,
one block of each array, the ``(rows, cols)`` masks and scores, and BRAD's
projected cube. The results equal the in-memory path's up to the order of
floating-point sums (the tests check the scores).
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np

from rednmf._memory import fits_in_memory, is_memory_mapped
from rednmf._validation import check_not_all_constant, drop_all_nan_bands
from rednmf.exceptions import InputError
from rednmf.preprocessing import scale_block
from rednmf.scoring.windows import tiles

__all__ = ["CubeMatrix", "is_memory_mapped", "fits_in_memory", "scan_cube"]

#: Pixels per block of the scans here (the solver has its own block size).
BLOCK_PIXELS = 1 << 15


def _float(block: np.ndarray) -> np.ndarray:
    """A block as :func:`rednmf._validation.check_cube` converts the cube: float32/64 kept."""
    return block if block.dtype in (np.float32, np.float64) else block.astype(np.float64)


def _row_blocks(rows: int, cols: int) -> list[tuple[int, int]]:
    step = max(1, BLOCK_PIXELS // max(1, cols))
    return [(r, min(rows, r + step)) for r in range(0, rows, step)]


def scan_cube(
    cube: np.ndarray, mask: np.ndarray | None, min_bands: int, name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """Find the valid pixels, the usable bands and the fill spectrum, block by block.

    The rules (and messages) of every detector's fit, in memory too
    (:meth:`rednmf.detectors._base.BaseDetector._mask_invalid` calls it): pixels
    with a NaN in a kept band or outside ``mask`` are invalid and filled with
    the mean spectrum of the valid ones; all-NaN and constant bands are dropped
    with a warning. One pass when the cube holds no NaN, two otherwise; no copy
    of the cube, blocks of rows at a time.

    Returns
    -------
    valid : (rows, cols) bool
    kept : indices of the bands used
    fill : the fill spectrum over ``kept`` in the cube's float dtype, or None
        when every pixel is valid
    lo, hi : per kept band, minimum and maximum over the valid pixels
    """
    if cube.ndim != 3 or not np.issubdtype(cube.dtype, np.number) or np.iscomplexobj(cube):
        raise InputError(
            f"cube has shape {cube.shape} and dtype {cube.dtype}; pass a real-valued "
            "(rows, cols, bands) array"
        )
    rows, cols, bands = cube.shape
    user = np.ones((rows, cols), dtype=bool) if mask is None else np.asarray(mask) != 0
    if mask is not None and user.shape != (rows, cols):
        raise InputError(
            f"mask has shape {user.shape} but the cube is {rows}x{cols}; "
            "pass a (rows, cols) mask of the same scene"
        )
    if not user.any():
        raise InputError("the mask excludes every pixel; pass a mask with 1 on the scene")
    is_float = cube.dtype.kind == "f"
    blocks = _row_blocks(rows, cols)

    def stats(kept: np.ndarray, find_valid: bool):
        lo = np.full(kept.size, np.inf)
        hi = np.full(kept.size, -np.inf)
        total = np.zeros(kept.size)
        finite_count = np.zeros(bands, dtype=np.int64)
        valid = user.copy()
        for r0, r1 in blocks:
            B = _float(np.asarray(cube[r0:r1]))
            if is_float and not find_valid:
                if np.isinf(B).any():
                    n_inf = int(np.count_nonzero(np.isinf(B)))
                    raise InputError(
                        f"cube holds infinite value(s) ({n_inf} in rows {r0}-{r1 - 1}); "
                        "replace them by NaN (no-data) or clip them before detection"
                    )
                finite_count += (~np.isnan(B[user[r0:r1]])).sum(axis=0)
            B = B[:, :, kept] if kept.size < bands else B
            if find_valid:
                valid[r0:r1] &= ~np.isnan(B).any(axis=2)
            P = B[valid[r0:r1]]
            if P.size:
                lo = np.minimum(lo, P.min(axis=0))
                hi = np.maximum(hi, P.max(axis=0))
                total += P.sum(axis=0, dtype=np.float64)
        return valid, lo, hi, total, finite_count

    kept = np.arange(bands)
    valid, lo, hi, total, finite_count = stats(kept, find_valid=False)
    dropped: list[str] = []
    has_nan = is_float and bool((finite_count < user.sum()).any())
    if has_nan:
        kept = drop_all_nan_bands(finite_count == 0, kept, dropped)
        valid, lo, hi, total, _ = stats(kept, find_valid=True)
    n_valid = int(valid.sum())
    if n_valid < 2:
        raise InputError(
            f"only {n_valid} valid pixel(s) (finite in every band and inside the mask); "
            "at least 2 are needed: check the no-data value and the mask"
        )
    constant = lo == hi
    check_not_all_constant(constant, n_valid)
    if constant.any():
        dropped.append(f"{int(constant.sum())} constant")
        kept, lo, hi, total = kept[~constant], lo[~constant], hi[~constant], total[~constant]
    if kept.size < min_bands:
        raise InputError(
            f"only {kept.size} usable band(s) after dropping all-NaN and constant bands; "
            f"{name} needs at least {min_bands}"
        )
    if dropped:
        warnings.warn(
            f"dropped {' and '.join(dropped)} band(s) of {bands}; {kept.size} band(s) used",
            UserWarning,
            stacklevel=3,
        )
    fill = None
    if n_valid < rows * cols:
        dtype = cube.dtype if is_float else np.float64
        fill = (total / n_valid).astype(dtype)
    return valid, kept, fill, lo, hi


class CubeMatrix:
    """The scaled ``bands x pixels`` matrix of a cube, formed block by block on demand.

    ``X[:, a:b]`` reads pixels ``a:b`` (row-major) from ``cube``, keeps the
    bands ``kept``, puts ``fill`` at the invalid pixels, converts to ``dtype``
    and scales as :func:`rednmf.preprocessing.scale_data` would have scaled
    the whole matrix (same operations, so the same values). Has ``shape``,
    ``dtype``, ``ndim``, ``flags`` and :meth:`mean`: enough for the block solver and the
    initialisation.
    """

    def __init__(
        self,
        cube: np.ndarray,
        dtype: np.dtype,
        *,
        kept: np.ndarray,
        valid: np.ndarray,
        fill: np.ndarray | None,
        lo: np.ndarray,
        hi: np.ndarray,
        scale: str,
    ) -> None:
        rows, cols, bands = cube.shape
        self.cube, self.rows, self.cols = cube, rows, cols
        self.kept = None if kept.size == bands else kept
        self.valid = valid.ravel()
        self.fill = fill
        self.dtype = np.dtype(dtype)
        self.shape = (int(kept.size), rows * cols)
        self.ndim = 2
        self.scale = scale
        # min / max of the matrix in the working dtype (casting is monotonic)
        lo_t = float(np.asarray(lo.min()).astype(self.dtype))
        hi_t = float(np.asarray(hi.max()).astype(self.dtype))
        if scale == "minmax" and hi_t == lo_t:
            raise InputError(
                "the cube is constant (every value equals "
                f"{lo_t:g}); there is nothing to detect — check the file or the variable"
            )
        if scale != "minmax" and lo_t < 0:
            raise InputError(
                f"scale={scale!r} needs nonnegative data, the minimum is {lo_t:g}; "
                "use scale='minmax'"
            )
        if scale == "max" and hi_t == 0:
            raise InputError("the cube is all zeros; there is nothing to detect")
        self.lo, self.hi = lo_t, hi_t

    def pixels(self, a: int, b: int) -> np.ndarray:
        """Pixels ``a:b`` as a ``(b - a, bands)`` array, filled, in the working dtype, unscaled."""
        cols = self.cols
        r0, r1 = a // cols, -(-b // cols)
        if r1 - r0 == 1:  # within one row (a wide scene): read only those columns
            B = _float(np.asarray(self.cube[r0, a - r0 * cols : b - r0 * cols]))
        else:
            B = _float(np.asarray(self.cube[r0:r1]))
            B = B.reshape(-1, B.shape[2])[a - r0 * cols : b - r0 * cols]
        if self.kept is not None:
            B = B[:, self.kept]
        if self.fill is not None:
            bad = ~self.valid[a:b]
            if bad.any():
                B = np.array(B, copy=True)
                B[bad] = self.fill
        return B.astype(self.dtype, copy=False)

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        rows_key, cols_key = key
        if rows_key != slice(None) or cols_key.step not in (None, 1):
            raise IndexError("CubeMatrix supports X[:, a:b] only")
        a, b, _ = cols_key.indices(self.shape[1])
        B = self.pixels(a, max(a, b))
        div = self.hi - self.lo if self.scale == "minmax" else self.hi
        B = scale_block(B, self.scale, self.lo, div).astype(self.dtype, copy=False)
        return np.asfortranarray(B.T)  # pixel-major, as the in-memory REDNMF lays out X

    @property
    def flags(self) -> SimpleNamespace:
        """Layout of the matrix: pixel-major (Fortran-ordered ``d x n``), as its blocks."""
        return SimpleNamespace(f_contiguous=True, c_contiguous=self.shape[0] == 1)

    def mean(self, dtype: np.dtype | None = np.float64) -> float:
        """Mean of every entry, accumulated in float64 block by block."""
        blocks = tiles(self.shape[1], BLOCK_PIXELS)
        total = sum(float(self[:, a:b].sum(dtype=np.float64)) for a, b in blocks)
        return total / (self.shape[0] * self.shape[1])
