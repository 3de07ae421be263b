"""Score a cube: its pixels are a ``bands x pixels`` matrix, scored by the one pipeline.

:func:`pca_project`, :func:`brad`, :func:`multiscale` and :func:`column_norm`
validate a ``(rows, cols, bands)`` cube and hand its pixels, a ``bands x
pixels`` view, to :func:`rednmf.scoring.from_matrix.project_matrix` and
:func:`rednmf.scoring.from_matrix.score_matrix` in this process
(:class:`~rednmf.scoring.from_matrix.InProcess`, on NumPy or on a torch
device), the functions that score every evidence matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from rednmf._validation import check_choice, check_cube, check_int
from rednmf.scoring.from_matrix import InProcess, project_matrix, score_matrix
from rednmf.scoring.multiscale import COMBINATIONS

__all__ = ["brad", "column_norm", "multiscale", "pca_project"]


def _pixels(cube: Any, backend: str | None, device: Any) -> tuple[Any, tuple[int, int], InProcess]:
    """The validated cube's ``bands x pixels`` view (on the backend), its shape and session."""
    arr = check_cube(cube, min_pixels=1, min_bands=1)
    session = InProcess(backend, device)
    rows, cols, bands = arr.shape
    return session.xp.asarray(arr).reshape(-1, bands).T, (rows, cols), session


def pca_project(
    cube: np.ndarray, n_pca: int | None, backend: str | None = None, device: Any = None
) -> np.ndarray:
    """Project the pixels of a cube onto its leading principal components.

    The pixels are centred by their mean spectrum, the ``bands x bands``
    covariance (accumulated in float64 over blocks of pixels, so memory stays
    at the size of the result) is eigen-decomposed, and the centred pixels are
    projected onto the ``n_pca`` eigenvectors with the largest eigenvalues,
    each with the sign that makes its largest-magnitude entry positive
    (:func:`rednmf.scoring.from_matrix.project_matrix`), which makes the result
    deterministic.

    Parameters
    ----------
    cube : array-like of shape (rows, cols, bands)
        The data.
    n_pca : int or None
        Number of components to keep. ``None`` or a value ``>= bands`` returns
        the centred cube unchanged (no rotation).
    backend : {'numpy', 'torch'}, optional
        Array backend (:mod:`rednmf.backend`); with ``'torch'`` the moments and
        the projection run on ``device``.
    device : str or torch.device, optional
        Torch device (default ``'cuda'`` when available).

    Returns
    -------
    numpy.ndarray of shape (rows, cols, k)
        The projected (or only centred) cube, ``k = min(n_pca, bands)``,
        in the cube's floating-point dtype.

    Raises
    ------
    InputError
        If the cube is invalid or ``n_pca`` is not a positive integer.
    """
    E, shape, session = _pixels(cube, backend, device)
    return session.xp.to_numpy(project_matrix(E, shape, n_pca, None, session))


def brad(
    S_cube: np.ndarray,
    inner: int = 9,
    outer: int = 27,
    n_pca: int | None = 20,
    ridge: float = 0.1,
    dtype: DTypeLike = np.float64,
    backend: str | None = None,
    device: Any = None,
    noise_var: np.ndarray | None = None,
) -> np.ndarray:
    """BRAD pixel scores of an anomaly cube: PCA projection, then local RX.

    The REDNMF paper (Moradi et al., 2026) scores its anomaly matrix ``S``
    with BRAD (Ma et al., its reference [45]), "a background
    reconstruction-based anomaly detector that produces pixel-level anomaly
    scores by modelling local spatial context through the mean and covariance
    of neighbouring pixels in the anomaly matrix S", and does not define it
    further. This is our definition::

        brad(S) = local_rx(pca_project(S, n_pca), inner, outer, ridge)

    i.e. the centred anomaly cube is reduced to its ``n_pca`` leading
    principal components (to keep the local covariances well conditioned and
    the cost low), and each pixel is scored by its Mahalanobis distance to the
    mean and covariance of the ring of pixels between the inner guard window
    and the outer window around it (:func:`rednmf.scoring.local_rx.local_rx`;
    :func:`rednmf.scoring.from_matrix.score_matrix` with ``scorer='brad'``).

    Parameters
    ----------
    S_cube : array-like of shape (rows, cols, bands)
        The anomaly matrix ``S`` reshaped to a cube.
    inner, outer, ridge, dtype, backend, device
        As in :func:`rednmf.scoring.local_rx.local_rx` (the same defaults); with
        ``backend='torch'`` the cube is moved once to ``device`` and both steps
        run there.
    n_pca : int or None, default 20
        Number of principal components kept; ``None`` keeps all bands.
    noise_var : ndarray of shape (bands,), optional
        Noise variance of each band: keep only the components above the noise,
        at most ``n_pca`` (:func:`rednmf.scoring.pca.noise_pca_count`).

    Returns
    -------
    numpy.ndarray of shape (rows, cols)
        Anomaly scores, higher = more anomalous.

    Raises
    ------
    InputError
        If the cube or a parameter is invalid, or the scene is smaller than the
        outer window.
    """
    E, shape, session = _pixels(S_cube, backend, device)
    return score_matrix(
        E, shape, session, scorer="brad", inner=inner, outer=outer, n_pca=n_pca, ridge=ridge,
        noise_var=noise_var, dtype=dtype,
    )  # fmt: skip


def multiscale(
    cube: np.ndarray,
    inner: int = 9,
    outer: int = 27,
    n_pca: int | None = 20,
    ridge: float = 0.01,
    pool: int = 3,
    noise_var: np.ndarray | str | None = None,
    dtype: DTypeLike = np.float64,
    backend: str | None = None,
    device: Any = None,
    combine: str = "sum",
    pool_global: bool = True,
    robust_global: bool = True,
) -> np.ndarray:
    """Multi-scale anomaly scores of a cube (:mod:`rednmf.scoring.multiscale`).

    :func:`rednmf.scoring.from_matrix.score_matrix` with ``scorer='multiscale'``.

    Parameters
    ----------
    cube : array-like of shape (rows, cols, bands)
        The evidence, e.g. REDNMF's anomaly matrix reshaped to a cube.
    inner, outer, n_pca, ridge, pool, combine, pool_global, robust_global
        As in :class:`rednmf.scoring.scorers.MultiScale` (the same defaults;
        ``n_pca`` is the most components kept, ``pool=1`` makes the pooled
        detectors the pixel's own).
    noise_var : ndarray of shape (bands,) or 'estimate', optional
        Noise variance of each band of ``cube``: keeps only the components
        above the noise (:func:`rednmf.scoring.pca.noise_pca_count`).
        ``'estimate'`` estimates it from the cube's own covariance
        (:func:`rednmf.solvers.noise.band_noise_variance`).
    dtype : {'float64', 'float32'}, default float64
        Precision of the local detector's solves.
    backend, device
        Array backend of the projection and of the detectors (:mod:`rednmf.backend`).

    Returns
    -------
    numpy.ndarray of shape (rows, cols)
        The combined ``-log10`` tail probabilities, higher = more anomalous.

    Raises
    ------
    InputError
        If the cube or a parameter is invalid, or the scene is smaller than the
        outer window.
    """
    check_int("pool", pool, low=1)  # before the projection
    check_choice("combine", combine, COMBINATIONS)
    E, shape, session = _pixels(cube, backend, device)
    return score_matrix(
        E, shape, session, scorer="multiscale", inner=inner, outer=outer, n_pca=n_pca,
        ridge=ridge, pool=pool, noise_var=noise_var, combine=combine, pool_global=pool_global,
        robust_global=robust_global, dtype=dtype,
    )  # fmt: skip


def column_norm(S_cube: np.ndarray) -> np.ndarray:
    """Score each pixel by the l2 norm of its column of the anomaly matrix.

    :func:`rednmf.scoring.from_matrix.score_matrix` with ``scorer='norm'``.

    Parameters
    ----------
    S_cube : array-like of shape (rows, cols, bands)
        The anomaly matrix ``S`` reshaped to a cube.

    Returns
    -------
    numpy.ndarray of shape (rows, cols)
        ``||S_j||_2`` for every pixel ``j``, in the cube's floating-point dtype.

    Raises
    ------
    InputError
        If the cube is not a finite 3-D numeric array.
    """
    E, shape, session = _pixels(S_cube, None, None)
    return score_matrix(E, shape, session, scorer="norm")
