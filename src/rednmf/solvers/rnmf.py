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
suite checks it against a plain transcription) a block of pixels at a time
(:mod:`rednmf.solvers._mu_blocks`): the parts ``S+ = max(E - lam_t/2, 0)`` and
``S- = max(-E - lam_t/2, 0)`` come straight from each block's residual (no
``sign``), are formed in the W step's pass and again in the H step's (``S``
is never stored), ``||S||_1`` is ``sum S+ + sum S-``, the median is an exact
selection over the blocks, and the objective of an iteration is summed from
the new residual of each block as the H step leaves it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rednmf.solvers._driver import FitCallback, Iterate
from rednmf.solvers._mu_blocks import BlockMatrix, BlockMedian, Factors
from rednmf.solvers.nmf import NMFResult, run_reweighted, sq_norm, sum64

__all__ = ["anomaly_matrix", "rnmf_solve", "rnmf_objective"]


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
    overwrite_H: bool = False,
    keep_S: bool = True,
) -> NMFResult:
    """Fit RNMF (eq. 5) by soft thresholding and multiplicative updates.

    Parameters
    ----------
    X, W, H, max_iter, tol, eps, callback, overwrite_H
        As in :func:`rednmf.solvers.nmf.nmf_solve` (an iteration is an S, a W
        and an H step; the callback's ``state`` also holds ``S``, an
        :func:`anomaly_matrix` formed by blocks when read).
    lam : float
        Sparsity weight; see ``lam_mode``.
    lam_mode : {'adaptive', 'absolute'}
        ``'adaptive'``: ``lam_t = lam * median |X - WH|`` at each iteration;
        ``'absolute'``: ``lam_t = lam``.
    keep_S : bool, default=True
        Return the last ``S`` as a bands x pixels array; without it
        :func:`anomaly_matrix` forms it from ``last_step`` by blocks.

    Returns
    -------
    NMFResult
        ``W, H, S`` (``S`` with ``keep_S``), ``n_iter``, the objective (5)
        after each iteration (with that iteration's ``lam_t``),
        ``param_history`` = the ``lam_t`` used and ``last_step`` =
        ``(W, H, lam_t / 2)`` of the last S step.

    References
    ----------
    L. Zhang, Z. Chen, M. Zheng and X. He, "Robust non-negative matrix
    factorization", Front. Electr. Electron. Eng. China 6 (2), 2011, 192-200.
    """
    adaptive = lam_mode == "adaptive"
    f = Factors(W, H, overwrite_H)  # f.last: the factors before the last step serve its S
    median = BlockMedian(X.dtype, X.shape[0] * X.shape[1])
    if adaptive:  # the counts of |X - WH| with the initial W, H
        for A in f.abs_residuals(X):
            median.add(A)
    lams: list[float] = []
    parts: list[np.ndarray] = []  # S+ and S- of the block in hand

    def step() -> float:
        # S step (6): S = sign(E) max(|E| - tau, 0) = S+ - S-, block by block.
        lam_t = lam * median.result(lambda: f.abs_residuals(X)) if adaptive else lam
        tau = lam_t / 2
        lams.append(lam_t)
        l1 = 0.0

        def target(E: Any, Xb: np.ndarray, first: bool) -> tuple[None, np.ndarray, np.ndarray]:
            nonlocal l1
            Sp, Sn = _parts(E, tau)
            if first:
                l1 += sum64(Sp) + sum64(Sn)
            parts[:] = [Sp, Sn]
            np.add(Xb, Sn, out=E)
            return None, E, Sp  # mu_update_W / mu_update_H with P = X + S-, N = S+

        fit = 0.0

        def tally(E: np.ndarray) -> None:  # this iteration's residual: its objective, the median
            nonlocal fit
            Sp, Sn = parts
            if adaptive:
                median.add(np.abs(E))
            E -= Sp
            E += Sn  # E - S: exactly, as S+ and S- never overlap
            fit += sq_norm(E)

        f.step(X, target, eps, tally, tau)
        return fit + lam_t * l1

    res = run_reweighted(
        f, X, step, lams, method="RNMF", max_iter=max_iter, tol=tol, callback=callback,
        state=lambda: Iterate(X=X, W=f.W, H=f.H, S=anomaly_matrix(X, *f.last)),
    )  # fmt: skip
    if keep_S:
        res.S = np.asarray(anomaly_matrix(X, *res.last_step))
    return res


def _parts(E: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """``S+ = max(E - tau, 0)`` and ``S- = max(-E - tau, 0)`` (new arrays)."""
    Sp = np.subtract(E, tau)
    np.maximum(Sp, 0, out=Sp)
    Sn = np.subtract(-tau, E)
    np.maximum(Sn, 0, out=Sn)
    return Sp, Sn


def anomaly_matrix(X: Any, W: np.ndarray, H: np.ndarray, tau: float) -> BlockMatrix:
    """``S = soft_threshold(X - WH, tau)`` (the S step (6)) formed block by block on demand.

    With the ``W, H, tau`` of a fit's last S step (:attr:`NMFResult.last_step`)
    it is that fit's ``S``, bit for bit: the same blocks, the same arithmetic.
    """

    def block(a: int, b: int) -> np.ndarray:
        E = W @ H[:, a:b]
        np.subtract(np.asarray(X[:, a:b]), E, out=E)
        Sp, Sn = _parts(E, tau)
        return np.subtract(Sp, Sn, out=Sp)

    return BlockMatrix(X.shape, X.dtype, block)
