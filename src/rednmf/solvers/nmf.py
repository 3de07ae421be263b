r"""Basic NMF by the Lee-Seung multiplicative updates, and the pieces its relatives share.

Pure functions over arrays: no seeds, no I/O, no printing. ``X`` is
bands x pixels (``d x n``) and nonnegative.

Model (eq. 1 of the REDNMF paper; Lee & Seung, 2001)::

    min_{W,H >= 0}  ||X - WH||_F^2

    W <- W * (X H') / (W H H'),    H <- H * (W' X) / (W' W H).

The multiplicative steps of the NMF family (NMF, RNMF, L1NMF, EWNMF) are all
one step (written plainly in the test oracle ``tests/oracles/reference.py`` as
``mu_update_W``, ``mu_update_H``): the
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

**Memory and speed.** The solver loops of the family follow the equations
above exactly (the test suite compares each against a plain transcription)
but take them a block of pixels at a time (:mod:`rednmf.solvers._mu_blocks`):
no bands x pixels array is formed, ``X`` may be a
:class:`~rednmf.preprocessing.ScaledMatrix` (the cube scaled block by block,
no copy), the products of the W step are summed over the blocks in float64,
medians are exact radix selections over the blocks, and only scalars and
``d x r`` sums are accumulated across blocks (in float64). What such a loop
holds besides ``X`` is ``H``, the ``H`` before the last step (RNMF, L1NMF,
EWNMF: their ``S`` or weights are formed again from it) and a few blocks.
Each solver supplies one iteration; the loop around it (objective history,
fit callback, stopping rule, the warning at ``max_iter``) is
:func:`rednmf.solvers._driver.iterate`, shared by the family and REDNMF.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rednmf.solvers._driver import FitCallback, Iterate, iterate
from rednmf.solvers._mu_blocks import BlockMatrix, Factors, h_pass, w_step

__all__ = [
    "NMFResult",
    "nmf_solve",
    "nmf_objective",
    "residual",
    "residual_matrix",
    "run_reweighted",
    "sq_norm",
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
    last_step : tuple or None
        ``(W, H, p)``: the factors before the last iteration and its parameter
        (RNMF: ``lam_t / 2``, L1NMF: ``delta_t``, EWNMF: ``gamma_t``), from
        which that iteration's ``S`` or weights are formed again by blocks
        (:func:`rednmf.solvers.rnmf.anomaly_matrix`,
        :func:`rednmf.solvers.ewnmf.weighted_evidence`); ``None`` for NMF.
    """

    W: np.ndarray
    H: np.ndarray
    n_iter: int
    objective: np.ndarray
    converged: bool = False
    S: np.ndarray | None = None
    weights: np.ndarray | None = None
    param_history: np.ndarray = field(default_factory=lambda: np.empty(0))
    last_step: tuple[np.ndarray, np.ndarray, float] | None = None


#: Elements per float64 block of the blocked reductions (256 KiB: stays in cache).
_BLOCK = 1 << 15


def _flat(A: np.ndarray) -> np.ndarray:
    """``A`` as 1-D, a view when ``A`` is contiguous (element order does not matter)."""
    return A.ravel(order="K")


def sq_norm(A: np.ndarray) -> float:
    """``||A||_F^2`` accumulated in float64.

    float32 input is converted block by block into a small float64 buffer, so
    the products and the sum are float64 without a float64 copy of ``A``.
    """
    a = _flat(A)
    if a.dtype == np.float64:
        return float(np.dot(a, a))
    buf = np.empty(min(_BLOCK, a.size))
    total = 0.0
    for i in range(0, a.size, _BLOCK):
        b = buf[: min(_BLOCK, a.size - i)]
        np.copyto(b, a[i : i + _BLOCK])
        total += float(np.dot(b, b))
    return total


def sum64(A: np.ndarray) -> float:
    """``sum(A)`` accumulated in float64."""
    return float(np.add.reduce(_flat(A), dtype=np.float64))


def blocks64(*arrays: np.ndarray) -> Iterator[list[np.ndarray]]:
    """Yield the arrays (same size) block by block, each block copied into float64.

    The buffers are reused: a block is valid until the next one is yielded.
    """
    flats = [np.ravel(a) for a in arrays]
    size = flats[0].size
    bufs = [np.empty(min(_BLOCK, size)) for _ in flats]
    for i in range(0, size, _BLOCK):
        j = min(i + _BLOCK, size)
        blocks = [b[: j - i] for b in bufs]
        for f, b in zip(flats, blocks, strict=True):
            np.copyto(b, f[i:j])
        yield blocks


#: Pixels per block of :func:`residual` (a d x block product at a time).
_RESIDUAL_BLOCK = 1 << 13


def residual(
    X: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    out: np.ndarray | None = None,
    then: Callable[[np.ndarray, int, int], None] | None = None,
) -> np.ndarray:
    """``X - W H``, a block of pixels at a time: no bands x pixels product is formed.

    ``out`` (default: a new array like ``X``) may be ``X`` itself. ``then(R, a, b)``
    is applied in place to each block ``R`` of pixels ``a:b`` once it is formed.
    """
    out = np.empty_like(X) if out is None else out
    for a in range(0, X.shape[1], _RESIDUAL_BLOCK):
        b = min(a + _RESIDUAL_BLOCK, X.shape[1])
        R = out[:, a:b]
        np.subtract(X[:, a:b], W @ H[:, a:b], out=R)
        if then is not None:
            then(R, a, b)
    return out


def residual_matrix(X: Any, W: np.ndarray, H: np.ndarray) -> BlockMatrix:
    """``X - W H`` formed a block of pixels at a time on demand (the evidence of NMF, L1NMF)."""

    def block(a: int, b: int) -> np.ndarray:
        E = W @ H[:, a:b]
        return np.subtract(np.asarray(X[:, a:b]), E, out=E)

    return BlockMatrix(X.shape, X.dtype, block)


def nmf_objective(X: np.ndarray, W: np.ndarray, H: np.ndarray) -> float:
    """Objective (1): ``||X - WH||_F^2``."""
    return sq_norm(X - W @ H)


def nmf_solve(
    X: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    *,
    max_iter: int = 200,
    tol: float = 1e-4,
    eps: float = 1e-10,
    callback: FitCallback | None = None,
    overwrite_H: bool = False,
) -> NMFResult:
    """Fit basic NMF (eq. 1) by the Lee-Seung multiplicative updates.

    Parameters
    ----------
    X : ndarray of shape (d, n), or a matrix read ``X[:, a:b]``
        Nonnegative data, bands x pixels, float32 or float64; read a block of
        pixels at a time (:mod:`rednmf.solvers._mu_blocks`), so a
        :class:`~rednmf.preprocessing.ScaledMatrix` serves without a copy.
    W, H : ndarray
        Initial factors, shapes (d, r) and (r, n), nonnegative, in the dtype
        of ``X``. They are not modified (but see ``overwrite_H``).
    max_iter : int
        Maximum number of iterations (one W step then one H step each).
    tol : float
        Stop when the relative change of ``||X - WH||_F^2`` between two
        iterations is at most ``tol``; ``tol = 0`` runs ``max_iter`` iterations.
    eps : float
        Added to every denominator (``0`` is allowed when the factors are
        positive).
    callback : callable, optional
        ``callback(iteration, objective, state)`` after each iteration, with
        ``state`` a :class:`~rednmf.solvers._driver.Iterate` (``W, H``); a
        two-argument ``callback(iteration, objective)`` works too.
    overwrite_H : bool, default=False
        Update ``H`` in place instead of a copy (the caller's initial ``H``
        is then the result's: one ``r x n`` array less).

    Returns
    -------
    NMFResult
        ``W, H``, ``n_iter`` and ``||X - WH||_F^2`` after each iteration.

    References
    ----------
    D. D. Lee and H. S. Seung, "Algorithms for non-negative matrix
    factorization", NIPS 13, 2001.
    """
    H = H if overwrite_H else H.copy()

    def data(E: np.ndarray | None, Xb: np.ndarray, first: bool) -> tuple[None, np.ndarray, None]:
        return None, Xb, None  # P = X, N = 0, no weights

    def step() -> float:
        nonlocal W
        W_new = w_step(X, W, H, data, eps, residual=False)  # mu_update_W
        fit = 0.0

        def tally(E: np.ndarray) -> None:
            nonlocal fit
            fit += sq_norm(E)

        h_pass(X, W, W_new, H, H, data, eps, tally, residual=False)  # mu_update_H, in place
        W = W_new
        return fit

    run = iterate(
        step,
        max_iter=max_iter,
        tol=tol,
        method="NMF",
        callback=callback,
        state=lambda: Iterate(X=X, W=W, H=H),
    )
    return NMFResult(W=W, H=H, n_iter=run.n_iter, objective=run.objective, converged=run.converged)


def run_reweighted(
    f: Factors,
    X: Any,
    step: Callable[[], float],
    params: list[float],
    *,
    method: str,
    max_iter: int,
    tol: float,
    callback: FitCallback | None,
    state: Callable[[], Iterate] | None = None,
) -> NMFResult:
    """The loop of a reweighted solver (RNMF, L1NMF, EWNMF) and its result.

    Runs ``step`` by :func:`~rednmf.solvers._driver.iterate` (``state``
    default: ``X`` and the factors ``f.W, f.H``) and returns ``f``'s factors,
    the run's history, ``param_history`` = ``params`` (the per-iteration
    parameter the steps appended) and ``last_step`` = :meth:`Factors.done`.
    """
    run = iterate(
        step,
        max_iter=max_iter,
        tol=tol,
        method=method,
        callback=callback,
        state=state or (lambda: Iterate(X=X, W=f.W, H=f.H)),
        stacklevel=5,  # the warning points at the solver's caller
    )
    return NMFResult(
        W=f.W,
        H=f.H,
        n_iter=run.n_iter,
        objective=run.objective,
        converged=run.converged,
        param_history=np.asarray(params),
        last_step=f.done(),
    )
