r"""The literal oracles of the solvers: every update as printed, every product formed afresh.

Used by the tests and benchmarks only, never by a fit. The solvers of
:mod:`rednmf.solvers` reassociate products, work in buffers, restrict sums to
the support of ``S`` and select medians by partition; these functions state
the same updates as the equations do, so that a test can check that a fast
solver follows the same iterates (to rounding) and a benchmark can time the
plain form against it.

* The multiplicative steps of the NMF family, :func:`mu_update_W`,
  :func:`mu_update_H` (module text of :mod:`rednmf.solvers.nmf`).
* REDNMF's steps of Algorithm 1: :func:`update_S` (17), :func:`update_W` (14),
  :func:`update_M` (15), :func:`update_M_factored` (15 with the factored split
  of ``SS'``) and :func:`update_H` (16). :func:`update_S` with ``sparsity='l1'``
  is also RNMF's S step (6).
* Whole fits written as plain loops: :func:`plain_nmf`, :func:`plain_rnmf`,
  :func:`plain_l1nmf`, :func:`plain_ewnmf` (float64, the equations of each
  solver's module text) and :func:`plain_rednmf` (Algorithm 1 from the steps
  above). Each returns the final factors, the objective after every
  iteration and the per-iteration parameter; :func:`plain_stop` is their
  stopping rule.
"""

from __future__ import annotations

import numpy as np

from rednmf.solvers.prox import group_shrink, soft_threshold
from rednmf.solvers.rednmf import _split, rednmf_objective

__all__ = [
    "mu_update_H",
    "mu_update_W",
    "plain_ewnmf",
    "plain_l1nmf",
    "plain_nmf",
    "plain_rednmf",
    "plain_rnmf",
    "plain_stop",
    "update_H",
    "update_M",
    "update_M_factored",
    "update_S",
    "update_W",
]


# -- the NMF family ------------------------------------------------------------------


def mu_update_W(
    P: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    *,
    N: np.ndarray | None = None,
    U: np.ndarray | None = None,
    eps: float = 1e-10,
) -> np.ndarray:
    """Multiplicative W step for ``||sqrt(U) * (P - N - WH)||_F^2``.

    ``W * ((U*P) H') / ((U*(WH)) H' + (U*N) H' + eps)`` (module text of
    :mod:`rednmf.solvers.nmf`). ``N = None`` means ``N = 0`` and ``U = None``
    means ``U = 1`` (then reassociated as ``W (H H')``). Returns a new array.
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
    """Multiplicative H step for ``||sqrt(U) * (P - N - WH)||_F^2`` (see :func:`mu_update_W`)."""
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


def plain_stop(objective: list[float], tol: float) -> bool:
    """The stopping rule, plainly: ``|f_{t-1} - f_t| <= tol |f_{t-1}|`` (``tol = 0``: never)."""
    if tol <= 0 or len(objective) < 2:
        return False
    return abs(objective[-2] - objective[-1]) <= tol * abs(objective[-2])


def plain_nmf(
    X: np.ndarray, W: np.ndarray, H: np.ndarray, n_iter: int, tol: float = 0.0, eps: float = 1e-10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lee-Seung NMF (eq. 1), plainly. Returns ``W, H`` and ``||X - WH||^2`` per iteration."""
    objs: list[float] = []
    for _ in range(n_iter):
        W = W * (X @ H.T) / (W @ H @ H.T + eps)
        H = H * (W.T @ X) / (W.T @ W @ H + eps)
        objs.append(float(np.sum((X - W @ H) ** 2)))
        if plain_stop(objs, tol):
            break
    return W, H, np.array(objs)


def plain_rnmf(
    X: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    lam: float,
    n_iter: int,
    lam_mode: str = "adaptive",
    tol: float = 0.0,
    eps: float = 1e-10,
) -> tuple[np.ndarray, ...]:
    """RNMF (eqs. 5-6), plainly. Returns ``W, H, S``, the objectives and the ``lam_t``."""
    objs, lams, S = [], [], np.zeros_like(X)
    for _ in range(n_iter):
        E = X - W @ H
        lam_t = lam * np.median(np.abs(E)) if lam_mode == "adaptive" else lam
        S = np.sign(E) * np.maximum(np.abs(E) - lam_t / 2, 0)  # eq. (6)
        Sp, Sn = np.maximum(S, 0), np.maximum(-S, 0)
        W = W * ((X + Sn) @ H.T) / (W @ H @ H.T + Sp @ H.T + eps)
        H = H * (W.T @ (X + Sn)) / (W.T @ W @ H + W.T @ Sp + eps)
        objs.append(np.sum((X - W @ H - S) ** 2) + lam_t * np.sum(np.abs(S)))  # eq. (5)
        lams.append(lam_t)
        if plain_stop(objs, tol):
            break
    return W, H, S, np.array(objs), np.array(lams)


def plain_l1nmf(
    X: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    n_iter: int,
    delta: float = 0.5,
    delta_mode: str = "adaptive",
    tol: float = 0.0,
    eps: float = 1e-10,
) -> tuple[np.ndarray, ...]:
    """L1NMF by reweighted MU, plainly. Returns ``W, H, U``, the objectives and the ``delta_t``."""
    objs, deltas = [], []
    U = np.ones_like(X)
    for _ in range(n_iter):
        E = X - W @ H
        d_t = delta * max(np.median(np.abs(E)), np.finfo(np.float32).tiny)
        d_t = d_t if delta_mode == "adaptive" else delta
        U = 1 / np.maximum(np.abs(E), d_t)
        W = W * ((U * X) @ H.T) / ((U * (W @ H)) @ H.T + eps)
        H = H * (W.T @ (U * X)) / (W.T @ (U * (W @ H)) + eps)
        a = np.abs(X - W @ H)
        objs.append(np.sum(np.where(a >= d_t, a, a**2 / (2 * d_t) + d_t / 2)))
        deltas.append(d_t)
        if plain_stop(objs, tol):
            break
    return W, H, U, np.array(objs), np.array(deltas)


def plain_ewnmf(
    X: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    n_iter: int,
    gamma: float = 1.0,
    gamma_mode: str = "adaptive",
    tol: float = 0.0,
    eps: float = 1e-10,
) -> tuple[np.ndarray, ...]:
    """EWNMF, plainly. Returns ``W, H, T``, the objectives and the ``gamma_t``."""
    objs, gammas, d = [], [], X.shape[0]
    T = np.full_like(X, 1.0 / d)
    for _ in range(n_iter):
        E = X - W @ H
        g_t = gamma * np.mean(E**2) if gamma_mode == "adaptive" else gamma
        Z = E**2
        T = np.exp(-(Z - Z.min(axis=0)) / g_t)
        T = T / T.sum(axis=0)
        W = W * ((T * X) @ H.T) / ((T * (W @ H)) @ H.T + eps)
        H = H * (W.T @ (T * X)) / (W.T @ (T * (W @ H)) + eps)
        with np.errstate(divide="ignore", invalid="ignore"):
            ent = np.sum(np.where(T > 0, T * np.log(d * T), 0.0))
        objs.append(np.sum(T * (X - W @ H) ** 2) + g_t * ent)
        gammas.append(g_t)
        if plain_stop(objs, tol):
            break
    return W, H, T, np.array(objs), np.array(gammas)


# -- REDNMF (Algorithm 1) --------------------------------------------------------------


def update_S(
    E: np.ndarray, lam: float, sparsity: str = "l1", shrink: str = "column"
) -> np.ndarray:
    """S step (17), or RNMF's (6) with ``sparsity='l1'``: the prox of ``||E - S||^2 + lam R(S)``.

    The threshold is ``lam / 2`` (the squared loss has no 1/2): L2,1 group
    shrinkage of the columns (``shrink='column'``) or rows of ``E``, the
    element-wise soft threshold (``'l1'``), or ``S = 0`` (``'none'``).
    """
    if sparsity == "none":
        return np.zeros_like(E)
    if sparsity == "l1":
        return soft_threshold(E, lam / 2)
    return group_shrink(E, lam / 2, axis=0 if shrink == "column" else 1)


def update_W(
    X: np.ndarray, W: np.ndarray, H: np.ndarray, Sp: np.ndarray, Sn: np.ndarray, eps: float
) -> np.ndarray:
    """W step (14) as corrected in Sec. 4.4, as printed: ``W * (XH' + S-H') / (WHH' + S+H')``.

    Every product formed as written, left to right.
    """
    num = X @ H.T + Sn @ H.T
    den = W @ H @ H.T + Sp @ H.T + eps
    return W * (num / den)


def update_M(
    X: np.ndarray, M: np.ndarray, H: np.ndarray, Sp: np.ndarray, Sn: np.ndarray, eps: float
) -> np.ndarray:
    """M step (15), a literal transcription.

    ``M * (H(X+S-)' + M(XS+' + S+X' + [SS']-)) / (M(XX' + XS-' + S-X' + [SS']+) + HS+')``

    Every bands x bands product of (15) is formed as printed, ``XX'`` included,
    at every call (the fast solver forms ``XX'`` once and only ``SS'`` per
    iteration).
    """
    S = Sp - Sn
    SSp, SSn = _split(S @ S.T)
    num = H @ (X + Sn).T + M @ (X @ Sp.T + Sp @ X.T + SSn)
    den = M @ (X @ X.T + X @ Sn.T + Sn @ X.T + SSp) + H @ Sp.T + eps
    return M * (num / den)


def update_M_factored(
    X: np.ndarray, M: np.ndarray, H: np.ndarray, Sp: np.ndarray, Sn: np.ndarray, eps: float
) -> np.ndarray:
    """M step (15) with the factored split of ``SS'``, a literal transcription.

    ``SS' = S+S+' + S-S-' - (S+S-' + S-S+')``; both brackets are nonnegative,
    so putting the first in the denominator and the second in the numerator is
    a valid split of the gradient (12) with the same fixed points as (15)'s
    element-wise ``[SS']+ / [SS']-``::

        M * (H(X+S-)' + M(XS+' + S+X' + S+S-' + S-S+'))
          / (M(XX' + XS-' + S-X' + S+S+' + S-S-') + HS+')

    Every product as written, ``d x d`` brackets included: the oracle of the
    solver's ``m_split='factored'``, which forms ``(MS+)S+'`` and the like at
    ``r d n`` instead of ``d^2 n``. (16) needs no such choice: its terms are
    already products with ``S+`` and ``S-`` (``W'S-``, ``MS+``, ...).
    """
    num = H @ (X + Sn).T + M @ (X @ Sp.T + Sp @ X.T + Sp @ Sn.T + Sn @ Sp.T)
    den = M @ (X @ X.T + X @ Sn.T + Sn @ X.T + Sp @ Sp.T + Sn @ Sn.T) + H @ Sp.T + eps
    return M * (num / den)


def update_H(
    X: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    M: np.ndarray,
    Sp: np.ndarray,
    Sn: np.ndarray,
    beta: float,
    eps: float,
) -> np.ndarray:
    """H step (16), a literal transcription.

    ``H * (W'X + W'S- + bMX + bMS-) / (W'WH + W'S+ + bH + bMS+)``.
    """
    num = W.T @ X + W.T @ Sn
    den = W.T @ W @ H + W.T @ Sp + eps
    if beta > 0:
        num = num + beta * (M @ X) + beta * (M @ Sn)
        den = den + beta * H + beta * (M @ Sp)
    return H * (num / den)


def plain_rednmf(
    X: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    M: np.ndarray,
    *,
    lam: float,
    beta: float,
    n_iter: int,
    sparsity: str = "l21",
    shrink: str = "column",
    fixed: bool = False,
    m_split: str = "elementwise",
    eps: float = 1e-10,
) -> tuple[np.ndarray, ...]:
    """Algorithm 1 transcribed literally from the update functions above.

    ``fixed``: ``lam`` is the threshold weight itself (``lam_mode='absolute'``);
    otherwise it is relative to the median group norm of the current residual
    (``lam_mode='adaptive'``).

    Returns
    -------
    tuple
        ``W, H, M, S`` after the last iteration and the objective (10) after
        each iteration (with that iteration's ``lam_t``).
    """
    objective = []
    S = np.zeros_like(X)
    for _ in range(n_iter):
        E = X - W @ H
        if fixed:
            lam_t = lam
        elif sparsity == "l1":
            lam_t = lam * np.median(np.abs(E))
        else:
            lam_t = lam * np.median(np.linalg.norm(E, axis=0 if shrink == "column" else 1))
        S = update_S(E, lam_t, sparsity, shrink)
        Sp, Sn = _split(S)
        W = update_W(X, W, H, Sp, Sn, eps)
        if beta > 0:
            step_M = update_M_factored if m_split == "factored" else update_M
            M = step_M(X, M, H, Sp, Sn, eps)
        H = update_H(X, W, H, M, Sp, Sn, beta, eps)
        objective.append(
            rednmf_objective(X, W, H, M, S, beta=beta, lam=lam_t, sparsity=sparsity, shrink=shrink)
        )
    return W, H, M, S, np.asarray(objective)
