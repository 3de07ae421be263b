r"""EWNMF solver: entropy-weighted NMF (Wei et al., IEEE TNNLS 2022).

Pure functions over arrays: no seeds, no I/O, no printing. ``X`` is
bands x pixels (``d x n``) and nonnegative.

Model (ref. [71] of the REDNMF paper)::

    min_{W,H >= 0, T}  sum_ij T_ij E_ij^2 + gamma sum_j sum_i T_ij ln(d T_ij),
    E = X - WH,   T_ij >= 0,   sum_i T_ij = 1 for every pixel j.

Every pixel spreads a unit of weight over its bands; the entropy term keeps
the weights from collapsing on the best-fitted band. We write the entropy as
``sum_j KL(T_j || uniform)`` (Wei et al.'s ``sum T ln T`` plus the constant
``n ln d``), so the objective is nonnegative; the minimisers are the same.

One iteration:

* **T**: the exact minimiser over ``T`` with ``W, H`` fixed, a softmax over
  the bands of each pixel: ``T_ij = exp(-E_ij^2 / gamma) / sum_k exp(-E_kj^2 / gamma)``.
* **W, H**: the weighted multiplicative steps for ``||sqrt(T) * (X - WH)||_F^2``::

      W <- W * ((T*X) H') / ((T*(WH)) H'),   H <- H * (W' (T*X)) / (W' (T*(WH)))

  (shared code: :func:`rednmf.solvers.nmf.mu_update_W`, ``mu_update_H``).

With a fixed ``gamma`` every step is exact or majorisation-minimisation, so the
objective does not increase from one iteration to the next.

**Scale of gamma.** ``gamma`` divides squared residuals, so its absolute value
depends on the data scale. ``gamma_mode='relative'`` (default) uses at each
iteration ``gamma_t = gamma * mean_ij E_ij^2`` (the mean squared residual
before the T step), making ``gamma`` dimensionless: with ``gamma = 1`` a band
whose residual is twice the root-mean-square residual weighs ``exp(-4)`` times
a perfectly fitted band of the same pixel. ``gamma_mode='absolute'`` uses
``gamma`` as is. With ``'relative'`` the objective at iteration ``t`` uses
``gamma_t`` and the descent argument holds only within an iteration.
"""

from __future__ import annotations

import numpy as np

from rednmf.solvers.nmf import NMFResult, has_converged, mu_update_H, mu_update_W, warn_max_iter

__all__ = ["GAMMA_MODES", "ewnmf_solve", "ewnmf_objective", "entropy_weights", "weighted_residual"]

GAMMA_MODES = ("relative", "absolute")


def entropy_weights(E: np.ndarray, gamma: float) -> np.ndarray:
    """T step: per-pixel softmax of ``-E^2 / gamma`` over the bands (columns sum to one)."""
    Z = E * E
    Z -= Z.min(axis=0, keepdims=True)  # shift for a stable exponential; T is unchanged
    T = np.exp(-Z / gamma)
    T /= T.sum(axis=0, keepdims=True)
    return T


def ewnmf_objective(
    X: np.ndarray, W: np.ndarray, H: np.ndarray, T: np.ndarray, gamma: float
) -> float:
    """``sum T * (X - WH)^2 + gamma * sum T ln(d T)`` in float64 (``0 ln 0 = 0``)."""
    E = X - W @ H
    fit = float(np.einsum("ij,ij,ij->", T, E, E, dtype=np.float64))
    T64 = T.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = np.where(T64 > 0, T64 * np.log(X.shape[0] * T64), 0.0).sum()
    return fit + gamma * float(ent)


def weighted_residual(X: np.ndarray, W: np.ndarray, H: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``sqrt(d T) * (X - WH)``: its squared column norm is ``d`` times the pixel's fit term.

    With uniform weights (``T = 1/d``) it is the plain residual.
    """
    return np.sqrt(X.shape[0] * T) * (X - W @ H)


def _gamma_t(E: np.ndarray, gamma: float, gamma_mode: str) -> float:
    """``gamma`` itself, or ``gamma`` times the mean squared residual (relative mode)."""
    if gamma_mode == "absolute":
        return gamma
    ms = float(np.einsum("ij,ij->", E, E, dtype=np.float64)) / E.size
    return gamma * max(ms, np.finfo(np.float64).tiny)


def ewnmf_solve(
    X: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    *,
    gamma: float = 1.0,
    max_iter: int = 200,
    tol: float = 1e-4,
    gamma_mode: str = "relative",
    eps: float = 1e-10,
) -> NMFResult:
    """Fit EWNMF by alternating the softmax weights and weighted multiplicative steps.

    Parameters
    ----------
    X : ndarray of shape (d, n)
        Nonnegative data, bands x pixels, float32 or float64.
    W, H : ndarray
        Initial factors, shapes (d, r) and (r, n), nonnegative, in the dtype
        of ``X``. They are not modified.
    gamma : float
        Entropy weight, > 0; see ``gamma_mode``.
    max_iter : int
        Maximum number of iterations (T, W, H steps each).
    tol : float
        Stop when the relative change of the objective between two iterations
        is at most ``tol``; ``tol = 0`` runs ``max_iter`` iterations.
    gamma_mode : {'relative', 'absolute'}
        ``'relative'``: ``gamma_t = gamma * mean (X - WH)^2`` at each
        iteration; ``'absolute'``: ``gamma_t = gamma``.
    eps : float
        Added to every denominator.

    Returns
    -------
    NMFResult
        ``W, H``, ``n_iter``, the objective after each iteration (with that
        iteration's ``gamma_t``), ``weights`` = the last ``T`` and
        ``param_history`` = the ``gamma_t`` used.

    References
    ----------
    J. Wei, C. Tong, B. Wu, Q. He, S. Qi, Y. Yao and Y. Teng, "An entropy
    weighted nonnegative matrix factorization algorithm for feature
    representation", IEEE Trans. Neural Netw. Learn. Syst. 34 (9), 2022, 5381-5391.
    """
    objective: list[float] = []
    gammas: list[float] = []
    T = np.full_like(X, 1.0 / X.shape[0])
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - n_iter is used after the loop
        E = X - W @ H
        g_t = _gamma_t(E, gamma, gamma_mode)
        T = entropy_weights(E, g_t)
        del E
        W = mu_update_W(X, W, H, U=T, eps=eps)
        H = mu_update_H(X, W, H, U=T, eps=eps)
        objective.append(ewnmf_objective(X, W, H, T, g_t))
        gammas.append(g_t)
        if has_converged(objective, tol):
            converged = True
            break
    if not converged and tol > 0:
        warn_max_iter("EWNMF", max_iter, tol)
    return NMFResult(
        W=W,
        H=H,
        n_iter=n_iter,
        objective=np.asarray(objective),
        converged=converged,
        weights=T,
        param_history=np.asarray(gammas),
    )
