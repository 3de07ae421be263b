"""Data scaling shared by the factorisation detectors.

Multiplicative NMF updates need nonnegative data, and a threshold such as
REDNMF's ``lam`` only means something on a known scale. Global min-max scaling
maps any cube to [0, 1], so that multiplying the input by a positive constant
(raw counts, reflectance, reflectance x 1000) gives the same model input.
"""

from __future__ import annotations

import numpy as np

from rednmf._validation import check_choice
from rednmf.exceptions import InputError

__all__ = ["SCALINGS", "scale_data"]

SCALINGS = ("minmax", "max", "none")


def scale_data(X: np.ndarray, method: str = "minmax") -> np.ndarray:
    """Scale an array globally for factorisation.

    Parameters
    ----------
    X : ndarray
        Data of any shape.
    method : {'minmax', 'max', 'none'}
        ``'minmax'``: ``(X - min) / (max - min)``, the result lies in [0, 1]
        and is unchanged by positive scaling and by offsets of the input.
        ``'max'``: ``X / max``, requires ``X >= 0``; unchanged by positive scaling.
        ``'none'``: ``X`` as is, requires ``X >= 0``.

    Returns
    -------
    ndarray
        A new array in the dtype of ``X``.
    """
    check_choice("scale", method, SCALINGS)
    lo, hi = float(X.min()), float(X.max())
    if method == "minmax":
        if hi == lo:
            raise InputError(
                "the cube is constant (every value equals "
                f"{lo:g}); there is nothing to detect — check the file or the variable"
            )
        return ((X - lo) / (hi - lo)).astype(X.dtype, copy=False)
    if lo < 0:
        raise InputError(
            f"scale={method!r} needs nonnegative data, the minimum is {lo:g}; use scale='minmax'"
        )
    if method == "max":
        if hi == 0:
            raise InputError("the cube is all zeros; there is nothing to detect")
        return (X / hi).astype(X.dtype, copy=False)
    return X.copy()
