"""Global RX (Reed-Xiaoli) detector on a ``(rows, cols, k)`` array."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from scipy.linalg import solve_triangular

from rednmf._blas import one_blas_thread
from rednmf._validation import check_cube, check_real
from rednmf.scoring.windows import check_background, loading_floor, tiles

__all__ = [
    "REWEIGHT_QUANTILE",
    "global_rx",
    "global_rx_apply",
    "global_rx_backend",
    "global_rx_factor",
    "pixel_moments",
    "reweight_cutoff",
    "reweighted",
]


#: Float64 elements of one block of pixels of :func:`global_rx` (2 MiB): the block in
#: float64, centred and whitened stays in cache, where OpenBLAS multiplies a block by the
#: ``k x k`` whitener 3 to 6 times faster than a block of 32 MiB (measured at ``k = 50``).
_BLOCK_ELEMENTS = 1 << 18

#: The chi-square quantile of the one-step reweighting (the reweighted MCD's convention).
REWEIGHT_QUANTILE = 0.975


def global_rx(
    cube: np.ndarray,
    ridge: float = 1e-9,
    reweight: float | None = None,
    background: np.ndarray | None = None,
) -> np.ndarray:
    r"""Global RX anomaly scores: Mahalanobis distance to the scene statistics.

    With the scene mean :math:`\mu` and the biased covariance
    :math:`C = \frac1n \sum_j (x_j - \mu)(x_j - \mu)^\top` of all :math:`n`
    pixels, the score of pixel :math:`x` is

    .. math::

        s(x) = (x - \mu)^\top \left(C + \lambda I\right)^{-1} (x - \mu),
        \qquad \lambda = \mathrm{ridge} \cdot \frac{\operatorname{tr} C}{k},

    so the ridge is relative to the mean band variance and the score does not
    change when the data are multiplied by a constant or shifted.

    The anomalies themselves enter :math:`\mu` and :math:`C` and make the
    background look more varied than it is. With ``reweight = q`` the statistics
    are estimated once more from the pixels whose first score is at most the
    ``q`` quantile of :math:`\chi^2_k`, and every pixel is scored against them
    (the one-step reweighting of robust covariance estimation [2]_; ``q = 0.975``
    is its usual value, :data:`REWEIGHT_QUANTILE`). No consistency factor is
    applied: it would scale every score alike. If fewer than ``k + 1`` pixels
    pass, the first scores are kept. With ``background`` (pixels known to be
    background) the statistics are those of the background pixels alone (and
    the reweighting keeps only background pixels), unless ``k`` or fewer of
    them are given. The loading
    is never less than ``1e-12`` times the mean band variance (``1e-12`` for a
    constant scene). The statistics are accumulated in float64 and the
    quadratic form is evaluated through a Cholesky factor of the loaded
    covariance.

    Parameters
    ----------
    cube : array-like of shape (rows, cols, k)
        The data.
    ridge : float, default 1e-9
        Diagonal loading relative to the mean band variance; non-negative.
    reweight : float in (0, 1) or None, default None
        Chi-square quantile of the one-step reweighting (``None``: the
        statistics of all pixels).
    background : ndarray of bool, shape (rows, cols), optional
        The pixels whose statistics are the background (default: all).

    Returns
    -------
    numpy.ndarray of shape (rows, cols)
        Anomaly scores (float64), higher = more anomalous.

    Raises
    ------
    InputError
        If the cube is not a finite 3-D numeric array, ``ridge`` is invalid or
        ``background`` is not a mask of the scene's shape.

    References
    ----------
    .. [1] I. S. Reed and X. Yu, "Adaptive multiple-band CFAR detection of an
       optical pattern with unknown spectral distribution," IEEE Trans.
       Acoust., Speech, Signal Process., 38(10), 1760-1770, 1990.
    .. [2] P. J. Rousseeuw and K. Van Driessen, "A fast algorithm for the
       minimum covariance determinant estimator," Technometrics 41(3),
       212-223, 1999 (the reweighting step).
    """
    arr = check_cube(cube, min_pixels=1, min_bands=1)
    ridge = check_real("ridge", ridge, low=0.0)
    if reweight is not None:
        reweight = check_real("reweight", reweight, low=0.0, high=1.0, low_inclusive=False)
    rows, cols, k = arr.shape
    x = arr.reshape(-1, k)
    base = _background_keep(background, (rows, cols))
    scores = reweighted(
        lambda keep: _scores(x, *pixel_moments(x, keep), ridge),
        k,
        reweight,
        np.count_nonzero,
        base,
    )
    return scores.reshape(rows, cols)


def _background_keep(background: Any, shape: tuple[int, int]) -> np.ndarray | None:
    """``background`` as a flat boolean mask of the pixels (None: every pixel)."""
    mask = check_background(background, shape)
    return None if mask is None else mask.reshape(-1)


def global_rx_backend(
    P: Any, ridge: float, reweight: float | None, xp: Any, background: Any = None
) -> Any:
    """:func:`global_rx` of a validated ``(rows, cols, k)`` array of backend ``xp``, there.

    On NumPy it is :func:`global_rx`. On torch the statistics and the scores
    are formed on the device in float64; only the ``k x k`` Cholesky factor and
    its inverse are computed on the host: equal to :func:`global_rx` up to
    float rounding.
    """
    if xp.name == "numpy":
        return global_rx(P, ridge=ridge, reweight=reweight, background=background)
    rows, cols, k = P.shape
    x = xp.astype(P.reshape(-1, k), xp.dtype(np.float64))
    base = _background_keep(background, (rows, cols))
    scores = reweighted(
        lambda keep: _scores_backend(x, x if keep is None else x[keep], ridge, xp),
        k,
        reweight,
        xp.count_nonzero,
        None if base is None else xp.asarray(base),
    )
    return scores.reshape(rows, cols)


def reweighted(
    scores_of: Callable[[Any], Any],
    k: int,
    reweight: float | None,
    count: Callable[[Any], Any],
    base: Any = None,
) -> Any:
    """``scores_of(base)`` (statistics of the ``base`` pixels, or of every pixel when
    ``base`` is None or holds ``k`` or fewer), then, with ``reweight``, ``scores_of(keep)``
    with the pixels of ``base`` whose first score is within the cutoff, unless ``k`` or
    fewer of them are left (the one-step reweighting of :func:`global_rx`)."""
    if base is not None and count(base) <= k:
        base = None
    scores = scores_of(base)
    if reweight is not None:
        keep = scores <= reweight_cutoff(k, reweight)
        if base is not None:
            keep = keep & base
        if count(keep) > k:
            scores = scores_of(keep)
    return scores


def _scores_backend(x: Any, sample: Any, ridge: float, xp: Any) -> Any:
    """Mahalanobis scores of the rows of ``x`` against the statistics of ``sample``."""
    mean = xp.mean0_64(sample)
    d = sample - mean
    whiten = _whitener(global_rx_factor(xp.to_numpy(d.T @ d) / sample.shape[0], ridge))
    white = (x - mean) @ xp.asarray(whiten, dtype=x.dtype)
    return xp.col_sqnorms(white.T)


def reweight_cutoff(k: int, quantile: float) -> float:
    """The score above which a pixel leaves the reweighted statistics (``chi2(k).ppf(q)``)."""
    from scipy.stats import chi2

    return float(chi2.ppf(quantile, k))


def _blocks(x: np.ndarray) -> list[tuple[int, int]]:
    """The row ranges of the pixels ``x`` (``(n, k)``) processed together."""
    return tiles(x.shape[0], max(1, _BLOCK_ELEMENTS // max(1, x.shape[1])))


def _kept(x: np.ndarray, keep: np.ndarray | None) -> Iterator[np.ndarray]:
    """The rows of ``x`` in ``keep`` (all when None), a block at a time."""
    for a, b in _blocks(x):
        yield x[a:b] if keep is None else x[a:b][keep[a:b]]


def pixel_moments(x: np.ndarray, keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and biased covariance (float64) of the rows of ``x`` (those in ``keep``).

    Block by block (:data:`_BLOCK_ELEMENTS`): float64 copies of one block at a time, and
    no copy of the kept rows.
    """
    k = x.shape[1]
    count = x.shape[0] if keep is None else int(np.count_nonzero(keep))
    mean = np.zeros(k)
    for part in _kept(x, keep):
        mean += part.sum(axis=0, dtype=np.float64)
    mean /= count
    cov = np.zeros((k, k))
    for part in _kept(x, keep):
        d = part.astype(np.float64)
        d -= mean
        cov += d.T @ d
    return mean, cov / count


def _scores(x: np.ndarray, mean: np.ndarray, cov: np.ndarray, ridge: float) -> np.ndarray:
    return global_rx_apply(x, mean, global_rx_factor(cov, ridge))


def global_rx_factor(cov: np.ndarray, ridge: float) -> np.ndarray:
    """Cholesky factor ``L`` of the loaded covariance of :func:`global_rx` (``C = L L'``).

    For scoring pixels whose mean and covariance were gathered elsewhere (the
    chunks of a Dask array): ``global_rx_apply(x, mean, L)``.
    """
    cov = np.array(cov, dtype=np.float64)
    k = cov.shape[0]
    mean_var = float(np.trace(cov)) / k
    floor = loading_floor(mean_var)  # a rank-deficient covariance stays solvable
    cov[np.diag_indices(k)] += max(ridge * mean_var, floor)
    with one_blas_thread():
        return np.linalg.cholesky(cov)


def global_rx_apply(x: np.ndarray, mean: np.ndarray, chol: np.ndarray) -> np.ndarray:
    """Global RX scores of pixels ``x`` (``(..., k)``) given the scene mean and factor.

    ``s = ||(x - mean) W||^2`` with the whitener ``W = L^{-T}`` (:func:`_whitener`), a
    block of pixels at a time in float64 (:data:`_BLOCK_ELEMENTS`).
    """
    flat = x.reshape(-1, x.shape[-1])
    whiten = _whitener(chol)
    scores = np.empty(flat.shape[0])
    for a, b in _blocks(flat):
        d = flat[a:b].astype(np.float64)
        d -= mean
        white = d @ whiten
        scores[a:b] = np.einsum("pk,pk->p", white, white)
    return scores.reshape(x.shape[:-1])


def _whitener(chol: np.ndarray) -> np.ndarray:
    """``L^{-T}`` (C-contiguous) of the Cholesky factor ``L``: ``||d L^{-T}||^2 = d' C^{-1} d``."""
    with one_blas_thread():
        inv = solve_triangular(chol, np.eye(chol.shape[0]), lower=True, check_finite=False)
    return np.ascontiguousarray(inv.T)
