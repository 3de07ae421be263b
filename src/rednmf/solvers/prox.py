"""Shrinkage (proximal) operators, in one small module.

Each operator returns the exact minimiser of ``||E - S||_F^2 + lam * R(S)``
over ``S`` for one regulariser ``R``. Note the factor: with the squared
Frobenius loss *without* a 1/2, the threshold is ``lam / 2``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["soft_threshold", "group_shrink"]


def soft_threshold(E: np.ndarray, tau: float) -> np.ndarray:
    """Element-wise soft threshold, the proximal operator of ``tau * ||.||_1``.

    ``S_ij = sign(E_ij) * max(|E_ij| - tau, 0)`` (eq. 6 of the REDNMF paper with
    ``tau = lambda / 2``).
    """
    return np.sign(E) * np.maximum(np.abs(E) - tau, 0.0)


def group_shrink(E: np.ndarray, tau: float, axis: int = 0) -> np.ndarray:
    """Group (L2,1) shrinkage, the proximal operator of ``tau * sum_g ||E_g||_2``.

    With ``axis=0`` the groups are the columns of ``E`` (one pixel's spectrum
    each when ``E`` is bands x pixels); with ``axis=1`` they are the rows.

    ``S_g = E_g * max(1 - tau / ||E_g||_2, 0)``, i.e. a group whose norm is at
    most ``tau`` becomes zero and the others shrink towards zero by ``tau`` in
    norm (eq. 17 of the REDNMF paper with ``tau`` in place of ``lambda``).
    """
    norms = np.linalg.norm(E, axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(norms > tau, 1.0 - tau / norms, 0.0)
    return E * factor.astype(E.dtype, copy=False)
