"""Shrinkage (proximal) operators, in one small module: the S step of every solver.

Each operator returns the exact minimiser of ``||E - S||_F^2 + lam * R(S)``
over ``S`` for one regulariser ``R``. Note the factor: with the squared
Frobenius loss *without* a 1/2, the threshold is ``lam / 2``.

:func:`soft_threshold` and :func:`shrink_factors` take an array backend
(:mod:`rednmf.backend`). Users: REDNMF's two solvers (``_s_step`` of
:mod:`rednmf.solvers.rednmf`, :meth:`rednmf.solvers.rednmf_blocks.BlockRange._s_step`)
and :func:`rednmf.solvers.rednmf.anomaly_evidence`; RNMF's S step (6) is
:func:`soft_threshold`, applied as its two parts in buffers (:mod:`rednmf.solvers.rnmf`).
The compiled pass of :mod:`rednmf.solvers._kernels` writes :func:`shrink_factors`
in numba; ``update_S`` of the test oracle ``tests/oracles/reference.py`` states
the step plainly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rednmf.backend import NumpyBackend, get_backend

__all__ = ["soft_threshold", "group_shrink", "shrink_factors"]


def shrink_factors(
    norms: Any, tau: float, dtype: Any = None, xp: NumpyBackend | None = None
) -> Any:
    """Group shrink factors ``max(1 - tau / ||E_g||, 0)`` from the group norms.

    A group whose norm is at most ``tau`` (zero included) gets 0; ``S_g`` is
    ``E_g`` times its factor.

    Parameters
    ----------
    norms : array
        Group norms ``||E_g||_2``.
    tau : float
        Threshold (nonnegative).
    dtype : dtype, optional
        Cast the factors to it (the dtype of ``E``); default: as computed.
    xp : backend, optional
        Array backend of ``norms`` (:mod:`rednmf.backend`); default NumPy.
    """
    xp = get_backend("numpy") if xp is None else xp
    with xp.errstate():
        factor = xp.where(norms > tau, 1.0 - tau / norms, 0.0)
    return factor if dtype is None else xp.astype(factor, dtype)


def soft_threshold(E: Any, tau: float, out: Any = None, xp: NumpyBackend | None = None) -> Any:
    """Element-wise soft threshold, the proximal operator of ``tau * ||.||_1``.

    ``S_ij = sign(E_ij) * max(|E_ij| - tau, 0)`` (eq. 6 of the REDNMF paper with
    ``tau = lambda / 2``).

    ``out``: where to write ``S`` (not ``E``; default a new array); ``xp``: the
    array backend of ``E`` (:mod:`rednmf.backend`; default NumPy).
    """
    xp = get_backend("numpy") if xp is None else xp
    S = xp.abs(E, out=out)
    S -= tau
    xp.relu(S, out=S)
    S *= xp.sign(E)
    return S


def group_shrink(E: np.ndarray, tau: float, axis: int = 0) -> np.ndarray:
    """Group (L2,1) shrinkage, the proximal operator of ``tau * sum_g ||E_g||_2``.

    With ``axis=0`` the groups are the columns of ``E`` (one pixel's spectrum
    each when ``E`` is bands x pixels); with ``axis=1`` they are the rows.

    ``S_g = E_g * max(1 - tau / ||E_g||_2, 0)``, i.e. a group whose norm is at
    most ``tau`` becomes zero and the others shrink towards zero by ``tau`` in
    norm (eq. 17 of the REDNMF paper with ``tau`` in place of ``lambda``).
    """
    norms = np.linalg.norm(E, axis=axis, keepdims=True)
    return E * shrink_factors(norms, tau, E.dtype)
