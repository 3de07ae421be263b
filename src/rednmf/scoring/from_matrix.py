"""Score a bands x pixels matrix (an anomaly matrix ``S`` or a residual) by name.

The factorisation detectors (REDNMF, and the NMF family) all end the same way:
reshape their evidence matrix back to the image and hand it to a scorer
(:func:`score_matrix`), or, when the matrix is read a block of pixels at a
time (on disk, or formed on demand), project it block by block and score the
projection (:func:`score_by_blocks`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rednmf._validation import check_choice, matrix_to_cube
from rednmf.backend import get_backend
from rednmf.scoring.brad import brad, project_by_blocks, validated_projection
from rednmf.scoring.local_rx import check_windows, local_rx
from rednmf.scoring.multiscale import (
    SUSPECT_LEVEL,
    cube_and_evidence,
    multiscale,
    multiscale_projected,
)
from rednmf.scoring.norms import column_norm

__all__ = ["SCORERS", "HandedOver", "score_by_blocks", "score_matrix"]

SCORERS = ("multiscale", "brad", "norm")


def score_matrix(
    E: np.ndarray,
    shape: tuple[int, int],
    *,
    scorer: str = "brad",
    inner: int = 9,
    outer: int = 27,
    n_pca: int | None = 20,
    ridge: float = 0.1,
    backend: str | None = None,
    device: Any = None,
    pool: int = 3,
    noise_var: np.ndarray | None = None,
    combine: str = "sum",
    pool_global: bool = True,
    robust_global: bool = True,
    projected_cube: np.ndarray | None = None,
    suspect_level: float = SUSPECT_LEVEL,
) -> np.ndarray:
    """Turn a ``(bands, pixels)`` evidence matrix into a ``(rows, cols)`` score map.

    Parameters
    ----------
    E : ndarray of shape (bands, rows * cols)
        Anomaly matrix or residual, pixels in row-major order.
    shape : (rows, cols)
        Spatial shape.
    scorer : {'multiscale', 'brad', 'norm'}
        ``'multiscale'``: :func:`rednmf.scoring.multiscale.multiscale` (local
        and global RX, each also pooled, on one scale); ``'brad'``:
        :func:`rednmf.scoring.brad.brad` with the window parameters given;
        ``'norm'``: the column norm ``||E_j||_2``.
    inner, outer, n_pca, ridge
        Parameters of the local detector (ignored by ``'norm'``).
    backend, device
        Array backend (:mod:`rednmf.backend`; ignored by ``'norm'``).
    pool : int, default 3
        ``'multiscale'``: side of the pooling neighbourhood.
    noise_var : ndarray of shape (bands,), optional
        Noise variance of each band of ``E``: ``'multiscale'`` and ``'brad'``
        keep only the principal components above the noise.
    combine : {'max', 'sum', 'hmp'}, default 'sum'
        ``'multiscale'``: Tippett's, Fisher's or the harmonic-mean combination
        of the detectors (:mod:`rednmf.scoring.multiscale`).
    pool_global, robust_global : bool, default True
        ``'multiscale'``: also pool the global detector; reweight its
        statistics (:func:`rednmf.scoring.multiscale.multiscale`).
    projected_cube : ndarray of shape (rows, cols, k), optional
        ``'multiscale'``: the data the evidence came from, on its principal
        components above its own noise
        (:func:`rednmf.scoring.brad.project_by_blocks` with
        ``noise_var='estimate'``); then the cube is scored too, against the
        background statistics of the pixels the evidence does not flag, and
        combined with the evidence's local detectors
        (:func:`rednmf.scoring.multiscale.cube_and_evidence`).
    suspect_level : float, default 0.05
        With ``projected_cube``: the evidence's tail probability at or below
        which a pixel leaves the background statistics.
    """
    check_choice("scorer", scorer, SCORERS)
    evidence = matrix_to_cube(E, shape)
    if scorer == "norm":
        return column_norm(evidence)
    if scorer == "multiscale" and projected_cube is not None:
        xp = get_backend(backend, device)
        P_e, (inner, outer, ridge, out_dtype) = validated_projection(
            evidence, inner, outer, n_pca, ridge, np.float64, xp, noise_var
        )
        return cube_and_evidence(
            xp.asarray(projected_cube), P_e, inner, outer, ridge, pool, out_dtype, xp,
            suspect_level=suspect_level, combine=combine, pool_global=pool_global,
            robust_global=robust_global,
        )  # fmt: skip
    if scorer == "multiscale":
        return multiscale(
            evidence, inner=inner, outer=outer, n_pca=n_pca, ridge=ridge, pool=pool,
            noise_var=noise_var, backend=backend, device=device, combine=combine,
            pool_global=pool_global, robust_global=robust_global,
        )  # fmt: skip
    return brad(
        evidence, inner=inner, outer=outer, n_pca=n_pca, ridge=ridge, backend=backend,
        device=device, noise_var=noise_var,
    )  # fmt: skip


class HandedOver:
    """A ``bands x pixels`` array handed to :func:`score_by_blocks`, let go once read.

    The caller drops its own reference after wrapping the array; the scorer
    reads it block by block and calls :meth:`close`, so the array's memory can
    go before the detectors run on its projection.
    """

    def __init__(self, A: np.ndarray) -> None:
        self.A: np.ndarray | None = A
        self.shape, self.dtype, self.ndim = A.shape, A.dtype, 2

    def __getitem__(self, key: Any) -> np.ndarray:
        if self.A is None:
            raise ValueError("the matrix was closed")
        return self.A[key]

    def close(self) -> None:
        """Let the array go."""
        self.A = None


#: Pixels per block of :func:`score_by_blocks`'s column norms.
_NORM_BLOCK = 1 << 15


def score_by_blocks(
    E: Any,
    shape: tuple[int, int],
    *,
    scorer: str,
    inner: int,
    outer: int,
    n_pca: int | None,
    ridge: float,
    pool: int = 3,
    noise_var: np.ndarray | None = None,
    combine: str = "sum",
    pool_global: bool = True,
    robust_global: bool = True,
    projected_cube: np.ndarray | None = None,
    suspect_level: float = SUSPECT_LEVEL,
) -> np.ndarray:
    """:func:`score_matrix` of a ``bands x pixels`` matrix read ``E[:, a:b]`` by blocks.

    ``E``: a memory map (a scene fitted out of core), or a matrix formed on
    demand (:class:`rednmf.solvers.rednmf.EvidenceMatrix`). ``'norm'``: column
    norms per block. ``'brad'`` and ``'multiscale'``: the PCA of
    :func:`rednmf.scoring.brad.pca_project` from blockwise float64 sums (mean,
    covariance; the count of components chosen by the noise when
    ``noise_var`` is given) and a blockwise projection
    (:func:`rednmf.scoring.brad.project_by_blocks`), then
    :func:`rednmf.scoring.local_rx.local_rx` or
    :func:`rednmf.scoring.multiscale.multiscale_projected` on the projected
    ``(rows, cols, k)`` cube. With ``projected_cube`` and ``'multiscale'`` it
    is scored with the evidence by
    :func:`rednmf.scoring.multiscale.cube_and_evidence`. Once read, ``E`` is
    closed if it has a ``close`` method, so that what it holds can go before
    the detectors run. The scores equal :func:`score_matrix`'s up to the order
    of floating-point sums.
    """
    check_choice("scorer", scorer, SCORERS)
    d, n = E.shape
    rows, cols = shape
    if scorer == "norm":
        out = np.empty(n, dtype=E.dtype)
        for a in range(0, n, _NORM_BLOCK):
            B = np.ascontiguousarray(np.asarray(E[:, a : a + _NORM_BLOCK]).T)
            out[a : a + _NORM_BLOCK] = np.linalg.norm(B, axis=1)
        _close(E)
        return out.reshape(rows, cols)
    cube = project_by_blocks(E, shape, n_pca, noise_var)
    _close(E)
    del E
    if scorer == "brad":
        return local_rx(cube, inner=inner, outer=outer, ridge=ridge)
    xp = get_backend("numpy")
    inner, outer, ridge, out_dtype = check_windows(cube.shape, inner, outer, ridge, np.float64)
    if projected_cube is not None:
        return cube_and_evidence(
            projected_cube, cube, inner, outer, ridge,
            pool, out_dtype, xp, suspect_level=suspect_level, combine=combine,
            pool_global=pool_global, robust_global=robust_global,
        )  # fmt: skip
    return multiscale_projected(
        xp.asarray(cube), inner, outer, ridge, pool, out_dtype, xp, combine=combine,
        pool_global=pool_global, robust_global=robust_global,
    )  # fmt: skip


def _close(E: Any) -> None:
    """Close a matrix formed on demand once it has been read (a no-op for an array)."""
    close = getattr(E, "close", None)
    if callable(close):
        close()
