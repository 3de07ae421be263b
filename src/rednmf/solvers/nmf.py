r"""Basic NMF by the Lee-Seung multiplicative updates, and the pieces its relatives share.

Pure functions over arrays: no seeds, no I/O, no printing. ``X`` is
bands x pixels (``d x n``) and nonnegative.

Model (eq. 1 of the REDNMF paper; Lee & Seung, 2001)::

    min_{W,H >= 0}  ||X - WH||_F^2

    W <- W * (X H') / (W H H'),    H <- H * (W' X) / (W' W H).

The multiplicative steps of the NMF family (NMF, RNMF, L1NMF, EWNMF) are all
one step, written once here (:func:`mu_update_W`, :func:`mu_update_H`): the
majorisation-minimisation step for

    ||sqrt(U) * (P - N - WH)||_F^2,    P, N, U >= 0 element-wise,

that is a (weighted) least-squares fit of ``WH`` to a target ``A = P - N``
given by its positive and negative parts::

    W <- W * ((U*P) H') / ((U*(WH)) H' + (U*N) H' + eps)
    H <- H * (W' (U*P)) / (W' (U*(WH)) + W' (U*N) + eps)

Without weights (``U = 1``) the products are reassociated as ``W (H H')`` and
``(W' W) H``. NMF uses ``P = X, N = 0``; RNMF ``P = X + S-, N = S+``; L1NMF and
EWNMF ``P = X, N = 0`` with their weights ``U``. Each step does not increase
the weighted least-squares objective (Lee & Seung's auxiliary function; the
``N`` term is linear with a nonnegative coefficient and is covered by the same
majoriser).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rednmf.solvers._stopping import has_converged, warn_max_iter

__all__ = [
    "NMFResult",
    "nmf_solve",
    "nmf_objective",
    "mu_update_W",
    "mu_update_H",
    "sq_norm",
    "has_converged",
    "warn_max_iter",
]


@dataclass
class NMFResult:
    """Factors and diagnostics returned by the NMF-family solvers.

    Attributes
    ----------
    W, H : ndarray
        Factors, shapes ``(d, r)`` and ``(r, n)``.
    n_iter : int
        Iterations run.
    objective : ndarray of shape (n_iter,)
        Objective of the method after each iteration.
    converged : bool
        Whether the relative objective change fell below ``tol``.
    S : ndarray or None
        Sparse anomaly matrix (RNMF).
    weights : ndarray or None
        Element-wise weights of the last iteration (L1NMF: ``U``, EWNMF: ``T``).
    param_history : ndarray
        Per-iteration value of a data-scaled parameter (RNMF: ``lam_t``,
        EWNMF: ``gamma_t``); empty when there is none.
    """

    W: np.ndarray
    H: np.ndarray
    n_iter: int
    objective: np.ndarray
    converged: bool = False
    S: np.ndarray | None = None
    weights: np.ndarray | None = None
    param_history: np.ndarray = field(default_factory=lambda: np.empty(0))


def sq_norm(A: np.ndarray) -> float:
    """``||A||_F^2`` accumulated in float64."""
    return float(np.einsum("ij,ij->", A, A, dtype=np.float64))


def nmf_objective(X: np.ndarray, W: np.ndarray, H: np.ndarray) -> float:
    """Objective (1): ``||X - WH||_F^2``."""
    return sq_norm(X - W @ H)


def mu_update_W(
    P: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    *,
    N: np.ndarray | None = None,
    U: np.ndarray | None = None,
    eps: float = 1e-10,
) -> np.ndarray:
    """Multiplicative W step for ``||sqrt(U) * (P - N - WH)||_F^2`` (see the module text).

    ``N = None`` means ``N = 0`` and ``U = None`` means ``U = 1``. Returns a new array.
    """
    if U is None:
        num = P @ H.T
        den = W @ (H @ H.T)
        if N is not None:
            den += N @ H.T
    else:
        num = (U * P) @ H.T
        R = W @ H if N is None else W @ H + N
        den = (U * R) @ H.T
    return W * (num / (den + eps))


def mu_update_H(
    P: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    *,
    N: np.ndarray | None = None,
    U: np.ndarray | None = None,
    eps: float = 1e-10,
) -> np.ndarray:
    """Multiplicative H step for ``||sqrt(U) * (P - N - WH)||_F^2`` (see the module text).

    ``N = None`` means ``N = 0`` and ``U = None`` means ``U = 1``. Returns a new array.
    """
    if U is None:
        num = W.T @ P
        den = (W.T @ W) @ H
        if N is not None:
            den += W.T @ N
    else:
        num = W.T @ (U * P)
        R = W @ H if N is None else W @ H + N
        den = W.T @ (U * R)
    return H * (num / (den + eps))


def nmf_solve(
    X: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    *,
    max_iter: int = 200,
    tol: float = 1e-4,
    eps: float = 1e-10,
) -> NMFResult:
    """Fit basic NMF (eq. 1) by the Lee-Seung multiplicative updates.

    Parameters
    ----------
    X : ndarray of shape (d, n)
        Nonnegative data, bands x pixels, float32 or float64.
    W, H : ndarray
        Initial factors, shapes (d, r) and (r, n), nonnegative, in the dtype
        of ``X``. They are not modified.
    max_iter : int
        Maximum number of iterations (one W step then one H step each).
    tol : float
        Stop when the relative change of ``||X - WH||_F^2`` between two
        iterations is at most ``tol``; ``tol = 0`` runs ``max_iter`` iterations.
    eps : float
        Added to every denominator (``0`` is allowed when the factors are
        positive).

    Returns
    -------
    NMFResult
        ``W, H``, ``n_iter`` and ``||X - WH||_F^2`` after each iteration.

    References
    ----------
    D. D. Lee and H. S. Seung, "Algorithms for non-negative matrix
    factorization", NIPS 13, 2001.
    """
    objective: list[float] = []
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - n_iter is used after the loop
        W = mu_update_W(X, W, H, eps=eps)
        H = mu_update_H(X, W, H, eps=eps)
        objective.append(nmf_objective(X, W, H))
        if has_converged(objective, tol):
            converged = True
            break
    if not converged and tol > 0:
        warn_max_iter("NMF", max_iter, tol)
    return NMFResult(W=W, H=H, n_iter=n_iter, objective=np.asarray(objective), converged=converged)
