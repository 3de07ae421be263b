"""Data scaling shared by the factorisation detectors.

Multiplicative NMF updates need nonnegative data, and a threshold such as
REDNMF's ``lam`` only means something on a known scale. Global min-max scaling
maps any cube to [0, 1], so that multiplying the input by a positive constant
(raw counts, reflectance, reflectance x 1000) gives the same model input.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from rednmf._validation import check_choice
from rednmf.exceptions import InputError

__all__ = ["SCALINGS", "ScaledMatrix", "scale_block", "scale_data", "scale_params"]

SCALINGS = ("minmax", "max", "none")


#: Columns per block when the scaled copy is written (bounded temporaries).
_BLOCK = 1 << 14


def scale_params(
    X: np.ndarray, method: str = "minmax", dtype: DTypeLike | None = None
) -> tuple[float, float]:
    """The ``(offset, divisor)`` of :func:`scale_data`: it returns ``(X - offset) / divisor``.

    Raises :class:`~rednmf.exceptions.InputError` when ``X`` cannot be scaled
    by ``method`` (constant, all zeros, negative values for ``'max'``/``'none'``).
    """
    check_choice("scale", method, SCALINGS)
    dt = np.dtype(X.dtype if dtype is None else dtype)
    lo, hi = float(dt.type(X.min())), float(dt.type(X.max()))
    if method == "minmax":
        if hi == lo:
            raise InputError(
                "the cube is constant (every value equals "
                f"{lo:g}); there is nothing to detect — check the file or the variable"
            )
        return lo, hi - lo
    if lo < 0:
        raise InputError(
            f"scale={method!r} needs nonnegative data, the minimum is {lo:g}; use scale='minmax'"
        )
    if method == "max" and hi == 0:
        raise InputError("the cube is all zeros; there is nothing to detect")
    return 0.0, (hi if method == "max" else 1.0)


def scale_data(
    X: np.ndarray,
    method: str = "minmax",
    dtype: DTypeLike | None = None,
    params: tuple[float, float] | None = None,
    order: str = "K",
) -> np.ndarray:
    """Scale an array globally for factorisation.

    Parameters
    ----------
    X : ndarray
        Data, 1-D or 2-D (columns are processed in blocks).
    method : {'minmax', 'max', 'none'}
        ``'minmax'``: ``(X - min) / (max - min)``, the result lies in [0, 1]
        and is unchanged by positive scaling and by offsets of the input.
        ``'max'``: ``X / max``, requires ``X >= 0``; unchanged by positive scaling.
        ``'none'``: ``X`` as is, requires ``X >= 0``.
    dtype : dtype, optional
        Dtype of the result (default: that of ``X``). The values are cast to it
        first, so the result equals ``scale_data(X.astype(dtype), method)``.
    params : (float, float), optional
        ``(offset, divisor)`` of another array (:func:`scale_params`), to scale
        new data as the data a model was fitted on; default: those of ``X``.
    order : {'K', 'C', 'F'}, default 'K'
        Memory order of the result (``'K'``: that of ``X``). ``'C'`` on a
        transposed view of a cube makes the band-major matrix in one pass, with
        no unscaled copy.

    Returns
    -------
    ndarray
        A new array in the layout of ``X`` (C or Fortran order); the only large
        allocation is the result itself.
    """
    check_choice("scale", method, SCALINGS)
    dt = np.dtype(X.dtype if dtype is None else dtype)
    offset, div = scale_params(X, method, dt) if params is None else params
    out = np.empty_like(X, dtype=dt, order=order)
    for a in range(0, X.shape[-1] if X.ndim else 1, _BLOCK):
        part = (slice(None),) * (X.ndim - 1) + (slice(a, a + _BLOCK),)
        out[part] = scale_block(X[part].astype(dt, copy=False), method, offset, div)
    return out


def scale_block(block: np.ndarray, method: str, offset: float, div: float) -> np.ndarray:
    """A block of the data scaled as :func:`scale_data` scales it (in the block's dtype).

    ``(block - offset) / div`` for ``'minmax'``, ``block / div`` for ``'max'``,
    ``block`` itself for ``'none'``: the one place of this arithmetic, so that
    every way of scaling (a copy, a view formed on demand, a cube read from
    disk) gives the same values.
    """
    if method == "minmax":
        return (block - offset) / div
    if method == "max":
        return block / div
    return block


class ScaledMatrix:
    """:func:`scale_data` of a ``d x n`` matrix, formed a block of columns at a time on demand.

    ``A[:, a:b]`` is columns ``a:b`` of ``scale_data(X, method, dtype, params)``
    (the same values, in the layout of ``X``: pixel-major stays pixel-major),
    so a solver that reads its data by blocks needs no scaled copy of the
    scene. Has ``shape``, ``dtype``, ``ndim``, ``flags`` and :meth:`mean`.

    Parameters
    ----------
    X : ndarray of shape (d, n)
        The data (a view of the cube, not copied).
    method : {'minmax', 'max', 'none'}
    dtype : dtype
        Working dtype of the blocks.
    params : (float, float)
        ``(offset, divisor)`` of :func:`scale_params`.
    """

    def __init__(
        self, X: np.ndarray, method: str, dtype: DTypeLike, params: tuple[float, float]
    ) -> None:
        self.X, self.method = X, check_choice("scale", method, SCALINGS)
        self.dtype = np.dtype(dtype)
        self.offset, self.div = params
        self.shape = tuple(X.shape)
        self.ndim = 2
        self.flags = X.flags

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        rows_key, cols_key = key
        if rows_key != slice(None) or not isinstance(cols_key, slice):
            raise IndexError("ScaledMatrix supports A[:, a:b] only")
        block = self.X[:, cols_key].astype(self.dtype, copy=False)
        return scale_block(block, self.method, self.offset, self.div)

    def __array__(self, dtype: DTypeLike = None, copy: bool | None = None) -> np.ndarray:
        """The whole scaled matrix (a new array)."""
        out = self[:, :]
        return out if dtype is None else out.astype(dtype, copy=False)

    def mean(self, dtype: DTypeLike = np.float64) -> float:
        """Mean of every entry, accumulated in ``dtype`` over blocks of columns."""
        n = self.shape[1]
        total = sum(float(self[:, a : a + _BLOCK].sum(dtype=dtype)) for a in range(0, n, _BLOCK))
        return total / (self.shape[0] * n)
