"""Local dual-window RX (Mahalanobis) detector on a ``(rows, cols, k)`` array.

The window statistics come from running window sums (separable, vertical then
horizontal) over the values and over the pairwise products of the bands, so
the cost is independent of the window size; the per-pixel ``k x k`` systems
are factorised together, a strip of pixels at a time, by a symmetric
elimination vectorised over the pixels. The array code is written once against
the backend namespace of :mod:`rednmf.backend`: NumPy, or torch on a CPU or
CUDA device.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from rednmf._validation import check_cube, check_dtype, check_int, check_real
from rednmf.backend import NumpyBackend, get_backend
from rednmf.scoring.windows import background_weights, check_window_sides, loading_floor, tiles

__all__ = ["check_windows", "local_rx", "local_rx_backend"]

#: Largest number of float64 elements of the packed moments held at a time (16 MiB):
#: the scene is processed in blocks of rows, and the moments of the rows that a block's
#: window sums add or drop stay in one buffer, the rows shared with the next block moved
#: to its start (formed once). The buffer holds at least twice those halo rows
#: (``2 * (outer // 2) + 1``), which is more than this budget for a wide scene with many
#: components (1000 columns, 20 components, outer 27: 54 rows, 100 MB). 1000 x 1000 x 10
#: (LRX's defaults, measured): 96 MiB blocks whose halo was formed again by every block
#: peaked 80 MiB higher (200 MiB above the cube against 120) and were no faster. 32 MiB
#: (1 << 22) held 17 MiB more at REDNMF's peak (the cube's 4 components: 279 rows against
#: 139), same scores, same fit time (docs/performance.md, memory).
_BLOCK_ELEMENTS = 1 << 21

#: Largest number of float64 elements of the centred rows (and of their squares)
#: summed at a time for the loading floor: 8 MiB each. With the block budget
#: above they were 128 MiB each, the peak of the whole local detector (256 MiB
#: above the scene at 1000 x 1000 x 20, measured with tracemalloc).
_STATS_ELEMENTS = 1 << 20

#: The same on a CUDA device: fewer, larger blocks (less halo recomputed, fewer launches).
_GPU_BLOCK_ELEMENTS = 1 << 26

#: Elements of the packed moment matrices of one strip of rows (8 MiB of
#: float64), assembled and factorised together: ``(k + 1)(k + 2) / 2`` rows of
#: up to 4,539 pixels for ``k = 20``.
_CHUNK_ELEMENTS = 1 << 20

#: The same on a CUDA device: large chunks, few kernel launches.
_GPU_CHUNK_ELEMENTS = 1 << 26

#: Largest ``k`` factorised by the vectorised elimination; larger systems go to
#: the batched LAPACK solve (``xp.solve``), which is faster once ``k^3`` work
#: per pixel outweighs its per-system overhead.
_ELIMINATION_MAX_K = 40

#: Elements of the few rows of moments whose window sums are taken together
#: (1 MiB of float64, in cache) ...
_SUB_ELEMENTS = 1 << 17

#: ... but at least this many per vectorised step of the running sums along
#: the rows, so that narrow scenes do not pay one Python call per few pixels ...
_MIN_CALL_ELEMENTS = 1 << 12

#: ... as long as those rows stay within this many elements (4 MiB of float64):
#: one row of a wide scene is already a large call. Without this bound a scene
#: of 1000 columns held four sub-strip buffers of 9 rows, 32 MiB each
#: (1000 x 1000 x 20 measured: same speed, 81 MiB less at the peak).
_SUB_MAX_ELEMENTS = 1 << 19


def local_rx(
    cube: np.ndarray,
    inner: int = 9,
    outer: int = 27,
    ridge: float = 0.1,
    dtype: DTypeLike = np.float64,
    backend: str | None = None,
    device: Any = None,
    background: np.ndarray | None = None,
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
    are running sums in float64 on data centred by its global mean, and the
    per-pixel systems are factorised together by a symmetric (``LDL^T``)
    elimination vectorised over a strip of pixels; pixels whose system is not
    numerically positive definite are solved by LU instead.

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
        ``device`` (default ``'cuda'`` when available). The scores equal
        NumPy's up to float rounding.
    device : str or torch.device, optional
        Torch device.
    background : ndarray of bool, shape (rows, cols), optional
        Pixels known to be background. The ring statistics are then weighted
        sums in which every other pixel has the weight
        :data:`~rednmf.scoring.windows.SUSPECT_WEIGHT` (:func:`background_weights`):
        anomalies next to a pixel no longer enter the background it is measured
        against, and a ring with no background pixel at all still has statistics.

    Returns
    -------
    numpy.ndarray of shape (rows, cols)
        Anomaly scores, higher = more anomalous.

    Raises
    ------
    InputError
        If the cube is not a finite 3-D numeric array, if the window sizes are
        invalid, if the scene is smaller than the outer window, or if
        ``background`` is not a mask of the scene's shape.

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
    weights = background_weights(background, arr.shape[:2], xp)
    return xp.to_numpy(
        local_rx_backend(xp.asarray(arr), inner, outer, ridge, out_dtype, xp, weights=weights)
    )


def check_windows(
    shape: tuple[int, ...], inner: int, outer: int, ridge: float, dtype: DTypeLike
) -> tuple[int, int, float, np.dtype]:
    """Validated ``inner, outer, ridge, dtype`` of :func:`local_rx` for a cube of ``shape``."""
    inner = check_int("inner", inner, low=1)
    outer = check_int("outer", outer, low=1)
    ridge = check_real("ridge", ridge, low=0.0)
    out_dtype = check_dtype(dtype)
    check_window_sides(inner, outer, shape)
    return inner, outer, ridge, out_dtype


def local_rx_backend(
    arr: Any,
    inner: int,
    outer: int,
    ridge: float,
    out_dtype: np.dtype,
    xp: NumpyBackend,
    scene_stats: tuple[Any, float] | None = None,
    weights: Any = None,
) -> Any:
    """:func:`local_rx` of a validated array of backend ``xp``; scores in that backend.

    ``weights``: optional ``(rows, cols)`` float64 array of backend ``xp``, the
    weight of each pixel in the ring statistics of its neighbours (the moments
    are weighted sums: :func:`local_rx`'s ``background``).

    ``scene_stats``: ``(mean, floor)`` of the whole scene when ``arr`` is only a
    part of it (a tile plus its halo, :class:`rednmf.engines.dask.DaskSession`): the
    float64 mean spectrum that centres the data and the loading floor
    :func:`rednmf.scoring.windows.loading_floor` of the mean band variance of
    the centred scene (it keeps singular windows, constant patches with
    ``ridge=0``, solvable without affecting well-conditioned ones).
    ``None``: both from ``arr``.
    """
    rows, cols, k = arr.shape
    # Centred in float64 one block of rows at a time (_centred): no float64 copy of the scene.
    if scene_stats is None:
        mean = xp.mean0_64(arr.reshape(-1, k))
        step = max(1, _STATS_ELEMENTS // max(1, cols * k))
        total = sum(
            float(xp.total(_centred(arr, mean, r0, min(rows, r0 + step), xp) ** 2))
            for r0 in range(0, rows, step)
        )
        floor = loading_floor(total / (rows * cols * k))
    else:
        mean, floor = scene_stats

    offs = _packed_offsets(k + 1)
    n_packed = offs[-1]
    half = outer // 2
    cuda = xp.device is not None and xp.device.type == "cuda"
    per_row = cols * n_packed
    halo = 2 * half + 1  # rows of moments held beside a block's own
    # At least as many rows as the halo: moving the halo costs at most one copy per row.
    block = max(halo, (_GPU_BLOCK_ELEMENTS if cuda else _BLOCK_ELEMENTS) // per_row - halo)
    least = min(_min_rows(n_packed), max(1, _SUB_MAX_ELEMENTS // per_row))
    strip = max(1, (_GPU_CHUNK_ELEMENTS if cuda else _CHUNK_ELEMENTS) // per_row)
    strip = min(max(strip, least), block, rows)
    # On a GPU, no sub-strips: few large kernels rather than cache-sized pieces.
    sub = strip if cuda else max(least, _SUB_ELEMENTS // per_row)
    out_dtype = xp.dtype(out_dtype)
    work = _Workspace(xp, strip, min(sub, strip), cols, k, out_dtype)

    scores = xp.empty((rows, cols), dtype=out_dtype)
    # The packed moments of the rows r0 - half - 1 .. r1 + half - 1 around a block of rows
    # r0..r1 (those its window sums add or drop), in one buffer from block to block: the
    # rows shared with the next block are moved to its start, not formed again.
    z = xp.empty((min(rows, block + halo), cols, n_packed), dtype=xp.float64)
    held = (0, 0)  # the scene rows whose moments z holds, from its start
    for r0, r1 in tiles(rows, block):
        e0, e1 = max(0, r0 - half - 1), min(rows, r1 + half)
        if e0 > held[0]:
            for i in range(max(0, held[1] - e0)):  # forward, row by row: they may overlap
                z[i] = z[e0 - held[0] + i]
        new = max(held[1], e0)
        _moment_products(
            _centred(arr, mean, new, e1, xp), offs, work.sub, z[new - e0 : e1 - e0], xp
        )
        if weights is not None:  # weighted moments: w z z' (the count becomes the sum of w)
            xp.multiply(z[new - e0 : e1 - e0], weights[new:e1, :, None], out=z[new - e0 : e1 - e0])
        held = (e0, e1)
        x = _centred(arr, mean, r0, r1, xp)  # the values of the rows scored
        _score_block(z[: e1 - e0], x, e0, (r0, r1), scores, inner, outer, ridge, floor, work, xp)
        del x  # before the next block's rows are made
    return scores


def _centred(arr: Any, mean: Any, r0: int, r1: int, xp: NumpyBackend) -> Any:
    """Rows ``r0:r1`` of ``arr`` in float64, minus the scene's mean spectrum (a new array)."""
    return xp.subtract(xp.astype(arr[r0:r1], xp.float64), mean)


def _score_block(
    z: Any,
    x: Any,
    e0: int,
    kept: tuple[int, int],
    scores: Any,
    inner: int,
    outer: int,
    ridge: float,
    floor: float,
    work: _Workspace,
    xp: NumpyBackend,
) -> None:
    """Scores of rows ``kept`` into ``scores``, from the moments ``z`` of the rows around them.

    ``z`` holds the packed moments (:func:`_moment_products`, weighted) of the rows ``e0,
    e0 + 1, ...`` of the scene: ``kept`` and the rows their window sums add or drop (the
    first row the outer window drops is held too, unless ``e0`` is the image's first row).
    ``x`` holds the centred values of the rows ``kept``. ``work.carry`` holds the vertical
    window sums of the row before ``kept`` and is left with those of its last row (the
    carry is started here when ``kept`` starts at the image's first row).
    """
    r0, r1 = kept
    cols, k = x.shape[1:]
    windows = (outer // 2, inner // 2)
    carry = work.carry
    if r0 == 0:
        for w, h in enumerate(windows):
            _window_sum(z, h, -1, carry[w], xp)
    for part in _split(r0, r1, work.rows):
        lo, hi = part.start - e0, part.stop - e0
        moments = _ring_moments(z, lo, hi, windows, carry, work, xp)
        xs = x[part.start - r0 : part.stop - r0].reshape(-1, k)
        if k > _ELIMINATION_MAX_K:
            chunk = _solve_scores(moments.T, xs, ridge, floor, work, xp)
        else:
            chunk, bad = _chunk_scores(moments, xs, ridge, floor, work, xp)
            if len(bad):  # not numerically positive definite: LU on the ring sums again
                again = xp.empty(carry.shape, dtype=xp.float64)
                for w, h in enumerate(windows):
                    _window_sum(z, h, lo - 1, again[w], xp)
                moments = _ring_moments(z, lo, hi, windows, again, work, xp)
                chunk[bad] = _solve_scores(moments.T[bad], xs[bad], ridge, floor, work, xp)
        scores[part] = chunk.reshape(-1, cols)


def _split(start: int, stop: int, most: int) -> list[slice]:
    """``start..stop`` in as few near-equal parts of at most ``most`` as possible."""
    n = -(-(stop - start) // most)
    edges = [start + (stop - start) * i // n for i in range(n + 1)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _min_rows(n_packed: int) -> int:
    """Fewest rows per vectorised running-sum step along the rows (``_MIN_CALL_ELEMENTS``)."""
    return -(-_MIN_CALL_ELEMENTS // (2 * n_packed))


def _packed_offsets(n: int) -> list[int]:
    """Where row ``a`` of the upper triangle of an ``n x n`` matrix starts (and, last, its size).

    The triangle is packed row by row: row ``a`` holds the entries ``(a, a)``,
    ``(a, a + 1)``, ..., ``(a, n - 1)``.
    """
    return [0, *np.cumsum(np.arange(n, 0, -1)).tolist()]


def _moment_products(x: Any, offs: list[int], rows_per: int, z: Any, xp: NumpyBackend) -> Any:
    """The packed moments ``z z'`` of ``z = (x, 1)``, pixel by pixel, into ``z``.

    ``x`` is ``(rows, cols, k)`` float64; the result is ``(rows, cols, n)``,
    ``n = (k + 1)(k + 2) / 2``: its last axis is the upper triangle of ``z z'``
    packed by :func:`_packed_offsets` (``x_a x_b`` for ``a <= b < k``, ``x_a``
    in the last column and 1 in the corner). The products are formed
    band-major (one vectorised product per band), ``rows_per`` rows at a time,
    and transposed pixel-major while still in cache.
    """
    rows, cols, k = x.shape
    zc = xp.empty((offs[-1], min(rows, rows_per), cols), dtype=xp.float64)
    zc[offs[-1] - 1] = 1.0
    for r0 in range(0, rows, rows_per):
        r1 = min(rows, r0 + rows_per)
        zr = zc[:, : r1 - r0]
        xr = xp.ascontiguous(xp.moveaxis(x[r0:r1], 2, 0))  # (k, rows, cols), a few rows
        for a in range(k):
            xp.multiply(xr[a], xr[a:], out=zr[offs[a] : offs[a + 1] - 1])
            zr[offs[a + 1] - 1] = xr[a]
        z[r0:r1] = xp.moveaxis(zr, 0, 2)
    return z


def _along(a: Any, axis: int, start: int, stop: int) -> Any:
    """``a[start:stop]`` along ``axis`` (0 or 1)."""
    return a[start:stop] if axis == 0 else a[:, start:stop]


def _window_steps(a: Any, h: int, lo: int, hi: int, axis: int, out: Any, xp: NumpyBackend) -> Any:
    """Changes of the window sums along ``axis`` from ``i - 1`` to ``i``, for ``i = lo..hi-1``.

    The window of ``i`` is ``i - h .. i + h`` clipped to the array, so the
    change is ``a[i + h] - a[i - h - 1]``, each term only where it lies inside
    the array; written to ``out``. Running sums of these changes are the
    window sums (as :func:`scipy.ndimage.uniform_filter` forms them), whose
    rounding stays relative to the window sums rather than to sums from the
    edge of the array.
    """
    n = a.shape[axis]
    start, stop = max(lo, h + 1), min(hi, n - h)
    if stop > start:  # both ends inside the array
        xp.subtract(
            _along(a, axis, start + h, stop + h),
            _along(a, axis, start - h - 1, stop - h - 1),
            out=_along(out, axis, start - lo, stop - lo),
        )
    stop = min(hi, h + 1, n - h)
    if stop > lo:  # the window grows: its start is clipped
        _along(out, axis, 0, stop - lo)[...] = _along(a, axis, lo + h, stop + h)
    start = max(lo, h + 1, n - h)
    if hi > start:  # the window shrinks: its end is clipped
        xp.multiply(
            _along(a, axis, start - h - 1, hi - h - 1),
            -1.0,
            out=_along(out, axis, start - lo, hi - lo),
        )
    start, stop = max(lo, n - h), min(hi, h + 1)
    if stop > start:  # the window covers the whole axis
        _along(out, axis, start - lo, stop - lo)[...] = 0.0
    return out


def _window_sum(a: Any, h: int, i: int, out: Any, xp: NumpyBackend) -> Any:
    """Sum of ``a`` over rows ``i - h .. i + h`` clipped to the array (0 if none), into ``out``."""
    start, stop = max(0, i - h), min(a.shape[0], i + h + 1)
    out[...] = 0.0
    for r in range(start, stop):
        xp.add(out, a[r], out=out)
    return out


class _Workspace:
    """Buffers of one strip of rows, reused from strip to strip."""

    def __init__(
        self, xp: NumpyBackend, rows: int, sub: int, cols: int, k: int, dtype: Any
    ) -> None:
        self.k, self.rows, self.sub = k, rows, sub
        self.offs = _packed_offsets(k + 1)
        n_packed = self.offs[-1]
        self.dtype = dtype
        self.vertical = xp.empty((2, sub, cols, n_packed), dtype=xp.float64)
        self.steps = xp.empty((2, sub, cols, n_packed), dtype=xp.float64)
        self.carry = xp.empty((2, cols, n_packed), dtype=xp.float64)
        self.moments = xp.empty((n_packed, rows * cols), dtype=xp.float64)
        self.last = xp.index(np.asarray(self.offs[1 : k + 1]) - 1)  # entries (a, k)
        if k <= _ELIMINATION_MAX_K:
            self.tmp64 = xp.empty((k + 1, rows * cols), dtype=xp.float64)
            self.tmp = (
                self.tmp64 if dtype == xp.float64 else xp.empty((k + 1, rows * cols), dtype=dtype)
            )
            self.factors = xp.empty((k + 1, rows * cols), dtype=dtype)


def _ring_moments(
    z: Any,
    lo: int,
    hi: int,
    windows: tuple[int, int],
    carry: Any,
    work: _Workspace,
    xp: NumpyBackend,
) -> Any:
    """Ring sums of the packed moments ``z`` of rows ``lo..hi-1``, band-major.

    Outer window minus inner window (half-widths ``windows``), each the
    horizontal window sum of the vertical window sums; both are running sums
    of :func:`_window_steps`, the vertical ones continuing from ``carry`` (the
    vertical window sums of row ``lo - 1``, updated to row ``hi - 1``). A few
    rows at a time (in cache), written transposed into ``work.moments``, whose
    first ``(hi - lo) * cols`` columns are returned: ``(n, pixels)``.
    """
    cols, n_packed = z.shape[1:]
    moments = work.moments[:, : (hi - lo) * cols]
    for r0 in range(lo, hi, work.sub):
        r1 = min(hi, r0 + work.sub)
        v, d = work.vertical[:, : r1 - r0], work.steps[:, : r1 - r0]
        for w, h in enumerate(windows):
            _window_steps(z, h, r0, r1, 0, v[w], xp)
        xp.add(v[:, 0], carry, out=v[:, 0])
        xp.cumsum(v, 1, out=v)
        carry[...] = v[:, -1]
        for w, h in enumerate(windows):
            _window_steps(v[w], h, 0, cols, 1, d[w], xp)
            for c in range(min(h, cols)):  # start from the window of column -1
                xp.add(d[w, :, 0], v[w, :, c], out=d[w, :, 0])
        xp.cumsum(d, 2, out=d)
        out = moments[:, (r0 - lo) * cols : (r1 - lo) * cols].T.reshape(r1 - r0, cols, n_packed)
        xp.subtract(d[0], d[1], out=out)
    return moments


def _chunk_scores(
    m: Any, xs: Any, ridge: float, floor: float, work: _Workspace, xp: NumpyBackend
) -> tuple[Any, Any]:
    """Local RX scores of a chunk of pixels, and the pixels left to :func:`_solve_scores`.

    ``m`` holds the ring sums of the packed moments band-major, ``(n,
    pixels)``, and ``xs`` the centred values ``(pixels, k)``. ``m`` is turned in
    place into the augmented matrices ``[[C + lambda I, d], [d', 0]]`` with
    ``d = x - mu``, a row of pixels per matrix entry; eliminating their first
    ``k`` pivots (``LDL^T`` without pivoting, stable for the symmetric positive
    definite ``C + lambda I``) leaves ``-d' (C + lambda I)^{-1} d`` in the
    corner. Pixels with a pivot that is not positive (a system that is not
    numerically positive definite) are returned as the second value.
    """
    k, offs = work.k, work.offs
    c = m.shape[1]
    count = m[offs[k]]
    mu = m[work.last] / count
    tmp = work.tmp64[:, :c]
    for a in range(k):
        row = m[offs[a] : offs[a + 1] - 1]  # window sums of x_a x_b, b = a..k-1
        xp.divide(row, count, out=row)
        xp.multiply(mu[a], mu[a:], out=tmp[: k - a])
        xp.subtract(row, tmp[: k - a], out=row)  # covariances (a, a..k-1)
    trace = xp.copy(m[0])
    for a in range(1, k):
        xp.add(trace, m[offs[a]], out=trace)
    load = xp.maximum(ridge * trace / k, floor)
    for a in range(k):
        xp.add(m[offs[a]], load, out=m[offs[a]])
    m[work.last] = xs.T - mu
    m[offs[k]] = 0.0

    a_ = m if work.dtype == xp.float64 else xp.astype(m, work.dtype)
    factors, tmp = work.factors[:, :c], work.tmp[:, :c]
    low = None
    for j in range(k):
        row_j = a_[offs[j] : offs[j + 1]]
        pivot = row_j[0]
        low = xp.copy(pivot) if low is None else xp.minimum(low, pivot, out=low)
        f = xp.divide(row_j[1:], pivot, out=factors[: k - j])
        for a in range(j + 1, k + 1):
            t = xp.multiply(row_j[a - j :], f[a - j - 1], out=tmp[: k + 1 - a])
            row_a = a_[offs[a] : offs[a + 1]]
            xp.subtract(row_a, t, out=row_a)
    return -a_[offs[k]], xp.flatnonzero(~(low > 0))


def _solve_scores(
    sums: Any, xs: Any, ridge: float, floor: float, work: _Workspace, xp: NumpyBackend
) -> Any:
    """Scores from ring sums ``(pixels, n)`` by a batched LU solve of the ``k x k`` covariances."""
    k, offs = work.k, work.offs
    sym = np.empty((k, k), dtype=np.intp)
    for a in range(k):
        sym[a, a:] = np.arange(offs[a], offs[a + 1] - 1)
        sym[a:, a] = sym[a, a:]
    count = sums[:, offs[k] : offs[k] + 1]
    mu = xp.take_cols(sums, work.last) / count
    cov = xp.take_cols(sums, xp.index(sym.ravel())).reshape(-1, k, k)
    cov /= count[:, :, None]
    cov -= mu[:, :, None] * mu[:, None, :]
    trace = xp.batch_trace(cov)
    load = xp.maximum(ridge * trace / k, floor)
    cov += load[:, None, None] * xp.eye(k, dtype=xp.float64)
    d = xp.astype(xs - mu, work.dtype)
    sol = xp.solve(xp.astype(cov, work.dtype), d)
    return xp.rowdot(d, sol)
