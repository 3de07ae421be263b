r"""RNMF solver: robust NMF with a sparse error matrix (Zhang et al., 2011).

Pure functions over arrays: no seeds, no I/O, no printing. ``X`` is
bands x pixels (``d x n``) and nonnegative.

Model (eqs. 4-5 of the REDNMF paper)::

    X ~ WH + S,    min_{W,H >= 0, S}  ||X - WH - S||_F^2 + lam ||S||_1.

One iteration:

* **S** (eq. 6): ``S = soft_threshold(X - WH, lam / 2)``
  (:func:`rednmf.solvers.prox.soft_threshold`), the exact minimiser
  over ``S`` with ``W, H`` fixed (the squared loss has no 1/2, hence ``lam/2``).
* **W, H**: the multiplicative steps for ``||(X - S) - WH||^2`` with
  ``X - S = (X + S-) - S+`` (``S = S+ - S-``, both parts nonnegative)::

      W <- W * ((X + S-) H') / (W H H' + S+ H'),
      H <- H * (W' (X + S-)) / (W' W H + W' S+),

  the form of REDNMF's (14) and of its H step (16) without the encoder terms
  (written plainly as ``mu_update_W``, ``mu_update_H`` in ``tests/oracles/reference.py``).

Every step is exact or a majorisation-minimisation step of the objective, so
with a fixed ``lam`` (``lam_mode='absolute'``) the objective does not increase
from one iteration to the next.

**Scale of lambda.** As in REDNMF, ``lam_mode='adaptive'`` (default) sets at
each iteration ``lam_t = lam * median_ij |E_ij|`` with ``E = X - WH``, so that
``lam`` is dimensionless (the threshold is ``lam / 2`` times the median
absolute residual). The objective recorded at iteration ``t`` uses ``lam_t``;
since ``lam_t`` changes, descent is then not guaranteed across iterations.

**Implementation.** :func:`rnmf_solve` applies these steps exactly (the test
suite checks it against a plain transcription) in preallocated buffers: the
parts ``S+ = max(E - lam_t/2, 0)`` and ``S- = max(-E - lam_t/2, 0)`` come
straight from the residual (no ``sign``, no ``S`` in the loop), ``||S||_1`` is
``sum S+ + sum S-``, the median is a single selection, and the objective of an
iteration reuses the residual ``X - WH`` that the next S step needs.
"""

from __future__ import annotations

import numpy as np

from rednmf.solvers._driver import FitCallback, Iterate, iterate
from rednmf.solvers.nmf import NMFResult, _median_abs, _sum64, sq_norm

__all__ = ["RNMF_LAM_MODES", "rnmf_solve", "rnmf_objective"]

#: The modes of :data:`rednmf.solvers.modes.SCALE_MODES` that RNMF implements:
#: ``'adaptive'`` (relative to the current residual) and ``'absolute'`` (as given).
RNMF_LAM_MODES = ("adaptive", "absolute")


def rnmf_objective(
    X: np.ndarray, W: np.ndarray, H: np.ndarray, S: np.ndarray, lam: float
) -> float:
    """Objective (5): ``||X - WH - S||_F^2 + lam ||S||_1`` (float64 accumulation)."""
    return sq_norm(X - W @ H - S) + lam * float(np.abs(S).sum(dtype=np.float64))


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
    callback: FitCallback | None = None,
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
    callback : callable, optional
        ``callback(iteration, objective, state)`` after each iteration
        (:mod:`rednmf.solvers._driver`; ``state`` holds ``W, H, S``).

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
    X = np.ascontiguousarray(X)
    dt = X.dtype
    R = np.empty(X.shape, dt)  # E = X - WH; scratch
    A = np.empty(X.shape, dt)  # X + S-
    tmp = np.empty(X.shape, dt)
    Sp, Sn = np.zeros(X.shape, dt), np.zeros(X.shape, dt)
    adaptive = lam_mode == "adaptive"
    lams: list[float] = []
    np.matmul(W, H, out=R)
    np.subtract(X, R, out=R)  # E, with the initial W, H

    def step() -> float:
        nonlocal W, H
        # S step (6): S = sign(E) max(|E| - tau, 0) = S+ - S-.
        lam_t = lam * _median_abs(R, tmp) if adaptive else lam
        tau = lam_t / 2
        np.subtract(R, tau, out=Sp)
        np.maximum(Sp, 0, out=Sp)
        np.subtract(-tau, R, out=Sn)
        np.maximum(Sn, 0, out=Sn)
        penalty = lam_t * (_sum64(Sp) + _sum64(Sn))
        lams.append(lam_t)
        # W and H steps: mu_update_W / mu_update_H with P = X + S-, N = S+.
        np.add(X, Sn, out=A)
        den = W @ (H @ H.T)
        den += Sp @ H.T
        W = W * ((A @ H.T) / (den + eps))
        den = (W.T @ W) @ H
        den += W.T @ Sp
        H = H * ((W.T @ A) / (den + eps))
        np.matmul(W, H, out=R)
        np.subtract(X, R, out=R)  # E of this iteration: its objective, the next S step
        np.subtract(R, Sp, out=tmp)
        np.add(tmp, Sn, out=tmp)  # E - S: exactly, as S+ and S- never overlap
        return sq_norm(tmp) + penalty

    run = iterate(
        step,
        max_iter=max_iter,
        tol=tol,
        method="RNMF",
        callback=callback,
        state=lambda: Iterate(X=X, W=W, H=H, S=Sp - Sn),
    )
    S = np.subtract(Sp, Sn, out=Sp)
    return NMFResult(
        W=W,
        H=H,
        n_iter=run.n_iter,
        objective=run.objective,
        converged=run.converged,
        S=S,
        param_history=np.asarray(lams),
    )
