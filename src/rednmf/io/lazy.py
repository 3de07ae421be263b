"""Cubes that stay on disk: index splitting, no-data to NaN, and a memory-mapped view.

A scene larger than memory is handed to the detectors as an object with
``shape``, ``dtype``, ``ndim`` and ``__getitem__`` that reads only what each
slice asks for, marked ``on_disk = True`` so that
:func:`rednmf._memory.is_memory_mapped` recognises it and
``REDNMF()`` (its default engine) fits it out of core. Two exist:
:class:`rednmf.io.geotiff.GeoTiffCube` (a GDAL raster, one windowed read per
slice) and :class:`MemmapCube` here (a memory-mapped ENVI cube with bands
dropped by its ``bbl`` and its ``data ignore value`` read as NaN, both applied
to each slice, so that neither forces the whole cube into memory).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DiskCube",
    "MemmapCube",
    "nan_dtype",
    "nodata_dtype",
    "nodata_hits",
    "nodata_to_nan",
    "split_key",
]


def nan_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype that holds a stored ``dtype``'s values and NaN: float32, or float64 if it was."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float64 if dtype.kind == "f" and dtype.itemsize == 8 else np.float32)


def nodata_dtype(dtype: np.dtype, nodata: float | None) -> np.dtype:
    """The dtype of a cube whose no-data values are NaN: float32, or float64 if it was.

    As :func:`rednmf.io.scene.read_scene` converts an eagerly read cube that
    holds the no-data value; the stored ``dtype`` when there is no (or a NaN)
    no-data value.
    """
    if nodata is None or np.isnan(nodata):
        return np.dtype(dtype)
    return nan_dtype(dtype)


#: A no-data value within this fraction of the largest finite float of a cube's dtype
#: stands for that value: headers print it with fewer digits than the dtype holds
#: (``-3.40282e+38`` for float32's ``-3.4028234663852886e+38``), and GDAL reads it so.
_NEAR_MAX = 1e-5


def nodata_hits(block: np.ndarray, nodata: float) -> np.ndarray:
    """Where ``block`` holds the no-data value, compared at the block's precision.

    A float block is compared with the value rounded to its dtype (``0.1`` in a
    header matches float32's ``0.1``); a value within :data:`_NEAR_MAX` of the
    dtype's largest finite magnitude matches that magnitude too (the sign kept),
    as GDAL matches both. An integer block is compared with the value as it is.
    """
    if block.dtype.kind != "f":
        return block == nodata
    with np.errstate(over="ignore"):  # a value beyond the dtype's range matches only inf
        hit = block == block.dtype.type(nodata)
    top = float(np.finfo(block.dtype).max)
    if abs(abs(nodata) - top) <= _NEAR_MAX * top:
        hit |= block == block.dtype.type(np.copysign(top, nodata))
    return hit


def nodata_to_nan(
    block: np.ndarray, nodata: float | None, dtype: np.dtype, fresh: bool = False
) -> np.ndarray:
    """``block`` in ``dtype`` with the entries equal to ``nodata`` set to NaN.

    ``fresh``: ``block`` is a new array that may be modified in place (no copy
    when it already has ``dtype``). Without a (non-NaN) no-data value the block
    is returned as it is.
    """
    if nodata is None or np.isnan(nodata):
        return block
    hit = nodata_hits(block, nodata)
    out = block.astype(dtype, copy=not fresh)
    out[hit] = np.nan
    return out


def split_key(key: object, name: str) -> tuple[object, object, object]:
    """The row, column and band parts of an index into a 3-D cube (``...`` expanded).

    ``name`` is the class named in the ``IndexError`` of an unsupported index.
    """
    keys = key if isinstance(key, tuple) else (key,)
    if sum(k is Ellipsis for k in keys) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if any(k is None for k in keys):
        raise IndexError(f"{name} does not support np.newaxis; index the result")
    if any(k is Ellipsis for k in keys):
        at = next(i for i, k in enumerate(keys) if k is Ellipsis)
        keys = keys[:at] + (slice(None),) * (4 - len(keys)) + keys[at + 1 :]
    if len(keys) > 3:
        raise IndexError(f"too many indices for a 3-D cube: {len(keys)}")
    keys = keys + (slice(None),) * (3 - len(keys))
    return keys[0], keys[1], keys[2]


class DiskCube:
    """What the cubes on disk share: ``shape``, ``dtype``, ``on_disk`` and the array protocol.

    A subclass sets ``shape`` and ``dtype`` and implements ``__getitem__``;
    ``np.asarray(cube)`` then reads the whole cube through it.
    """

    #: Read from disk on demand (see :func:`rednmf._memory.is_memory_mapped`).
    on_disk = True
    ndim = 3
    shape: tuple[int, int, int]
    dtype: np.dtype

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        """Bytes the whole cube would take in memory (in ``dtype``)."""
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: object) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __array__(self, dtype: object = None, copy: bool | None = None) -> np.ndarray:
        if copy is False:
            name = type(self).__name__
            raise ValueError(f"a {name} is on disk; np.asarray(cube) must read (copy) it")
        arr = self[:, :, :]
        return arr if dtype is None else arr.astype(dtype, copy=False)


class MemmapCube(DiskCube):
    """A memory-mapped ``(rows, cols, bands)`` cube read slice by slice.

    Each slice reads its rows and columns from the memory map, keeps the bands
    ``keep`` (all when None) and sets the entries equal to ``nodata`` to NaN
    (the cube's ``dtype`` is then float32, or float64 if stored so), which is
    what :func:`rednmf.io.scene.read_scene` does to a cube read into memory.
    ``np.asarray(cube)`` reads it whole.

    Parameters
    ----------
    data : numpy.memmap of shape (rows, cols, bands_in_file)
        The cube on disk (read-only).
    keep : array of int, optional
        0-based indices of the bands to keep, increasing.
    nodata : float, optional
        The no-data value.
    """

    def __init__(
        self, data: np.ndarray, keep: np.ndarray | None = None, nodata: float | None = None
    ) -> None:
        self.data = data
        self.keep = None if keep is None else np.asarray(keep, dtype=np.intp)
        self.nodata = nodata
        rows, cols, bands = data.shape
        self.shape = (int(rows), int(cols), bands if self.keep is None else int(self.keep.size))
        self.stored_dtype = data.dtype
        self.dtype = nodata_dtype(data.dtype, nodata)

    def __repr__(self) -> str:
        return f"MemmapCube(shape={self.shape}, dtype={self.dtype}, nodata={self.nodata})"

    def __getitem__(self, key: object) -> np.ndarray:
        rows, cols, bands = split_key(key, "MemmapCube")
        block = self.data[rows, cols]  # the file's bands last
        fresh = False
        if self.keep is not None:
            block, fresh = np.take(block, self.keep, axis=-1), True
        if not (isinstance(bands, slice) and bands == slice(None)):
            block = block[..., bands]
        if self.nodata is None or np.isnan(self.nodata):
            return np.array(block) if not fresh else block
        return nodata_to_nan(block, self.nodata, self.dtype, fresh=fresh)
