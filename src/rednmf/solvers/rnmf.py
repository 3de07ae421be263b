r"""RNMF solver: robust NMF with a sparse error matrix (Zhang et al., 2011).

Pure functions over arrays: no seeds, no I/O, no printing. ``X`` is
bands x pixels (``d x n``) and nonnegative.

Model (eqs. 4-5 of the REDNMF paper)::

    X ~ WH + S,    min_{W,H >= 0, S}  ||X - WH - S||_F^2 + lam ||S||_1.

One iteration:

* **S** (eq. 6): ``S = soft_threshold(X - WH, lam / 2)``, the exact minimiser
  over ``S`` with ``W, H`` fixed (the squared loss has no 1/2, hence ``lam/2``).
* **W, H**: the multiplicative steps for ``||(X - S) - WH||^2`` with
  ``X - S = (X + S-) - S+`` (``S = S+ - S-``, both parts nonnegative)::

      W <- W * ((X + S-) H') / (W H H' + S+ H'),
      H <- H * (W' (X + S-)) / (W' W H + W' S+),

  the form of REDNMF's (14) and of its H step (16) without the encoder terms
  (shared code: :func:`rednmf.solvers.nmf.mu_update_W`, ``mu_update_H``).

Every step is exact or a majorisation-minimisation step of the objective, so
with a fixed ``lam`` (``lam_mode='absolute'``) the objective does not increase
from one iteration to the next.

**Scale of lambda.** As in REDNMF, ``lam_mode='adaptive'`` (default) sets at
each iteration ``lam_t = lam * median_ij |E_ij|`` with ``E = X - WH``, so that
``lam`` is dimensionless (the threshold is ``lam / 2`` times the median
absolute residual). The objective recorded at iteration ``t`` uses ``lam_t``;
since ``lam_t`` changes, descent is then not guaranteed across iterations.
"""

from __future__ import annotations

import numpy as np

from rednmf.solvers.nmf import (
    NMFResult,
    has_converged,
    mu_update_H,
    mu_update_W,
    sq_norm,
    warn_max_iter,
)
from rednmf.solvers.prox import soft_threshold

__all__ = ["LAM_MODES", "rnmf_solve", "rnmf_objective"]

#: ``'adaptive'``: relative to the current residual; ``'absolute'``: as given.
LAM_MODES = ("adaptive", "absolute")


def rnmf_objective(
    X: np.ndarray, W: np.ndarray, H: np.ndarray, S: np.ndarray, lam: float
) -> float:
    """Objective (5): ``||X - WH - S||_F^2 + lam ||S||_1`` (float64 accumulation)."""
    return sq_norm(X - W @ H - S) + lam * float(np.abs(S).sum(dtype=np.float64))


def _update_S(E: np.ndarray, lam: float) -> np.ndarray:
    """S step (6): exact minimiser of ``||E - S||^2 + lam ||S||_1``, threshold ``lam / 2``."""
    return soft_threshold(E, lam / 2)


def _lam_t(E: np.ndarray, lam: float, lam_mode: str) -> float:
    """``lam`` itself, or ``lam`` times the median absolute residual (adaptive mode)."""
    return lam * float(np.median(np.abs(E))) if lam_mode == "adaptive" else lam


def rnmf_solve(
    X: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    *,
    lam: float,
    max_iter: int = 200,
    tol: float = 1e-4,
    lam_mode: str = "adaptive",
    eps: float = 1e-10,
) -> NMFResult:
    """Fit RNMF (eq. 5) by soft thresholding and multiplicative updates.

    Parameters
    ----------
    X : ndarray of shape (d, n)
        Nonnegative data, bands x pixels, float32 or float64.
    W, H : ndarray
        Initial factors, shapes (d, r) and (r, n), nonnegative, in the dtype
        of ``X``. They are not modified.
    lam : float
        Sparsity weight; see ``lam_mode``.
    max_iter : int
        Maximum number of iterations (S, W, H steps each).
    tol : float
        Stop when the relative change of the objective between two iterations
        is at most ``tol``; ``tol = 0`` runs ``max_iter`` iterations.
    lam_mode : {'adaptive', 'absolute'}
        ``'adaptive'``: ``lam_t = lam * median |X - WH|`` at each iteration;
        ``'absolute'``: ``lam_t = lam``.
    eps : float
        Added to every denominator.

    Returns
    -------
    NMFResult
        ``W, H, S``, ``n_iter``, the objective (5) after each iteration (with
        that iteration's ``lam_t``) and ``param_history`` = the ``lam_t`` used.

    References
    ----------
    L. Zhang, Z. Chen, M. Zheng and X. He, "Robust non-negative matrix
    factorization", Front. Electr. Electron. Eng. China 6 (2), 2011, 192-200.
    """
    objective: list[float] = []
    lams: list[float] = []
    S = np.zeros_like(X)
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - n_iter is used after the loop
        E = X - W @ H
        lam_t = _lam_t(E, lam, lam_mode)
        S = _update_S(E, lam_t)
        del E
        Sp, Sn = np.maximum(S, 0), np.maximum(-S, 0)
        P = X + Sn
        W = mu_update_W(P, W, H, N=Sp, eps=eps)
        H = mu_update_H(P, W, H, N=Sp, eps=eps)
        objective.append(rnmf_objective(X, W, H, S, lam_t))
        lams.append(lam_t)
        if has_converged(objective, tol):
            converged = True
            break
    if not converged and tol > 0:
        warn_max_iter("RNMF", max_iter, tol)
    return NMFResult(
        W=W,
        H=H,
        n_iter=n_iter,
        objective=np.asarray(objective),
        converged=converged,
        S=S,
        param_history=np.asarray(lams),
    )
