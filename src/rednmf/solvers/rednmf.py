r"""REDNMF solvers: robust asymmetric encoder-decoder NMF (Moradi et al., 2026).

Pure functions over arrays: no seeds, no I/O, no printing. ``X`` is
bands x pixels (``d x n``) and nonnegative. Two solvers run Algorithm 1 to the
same iterates: :func:`rednmf_solve` on whole matrices (every S step) and
:func:`rednmf_solve_blocks` by blocks of pixels (the S steps that act pixel by
pixel at a fixed threshold; threads, torch, Dask, data on disk).

Model (eq. 10 of the paper)::

    min_{W,H,M >= 0, S}  ||X - WH - S||_F^2 + beta ||H - M(X - S)||_F^2 + lam R(S)

with ``R(S) = ||S||_{2,1}`` (sum of column norms, one column per pixel) by
default. One iteration follows Algorithm 1: ``S`` (17), ``W`` (14, in the
corrected form of Sec. 4.4), ``M`` (15), ``H`` (16).

Choices where the paper is ambiguous (parameters of the solvers):

* **Threshold.** The S step is the exact proximal step of the first and last
  terms of (10): groups with norm at most ``lam / 2`` become zero, the rest
  shrink by ``lam / 2`` (the paper prints ``lam``; with a squared loss without
  a 1/2 the exact minimiser uses ``lam / 2``). The S step ignores the encoder
  term, as in the paper, so it is exact for (10) only when ``beta = 0``.
* **Groups.** ``shrink='column'`` (default) shrinks pixel spectra, as the text
  of Sec. 4.2 says; ``shrink='row'`` is the literal (17), which shrinks bands.
* **Scale of lambda.** ``lam_mode`` makes ``lam`` dimensionless, so that it
  means the same on raw counts and on reflectance:

  - ``'svd'``: ``lam_t = lam * median_g ||R_g||`` once, before the first
    iteration, where ``R = X - U_r U_r' X`` is the residual of the best rank-r
    approximation of ``X`` (truncated SVD) and ``g`` runs over the groups the S
    step thresholds (pixels, bands, or entries for ``sparsity='l1'``). It is
    the residual level a rank-r background can reach, and it is fixed, so
    (10) is one fixed objective and ``tol`` measures its convergence.
  - ``'adaptive'`` (:func:`rednmf_solve` only): ``lam_t = lam * median_g ||E_g||`` of the residual
    ``E = X - WH``, recomputed every iteration; the objective recorded at
    iteration ``t`` uses ``lam_t``, which keeps shrinking with the residual.
  - ``'absolute'``: ``lam_t = lam`` as given (the paper's convention).
  - ``'noise'``: the ``'svd'`` scale with the scene's noise taken into account
    (:mod:`rednmf.solvers.noise`): the threshold is the noise energy a pixel's
    residual is expected to carry, plus ``noise_margin`` standard deviations of
    it, plus ``lam / 2`` times the structured (noise-free) median residual.
    Fixed for the fit, like ``'svd'``; pixel groups only, so
    :func:`rednmf_solve_blocks` only. On a clean scene it equals ``'svd'``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from rednmf._blas import one_blas_thread
from rednmf._validation import check_choice
from rednmf.backend import NumpyBackend, get_backend, is_tensor, namespace
from rednmf.exceptions import InputError
from rednmf.solvers import _kernels, rednmf_blocks
from rednmf.solvers._driver import Iterate, as_fit_callback, iterate
from rednmf.solvers._stopping import has_converged, warn_max_iter
from rednmf.solvers.noise import NoiseScale, noise_scale
from rednmf.solvers.prox import shrink_factors, soft_threshold
from rednmf.solvers.rednmf_blocks import (
    BlockRange,
    BlockSolver,
    LocalParts,
    _pixel_major,
    block_ranges,
    default_block_size,
    resolve_n_jobs,
    sum_in_order,
)

__all__ = [
    "EvidenceMatrix",
    "RednmfResult",
    "anomaly_evidence",
    "rednmf_solve",
    "rednmf_solve_blocks",
    "rednmf_objective",
]

SPARSITY = ("l21", "l1", "none")
SHRINK = ("column", "row")
M_SPLITS = ("elementwise", "factored")
#: The scales of ``lam`` of :func:`rednmf_solve` and of :func:`rednmf_solve_blocks`.
DENSE_LAM_MODES = ("svd", "adaptive", "absolute")
BLOCK_LAM_MODES = ("noise", "svd", "absolute")


@dataclass
class RednmfResult:
    """Factors and diagnostics returned by :func:`rednmf_solve` and :func:`rednmf_solve_blocks`.

    ``S`` is an array, or from :func:`rednmf_solve_blocks` in this process (pixel-major
    NumPy data, pixel groups) an :class:`EvidenceMatrix`: the S step of
    ``X - W_s H_s`` at ``lam / 2`` for the factors of the final S step, read
    ``S[:, a:b]`` block by block or whole with ``np.asarray(S)`` (equal, bit
    for bit, to the ``S`` the fit used).
    """

    W: np.ndarray
    H: np.ndarray
    M: np.ndarray
    S: Any
    n_iter: int
    objective: np.ndarray
    lam_history: np.ndarray = field(default_factory=lambda: np.empty(0))
    converged: bool = False
    #: With ``lam_mode='noise'``: the noise estimate and the thresholds derived from it.
    noise: NoiseScale | None = None


def _split(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative parts: ``A = A+ - A-`` with both nonnegative."""
    return np.maximum(A, 0), np.maximum(-A, 0)


def _group_norms(E: np.ndarray, sparsity: str, shrink: str) -> np.ndarray:
    """The sizes of the groups of the S step: entries (``'l1'``), column or row norms."""
    return np.abs(E) if sparsity == "l1" else np.linalg.norm(E, axis=int(shrink != "column"))


def _penalty(S: np.ndarray, sparsity: str, shrink: str) -> float:
    """``R(S)``: L2,1 over columns or rows, L1, or 0."""
    if sparsity == "none":
        return 0.0
    return float(_group_norms(S, sparsity, shrink).sum(dtype=np.float64))


def rednmf_objective(
    X: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    M: np.ndarray,
    S: np.ndarray,
    *,
    beta: float,
    lam: float,
    sparsity: str = "l21",
    shrink: str = "column",
) -> float:
    """Objective (10) evaluated exactly (in float64 accumulation).

    ``||X - WH - S||_F^2 + beta ||H - M(X - S)||_F^2 + lam R(S)``.
    """
    R = X - W @ H - S
    fit = float(np.einsum("ij,ij->", R, R, dtype=np.float64))
    enc = 0.0
    if beta > 0:
        Q = H - M @ (X - S)
        enc = beta * float(np.einsum("ij,ij->", Q, Q, dtype=np.float64))
    return fit + enc + lam * _penalty(S, sparsity, shrink)


def _group_scale(E: np.ndarray, sparsity: str, shrink: str) -> float:
    """Median size of the groups that the S step thresholds (for relative lambda)."""
    return float(np.median(_group_norms(E, sparsity, shrink)))


def svd_residual_scale(
    X: np.ndarray, rank: int, sparsity: str = "l21", shrink: str = "column"
) -> float:
    """Median group size of the residual of the best rank-``rank`` approximation of ``X``.

    ``R = X - U U' X`` with ``U`` the ``rank`` leading left singular vectors of
    ``X`` (from the eigenvectors of ``X X'``); the groups are those of the S
    step. Positive scaling of ``X`` scales the result by the same factor.
    """
    G = (X @ X.T).astype(np.float64)
    with one_blas_thread():
        _, vecs = np.linalg.eigh(G)
    U = vecs[:, -rank:].astype(X.dtype)
    R = X - U @ (U.T @ X)
    return _group_scale(R, sparsity, shrink)


def check_lam_mode(lam_mode: str, sparsity: str, shrink: str) -> None:
    """Raise ``InputError`` if ``lam_mode`` cannot scale the groups of ``sparsity``/``shrink``.

    ``'noise'`` is defined for pixel groups (and for ``sparsity='none'``, where
    only its noise estimate is used).
    """
    if lam_mode == "noise" and (sparsity == "l1" or (sparsity == "l21" and shrink == "row")):
        raise InputError(
            "lam_mode='noise' scales the threshold of pixel groups: use sparsity='l21' with "
            "shrink='column', or lam_mode='svd'"
        )


def anomaly_evidence(
    X: Any,
    W: np.ndarray,
    H: np.ndarray,
    tau: float,
    out: np.ndarray | None = None,
    block_size: int | None = None,
    xp: NumpyBackend | None = None,
) -> np.ndarray:
    """The S step (17) on the final residual at threshold ``tau``, pixel block by block.

    ``S_j = (X_j - W H_j) max(1 - tau / ||X_j - W H_j||, 0)``. With
    ``lam_mode='noise'`` REDNMF scores this evidence at ``tau`` equal to the
    structured part of the threshold alone
    (:attr:`rednmf.solvers.noise.NoiseScale.evidence_threshold`): the fit's
    threshold also cuts the noise each pixel carries, which is right for
    separating the background but would tie every pixel below it at zero; here
    the noise stays in the evidence and the scorer's covariances weigh it. On a
    clean scene both thresholds agree and this is the fit's ``S``.

    Parameters
    ----------
    X : array of shape (d, n)
        The (scaled) data; anything sliceable as ``X[:, a:b]`` (a memmap, a
        :class:`rednmf.outofcore.CubeMatrix`).
    W, H : ndarray
        Fitted factors, ``(d, r)`` and ``(r, n)``.
    tau : float
        Group threshold (nonnegative).
    out : ndarray of shape (d, n), optional
        Where to write the result (e.g. a memmap); default: a new array in the
        dtype and memory order of ``X`` when it is an ndarray, float32 C-order
        otherwise.
    block_size : int, optional
        Pixels per block; default 8192 (``DEFAULT_BLOCK_SIZE``), or 262144 on a CUDA device.
    xp : backend, optional
        Array backend (:mod:`rednmf.backend`) that computes each block: NumPy
        (default), or torch on its device (each block is copied there and the
        result back into ``out``). On NumPy (while
        :data:`rednmf.solvers.rednmf_blocks.USE_KERNELS` holds) each pixel is
        computed alone by the compiled pass of the fit's S step
        (:func:`rednmf.solvers._kernels.shrink_residual`): the result does not
        depend on ``block_size``, on the BLAS threads or on the memory order,
        so chunks on Dask workers get the in-memory evidence bit for bit.

    Returns
    -------
    ndarray of shape (d, n)
        ``out``.
    """
    xp = get_backend("numpy") if xp is None else xp
    d, n = X.shape
    if out is None:
        if isinstance(X, np.ndarray):
            out = np.empty_like(X)
        else:
            out = np.empty((d, n), dtype=getattr(X, "dtype", np.float32))
    block_size = default_block_size(xp) if block_size is None else block_size
    dtype = xp.dtype(out.dtype)
    W = xp.asarray(W, dtype=dtype)
    if xp.name == "numpy" and rednmf_blocks.USE_KERNELS:
        _compiled_evidence(X, W, H, tau, out, block_size)
        return out
    for a in range(0, n, block_size):
        b = min(n, a + block_size)
        E = xp.asarray(np.asarray(X[:, a:b]), dtype=dtype) - W @ xp.asarray(H[:, a:b], dtype=dtype)
        E *= shrink_factors(xp.sqrt(xp.col_sqnorms(E)), tau, dtype, xp)
        out[:, a:b] = xp.to_numpy(E)
    return out


class EvidenceMatrix:
    """:func:`anomaly_evidence` of ``(X, W, H, tau)``, formed block by block on demand.

    ``E[:, a:b]`` is the evidence of pixels ``a:b`` (a new pixel-major block),
    equal bit for bit to the same columns of ``anomaly_evidence(X, W, H, tau)``
    (each pixel is computed alone), so the evidence of a scene can be read,
    projected and scored without a bands x pixels array of it. Has ``shape``,
    ``dtype`` and ``ndim``, as :func:`rednmf.scoring.from_matrix.project_matrix`
    needs. :meth:`close` drops the reference to ``X`` once the evidence has
    been read (its memory can then go before the scoring goes on).
    """

    def __init__(self, X: Any, W: np.ndarray, H: np.ndarray, tau: float) -> None:
        self.X: Any = X
        self.W, self.H, self.tau = W, H, float(tau)
        self.shape = tuple(X.shape)
        self.dtype = np.dtype(X.dtype)
        self.ndim = 2

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        rows_key, cols_key = key
        if rows_key != slice(None) or cols_key.step not in (None, 1):
            raise IndexError("EvidenceMatrix supports E[:, a:b] only")
        if self.X is None:
            raise ValueError("the EvidenceMatrix was closed")
        a, b, _ = cols_key.indices(self.shape[1])
        Xb = np.asfortranarray(self.X[:, a:b], dtype=self.dtype)
        out = np.empty(Xb.shape, dtype=self.dtype, order="F")
        return anomaly_evidence(Xb, self.W, self.H[:, a:b], self.tau, out=out)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """The whole ``d x n`` matrix (a new pixel-major array)."""
        out = self[:, :]
        return out if dtype is None else out.astype(dtype, copy=False)

    def close(self) -> None:
        """Drop the data (``X``): the evidence cannot be read any more."""
        self.X = None


def _compiled_evidence(
    X: Any, W: np.ndarray, H: np.ndarray, tau: float, out: np.ndarray, block_size: int
) -> None:
    """:func:`anomaly_evidence` on NumPy: block by block, each pixel by the compiled pass."""
    d, n = X.shape
    dtype = out.dtype
    A = np.empty((d, min(n, block_size)), dtype=dtype, order="F")
    direct = _pixel_major(out)
    for a, b in block_ranges(n, block_size):
        Xb = np.asfortranarray(X[:, a:b], dtype=dtype)  # no copy if pixel-major already
        Sb = out[:, a:b] if direct else np.empty_like(Xb, order="F")
        _kernels.shrink_residual(Xb, W, np.asarray(H[:, a:b], dtype=dtype), Sb, A[:, : b - a], tau)
        if not direct:
            out[:, a:b] = Sb


def _s_step(
    E: np.ndarray, lam: float, lam_mode: str, sparsity: str, shrink: str
) -> tuple[np.ndarray, float, float]:
    """S step (17) for the solver loop: returns ``S``, ``lam_t`` and ``R(S)``.

    The operator of :func:`rednmf.solvers.prox.group_shrink` and
    :func:`~rednmf.solvers.prox.soft_threshold` (written plainly as ``update_S`` of
    the test oracle ``tests/oracles/reference.py``), but the group norms of ``E``
    are computed once and serve the median (relative lambda), the shrinkage and the
    penalty ``R(S) = sum_g max(||E_g|| - lam_t / 2, 0)``.
    """
    if sparsity == "none":
        return np.zeros_like(E), lam, 0.0
    if sparsity == "l1":
        lam_t = lam * float(np.median(np.abs(E))) if lam_mode == "adaptive" else lam
        S = soft_threshold(E, lam_t / 2)
        return S, lam_t, float(np.abs(S).sum(dtype=np.float64))
    axis = 0 if shrink == "column" else 1
    norms = np.sqrt(np.einsum("ij,ij->j" if axis == 0 else "ij,ij->i", E, E))
    lam_t = lam * float(np.median(norms)) if lam_mode == "adaptive" else lam
    tau = lam_t / 2
    factor = shrink_factors(norms, tau, E.dtype)
    S = E * (factor[None, :] if axis == 0 else factor[:, None])
    penalty = float(np.maximum(norms.astype(np.float64) - tau, 0.0).sum())
    return S, lam_t, penalty


def _gram(S: np.ndarray) -> np.ndarray:
    """``S S'`` over the non-zero columns of ``S`` only (a symmetric rank-k update)."""
    nz = np.flatnonzero(np.any(S, axis=0))
    if nz.size < 0.5 * S.shape[1]:
        S = S[:, nz]
    return S @ S.T


def _sqnorm(A: np.ndarray) -> float:
    return float(np.einsum("ij,ij->", A, A, dtype=np.float64))


def _check_options(
    lam_mode: str, modes: tuple[str, ...], sparsity: str, shrink: str, m_split: str
) -> None:
    """Check a solver's model options (one-line :class:`~rednmf.exceptions.InputError`)."""
    check_choice("lam_mode", lam_mode, modes)
    check_choice("sparsity", sparsity, SPARSITY)
    check_choice("shrink", shrink, SHRINK)
    check_choice("m_split", m_split, M_SPLITS)
    check_lam_mode(lam_mode, sparsity, shrink)


def rednmf_solve(
    X: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    M: np.ndarray,
    *,
    lam: float = 4.0,
    beta: float = 1.0,
    max_iter: int = 100,
    tol: float = 0.0,
    sparsity: str = "l21",
    shrink: str = "column",
    lam_mode: str = "svd",
    m_split: str = "factored",
    eps: float = 1e-10,
    callback: Callable[..., None] | None = None,
) -> RednmfResult:
    """Fit REDNMF by Algorithm 1 on whole matrices (NumPy, in this process).

    The solver of every S step, among them those that need a statistic of the
    whole residual first: band groups (``shrink='row'``) and the adaptive
    threshold. :func:`rednmf_solve_blocks` reaches the same iterates for the
    pixel-wise S steps at a fixed threshold, by blocks of pixels.

    Each iteration applies (17), (14), (15), (16) exactly as the test oracle
    ``tests/oracles/reference.py`` (``update_S``, ``update_W``, ``update_M``,
    ``update_H``) states them (the tests check the loop against it), with the
    products reassociated and shared: every product with ``X``, ``S+`` or
    ``S-`` is one product of stacked factors, ``SS'`` is formed over the
    non-zero columns of ``S`` only, ``MX`` is carried from the H step to the
    next M step, and the objective reuses the residual of the next S step.

    Parameters
    ----------
    X : ndarray of shape (d, n)
        Nonnegative data, bands x pixels, float32 or float64.
    W, H, M : ndarray
        Initial factors, shapes (d, r), (r, n), (r, d), nonnegative, in the
        dtype of ``X``. They are not modified.
    lam : float
        Sparsity weight; see ``lam_mode``.
    beta : float
        Weight of the encoder term. ``beta = 0`` drops it (the ``-Encoder``
        ablation); then ``M`` is not updated.
    max_iter : int
        Maximum number of iterations (default: the detector's budget,
        :class:`rednmf.detectors.rednmf.REDNMF`).
    tol : float
        Stop when the relative change of the objective between two iterations
        is at most ``tol``. ``tol = 0`` runs ``max_iter`` iterations.
    sparsity : {'l21', 'l1', 'none'}
        Regulariser of ``S``: group L2,1 (REDNMF), element-wise L1 (as RNMF,
        the ``-L2,1`` ablation) or none (``S = 0``: asymmetric EDNMF).
    shrink : {'column', 'row'}
        Groups of the L2,1 norm: pixels (default) or bands (literal eq. 17).
    lam_mode : {'svd', 'adaptive', 'absolute'}
        Scale of ``lam`` (see the module docstring): relative to the residual
        of a rank-r truncated SVD of ``X`` (fixed), relative to the current
        residual (every iteration), or as given. ``'noise'``, REDNMF's
        default, scales pixel groups and is :func:`rednmf_solve_blocks`'s;
        the default here is its noise-free form.
    m_split : {'factored', 'elementwise'}
        How the M step (15) splits ``SS'`` between numerator and denominator:
        ``S+S+' + S-S-'`` over ``S+S-' + S-S+'`` (``update_M_factored`` of
        ``tests/oracles/reference.py``; the block solver forms it at ``r d n``
        instead of ``d^2 n`` multiply-adds), or element-wise positive and
        negative parts of ``SS'`` as printed.
    eps : float
        Added to every denominator.
    callback : callable, optional
        Called as ``callback(iteration, objective, state)`` after each
        iteration, ``state`` a :class:`~rednmf.solvers._driver.Iterate` with
        ``W, H, M, S``; a two-argument ``callback(iteration, objective)``
        works too.

    Returns
    -------
    RednmfResult
        ``W, H, M, S`` (arrays), ``n_iter``, the objective after each
        iteration and the ``lam_t`` used at each iteration.
    """
    _check_options(lam_mode, DENSE_LAM_MODES, sparsity, shrink, m_split)
    W, H, M = W.copy(), H.copy(), M.copy()
    r = W.shape[1]
    enc = beta > 0
    MX = M @ X if enc else None
    lams: list[float] = []
    S = np.zeros_like(X)
    if lam_mode == "svd" and sparsity != "none":
        lam, lam_mode = lam * svd_residual_scale(X, r, sparsity, shrink), "absolute"
    E: np.ndarray | None = X - W @ H

    def step() -> float:
        nonlocal W, H, M, S, E, MX
        S, lam_t, penalty = _s_step(E, lam, lam_mode, sparsity, shrink)
        E = None  # let the residual go while the products below are formed
        lams.append(lam_t)
        Sp, Sn = _split(S)
        # Products of the current H (and M) with X, S+ and S-, shared by (14) and (15).
        if enc:
            MSp, MSn = M @ Sp, M @ Sn
            HXt, MG, MSpXt, MSnXt = np.split(np.vstack([H, MX, MSp, MSn]) @ X.T, 4)
            HSpt, MXSpt = np.split(np.vstack([H, MX]) @ Sp.T, 2)
            HSnt, MXSnt = np.split(np.vstack([H, MX]) @ Sn.T, 2)
        else:
            HXt, HSpt, HSnt = H @ X.T, H @ Sp.T, H @ Sn.T
        HAt = HXt + HSnt  # H (X + S-)'
        # (14)
        W *= HAt.T / (W @ (H @ H.T) + HSpt.T + eps)
        # (15)
        if enc:
            if m_split == "factored":  # (MS+)S+' + (MS-)S-' and (MS+)S-' + (MS-)S+'
                MSSp, MSSn = MSp @ Sp.T + MSn @ Sn.T, MSp @ Sn.T + MSn @ Sp.T
            else:
                SSp, SSn = _split(_gram(S))
                MSSp, MSSn = M @ SSp, M @ SSn
            M *= (HAt + MXSpt + MSpXt + MSSn) / (MG + MXSnt + MSnXt + MSSp + HSpt + eps)
        # (16)
        V = np.vstack([W.T, M]) if enc else W.T
        VX, VSp, VSn = V @ X, V @ Sp, V @ Sn
        num = VX[:r] + VSn[:r]
        den = (W.T @ W) @ H + VSp[:r] + eps
        if enc:
            MA = VX[r:] + VSn[r:]  # M (X + S-)
            num += beta * MA
            den += beta * (H + VSp[r:])
        H = H * (num / den)
        pending = lam_t * penalty
        if enc:
            MX = VX[r:]
            pending += beta * _sqnorm(H - (MA - VSp[r:]))  # ||H - M(X - S)||^2
        del Sp, Sn
        E = X - W @ H  # this iteration's residual: its fit term, the next S step
        return _sqnorm(E - S) + pending

    run = iterate(
        step,
        max_iter=max_iter,
        tol=tol,
        method="REDNMF",
        callback=callback,
        state=lambda: Iterate(X=X, W=W, H=H, S=S, M=M),
    )
    return RednmfResult(
        W=W,
        H=H,
        M=M,
        S=S,
        n_iter=run.n_iter,
        objective=run.objective,
        lam_history=np.asarray(lams),
        converged=run.converged,
    )


def _svd_scale_parts(parts: LocalParts, G: np.ndarray, rank: int) -> tuple[float, np.ndarray]:
    """:func:`svd_residual_scale` for pixel groups, from ``G = XX'`` and one pass over blocks.

    Returns the median residual norm and the basis ``U`` of the rank-r subspace.
    """
    _, vecs = np.linalg.eigh(namespace(G).to_numpy(G).astype(np.float64))
    U = vecs[:, -rank:]  # cast to the working dtype by each range
    norms = parts.call("svd_norms", U)
    return float(np.median(np.concatenate(norms) if len(norms) > 1 else norms[0])), U


def _noise_scale_parts(
    parts: LocalParts, n: int, rank: int, lam: float, margin: float
) -> tuple[NoiseScale, np.ndarray]:
    """:func:`rednmf.solvers.noise.noise_scale` from float64 moments of the blocks.

    Also returns ``XX'`` in float64 (the M step's Gram matrix, so that ``X`` is
    not swept a second time for it).
    """
    moments = parts.call("moments64")
    s1 = sum_in_order([m[0] for m in moments])
    G64 = sum_in_order([m[1] for m in moments])
    mean = s1 / n
    cov = G64 / n - np.outer(mean, mean)
    median, U = _svd_scale_parts(parts, G64, rank)
    return noise_scale(cov, U, median, lam, margin), G64


def rednmf_solve_blocks(
    X: Any,
    W: np.ndarray,
    H: np.ndarray,
    M: np.ndarray,
    *,
    lam: float = 4.0,
    beta: float = 1.0,
    max_iter: int = 100,
    tol: float = 0.0,
    sparsity: str = "l21",
    lam_mode: str = "noise",
    noise_margin: float = 3.0,
    m_split: str = "factored",
    eps: float = 1e-10,
    callback: Callable[..., None] | None = None,
    block_size: int | None = None,
    n_jobs: int | None = 1,
    anomaly_out: np.ndarray | None = None,
    store_s: bool | None = None,
    placement: Callable[..., Any] | None = None,
    backend: str | None = None,
    device: Any = None,
) -> RednmfResult:
    """Fit REDNMF by Algorithm 1 on blocks of pixels: one pass over the data per iteration.

    The solver of the S steps that act pixel by pixel at a threshold fixed
    before the first iteration: pixel groups (``sparsity='l21'``), ``'l1'``
    and ``'none'``, with ``lam_mode`` ``'noise'``, ``'svd'`` or
    ``'absolute'``. The iterates are those of :func:`rednmf_solve` (the
    order of the floating-point sums differs); the engine is
    :mod:`rednmf.solvers.rednmf_blocks`. BLAS runs on one thread; the
    parallelism is ``n_jobs`` threads over blocks (or the ranges that
    ``placement`` lays out), so the result does not depend on ``n_jobs``.

    Parameters
    ----------
    X : array of shape (d, n)
        Nonnegative data, bands x pixels, float32 or float64: an ndarray, a
        :class:`numpy.memmap`, any object read as ``X[:, a:b]``, or a ``torch.Tensor``.
    W, H, M, lam, beta, max_iter, tol, sparsity, m_split, eps
        As in :func:`rednmf_solve` (the groups of ``'l21'`` are pixels).
    lam_mode : {'noise', 'svd', 'absolute'}
        Scale of ``lam`` (module docstring), fixed for the fit. ``'noise'``
        needs ``sparsity`` ``'l21'`` or ``'none'`` (only its noise estimate is used).
    noise_margin : float
        With ``lam_mode='noise'``: standard deviations of the expected noise
        energy added to the threshold (:mod:`rednmf.solvers.noise`).
    callback : callable, optional
        As in :func:`rednmf_solve`, but the sweep has already formed the next
        ``W`` and ``S`` when it reports: ``state`` holds ``X`` and the fit term
        ``||X - WH - S||_F^2`` only.
    block_size : int, optional
        Pixels per block; default 8192, or 262144 on a CUDA device
        (:func:`~rednmf.solvers.rednmf_blocks.default_block_size`).
    n_jobs : int or None
        Threads over pixel blocks (:func:`~rednmf.solvers.rednmf_blocks.resolve_n_jobs`:
        ``None`` as many as BLAS may use here, ``-1`` every CPU). The result
        does not depend on it; ignored with ``backend='torch'``.
    anomaly_out : ndarray of shape (d, n), optional
        Array to hold ``S`` (for example a :class:`numpy.memmap` for a scene
        larger than memory).
    store_s : bool, optional
        In this process on pixel-major NumPy data with pixel groups (the
        detector's default fit): whether ``S`` is kept as an array (True) or
        formed again from the factors of its S step whenever a sweep needs it
        (False: no bands x pixels array, ``r d`` more multiply-adds per pixel
        and iteration, the same result bit for bit; ``S`` is returned as an
        :class:`EvidenceMatrix`). Default: stored while at most
        :data:`~rednmf.solvers.rednmf_blocks.STORED_S_BYTES`. Elsewhere an array.
    placement : callable, optional
        Where the pixel ranges run: ``placement(X, H, S, **range_kwargs)``
        (the keyword arguments of :class:`~rednmf.solvers.rednmf_blocks.BlockRange`)
        returns an object like :class:`~rednmf.solvers.rednmf_blocks.LocalParts`;
        its ``gather_into(H, S)``, if any (ranges held elsewhere), is called at
        the end. Default: the ranges in this process, ``n_jobs`` threads. An
        engine's session supplies it, e.g. :class:`rednmf.engines.dask.DaskPlacement`
        (pixel chunks on the workers of a Dask cluster; ``W`` and ``M`` stay here).
    backend : {'numpy', 'torch'}, optional
        Array backend (:mod:`rednmf.backend`); default ``'torch'`` when ``X``
        is a ``torch.Tensor``, else ``'numpy'``. With ``'torch'`` the data and
        factors are moved once to ``device`` (in the dtype of ``X``), every
        update runs there, and the factors come back as NumPy arrays; in
        memory only (no ``placement``, no ``anomaly_out``).
    device : str or torch.device, optional
        Torch device: ``None`` means ``'cuda'`` when available, else ``'cpu'``.

    Returns
    -------
    RednmfResult
        As :func:`rednmf_solve`'s, and with ``lam_mode='noise'`` the noise estimate.
    """
    if backend is None:
        backend = "torch" if is_tensor(X) else "numpy"
    xp = get_backend(backend, device)
    _check_options(lam_mode, BLOCK_LAM_MODES, sparsity, "column", m_split)
    if xp.name == "torch" and (placement is not None or anomaly_out is not None):
        raise InputError(
            "backend='torch' fits in memory only; drop the placement (a Dask cluster) / "
            "anomaly_out (out of core) or use backend='numpy'"
        )
    if xp.name == "numpy" and is_tensor(X):
        X = X.detach().cpu().numpy()
    callback = as_fit_callback(callback)
    block_size = default_block_size(xp) if block_size is None else block_size
    n_jobs = 1 if xp.name == "torch" else resolve_n_jobs(n_jobs)  # before BLAS is pinned
    with threadpool_limits(limits=1):
        X_host = X
        if xp.name == "torch":
            dtype = xp.dtype(X.dtype)
            X = xp.asarray(X, dtype=dtype)  # strides kept: pixel-major stays pixel-major
            W, H, M = (xp.asarray(A, dtype=dtype) for A in (W, H, M))
        W, H, M = xp.copy(W), xp.copy(H), xp.copy(M)
        r = W.shape[1]
        # In this process on pixel-major NumPy data with pixel groups, S is not stored:
        # each block's S is formed again from the factors of its S step (BlockRange, S=None).
        implicit = (
            placement is None
            and anomaly_out is None
            and xp.name == "numpy"
            and sparsity == "l21"
            and rednmf_blocks.USE_KERNELS
            and _pixel_major(X)
        )
        if implicit:
            size = X.shape[0] * X.shape[1] * np.dtype(X.dtype).itemsize
            implicit = size > rednmf_blocks.STORED_S_BYTES if store_s is None else not store_s
        if anomaly_out is not None:
            S = anomaly_out
            S[...] = 0
        elif implicit:
            S = None
        else:  # in the layout of X (pixel-major X is Fortran-ordered d x n)
            S = xp.zeros(X.shape, dtype=X.dtype, order=xp.order(X))
        # lam is fixed before the first sweep; tau = lam / 2 is set on the ranges below.
        kw = dict(
            beta=beta, sparsity=sparsity, eps=eps, block_size=block_size, keep_prev=tol > 0,
            m_split=m_split,
        )  # fmt: skip
        parts: Any
        if placement is None:
            parts = LocalParts([BlockRange(X, H, S, tau=0.0, n_jobs=n_jobs, xp=xp, **kw)])
        else:
            parts = placement(X, H, S, tau=0.0, n_jobs=n_jobs, **kw)
        gather = getattr(parts, "gather_into", None)
        try:
            noise = G = None
            if lam_mode == "noise":  # with sparsity='none' only the estimate is used (scoring)
                noise, G64 = _noise_scale_parts(parts, X.shape[1], r, lam, noise_margin)
                lam = 2.0 * noise.fit_threshold
                G = xp.asarray(G64, dtype=X.dtype) if beta > 0 else None
            elif beta > 0 or lam_mode == "svd":
                G = sum_in_order(parts.call("gram"))
            if lam_mode == "svd" and sparsity == "l21":
                lam = lam * _svd_scale_parts(parts, G, r)[0]
            elif lam_mode == "svd" and sparsity == "l1":
                X_np = xp.to_numpy(X_host) if is_tensor(X_host) else np.asarray(X_host)
                lam = lam * svd_residual_scale(X_np, r, sparsity, "column")
            parts.call("set_tau", lam / 2)
            objective: list[float] = []
            converged = False
            n_iter = 0
            if max_iter > 0:
                eng = BlockSolver(parts, W, M, beta=beta, sparsity=sparsity, eps=eps, G=G)
                W_prev = xp.copy(W) if tol > 0 else None  # W of iteration t - 1
                penalty = eng.first_sweep().penalty
                while True:
                    n_iter += 1
                    more = n_iter < max_iter
                    if tol > 0:
                        W_t, M_t = xp.copy(W), xp.copy(M)
                    sums = eng.sweep(more)
                    obj = sums.fit + beta * sums.enc + lam * penalty
                    objective.append(obj)
                    penalty = sums.penalty
                    if callback is not None:  # W, S of iteration t are gone: the fit term
                        callback(n_iter, obj, Iterate(X=X_host, fit=sums.fit))
                    converged = has_converged(objective, tol)
                    if not more:
                        break
                    if converged:
                        # The sweep already formed S, W and M of iteration t + 1: go back to t.
                        W[...], M[...] = W_t, M_t
                        eng.recompute_S(W_prev)
                        break
                    if tol > 0:
                        W_prev = W_t
            if gather is not None:  # held elsewhere: copy H and S back
                gather(H, S)
        finally:
            parts.close()
        if not converged and tol > 0:
            warn_max_iter("REDNMF", max_iter, tol)
        if xp.name == "torch":
            W, H, M, S = (xp.to_numpy(A) for A in (W, H, M, S))
        if implicit:
            S_factors = parts.parts[0].anomaly_factors()
            if S_factors is None:  # no iteration: S = 0
                S = np.zeros(X.shape, dtype=X.dtype, order="F")
            else:
                S = EvidenceMatrix(X, *S_factors, lam / 2)
        return RednmfResult(
            W=W,
            H=H,
            M=M,
            S=S,
            n_iter=n_iter,
            objective=np.asarray(objective),
            lam_history=np.full(len(objective), lam),
            converged=converged,
            noise=noise,
        )
