"""Shrinkage (proximal) operators, in one small module: the S step of every solver.

Each operator returns the exact minimiser of ``||E - S||_F^2 + lam * R(S)``
over ``S`` for one regulariser ``R``. Note the factor: with the squared
Frobenius loss *without* a 1/2, the threshold is ``lam / 2``.

Users: RNMF's S step (6) is :func:`soft_threshold`, which its loop applies as
its two parts ``S+ = max(E - tau, 0)``, ``S- = max(-E - tau, 0)`` in buffers
(:mod:`rednmf.solvers.rnmf`); REDNMF's whole-matrix loop (``_s_step``) and
:func:`rednmf.solvers.rednmf.anomaly_evidence` apply :func:`soft_threshold` and
:func:`shrink_factors` to group norms they have formed. The block engine's S
step (:meth:`rednmf.solvers.rednmf_blocks.BlockRange._s_step`) is the same
math in place, restricted to the support of ``S``, and stays separate for
speed. ``update_S`` of the test oracle ``tests/oracles/reference.py`` states the step plainly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["soft_threshold", "group_shrink", "shrink_factors"]


class _NumPy:
    """The three operations of :func:`shrink_factors` on NumPy arrays."""

    where = staticmethod(np.where)

    @staticmethod
    def astype(a: np.ndarray, dtype: Any) -> np.ndarray:
        return a.astype(dtype, copy=False)

    @staticmethod
    def errstate() -> Any:
        return np.errstate(divide="ignore", invalid="ignore")


def shrink_factors(norms: Any, tau: float, dtype: Any = None, xp: Any = None) -> Any:
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
        Array namespace of :mod:`rednmf.backend` (``where``, ``astype``,
        ``errstate``) for tensors; default NumPy.
    """
    xp = _NumPy if xp is None else xp
    with xp.errstate():
        factor = xp.where(norms > tau, 1.0 - tau / norms, 0.0)
    return factor if dtype is None else xp.astype(factor, dtype)


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
    return E * shrink_factors(norms, tau, E.dtype)
