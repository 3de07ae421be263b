r"""Compiled per-pixel kernels of the block engine (NumPy arrays, numba).

The block engine (:mod:`rednmf.solvers.rednmf_blocks`) writes its updates once
against a backend namespace. On NumPy, the element-wise steps between its
products each make a pass over a bands x pixels block: the residual
``E = X - W H``, its column norms, the fit term ``||E - S||^2``, the pixel
shrink (17) written into ``S`` and ``|S|`` for the next products: six passes
and a temporary. :func:`residual_shrink` does them in one pass, pixel by pixel,
with the pixel's residual held in a ``d``-vector, and without the GIL, so that
the engine's threads run it side by side.

It is the same arithmetic as the namespace path (the ``l21`` S step of
:func:`rednmf.solvers.prox.shrink_factors`, written in place), with the sums in
another order: results agree to rounding (``tests/solvers/test_kernels.py``
checks it against that path and against a plain transcription). The order is
fixed by the compiled code, so the same input gives the same output.

:func:`shrink_residual` is the same pass over every pixel, for the evidence of
a fitted model (:func:`rednmf.solvers.rednmf.anomaly_evidence`): computed pixel
by pixel, it does not depend on how the pixels are cut into blocks or Dask
chunks, nor on the BLAS threads, as the rounding of a BLAS product ``W H`` does.

numba is imported on the first call (0.2 s), not with :mod:`rednmf`, and the
compiled kernels are cached on disk (``cache=True``): the first fit of a
process pays about 0.3 s to load them, the first fit after an install about
1 s to compile them.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

__all__ = ["load", "residual_shrink", "shrink_residual"]


def _residual_shrink_py(
    XT: np.ndarray,
    WT: np.ndarray,
    HT: np.ndarray,
    ST: np.ndarray,
    AT: np.ndarray,
    f: np.ndarray,
    tau: float,
    with_fit: bool,
    shrink: bool,
) -> tuple[float, float, int]:
    """Kernel body (compiled by :func:`_compiled`); arguments as :func:`residual_shrink`."""
    m, d = XT.shape
    r = WT.shape[0]
    zero = XT.dtype.type(0)
    e = np.empty(d, dtype=XT.dtype)
    fit = 0.0
    penalty = 0.0
    nnz = 0
    for j in range(m):
        x = XT[j]
        s = ST[j]
        a = AT[j]
        for i in range(d):
            e[i] = x[i]
        for k in range(r):
            h = HT[j, k]
            w = WT[k]
            for i in range(d):
                e[i] -= w[i] * h
        sq = zero
        for i in range(d):
            sq += e[i] * e[i]
        if with_fit:  # ||e - s||^2 with the S of the previous step, before it is overwritten
            if f[j] != zero:
                part = zero
                for i in range(d):
                    t = e[i] - s[i]
                    part += t * t
                fit += part
            else:  # s = 0
                fit += sq
        if not shrink:
            continue
        norm = np.sqrt(np.float64(sq))
        if norm > tau:
            factor = XT.dtype.type(1.0 - tau / norm)
            penalty += norm - tau
            nnz += 1
        else:
            factor = zero
        if factor != zero or f[j] != zero:  # elsewhere S was and stays zero
            for i in range(d):
                v = factor * e[i]
                s[i] = v
                a[i] = abs(v)
        f[j] = factor
    return fit, penalty, nnz


@cache
def _compiled() -> Any:
    """The compiled kernel (numba is imported here, on first use)."""
    import numba

    return numba.njit(nogil=True, cache=True, fastmath=True, boundscheck=False)(
        _residual_shrink_py
    )


def load(dtype: Any = np.float32) -> None:
    """Import numba and load (or compile) the kernel for pixel-major ``dtype`` blocks now.

    Otherwise that happens on the first call (numba's import, its code generator and
    the cached machine code: about 100 MB resident, 0.3-0.5 s).
    """
    X = np.zeros((2, 2), dtype=dtype, order="F")
    W, H = np.zeros((2, 1), dtype=dtype), np.zeros((1, 2), dtype=dtype)
    f = np.zeros(2, dtype=dtype)
    residual_shrink(X, W, H, X.copy(order="F"), X.copy(order="F"), f, 1.0)


def residual_shrink(
    X: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    S: np.ndarray,
    A: np.ndarray,
    f: np.ndarray,
    tau: float,
    *,
    with_fit: bool = True,
    shrink: bool = True,
) -> tuple[float, float, int]:
    r"""Residual, fit term and pixel-group S step (17) of a block, in one pass.

    For every pixel ``j`` of the block: ``e_j = x_j - W h_j``,
    ``f_j = max(0, 1 - tau / ||e_j||)``, ``s_j = f_j e_j`` and
    ``a_j = |s_j|``; ``S`` and ``A`` are written in place where ``S`` was or
    is non-zero (elsewhere ``S`` is zero and stays so, and ``A`` is not
    touched), and ``f`` holds the new factors. ``S`` must be zero where
    ``f`` is. In Algorithm 1 this is the proximal step of
    :math:`\lambda \|S\|_{2,1}` with ``tau = lam / 2``.

    Parameters
    ----------
    X : ndarray of shape (d, m)
        The block of data.
    W : ndarray of shape (d, r)
        The dictionary of the residual.
    H : ndarray of shape (r, m)
        The block's codes.
    S : ndarray of shape (d, m)
        In: the S of the previous step (for the fit term), zero where ``f``
        is. Out: the new S.
    A : ndarray of shape (d, m)
        Out: ``|S|`` of the new S, where ``S`` was or is non-zero.
    f : ndarray of shape (m,)
        In: the factors of the previous S (zero where its column is zero).
        Out: the new factors.
    tau : float
        Threshold on the residual's column norms.
    with_fit : bool, default=True
        Whether to compute ``||E - S_prev||^2`` (0.0 otherwise).
    shrink : bool, default=True
        Whether to take the S step; without it ``S``, ``A`` and ``f`` are
        not touched (the last objective of a fit).

    Returns
    -------
    fit : float
        ``||X - W H - S_prev||_F^2`` (float64 sum of per-pixel float sums).
    penalty : float
        ``sum_j max(0, ||e_j|| - tau)``, i.e. ``||S_new||_{2,1}`` (0.0 without
        ``shrink``).
    nonzero : int
        Number of non-zero columns of the new ``S`` (0 without ``shrink``).
    """
    kernel = _compiled()
    WT = np.ascontiguousarray(W.T)
    return kernel(
        np.asarray(X).T, WT, np.asarray(H).T, S.T, A.T, f, float(tau), bool(with_fit), bool(shrink)
    )


def shrink_residual(
    X: np.ndarray, W: np.ndarray, H: np.ndarray, out: np.ndarray, A: np.ndarray, tau: float
) -> None:
    """``out = (X - W H) diag(max(0, 1 - tau / ||x_j - W h_j||))``: the S step of every pixel.

    :func:`residual_shrink` with the factors of the previous ``S`` taken as
    non-zero, so that every column of ``out`` is written: ``out`` may hold
    anything before, ``X`` itself included (a pixel's spectrum is read whole
    before its column is written). Each pixel is computed alone, in the
    kernel's fixed order: the result does not depend on how the pixels are cut
    into blocks, nor on any thread count (a BLAS product ``W H`` does: its
    float rounding changes with both).

    Parameters
    ----------
    X : ndarray of shape (d, m)
        The block of data, pixel-major (Fortran-ordered).
    W, H : ndarray
        The factors, ``(d, r)`` and ``(r, m)``, in the dtype of ``X``.
    out : ndarray of shape (d, m)
        Pixel-major; receives the result (may be ``X``).
    A : ndarray of shape (d, m)
        Pixel-major scratch; receives ``|out|``.
    tau : float
        Threshold on the residual's column norms (0: the residual itself).
    """
    f = np.ones(X.shape[1], dtype=X.dtype)
    residual_shrink(X, W, H, out, A, f, tau, with_fit=False)
