r"""Collaborative-representation detectors: CRD, LSAD-CR-IDW and LSUNRSORAD.

All three represent the pixel under test :math:`y \in \mathbb{R}^b` by the
background samples :math:`h_1, \dots, h_m` of a dual window (the pixels inside
the ``outer x outer`` window but outside the ``inner x inner`` guard window)
and score it by the norm of the representation residual.

Implementation (no Python loop over pixels): the scene is read a band of rows
at a time, scaled and padded by the window halo in float64 (:class:`_PaddedRows`;
no float64 copy of the whole scene is made), and the inner products of every
(centred) pixel of the band with each neighbour at every offset a window pair
can take are computed with BLAS (:func:`_pair_table`, a ``(rows, cols,
n_offsets)`` table of 32 MiB at most). The ``m x m``
system of every window is then gathered from that table (the Gram matrix of a
window centre is shared by the ``inner**2`` shifted windows of LSAD) instead of
being multiplied out of a gathered ``(P, m, b)`` stack; the systems of a block
of pixels are solved at once with :func:`numpy.linalg.solve` (``m < b`` for
the defaults, so the primal ``m x m`` form is the small one), and the residual
vectors are formed explicitly from a sliding-window view of the image (an
expansion in inner products would cancel catastrophically: most pixels are
represented to a tiny fraction of their norm). Scores agree with the
per-pixel formulas to rounding (the tests compare them with per-pixel loops).
Window positions that fall outside the image are either dropped
(``border='clip'``: their sample gets a zero coefficient, which is exactly the
same as removing it from the window) or filled by mirroring the image about
its edges (``border='mirror'``, the reference MATLAB code's choice; the edge
pixel is repeated, so near the border a pixel's own spectrum can appear in its
ring and represent it exactly, which lowers its score to rounding noise).

Cost on 100 x 100 x 205 (abu-airport-1) with the defaults, one core
(``benchmarks/bench_cr.py``): CRD about 1.3 s (was 3.3 s), LSAD-CR-IDW about
2.5 s (was 13 s) and LSUNRSORAD about 3 s (was 12 s); the batched ``m x m``
solves are about half of it.
"""

from __future__ import annotations

from numbers import Real
from typing import Any, ClassVar, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.utils._param_validation import Interval, StrOptions

from rednmf.detectors._base import BaseDetector
from rednmf.detectors.rx import N_PCA, WINDOW
from rednmf.exceptions import InputError
from rednmf.preprocessing import scale_data, scale_params
from rednmf.scoring.cube import pca_project
from rednmf.scoring.windows import check_window_sides, loading_floor, tiles
from rednmf.solvers._driver import FitCallback

__all__ = ["CRD", "LSADCRIDW", "LSUNRSORAD", "BORDERS", "CR_SCALINGS"]

#: Border handling of the windows.
BORDERS = ("clip", "mirror")
#: Global scaling applied before the representation.
CR_SCALINGS = ("minmax", "none")

#: Number of float64 elements of one ``(P, m, m)`` stack of window systems (8 MiB; the
#: gathered systems, their index and the solver's copy are a few times that).
_BLOCK_ELEMENTS = 1 << 20

#: Number of float64 elements of one block of the pixel-pair table (32 MiB; the table of the
#: raw inner products is as large). With the band of scaled rows it reads, the largest
#: allocation of the CR detectors: they hold no float64 copy of the scene.
_TABLE_ELEMENTS = 1 << 22

#: Float64 elements of the scaled rows summed at a time for the scene's mean and spread.
_STATS_ELEMENTS = 1 << 20

#: Columns per BLAS product when building the pixel-pair table.
_TABLE_CHUNK = 16


def ring_offsets(inner: int, outer: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column offsets of the dual-window ring, in row-major order.

    The ring is the ``outer x outer`` window centred on ``(0, 0)`` minus the
    centred ``inner x inner`` guard window, so it has
    ``outer**2 - inner**2`` positions.
    """
    ho, hi = outer // 2, inner // 2
    dr, dc = np.meshgrid(np.arange(-ho, ho + 1), np.arange(-ho, ho + 1), indexing="ij")
    ring = (np.abs(dr) > hi) | (np.abs(dc) > hi)
    return dr[ring], dc[ring]


def idw_weights(inner: int, outer: int) -> np.ndarray:
    r"""Inverse-distance weights of the ring positions.

    .. math::

        w_i = \frac{d_i^{-2}}{\sum_{j \in \text{ring}} d_j^{-2}},

    with :math:`d_i` the Euclidean distance (in pixels) of ring position
    :math:`i` to the window centre; the weights sum to one over the full ring.
    """
    dr, dc = ring_offsets(inner, outer)
    inv = 1.0 / (dr.astype(np.float64) ** 2 + dc.astype(np.float64) ** 2)
    return inv / inv.sum()


# -- the pair table ------------------------------------------------------------


def _half_offsets(reach: int) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Offsets ``(dr, dc)`` of the pair table and their index.

    The half plane ``dr > 0 or (dr == 0 and dc >= 0)`` with
    ``|dr|, |dc| <= reach``: the inner product at offset ``-o`` is the one at
    ``o`` read from the partner pixel. Returns the list (``(0, 0)`` first) and
    a ``(reach + 1, 2 * reach + 1)`` index array, ``-1`` outside the half plane.
    """
    offsets = [
        (r, c) for r in range(reach + 1) for c in range(-reach, reach + 1) if r > 0 or c >= 0
    ]
    index = np.full((reach + 1, 2 * reach + 1), -1, dtype=np.int64)
    for k, (r, c) in enumerate(offsets):
        index[r, c + reach] = k
    return offsets, index


def _pair_table(ext: np.ndarray, u1: int, reach: int, index: np.ndarray) -> np.ndarray:
    """Inner products of every pixel of rows ``0:u1`` of ``x`` with its neighbours.

    ``ext`` is ``x`` with ``reach`` columns of zeros on each side
    (``x = ext[:, reach:-reach]``, ``(rows, cols, b)``).
    ``T[u, v, index[dr, dc + reach]] = x[u, v] . x[u + dr, v + dc]``
    for the half-plane offsets, zero where the neighbour falls outside ``x``.
    Each block of ``_TABLE_CHUNK`` columns of a row is multiplied with the
    ``_TABLE_CHUNK + 2 * reach`` columns of the row ``dr`` below it (one
    batched BLAS product per ``dr`` and column block) and the wanted
    diagonals are read off.
    """
    rows, cols = ext.shape[0], ext.shape[1] - 2 * reach
    n_off = int((index >= 0).sum())
    table = np.zeros((u1, cols, n_off))
    for dr in range(reach + 1):
        nu = min(u1, rows - dr)
        if nu <= 0:
            continue
        top = ext[:nu, reach : reach + cols]
        below = ext[dr : dr + nu]
        for v0 in range(0, cols, _TABLE_CHUNK):
            v1 = min(cols, v0 + _TABLE_CHUNK)
            prod = np.matmul(top[:, v0:v1], below[:, v0 : v1 + 2 * reach].transpose(0, 2, 1))
            for dc in range(0 if dr == 0 else -reach, reach + 1):
                table[:nu, v0:v1, index[dr, dc + reach]] = np.diagonal(
                    prod, offset=dc + reach, axis1=1, axis2=2
                )
    return table


# -- the scores ----------------------------------------------------------------


def representation_scores(
    cube: np.ndarray,
    inner: int,
    outer: int,
    *,
    method: str,
    reg: float,
    w2: np.ndarray | None = None,
    summed: bool,
    border: str = "clip",
    scale: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """Residual norms of every pixel, optionally summed over shifted windows.

    The scene is read a band of rows at a time (:class:`_PaddedRows`): no
    float64 copy of the whole cube is made, whatever its dtype.

    Parameters
    ----------
    cube : ndarray of shape (rows, cols, b)
        The data, float32 or float64; the representation works on
        ``(cube - offset) / divisor`` (``scale``) in float64.
    inner, outer : int
        Odd window sides, ``outer > inner``; the scene must be at least
        ``outer`` pixels on each side.
    method : {'cr', 'unrs'}
        The distance-weighted collaborative representation (CRD, LSAD-CR-IDW;
        ring weights ``w2``) or the sum-to-one representation with outlier
        removal (LSUNRSORAD).
    reg : float
        Regularisation weight. The squared Tikhonov weights are floored at
        :func:`~rednmf.scoring.windows.loading_floor` of the mean squared
        distance of the (scaled) pixels to their mean, so that a sample
        identical to the pixel (zero distance) keeps the systems non-singular.
    w2 : ndarray of shape (m,), optional
        Squared ring weights of ``'cr'`` (default ones).
    summed : bool
        ``False``: the dual window centred on the pixel (CRD). ``True``: the
        local summation of LSAD, the sum of the residuals of the pixel
        represented by the rings of the ``inner**2`` dual windows centred on
        each position of the pixel's own guard window.
    border : {'clip', 'mirror'}
        Window positions outside the image are dropped, or read from the
        image mirrored about its edges (edge pixel repeated, as MATLAB's
        ``X(:, end:-1:1)`` tiling).
    scale : (float, float), default (0.0, 1.0)
        ``(offset, divisor)`` of the global scaling
        (:func:`rednmf.preprocessing.scale_params`), applied in float64 to each
        band of rows as it is read.

    Returns
    -------
    ndarray of shape (rows, cols)
    """
    rows, cols, b = cube.shape
    check_window_sides(inner, outer, cube.shape)
    dr, dc = ring_offsets(inner, outer)
    m = dr.size
    ho, hi = outer // 2, inner // 2
    hs = hi if summed else 0
    halo = ho + hs
    shifts = [(a, c) for a in range(-hs, hs + 1) for c in range(-hs, hs + 1)]
    if border == "mirror" and halo > min(rows, cols):  # pragma: no cover - size check
        raise InputError("scene too small to mirror the window halo")
    source = _PaddedRows(cube, halo, border, scale)
    # Inner products are taken of the centred pixels: distances and the
    # (translation-invariant) LSUNRSORAD system then carry rounding errors of
    # the scene's spread, not of its mean level.
    mean, spread = source.moments()
    weights = np.ones(m) if w2 is None else w2
    cst = _Constants(reg, loading_floor(spread), weights, float(mean @ mean))
    inside = source.inside
    n_rows, n_cols = inside.shape

    reach = 2 * ho
    offsets, index = _half_offsets(reach)
    n_off = len(offsets)
    # Table displacement of the inner product of ring samples i <= j (ring
    # order is row-major, so d_j - d_i lies in the half plane), relative to the
    # window centre.
    rel = np.empty((m, m), dtype=np.int64)
    for i in range(m):
        for j in range(i, m):
            k = index[dr[j] - dr[i], dc[j] - dc[i] + reach]
            rel[i, j] = rel[j, i] = (dr[i] * n_cols + dc[i]) * n_off + k
    # ... and of the pixel with ring sample i of the window shifted by s.
    rel_pix = np.empty((len(shifts), m), dtype=np.int64)
    for si, (s_r, s_c) in enumerate(shifts):
        for i in range(m):
            o_r, o_c = s_r + dr[i], s_c + dc[i]
            if o_r > 0 or (o_r == 0 and o_c >= 0):
                rel_pix[si, i] = index[o_r, o_c + reach]
            else:
                rel_pix[si, i] = (o_r * n_cols + o_c) * n_off + index[-o_r, -o_c + reach]

    ring = ((dr + ho) * outer + dc + ho).astype(np.intp)  # ring in the flat outer window
    scores = np.zeros((rows, cols))
    per_row = n_cols * n_off
    band = max(1, _TABLE_ELEMENTS // per_row - 2 * halo)
    tile_r = max(1, _BLOCK_ELEMENTS // (m * m * cols))
    tile_c = cols if m * m * cols <= _BLOCK_ELEMENTS else max(1, _BLOCK_ELEMENTS // (m * m))
    for y0, y1 in tiles(rows, band):
        # The padded rows y0 .. y1 + 2 halo (the windows of output rows y0..y1),
        # and `reach` more for the pair table; band coordinates start at y0.
        raw = source.rows(y0, min(n_rows, y1 + 2 * halo + reach))
        # the centred rows, with `reach` columns of zeros on each side for the pair table
        ext = np.zeros((raw.shape[0], n_cols + 2 * reach, b))
        cen = ext[:, reach : reach + n_cols]
        np.subtract(raw, mean, out=cen)
        cen[~inside[y0 : y0 + raw.shape[0]]] = 0.0
        table = _pair_table(ext, y1 - y0 + 2 * halo, reach, index)
        flat = table.reshape(-1)
        if method == "cr":
            side = cen @ mean  # mean . centred pixel: the raw products from the centred ones
        else:
            sums = raw.sum(axis=2)  # band sums, as the outlier test takes them
        del ext, cen
        windows = sliding_window_view(raw, (outer, outer), axis=(0, 1))
        for r0, r1 in tiles(y1 - y0, tile_r):  # band rows
            for c0, c1 in tiles(cols, tile_c):
                # window centres of the tile (band coordinates)
                qr = np.arange(r0 + halo - hs, r1 + halo + hs)
                qc = np.arange(c0 + halo - hs, c1 + halo + hs)
                base = (qr[:, None] * n_cols + qc[None, :]) * n_off
                gram_c = flat[base[..., None, None] + rel]
                ur = qr[:, None, None] + dr
                uc = qc[None, :, None] + dc
                valid_c = inside[ur + y0, uc]
                norm_c = flat[base[..., None] + (dr * n_cols + dc) * n_off]
                # band sums (LSUNRSORAD), or mean . centred sample (the CR detectors)
                sums_c = sums[ur, uc] if method == "unrs" else side[ur, uc]
                pr = np.repeat(np.arange(r0, r1) + halo, c1 - c0)
                pc = np.tile(np.arange(c0, c1) + halo, r1 - r0)
                base_p = (pr * n_cols + pc) * n_off
                norm_p = flat[base_p]
                n_pix = pr.size
                coef = np.zeros((n_pix, outer * outer))
                for si, (s_r, s_c) in enumerate(shifts):
                    win = (
                        slice(s_r + hs, s_r + hs + r1 - r0),
                        slice(s_c + hs, s_c + hs + c1 - c0),
                    )
                    gram = gram_c[win]  # (r1 - r0, c1 - c0, m, m) view
                    valid = valid_c[win].reshape(n_pix, m)
                    norm = norm_c[win].reshape(n_pix, m)
                    at = base_p[:, None] + rel_pix[si]
                    dot = flat[at]
                    sd = sums_c[win].reshape(n_pix, m)
                    if method == "cr":
                        sides = (sd, side[pr, pc])
                        alpha = _cr_system(gram, dot, norm, norm_p, sides, valid, cst)
                    else:
                        alpha = _unrs_system(gram, dot, norm_p, sd, valid, cst)
                    # Residual vectors, formed explicitly (expanding them in
                    # inner products would cancel catastrophically: most
                    # pixels are represented to a small fraction of their
                    # norm): the coefficients are spread on the full outer
                    # window (zero on the guard window) and contracted with
                    # a sliding-window view of the image, no gathered copy.
                    coef[:, ring] = alpha
                    top, left = r0 + hs + s_r, c0 + hs + s_c
                    view = windows[top : top + r1 - r0, left : left + c1 - c0]
                    resid = raw[r0 + halo : r1 + halo, c0 + halo : c1 + halo] - np.einsum(
                        "rcij,rcbij->rcb", coef.reshape(r1 - r0, c1 - c0, outer, outer), view
                    )
                    r2 = np.einsum("rcb,rcb->rc", resid, resid)
                    scores[y0 + r0 : y0 + r1, c0:c1] += np.sqrt(r2)
    return scores


class _PaddedRows:
    """The scaled scene padded by a halo, made in float64 a band of rows at a time.

    Padded position ``(p, q)`` holds ``(cube[i, j] - offset) / divisor`` with
    ``i, j`` the source row and column of ``p, q`` (``np.pad``'s
    ``'symmetric'`` reflection for ``border='mirror'``), or zero outside the
    image (``border='clip'``). ``inside`` marks the positions inside the image.
    """

    def __init__(
        self, cube: np.ndarray, halo: int, border: str, scale: tuple[float, float]
    ) -> None:
        rows, cols = cube.shape[:2]
        mode = "symmetric" if border == "mirror" else "constant"
        pad = {"constant_values": -1} if mode == "constant" else {}
        self.cube, self.offset, self.divisor = cube, float(scale[0]), float(scale[1])
        self.src_r = np.pad(np.arange(rows), halo, mode=mode, **pad)
        self.src_c = np.pad(np.arange(cols), halo, mode=mode, **pad)
        self.inside = (self.src_r >= 0)[:, None] & (self.src_c >= 0)[None, :]

    def _scaled(self, x: np.ndarray) -> np.ndarray:
        out = x.astype(np.float64)  # a new array: scaled in place
        out -= self.offset
        out /= self.divisor
        return out

    def rows(self, p0: int, p1: int) -> np.ndarray:
        """Padded rows ``p0:p1`` (float64, ``(p1 - p0, padded cols, b)``)."""
        src = self.src_r[p0:p1]
        ok_r, ok_c = src >= 0, self.src_c >= 0
        out = np.zeros((p1 - p0, self.src_c.size, self.cube.shape[2]))
        out[np.ix_(ok_r, ok_c)] = self._scaled(self.cube[src[ok_r]][:, self.src_c[ok_c]])
        return out

    def moments(self) -> tuple[np.ndarray, float]:
        """Mean spectrum of the scaled scene and mean squared distance of its pixels to it."""
        rows, cols, b = self.cube.shape
        step = max(1, _STATS_ELEMENTS // (cols * b))
        total = np.zeros(b)
        for r0, r1 in tiles(rows, step):
            total += self._scaled(self.cube[r0:r1]).reshape(-1, b).sum(axis=0)
        mean = total / (rows * cols)
        spread = 0.0
        for r0, r1 in tiles(rows, step):
            d = self._scaled(self.cube[r0:r1])
            d -= mean
            spread += float(np.einsum("rcb,rcb->", d, d))
        return mean, spread / (rows * cols)


def _zero_outside(A: np.ndarray, keep: np.ndarray) -> None:
    """Zero, in place, the rows and columns of ``A`` (P, m, m) where ``keep`` is False."""
    part = np.flatnonzero(~keep.all(axis=1))
    if 4 * part.size < keep.shape[0]:
        kk = keep[part]
        A[part] = A[part] * (kk[:, :, None] & kk[:, None, :])
    else:
        kf = keep.astype(np.float64)
        A *= kf[:, :, None]
        A *= kf[:, None, :]


class _Constants(NamedTuple):
    reg: float
    floor: float
    w2: np.ndarray
    #: ``mu . mu`` of the scene's mean spectrum ``mu``
    mean2: float = 0.0


def _cr_system(
    gram: np.ndarray,
    dot: np.ndarray,
    norm: np.ndarray,
    norm_p: np.ndarray,
    sides: tuple[np.ndarray, np.ndarray],
    valid: np.ndarray,
    cst: _Constants,
) -> np.ndarray:
    r"""Distance-weighted collaborative representation of a block of P pixels.

    :math:`\alpha = (H H^\top + \lambda \Gamma^2)^{-1} H y`,
    :math:`\Gamma^2 = \mathrm{diag}(w_i^2 \|y - h_i\|^2)` (floored), from
    the inner products of the centred pixels (``~``): ``gram`` (..., m, m)
    those of the ring (a view whose leading axes flatten to the P pixels),
    ``dot`` (P, m) those of the ring with the pixel, the squared norms ``norm``
    (P, m) and ``norm_p`` (P,), which give the distances. The raw products are
    ``x_u . x_v = x~_u . x~_v + mu . x~_u + mu . x~_v + mu . mu`` with ``sides``
    the ``mu . x~`` of the ring (P, m) and of the pixel (P,). Invalid samples get
    a zero row and a unit weight, so a zero coefficient. Returns the
    coefficients ``(P, m)``.
    """
    reg, floor, w2, mean2 = cst
    n_pix, m = dot.shape
    idx = np.arange(m)
    dist2 = norm + norm_p[:, None] - 2.0 * dot
    g2 = np.where(valid, np.maximum(w2 * dist2, floor), 1.0)
    side, side_p = sides
    near = side + mean2
    A = (gram + near.reshape(*gram.shape[:-2], m, 1)).reshape(n_pix, m, m)
    A += side[:, None, :]
    rhs = dot + near
    rhs += side_p[:, None]
    if not valid.all():
        _zero_outside(A, valid)
        rhs = rhs * valid
    A[:, idx, idx] += reg * g2
    return _solve_batch(A, rhs)


def _solve_batch(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``x`` with ``A[p] x[p] = b[p]`` for each of the P systems (``A``: (P, m, m), ``b``: (P, m)).

    By :func:`numpy.linalg.solve`; a batch in which some system is singular in
    float64 (a window of identical samples, e.g. a no-data region filled with
    one value, leaves the loading of the diagonal below the rounding of the
    products) is solved instead in the least-squares sense by the
    pseudo-inverse (:func:`numpy.linalg.pinv`), which equals the inverse for
    the regular systems of the batch.
    """
    try:
        return np.linalg.solve(A, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return (np.linalg.pinv(A) @ b[..., None])[..., 0]


def _unrs_system(
    gram: np.ndarray,
    dot: np.ndarray,
    norm_p: np.ndarray,
    sums: np.ndarray,
    valid: np.ndarray,
    cst: _Constants,
) -> np.ndarray:
    r"""Outlier removal, then the sum-to-one regularised representation.

    Samples whose band sum lies outside ``mean +- 2 std`` (``std`` with
    ``n - 1``) of the window's valid band sums are removed; with
    :math:`Z = H - \mathbf{1} y^\top` of the kept samples and
    :math:`C = Z Z^\top + \lambda\,\mathrm{diag}(\|h_i - y\|^2)`, the KKT
    solution of :math:`\min \alpha^\top C \alpha` s.t. :math:`e^\top\alpha = 1`
    is :math:`\alpha = C^{-1} e / (e^\top C^{-1} e)` (returned, ``(P, m)``).
    ``Z Z^\top`` is translation invariant and is assembled from the inner
    products of the centred pixels; ``sums`` are the band sums of
    the raw samples.
    """
    reg, floor = cst.reg, cst.floor
    n = valid.sum(axis=1, keepdims=True).astype(np.float64)
    mu = np.where(valid, sums, 0.0).sum(axis=1, keepdims=True) / n
    dev = np.where(valid, sums - mu, 0.0)
    sd = np.sqrt((dev * dev).sum(axis=1, keepdims=True) / np.maximum(n - 1.0, 1.0))
    keep = valid & (np.abs(dev) <= 2.0 * sd)
    # Rounding cannot empty a window: fall back to all valid samples.
    keep |= valid & ~keep.any(axis=1, keepdims=True)
    n_pix, m = dot.shape
    idx = np.arange(m)
    # (h_i - y) . (h_j - y) = x~_i . x~_j - x~_i . y~ - x~_j . y~ + y~ . y~
    C = np.subtract(gram, dot.reshape(gram.shape[:-1])[..., None]).reshape(n_pix, m, m)
    C -= (dot - norm_p[:, None])[:, None, :]
    if not keep.all():
        _zero_outside(C, keep)
    d2 = C[:, idx, idx]
    C[:, idx, idx] += np.where(keep, reg * np.maximum(d2, floor), 1.0)
    e = keep.astype(np.float64)
    v = _solve_batch(C, e) * e
    return v / v.sum(axis=1, keepdims=True)


class _CRBase(BaseDetector):
    """Shared parameters, validation and preprocessing of the CR detectors."""

    inner: int
    outer: int
    reg: float
    n_pca: int | None
    scale: str
    border: str

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseDetector._parameter_constraints,
        "inner": WINDOW,
        "outer": WINDOW,
        "reg": [Interval(Real, 0.0, None, closed="neither")],
        "n_pca": N_PCA,
        "scale": [StrOptions(set(CR_SCALINGS))],
        "border": [StrOptions(set(BORDERS))],
    }
    renamed_params: ClassVar[dict[str, str]] = {"lam": "reg"}
    dual_window = True

    def _prepare(self, cube: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        """The data and the ``(offset, divisor)`` scaling that :func:`representation_scores`
        applies to it band by band (the cube itself, not a scaled float64 copy, unless
        ``n_pca`` projects it)."""
        if self.n_pca is None:
            scale = scale_params(cube, "minmax", np.float64) if self.scale == "minmax" else None
            return cube, (0.0, 1.0) if scale is None else scale
        x = cube.astype(np.float64, copy=False)
        if self.scale == "minmax":
            x = scale_data(x, "minmax")
        return pca_project(x, self.n_pca).astype(np.float64, copy=False), (0.0, 1.0)

    def _scores(
        self, cube: np.ndarray, method: str, summed: bool, w2: np.ndarray | None = None
    ) -> np.ndarray:
        """:func:`representation_scores` of the prepared cube with this detector's windows."""
        x, scale = self._prepare(cube)
        return representation_scores(
            x,
            self.inner,
            self.outer,
            method=method,
            reg=float(self.reg),
            w2=w2,
            summed=summed,
            border=self.border,
            scale=scale,
        )


class CRD(_CRBase):
    r"""Collaborative representation detector (Li and Du, 2015).

    For each pixel :math:`y`, with :math:`H = [h_1, \dots, h_m]` the pixels of
    the dual-window ring (outer window minus inner guard window):

    .. math::

        \alpha = (H^\top H + \lambda \Gamma_y^2)^{-1} H^\top y, \qquad
        \Gamma_y = \mathrm{diag}(\|y - h_1\|_2, \dots, \|y - h_m\|_2), \qquad
        s(y) = \|y - H\alpha\|_2 .

    The systems of a block of pixels are gathered and solved as a batch (see
    :mod:`rednmf.detectors.cr`). Defaults: ``inner=3, outer=9`` (72 samples),
    ``reg=0.01``; 100 x 100 x 205 takes about a second on one core.

    Parameters
    ----------
    inner : int, default=3
        Side of the guard window (odd, >= 1).
    outer : int, default=9
        Side of the outer window (odd, > ``inner``, no larger than the scene).
    reg : float, default=0.01
        Regularisation weight :math:`\lambda`, positive (formerly ``lam``).
    n_pca : int or None, default=None
        Project the (scaled) pixels on their ``n_pca`` leading principal
        components first (this also centres them); ``None`` uses all bands.
    scale : {'minmax', 'none'}, default='minmax'
        Global min-max scaling of the cube to [0, 1] first, as the reference
        code does.
    border : {'clip', 'mirror'}, default='clip'
        ``'clip'``: window positions outside the image are dropped.
        ``'mirror'``: they are read from the image mirrored about its edges.
    contamination : float, default=0.01
        Fraction of pixels labelled anomalous in ``labels_``.

    References
    ----------
    W. Li and Q. Du, "Collaborative representation for hyperspectral anomaly
    detection," IEEE Trans. Geosci. Remote Sens., 53(3), 1463-1474, 2015.
    """

    name = "crd"

    def __init__(
        self,
        *,
        inner: int = 3,
        outer: int = 9,
        reg: float = 0.01,
        n_pca: int | None = None,
        scale: str = "minmax",
        border: str = "clip",
        contamination: float = 0.01,
    ) -> None:
        self.inner = inner
        self.outer = outer
        self.reg = reg
        self.n_pca = n_pca
        self.scale = scale
        self.border = border
        self.contamination = contamination

    def _fit_scores(self, cube: np.ndarray, callback: FitCallback | None = None) -> np.ndarray:
        return self._scores(cube, "cr", summed=False)


class _LocalSum(_CRBase):
    """The parameters and defaults of the local-summation detectors (LSAD-CR-IDW, LSUNRSORAD)."""

    def __init__(
        self,
        *,
        inner: int = 3,
        outer: int = 7,
        reg: float = 0.01,
        n_pca: int | None = None,
        scale: str = "minmax",
        border: str = "clip",
        contamination: float = 0.01,
    ) -> None:
        self.inner = inner
        self.outer = outer
        self.reg = reg
        self.n_pca = n_pca
        self.scale = scale
        self.border = border
        self.contamination = contamination


class LSADCRIDW(_LocalSum):
    r"""LSAD-CR-IDW: local summation CR detector with inverse-distance weights.

    Tan et al. (2019) combine the local summation of LSAD with a
    distance-weighted collaborative representation. Our definition, following
    the authors' published MATLAB code: for the pixel :math:`y` at position
    :math:`p` and every shift :math:`s` inside its ``inner x inner`` guard
    window, let :math:`h_i^{(s)}` be the ring pixels of the dual window centred
    at :math:`p + s` and :math:`d_i` the spatial distance of ring position
    :math:`i` to that window's centre. Then

    .. math::

        w_i = \frac{d_i^{-2}}{\sum_j d_j^{-2}}, \qquad
        \Gamma^{(s)} = \mathrm{diag}\big(w_i \|y - h_i^{(s)}\|_2\big),

        \alpha^{(s)} = (H^{(s)\top} H^{(s)} + \lambda \Gamma^{(s)2})^{-1}
        H^{(s)\top} y, \qquad
        s(y) = \sum_{s} \|y - H^{(s)} \alpha^{(s)}\|_2 ,

    a sum over ``inner**2`` shifted dual windows (the pixel always lies in the
    guard window of each of them). The weights are normalised over the full
    ring; with ``border='clip'`` clipped positions are dropped without
    renormalising. Defaults: ``inner=3, outer=7`` (40 samples, 9 shifts),
    ``reg=0.01`` (the authors' value).

    Parameters
    ----------
    outer : int, default=7
        Side of the outer window (odd, > ``inner``).
    inner, reg, n_pca, scale, border, contamination
        As in :class:`CRD` (the same defaults); ``inner`` is also the side of
        the shift neighbourhood.

    References
    ----------
    K. Tan, Z. Hou, F. Wu, Q. Du and Y. Chen, "Anomaly detection for
    hyperspectral imagery based on the regularized subspace method and
    collaborative representation," Remote Sens., 11(11), 1318, 2019.
    """

    name = "lsad-cr-idw"

    def _fit_scores(self, cube: np.ndarray, callback: FitCallback | None = None) -> np.ndarray:
        return self._scores(cube, "cr", summed=True, w2=idw_weights(self.inner, self.outer) ** 2)


class LSUNRSORAD(_LocalSum):
    r"""LSUNRSORAD: local summation unsupervised nearest regularised subspace
    with outlier removal (Tan et al., 2019).

    Our definition, following the authors' published MATLAB code: for the
    pixel :math:`y` and every shift :math:`s` inside its ``inner x inner``
    guard window, take the ring pixels :math:`h_i` of the dual window centred
    at :math:`p + s`; remove those whose band sum :math:`\mathbf{1}^\top h_i`
    lies outside :math:`\mu \pm 2\sigma` of the ring's band sums
    (:math:`\sigma` with ``n - 1``). With :math:`z_i = h_i - y` of the kept
    samples, :math:`C = Z^\top Z + \lambda\,\mathrm{diag}(\|z_i\|_2^2)` and the
    sum-to-one constraint, the KKT system of
    :math:`\min_\alpha \|y - H\alpha\|^2 + \lambda \|\Gamma\alpha\|^2` s.t.
    :math:`\mathbf{1}^\top\alpha = 1` has the closed form

    .. math::

        \alpha^{(s)} = \frac{C^{-1}\mathbf{1}}{\mathbf{1}^\top C^{-1}\mathbf{1}},
        \qquad s(y) = \sum_s \|y - H^{(s)}\alpha^{(s)}\|_2 ,

    i.e. "the score sums the residual over the shifted dual windows". Global
    scaling does not change the ranking of the scores (the representation is
    affine). Defaults: ``inner=3, outer=7``, ``reg=0.01`` (the authors' value).

    Parameters
    ----------
    inner, outer, reg, n_pca, scale, border, contamination
        As in :class:`LSADCRIDW` (the same defaults).

    References
    ----------
    K. Tan, Z. Hou, F. Wu, Q. Du and Y. Chen, "Anomaly detection for
    hyperspectral imagery based on the regularized subspace method and
    collaborative representation," Remote Sens., 11(11), 1318, 2019.
    """

    name = "lsunrsorad"

    def _fit_scores(self, cube: np.ndarray, callback: FitCallback | None = None) -> np.ndarray:
        return self._scores(cube, "unrs", summed=True)
