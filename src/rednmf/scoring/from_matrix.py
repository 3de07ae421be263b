"""Score a bands x pixels matrix (an anomaly matrix ``S`` or a residual) by name.

The factorisation detectors (REDNMF, and the NMF family) all end the same way:
reshape their evidence matrix back to the image and hand it to a scorer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rednmf._validation import check_choice, matrix_to_cube
from rednmf.scoring.brad import brad
from rednmf.scoring.multiscale import multiscale
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
    """
    check_choice("scorer", scorer, SCORERS)
    cube = matrix_to_cube(E, shape)
    if scorer == "norm":
        return column_norm(cube)
    if scorer == "multiscale":
        return multiscale(
            cube, inner=inner, outer=outer, n_pca=n_pca, ridge=ridge, pool=pool,
            noise_var=noise_var, backend=backend, device=device, combine=combine,
            pool_global=pool_global, robust_global=robust_global,
        )  # fmt: skip
    return brad(
        cube, inner=inner, outer=outer, n_pca=n_pca, ridge=ridge, backend=backend,
        device=device, noise_var=noise_var,
    )  # fmt: skip
