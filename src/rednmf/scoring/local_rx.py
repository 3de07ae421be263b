"""Local dual-window RX (Mahalanobis) detector on a ``(rows, cols, k)`` array.

The window statistics come from box filters over the values and over the
pairwise products of the bands, so the cost is independent of the window size;
the per-pixel ``k x k`` systems are solved as a batched stack. The array code
is written once against the backend namespace of :mod:`rednmf.backend`:
NumPy (box filters by :func:`scipy.ndimage.uniform_filter`) or torch on a CPU
or CUDA device (box sums from integral images, :func:`torch.linalg.solve`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from rednmf._validation import check_cube, check_dtype, check_int, check_real
from rednmf.backend import NumpyBackend, get_backend
from rednmf.exceptions import InputError

__all__ = ["local_rx"]

#: Largest number of float64 elements held by one working array; the scene is
#: processed in blocks of rows (plus a halo) so that memory stays bounded.
_BLOCK_ELEMENTS = 1 << 24

#: The same on a CUDA device: fewer, larger blocks (less halo recomputed, fewer launches).
_GPU_BLOCK_ELEMENTS = 1 << 26

#: Relative floor on the diagonal loading, as a fraction of the scene's mean
#: band variance, so that singular windows (constant patches, ``ridge=0``)
#: stay solvable without affecting well-conditioned ones.
_REL_FLOOR = 1e-12


def _ring_sum(a: Any, inner: int, outer: int, xp: NumpyBackend) -> Any:
    """Sum over the outer window minus the inner guard window (zero outside the array).

    ``a`` has shape ``(rows, cols)`` or ``(rows, cols, m)``; the sums run over
    the first two axes only.
    """
    return xp.box_sum(a, outer) - xp.box_sum(a, inner)


def local_rx(
    cube: np.ndarray,
    inner: int = 9,
    outer: int = 27,
    ridge: float = 0.1,
    dtype: DTypeLike = np.float64,
    backend: str | None = None,
    device: Any = None,
) -> np.ndarray:
    r"""Local dual-window RX anomaly scores.

    For every pixel :math:`x`, the background is the set of pixels inside the
    centred square outer window of side ``outer`` but outside the centred inner
    guard window of side ``inner`` (which contains the pixel itself). With
    :math:`n` such pixels, mean :math:`\mu` and biased covariance
    :math:`C = \frac1n \sum_i (x_i - \mu)(x_i - \mu)^\top`, the score is

    .. math::

        s(x) = (x - \mu)^\top \left(C + \lambda I\right)^{-1} (x - \mu),
        \qquad \lambda = \mathrm{ridge} \cdot \frac{\operatorname{tr} C}{k},

    i.e. the ridge is relative to the mean band variance of the window, which
    makes the score invariant to a global rescaling of the data. The loading
    :math:`\lambda` is never less than ``1e-12`` times the mean band variance
    of the whole scene (or ``1e-12`` if the scene is constant), so constant
    windows and ``ridge=0`` on rank-deficient windows still give finite scores.

    At the image border the windows are clipped: only pixels inside the image
    count. Window sums of the values and of the ``k(k+1)/2`` pairwise products
    are computed with box filters (:func:`scipy.ndimage.uniform_filter`; on
    torch, integral images) in float64 on data centred by its global mean, and
    the per-pixel systems are solved in batches.

    Parameters
    ----------
    cube : array-like of shape (rows, cols, k)
        The data, e.g. an anomaly matrix reshaped to a cube, possibly after a
        PCA projection.
    inner : int, default 9
        Side of the inner guard window; odd, at least 1.
    outer : int, default 27
        Side of the outer window; odd, greater than ``inner`` and no larger
        than either side of the scene.
    ridge : float, default 0.1
        Diagonal loading relative to the mean band variance of each window;
        non-negative.
    dtype : {'float64', 'float32'}, default float64
        Precision of the batched solves and of the returned scores. Window
        sums are always accumulated in float64.
    backend : {'numpy', 'torch'}, optional
        Array backend (:mod:`rednmf.backend`); ``'torch'`` computes on
        ``device`` (default ``'cuda'`` when available) with box sums from
        integral images. The scores equal NumPy's up to float rounding.
    device : str or torch.device, optional
        Torch device.

    Returns
    -------
    numpy.ndarray of shape (rows, cols)
        Anomaly scores, higher = more anomalous.

    Raises
    ------
    InputError
        If the cube is not a finite 3-D numeric array, if the window sizes are
        invalid, or if the scene is smaller than the outer window.

    References
    ----------
    .. [1] I. S. Reed and X. Yu, "Adaptive multiple-band CFAR detection of an
       optical pattern with unknown spectral distribution," IEEE Trans.
       Acoust., Speech, Signal Process., 38(10), 1760-1770, 1990.
    .. [2] J. M. Molero, E. M. Garzon, I. Garcia and A. Plaza, "Analysis and
       optimizations of global and local versions of the RX algorithm for
       anomaly detection in hyperspectral data," IEEE J. Sel. Topics Appl.
       Earth Observ. Remote Sens., 6(2), 801-814, 2013.
    """
    xp = get_backend(backend, device)
    arr = check_cube(cube, min_pixels=1, min_bands=1)
    inner, outer, ridge, out_dtype = check_windows(arr.shape, inner, outer, ridge, dtype)
    return xp.to_numpy(_local_rx(xp.asarray(arr), inner, outer, ridge, out_dtype, xp))


def check_windows(
    shape: tuple[int, ...], inner: int, outer: int, ridge: float, dtype: DTypeLike
) -> tuple[int, int, float, np.dtype]:
    """Validated ``inner, outer, ridge, dtype`` of :func:`local_rx` for a cube of ``shape``."""
    inner = check_int("inner", inner, low=1)
    outer = check_int("outer", outer, low=1)
    ridge = check_real("ridge", ridge, low=0.0)
    out_dtype = check_dtype(dtype)
    if inner % 2 == 0:
        raise InputError(f"inner must be odd, got {inner}; pass an odd window side such as 3 or 9")
    if outer % 2 == 0:
        raise InputError(
            f"outer must be odd, got {outer}; pass an odd window side such as 7 or 27"
        )
    if outer <= inner:
        raise InputError(
            f"outer ({outer}) must be greater than inner ({inner}); pass a larger outer window"
        )
    rows, cols = shape[:2]
    if rows < outer or cols < outer:
        raise InputError(
            f"scene of {rows}x{cols} pixels is smaller than the {outer}x{outer} outer window; "
            "pass a smaller `outer`"
        )
    return inner, outer, ridge, out_dtype


def _local_rx(
    arr: Any,
    inner: int,
    outer: int,
    ridge: float,
    out_dtype: np.dtype,
    xp: NumpyBackend,
    scene_stats: tuple[Any, float] | None = None,
) -> Any:
    """:func:`local_rx` of a validated array of backend ``xp``; scores in that backend.

    ``scene_stats``: ``(mean, floor)`` of the whole scene when ``arr`` is only a
    part of it (a tile plus its halo, :mod:`rednmf.scoring.dask_scoring`): the
    float64 mean spectrum that centres the data and the loading floor
    ``_REL_FLOOR`` times the variance of the centred scene (``_REL_FLOOR`` if it
    is 0). ``None``: both from ``arr``.
    """
    rows, cols, k = arr.shape
    x = xp.astype(arr, xp.float64)
    if scene_stats is None:
        x = x - xp.mean0_64(x.reshape(-1, k))
        global_var = xp.mean(x * x)
        floor = _REL_FLOOR * global_var if global_var > 0.0 else _REL_FLOOR
    else:
        x = x - scene_stats[0]
        floor = scene_stats[1]

    iu, ju = np.triu_indices(k)
    m = iu.size
    # sym_index[a * k + b] = position of the product x_min(a,b) * x_max(a,b) in the stack.
    sym = np.empty((k, k), dtype=np.intp)
    sym[iu, ju] = np.arange(m)
    sym[ju, iu] = np.arange(m)
    sym_index = xp.index(sym.ravel())
    iu, ju = xp.index(iu), xp.index(ju)
    half = outer // 2
    per_row = cols * max(m, k * k, 1)
    cuda = xp.device is not None and xp.device.type == "cuda"
    block = max(1, (_GPU_BLOCK_ELEMENTS if cuda else _BLOCK_ELEMENTS) // per_row - 2 * half)
    eye = xp.eye(k, dtype=xp.float64)
    out_dtype = xp.dtype(out_dtype)

    scores = xp.empty((rows, cols), dtype=out_dtype)
    for r0 in range(0, rows, block):
        r1 = min(rows, r0 + block)
        # Extended block with a halo of `half` rows; its edges are either the
        # image edges or more than `half` rows away from the rows kept.
        e0, e1 = max(0, r0 - half), min(rows, r1 + half)
        xe = x[e0:e1]
        keep = slice(r0 - e0, r1 - e0)

        count = _ring_sum(xp.ones(xe.shape[:2], dtype=xp.float64), inner, outer, xp)[keep]
        count = xp.rint(count).reshape(-1, 1)
        s1 = _ring_sum(xe, inner, outer, xp)[keep].reshape(-1, k)
        s2 = _ring_sum(xe[..., iu] * xe[..., ju], inner, outer, xp)[keep].reshape(-1, m)

        mu = s1 / count
        # Expand the upper triangle to full symmetric matrices with one gather.
        cov = xp.take_cols(s2, sym_index).reshape(-1, k, k)
        cov /= count[:, :, None]
        cov -= mu[:, :, None] * mu[:, None, :]

        trace = xp.batch_trace(cov)
        load = xp.maximum(ridge * trace / k, floor)
        cov += load[:, None, None] * eye

        d = x[r0:r1].reshape(-1, k) - mu
        cov = xp.astype(cov, out_dtype)
        d = xp.astype(d, out_dtype)
        sol = xp.solve(cov, d)
        scores[r0:r1] = xp.rowdot(d, sol).reshape(r1 - r0, cols)
    return scores
