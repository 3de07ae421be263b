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

__all__ = ["SCALINGS", "scale_data", "scale_params"]

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

    Returns
    -------
    ndarray
        A new array in the layout of ``X`` (C or Fortran order); the only large
        allocation is the result itself.
    """
    check_choice("scale", method, SCALINGS)
    dt = np.dtype(X.dtype if dtype is None else dtype)
    offset, div = scale_params(X, method, dt) if params is None else params
    out = np.empty_like(X, dtype=dt)
    for a in range(0, X.shape[-1] if X.ndim else 1, _BLOCK):
        part = (slice(None),) * (X.ndim - 1) + (slice(a, a + _BLOCK),)
        block = X[part].astype(dt, copy=False)
        if method == "minmax":
            out[part] = (block - offset) / div
        elif method == "max":
            out[part] = block / div
        else:
            out[part] = block
    return out
