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

  (written plainly as ``mu_update_W``, ``mu_update_H`` in ``tests/oracles/reference.py``).

With a fixed ``gamma`` every step is exact or majorisation-minimisation, so the
objective does not increase from one iteration to the next.

**Scale of gamma.** ``gamma`` divides squared residuals, so its absolute value
depends on the data scale. ``gamma_mode='adaptive'`` (default) uses at each
iteration ``gamma_t = gamma * mean_ij E_ij^2`` (the mean squared residual
before the T step), making ``gamma`` dimensionless: with ``gamma = 1`` a band
whose residual is twice the root-mean-square residual weighs ``exp(-4)`` times
a perfectly fitted band of the same pixel. ``gamma_mode='absolute'`` uses
``gamma`` as is. With ``'adaptive'`` the objective at iteration ``t`` uses
``gamma_t`` and the descent argument holds only within an iteration.

**Implementation.** :func:`ewnmf_solve` applies these steps exactly (the test
suite checks it against a plain transcription) a block of pixels at a time
(:mod:`rednmf.solvers._mu_blocks`; ``T`` is formed in the W step's pass and
again in the H step's, never stored whole). The
entropy needs no logarithm of a ``d x n`` array: with ``T_ij = e_ij / s_j``,
``e_ij = exp(-Z'_ij / gamma)`` (``Z'`` the shifted squared residuals) and
``s_j`` the column sums, ``ln(d T_ij) = ln d - ln s_j - Z'_ij / gamma``, so

    sum_ij T_ij ln(d T_ij) = sum_j (ln d - ln s_j) c_j - sum_ij T_ij Z'_ij / gamma,

``c_j = sum_i T_ij`` (one up to rounding). The fit term and ``mean E^2`` of the
next iteration are summed from each block's new residual (float64 sums).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rednmf.solvers._driver import FitCallback
from rednmf.solvers._mu_blocks import BlockMatrix, Factors, residual_blocks
from rednmf.solvers.nmf import NMFResult, blocks64, residual, run_reweighted

__all__ = [
    "entropy_weights",
    "ewnmf_objective",
    "ewnmf_solve",
    "weighted_evidence",
    "weighted_residual",
]


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


def weighted_residual(
    X: np.ndarray, W: np.ndarray, H: np.ndarray, T: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """``sqrt(d T) * (X - WH)``: its squared column norm is ``d`` times the pixel's fit term.

    With uniform weights (``T = 1/d``) it is the plain residual. Formed a block
    of pixels at a time (:func:`rednmf.solvers.nmf.residual`); ``out`` may be
    ``X`` itself (the detector's scaled copy, not needed afterwards).
    """
    d = X.shape[0]

    def weigh(R: np.ndarray, a: int, b: int) -> None:
        R *= np.sqrt(d * T[:, a:b])

    return residual(X, W, H, out=out, then=weigh)


def _fit_sums(E: np.ndarray, T: np.ndarray | None) -> tuple[float, float]:
    """``sum E^2`` and ``sum T * E^2`` (0 without ``T``), products and sums in float64."""
    s2 = fit = 0.0
    for blocks in blocks64(E) if T is None else blocks64(E, T):
        e = blocks[0]
        e *= e
        s2 += float(e.sum())
        if T is not None:
            fit += float(np.dot(blocks[1], e))
    return s2, fit


def _entropy(T: np.ndarray, Z: np.ndarray, s: np.ndarray, gamma: float) -> float:
    """``sum T ln(d T)`` of ``T = exp(-Z / gamma) / s`` without a ``d x n`` logarithm.

    See the module text; ``0 ln 0 = 0`` holds as ``T = 0`` multiplies finite terms.
    """
    tz = sum(float(np.dot(t, z)) for t, z in blocks64(T, Z))
    c = T.sum(axis=0, dtype=np.float64)
    v = np.log(T.shape[0]) - np.log(s.reshape(-1).astype(np.float64))
    return float(np.dot(v, c)) - tz / gamma


def ewnmf_solve(
    X: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    *,
    gamma: float = 1.0,
    max_iter: int = 200,
    tol: float = 1e-4,
    gamma_mode: str = "adaptive",
    eps: float = 1e-10,
    callback: FitCallback | None = None,
    overwrite_H: bool = False,
    keep_weights: bool = True,
) -> NMFResult:
    """Fit EWNMF by alternating the softmax weights and weighted multiplicative steps.

    Parameters
    ----------
    X, W, H, max_iter, tol, eps, callback, overwrite_H
        As in :func:`rednmf.solvers.nmf.nmf_solve` (an iteration is a T, a W
        and an H step).
    gamma : float
        Entropy weight, > 0; see ``gamma_mode``.
    gamma_mode : {'adaptive', 'absolute'}
        ``'adaptive'``: ``gamma_t = gamma * mean (X - WH)^2`` at each
        iteration; ``'absolute'``: ``gamma_t = gamma``.
    keep_weights : bool, default=True
        Return the last weights ``T`` as a bands x pixels array; without it
        :func:`weighted_evidence` forms them from ``last_step`` by blocks.

    Returns
    -------
    NMFResult
        ``W, H``, ``n_iter``, the objective after each iteration (with that
        iteration's ``gamma_t``), ``weights`` = the last ``T`` (with
        ``keep_weights``), ``param_history`` = the ``gamma_t`` used and
        ``last_step`` = ``(W, H, gamma_t)`` of the last T step.

    References
    ----------
    J. Wei, C. Tong, B. Wu, Q. He, S. Qi, Y. Yao and Y. Teng, "An entropy
    weighted nonnegative matrix factorization algorithm for feature
    representation", IEEE Trans. Neural Netw. Learn. Syst. 34 (9), 2022, 5381-5391.
    """
    adaptive = gamma_mode != "absolute"
    size = X.shape[0] * X.shape[1]
    f = Factors(W, H, overwrite_H)  # f.last: the factors before the last step serve its T
    s2 = sum(_fit_sums(E, None)[0] for _, _, E in residual_blocks(X, W, f.H))  # initial W, H
    gammas: list[float] = []
    weights: list[np.ndarray] = []  # T of the block in hand

    def step() -> float:
        nonlocal s2
        g_t = gamma * max(s2 / size, np.finfo(np.float64).tiny) if adaptive else gamma
        gammas.append(g_t)
        ent = 0.0

        def target(E: Any, Xb: np.ndarray, first: bool) -> tuple[np.ndarray, np.ndarray, None]:
            nonlocal ent
            T, Z, s = _softmax(E, g_t)  # T step: entropy_weights(E, g_t)
            if first:
                ent += _entropy(T, Z, s, g_t)
            weights[:] = [T]
            return T, Xb, None

        s2 = fit = 0.0

        def tally(E: np.ndarray) -> None:  # this iteration's residual: its fit, the next gamma_t
            nonlocal s2, fit
            a, b = _fit_sums(E, weights[0])
            s2 += a
            fit += b

        f.step(X, target, eps, tally, g_t)
        return fit + g_t * ent

    res = run_reweighted(
        f, X, step, gammas, method="EWNMF", max_iter=max_iter, tol=tol, callback=callback
    )
    if keep_weights:
        W_prev, H_prev, g_t = res.last_step
        res.weights = np.empty(X.shape, X.dtype)
        for a, b, E in residual_blocks(X, W_prev, H_prev):
            res.weights[:, a:b] = _softmax(E, g_t)[0]
    return res


def _softmax(E: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``T = entropy_weights(E, gamma)`` with the shifted ``Z`` and the sums ``s`` it divides by.

    ``E`` is overwritten (it becomes ``Z``).
    """
    Z = np.multiply(E, E, out=E)
    np.subtract(Z, Z.min(axis=0, keepdims=True), out=Z)
    T = np.divide(Z, -gamma)
    np.exp(T, out=T)
    s = T.sum(axis=0, keepdims=True)
    np.divide(T, s, out=T)
    return T, Z, s


def weighted_evidence(
    X: Any, W: np.ndarray, H: np.ndarray, last_step: tuple[np.ndarray, np.ndarray, float]
) -> BlockMatrix:
    """``sqrt(d T) * (X - WH)`` formed block by block on demand (:func:`weighted_residual`).

    ``T`` is the weights of a fit's last T step, formed again from the
    ``W, H, gamma_t`` of that step (:attr:`NMFResult.last_step`), bit for bit.
    """
    W_t, H_t, g_t = last_step

    def block(a: int, b: int) -> np.ndarray:
        Xb = np.asarray(X[:, a:b])
        E = W_t @ H_t[:, a:b]
        np.subtract(Xb, E, out=E)
        return weighted_residual(Xb, W, H[:, a:b], _softmax(E, g_t)[0])

    return BlockMatrix(X.shape, X.dtype, block)
