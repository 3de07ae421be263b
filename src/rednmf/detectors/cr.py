r"""Collaborative-representation detectors: CRD, LSAD-CR-IDW and LSUNRSORAD.

All three represent the pixel under test :math:`y \in \mathbb{R}^b` by the
background samples :math:`h_1, \dots, h_m` of a dual window (the pixels inside
the ``outer x outer`` window but outside the ``inner x inner`` guard window)
and score it by the norm of the representation residual.

Implementation: the scene is padded by the window halo, the sample positions of
a block of pixels are gathered with index arithmetic into a ``(P, m, b)``
stack, and the ``P`` small ``m x m`` systems are solved at once with
:func:`numpy.linalg.solve`; there is no Python loop over pixels. Window
positions that fall outside the image are either dropped (``border='clip'``:
their sample gets a zero coefficient, which is exactly the same as removing
it from the window) or filled by mirroring the image about its edges
(``border='mirror'``, the reference MATLAB code's choice; the edge pixel is
repeated, so near the border a pixel's own spectrum can appear in its ring
and represent it exactly, which lowers its score).

Cost on 100 x 100 x 205 with the defaults, one core: CRD about 4 s,
LSAD-CR-IDW and LSUNRSORAD (nine shifted windows each) about 20 s.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rednmf._validation import check_choice, check_int, check_real
from rednmf.detectors._base import BaseDetector
from rednmf.exceptions import InputError
from rednmf.preprocessing import scale_data
from rednmf.scoring.brad import pca_project

__all__ = ["CRD", "LSADCRIDW", "LSUNRSORAD", "BORDERS", "CR_SCALINGS"]

#: Border handling of the windows.
BORDERS = ("clip", "mirror")
#: Global scaling applied before the representation.
CR_SCALINGS = ("minmax", "none")

#: Number of float64 elements of one gathered ``(P, m, b)`` stack.
_BLOCK_ELEMENTS = 1 << 22

#: Floor on the squared Tikhonov weights, relative to the scene's mean squared
#: distance to its mean, so that a sample identical to the pixel (zero
#: distance) keeps the systems non-singular.
_REL_FLOOR = 1e-12


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


def _check_windows(inner: object, outer: object) -> tuple[int, int]:
    inner = check_int("inner", inner, low=1)
    outer = check_int("outer", outer, low=3)
    if inner % 2 == 0 or outer % 2 == 0:
        raise InputError(f"inner and outer must be odd, got inner={inner}, outer={outer}")
    if outer <= inner:
        raise InputError(f"outer ({outer}) must be greater than inner ({inner})")
    return inner, outer


# -- batched solvers: (H, valid, y) -> residual norm per pixel -----------------
# H: (P, m, b) samples (zero where invalid), valid: (P, m) bool, y: (P, b).
Solver = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _cr_residual(
    H: np.ndarray, valid: np.ndarray, y: np.ndarray, lam: float, w2: np.ndarray, floor: float
) -> np.ndarray:
    r"""Distance-weighted collaborative representation residual.

    :math:`\alpha = (H H^\top + \lambda \Gamma^2)^{-1} H y`,
    :math:`\Gamma^2 = \mathrm{diag}(w_i^2 \|y - h_i\|^2)`, residual
    :math:`\|y - H^\top \alpha\|`. Invalid samples have a zero row in ``H`` and
    a unit diagonal, so their coefficient is exactly zero.
    """
    diff2 = np.einsum("pmb,pmb->pm", H - y[:, None, :], H - y[:, None, :])
    g2 = np.where(valid, np.maximum(w2 * diff2, floor), 1.0)
    A = H @ H.transpose(0, 2, 1)
    idx = np.arange(H.shape[1])
    A[:, idx, idx] += lam * g2
    alpha = np.linalg.solve(A, (H @ y[:, :, None]))[..., 0]
    resid = y - np.einsum("pm,pmb->pb", alpha, H)
    return np.sqrt(np.einsum("pb,pb->p", resid, resid))


def _unrs_residual(
    H: np.ndarray, valid: np.ndarray, y: np.ndarray, lam: float, floor: float
) -> np.ndarray:
    r"""Outlier removal, then sum-to-one regularised representation residual.

    Samples whose band sum lies outside ``mean +- 2 std`` (``std`` with
    ``n - 1``) of the window's valid band sums are removed; with
    :math:`Z = H - \mathbf{1} y^\top` of the kept samples and
    :math:`C = Z Z^\top + \lambda\,\mathrm{diag}(\|h_i - y\|^2)`, the KKT
    solution of :math:`\min \alpha^\top C \alpha` s.t. :math:`e^\top\alpha = 1`
    is :math:`\alpha = C^{-1} e / (e^\top C^{-1} e)`; residual
    :math:`\|y - H^\top\alpha\|`.
    """
    sums = H.sum(axis=2)
    n = valid.sum(axis=1, keepdims=True).astype(np.float64)
    mu = np.where(valid, sums, 0.0).sum(axis=1, keepdims=True) / n
    dev = np.where(valid, sums - mu, 0.0)
    sd = np.sqrt((dev * dev).sum(axis=1, keepdims=True) / np.maximum(n - 1.0, 1.0))
    keep = valid & (np.abs(dev) <= 2.0 * sd)
    # Rounding cannot empty a window: fall back to all valid samples.
    keep |= valid & ~keep.any(axis=1, keepdims=True)
    Z = np.where(keep[..., None], H - y[:, None, :], 0.0)
    C = Z @ Z.transpose(0, 2, 1)
    idx = np.arange(H.shape[1])
    d2 = C[:, idx, idx].copy()
    C[:, idx, idx] += np.where(keep, lam * np.maximum(d2, floor), 1.0)
    e = keep.astype(np.float64)
    v = np.linalg.solve(C, e[:, :, None])[..., 0] * e
    alpha = v / v.sum(axis=1, keepdims=True)
    resid = y - np.einsum("pm,pmb->pb", alpha, H)
    return np.sqrt(np.einsum("pb,pb->p", resid, resid))


def representation_scores(
    cube: np.ndarray,
    inner: int,
    outer: int,
    solver: Solver,
    *,
    summed: bool,
    border: str = "clip",
) -> np.ndarray:
    """Residual norms of every pixel, optionally summed over shifted windows.

    Parameters
    ----------
    cube : ndarray of shape (rows, cols, b)
        The (scaled) data, float64.
    inner, outer : int
        Odd window sides, ``outer > inner``; the scene must be at least
        ``outer`` pixels on each side.
    solver : callable
        ``solver(H, valid, y) -> (P,)`` residual norms of a block.
    summed : bool
        ``False``: the dual window centred on the pixel (CRD). ``True``: the
        local summation of LSAD, the sum of the residuals of the pixel
        represented by the rings of the ``inner**2`` dual windows centred on
        each position of the pixel's own guard window.
    border : {'clip', 'mirror'}
        Window positions outside the image are dropped, or read from the
        image mirrored about its edges (edge pixel repeated, as MATLAB's
        ``X(:, end:-1:1)`` tiling).

    Returns
    -------
    ndarray of shape (rows, cols)
    """
    rows, cols, b = cube.shape
    if rows < outer or cols < outer:
        raise InputError(
            f"scene of {rows}x{cols} pixels is smaller than the {outer}x{outer} outer window; "
            "pass a smaller `outer`"
        )
    dr, dc = ring_offsets(inner, outer)
    hi = inner // 2
    if summed:
        sr, sc = np.meshgrid(np.arange(-hi, hi + 1), np.arange(-hi, hi + 1), indexing="ij")
        shifts = list(zip(sr.ravel().tolist(), sc.ravel().tolist(), strict=True))
    else:
        shifts = [(0, 0)]
    halo = outer // 2 + (hi if summed else 0)
    if border == "mirror":
        if halo > min(rows, cols):  # pragma: no cover - excluded by the size check
            raise InputError("scene too small to mirror the window halo")
        padded = np.pad(cube, ((halo, halo), (halo, halo), (0, 0)), mode="symmetric")
        inside = np.ones(padded.shape[:2], dtype=bool)
    else:
        padded = np.pad(cube, ((halo, halo), (halo, halo), (0, 0)), mode="constant")
        inside = np.pad(np.ones((rows, cols), dtype=bool), halo, mode="constant")

    m = dr.size
    n_pix = rows * cols
    block = max(1, _BLOCK_ELEMENTS // (m * b))
    flat = cube.reshape(n_pix, b)
    scores = np.zeros(n_pix)
    for p0 in range(0, n_pix, block):
        pix = np.arange(p0, min(n_pix, p0 + block))
        r = pix // cols + halo
        c = pix % cols + halo
        y = flat[pix]
        for s_r, s_c in shifts:
            rr = (r + s_r)[:, None] + dr[None, :]
            cc = (c + s_c)[:, None] + dc[None, :]
            H = padded[rr, cc]
            valid = inside[rr, cc]
            scores[pix] += solver(H, valid, y)
    return scores.reshape(rows, cols)


def _scene_floor(cube: np.ndarray) -> float:
    """``1e-12`` times the mean squared distance of the pixels to their mean."""
    x = cube.reshape(-1, cube.shape[2])
    spread = float(np.mean(np.sum((x - x.mean(axis=0)) ** 2, axis=1)))
    return _REL_FLOOR * spread if spread > 0.0 else _REL_FLOOR


class _CRBase(BaseDetector):
    """Shared parameters, validation and preprocessing of the CR detectors."""

    inner: int
    outer: int
    lam: float
    n_pca: int | None
    scale: str
    border: str

    def _validate_params(self) -> None:
        _check_windows(self.inner, self.outer)
        check_real("lam", self.lam, low=0.0, low_inclusive=False)
        if self.n_pca is not None:
            check_int("n_pca", self.n_pca, low=1)
        check_choice("scale", self.scale, CR_SCALINGS)
        check_choice("border", self.border, BORDERS)

    def _prepare(self, cube: np.ndarray) -> np.ndarray:
        x = cube.astype(np.float64, copy=False)
        if self.scale == "minmax":
            x = scale_data(x, "minmax")
        if self.n_pca is not None:
            x = pca_project(x, self.n_pca).astype(np.float64, copy=False)
        return x


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
    ``lam=0.01``; 100 x 100 x 205 takes a few seconds on one core.

    Parameters
    ----------
    inner : int, default=3
        Side of the guard window (odd, >= 1).
    outer : int, default=9
        Side of the outer window (odd, > ``inner``, no larger than the scene).
    lam : float, default=0.01
        Regularisation weight :math:`\lambda`, positive.
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
        inner: int = 3,
        outer: int = 9,
        lam: float = 0.01,
        n_pca: int | None = None,
        scale: str = "minmax",
        border: str = "clip",
        contamination: float = 0.01,
    ) -> None:
        self.inner = inner
        self.outer = outer
        self.lam = lam
        self.n_pca = n_pca
        self.scale = scale
        self.border = border
        self.contamination = contamination

    def _fit_scores(self, cube: np.ndarray) -> np.ndarray:
        x = self._prepare(cube)
        lam, floor = float(self.lam), _scene_floor(x)
        w2 = np.ones(self.outer**2 - self.inner**2)

        def solver(H: np.ndarray, valid: np.ndarray, y: np.ndarray) -> np.ndarray:
            return _cr_residual(H, valid, y, lam, w2, floor)

        return representation_scores(
            x, self.inner, self.outer, solver, summed=False, border=self.border
        )


class LSADCRIDW(_CRBase):
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
    ``lam=0.01`` (the authors' value).

    Parameters
    ----------
    inner : int, default=3
        Side of the guard window and of the shift neighbourhood (odd).
    outer : int, default=7
        Side of the outer window (odd, > ``inner``).
    lam : float, default=0.01
        Regularisation weight :math:`\lambda`, positive.
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
    K. Tan, Z. Hou, F. Wu, Q. Du and Y. Chen, "Anomaly detection for
    hyperspectral imagery based on the regularized subspace method and
    collaborative representation," Remote Sens., 11(11), 1318, 2019.
    """

    name = "lsad-cr-idw"

    def __init__(
        self,
        inner: int = 3,
        outer: int = 7,
        lam: float = 0.01,
        n_pca: int | None = None,
        scale: str = "minmax",
        border: str = "clip",
        contamination: float = 0.01,
    ) -> None:
        self.inner = inner
        self.outer = outer
        self.lam = lam
        self.n_pca = n_pca
        self.scale = scale
        self.border = border
        self.contamination = contamination

    def _fit_scores(self, cube: np.ndarray) -> np.ndarray:
        x = self._prepare(cube)
        lam, floor = float(self.lam), _scene_floor(x)
        w2 = idw_weights(self.inner, self.outer) ** 2

        def solver(H: np.ndarray, valid: np.ndarray, y: np.ndarray) -> np.ndarray:
            return _cr_residual(H, valid, y, lam, w2, floor)

        return representation_scores(
            x, self.inner, self.outer, solver, summed=True, border=self.border
        )


class LSUNRSORAD(_CRBase):
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
    affine). Defaults: ``inner=3, outer=7``, ``lam=0.01`` (the authors' value).

    Parameters
    ----------
    inner : int, default=3
        Side of the guard window and of the shift neighbourhood (odd).
    outer : int, default=7
        Side of the outer window (odd, > ``inner``).
    lam : float, default=0.01
        Regularisation weight :math:`\lambda`, positive.
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
    K. Tan, Z. Hou, F. Wu, Q. Du and Y. Chen, "Anomaly detection for
    hyperspectral imagery based on the regularized subspace method and
    collaborative representation," Remote Sens., 11(11), 1318, 2019.
    """

    name = "lsunrsorad"

    def __init__(
        self,
        inner: int = 3,
        outer: int = 7,
        lam: float = 0.01,
        n_pca: int | None = None,
        scale: str = "minmax",
        border: str = "clip",
        contamination: float = 0.01,
    ) -> None:
        self.inner = inner
        self.outer = outer
        self.lam = lam
        self.n_pca = n_pca
        self.scale = scale
        self.border = border
        self.contamination = contamination

    def _fit_scores(self, cube: np.ndarray) -> np.ndarray:
        x = self._prepare(cube)
        lam, floor = float(self.lam), _scene_floor(x)

        def solver(H: np.ndarray, valid: np.ndarray, y: np.ndarray) -> np.ndarray:
            return _unrs_residual(H, valid, y, lam, floor)

        return representation_scores(
            x, self.inner, self.outer, solver, summed=True, border=self.border
        )
