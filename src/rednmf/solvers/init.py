"""Initialisation of the factors ``W``, ``H`` and the encoder ``M``.

The only place where randomness enters a factorisation: the solvers take the
initial factors as arrays and never see a seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rednmf._blas import one_blas_thread
from rednmf._validation import check_choice
from rednmf.backend import get_backend

__all__ = ["initialize_factors", "INIT_METHODS"]

INIT_METHODS = ("random", "nndsvda")


#: Pixels per block when the Gram matrix and the right singular vectors are formed.
_BLOCK = 1 << 14
#: The same on a torch device (fewer, larger copies to it).
_DEVICE_BLOCK = 1 << 18


def _leading_svd(
    X: np.ndarray, rank: int, xp: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``rank`` leading singular triplets of ``X`` (d x n, d small) from its Gram matrix.

    ``X X' = U diag(s^2) U'`` (accumulated in float64 over blocks of pixels),
    then ``V' = diag(1/s) U' X``. Memory: ``d x d`` plus ``rank x n``; no copy
    of ``X``. The signs of a pair ``(u_j, v_j)`` may differ from LAPACK's SVD;
    NNDSVD does not depend on them. With a torch backend ``xp`` the two passes
    over ``X`` (the Gram matrix and ``V'``) run on its device, a block at a
    time; the eigendecomposition stays on the host.
    """
    d, n = X.shape
    xp = get_backend("numpy") if xp is None else xp
    block = _BLOCK if xp.name == "numpy" else _DEVICE_BLOCK
    f64 = xp.dtype(np.float64)

    def blocks() -> Any:  # (start, block of X widened to float64 on xp; copied in its dtype)
        for a in range(0, n, block):
            yield a, xp.astype(xp.asarray(np.asarray(X[:, a : a + block])), f64)

    G = np.zeros((d, d))
    for _, B in blocks():
        G += xp.to_numpy(B @ B.T)
    with one_blas_thread():
        vals, vecs = np.linalg.eigh(G)
    order = np.argsort(vals)[::-1][:rank]
    s = np.sqrt(np.maximum(vals[order], 0.0))
    U = vecs[:, order]
    Vt = np.empty((rank, n))
    inv = np.divide(1.0, s, out=np.zeros_like(s), where=s > 0)
    Ut, scale = xp.asarray(U.T, dtype=f64), xp.asarray(inv[:, None], dtype=f64)
    for a, B in blocks():
        Vt[:, a : a + B.shape[1]] = xp.to_numpy((Ut @ B) * scale)
    return U, s, Vt


def _nndsvda(
    X: np.ndarray, rank: int, xp: Any = None, mean: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """NNDSVD with zeros filled by the mean ``mean`` of ``X`` (Boutsidis & Gallopoulos, 2008)."""
    U, s, Vt = _leading_svd(X, rank, xp)
    d, n = X.shape
    W = np.zeros((d, rank), dtype=X.dtype)
    H = np.zeros((rank, n), dtype=X.dtype)
    W[:, 0] = np.sqrt(s[0]) * np.abs(U[:, 0])
    H[0, :] = np.sqrt(s[0]) * np.abs(Vt[0, :])
    for j in range(1, rank):
        x, y = U[:, j], Vt[j, :]
        xp, xn = np.maximum(x, 0), np.maximum(-x, 0)
        yp, yn = np.maximum(y, 0), np.maximum(-y, 0)
        xpn, ypn = np.linalg.norm(xp), np.linalg.norm(yp)
        xnn, ynn = np.linalg.norm(xn), np.linalg.norm(yn)
        mp, mn = xpn * ypn, xnn * ynn
        if mp > mn:
            u, v, sigma = xp / (xpn or 1), yp / (ypn or 1), mp
        else:
            u, v, sigma = xn / (xnn or 1), yn / (ynn or 1), mn
        lbd = np.sqrt(s[j] * sigma)
        W[:, j] = lbd * u
        H[j, :] = lbd * v
    avg = X.mean(dtype=np.float64) if mean is None else mean
    W[W == 0] = avg
    H[H == 0] = avg
    return W, H


def initialize_factors(
    X: np.ndarray, rank: int, init: str, rng: np.random.Generator, xp: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Initial ``W`` (d x r), ``H`` (r x n) and ``M`` (r x d) for a nonnegative ``X``.

    Parameters
    ----------
    X : ndarray of shape (bands, pixels)
        Nonnegative data.
    rank : int
        Number of components ``r``.
    init : {'random', 'nndsvda'}
        ``'random'``: uniform entries scaled so that ``WH`` has the mean of
        ``X`` (as scikit-learn's ``init='random'``). ``'nndsvda'``: NNDSVD of
        ``X`` with zeros replaced by the mean of ``X``. In both cases ``M`` is
        uniform, scaled so that ``MX`` has the mean of ``H``.
    rng : numpy.random.Generator
        Source of randomness.
    xp : backend, optional
        Array backend (:mod:`rednmf.backend`) of the NNDSVD's passes over
        ``X`` (default NumPy); the factors are returned as NumPy arrays.

    Returns
    -------
    W, H, M : ndarray
        In the dtype of ``X``.
    """
    check_choice("init", init, INIT_METHODS)
    d, n = X.shape
    dtype = X.dtype
    mean64 = X.mean(dtype=np.float64)
    mean_x = float(mean64) or 1.0
    if init == "random":
        scale = np.sqrt(mean_x / rank)
        W = (rng.uniform(size=(d, rank)) * scale).astype(dtype)
        H64 = rng.uniform(size=(rank, n))
        H64 *= scale  # in place: the same values, one float64 r x n array less
        H = H64.astype(dtype)
        del H64
    else:
        W, H = _nndsvda(X, rank, xp, mean64)
        W, H = W.astype(dtype), H.astype(dtype)
    # Each entry of MX is about d * mean(M) * mean(X); aim it at mean(H).
    m_scale = 2.0 * float(H.mean()) / (d * mean_x)
    M = (rng.uniform(size=(rank, d)) * m_scale).astype(dtype)
    return W, H, M
