"""Score a bands x pixels matrix (an anomaly matrix ``S`` or a residual) by name.

The factorisation detectors (REDNMF, and the NMF family) all end the same way:
reshape their evidence matrix back to the image and hand it to a scorer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rednmf._validation import check_choice, matrix_to_cube
from rednmf.backend import get_backend
from rednmf.scoring.brad import brad, validated_projection
from rednmf.scoring.multiscale import SUSPECT_LEVEL, cube_and_evidence, multiscale
from rednmf.scoring.norms import column_norm

__all__ = ["SCORERS", "score_matrix"]

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
