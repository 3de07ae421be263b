"""RX detectors: global RX (GRX), local dual-window RX (LRX) and multi-scale RX (MSRX)."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from rednmf.detectors._base import BaseDetector
from rednmf.scoring.cube import brad, multiscale, pca_project
from rednmf.scoring.global_rx import global_rx_apply, global_rx_factor, pixel_moments
from rednmf.scoring.scorers import MultiScale
from rednmf.solvers._driver import FitCallback

#: Constraints shared by the RX and CR detectors.
RIDGE = [Interval(Real, 0.0, None, closed="left")]
N_PCA = [Interval(Integral, 1, None, closed="left"), None]
WINDOW = [Interval(Integral, 1, None, closed="left")]


__all__ = ["GRX", "LRX", "MSRX"]


class GRX(BaseDetector):
    r"""Global RX detector (Reed and Xiaoli, 1990).

    Every pixel is scored by its squared Mahalanobis distance to the mean
    :math:`\mu` and biased covariance :math:`C` of the whole scene:

    .. math::

        s(x) = (x - \mu)^\top \left(C + \mathrm{ridge}\,
        \frac{\operatorname{tr} C}{d} I\right)^{-1} (x - \mu),

    with :math:`d` the number of bands (or of principal components kept). See
    :func:`rednmf.scoring.global_rx.global_rx`.

    Parameters
    ----------
    ridge : float, default=1e-9
        Diagonal loading relative to the mean band variance.
    n_pca : int or None, default=None
        Project the pixels on their ``n_pca`` leading principal components
        first (:func:`rednmf.scoring.cube.pca_project`); ``None`` uses all
        bands.
    contamination : float, default=0.01
        Fraction of pixels labelled anomalous in ``labels_``.

    Attributes
    ----------
    decision_scores_, threshold_, labels_ :
        See :class:`rednmf.detectors._base.BaseDetector`.
    location_ : ndarray of shape (k,)
        The fitted mean (``n_pca=None``: of the kept bands).
    cholesky_ : ndarray of shape (k, k)
        Cholesky factor of the loaded covariance
        (:func:`rednmf.scoring.global_rx.global_rx_factor`).

    Notes
    -----
    GRX does not use space: it accepts a 2-D ``(pixels, bands)`` input.
    With ``n_pca=None``, ``decision_function(X)`` scores new pixels by their
    Mahalanobis distance to the fitted ``location_`` and covariance; with
    ``n_pca`` set it fits a copy on ``X`` (the projection is the scene's own).

    References
    ----------
    I. S. Reed and X. Yu, "Adaptive multiple-band CFAR detection of an optical
    pattern with unknown spectral distribution," IEEE Trans. Acoust., Speech,
    Signal Process., 38(10), 1760-1770, 1990.
    """

    name = "grx"

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseDetector._parameter_constraints,
        "ridge": RIDGE,
        "n_pca": N_PCA,
    }

    def __init__(
        self,
        *,
        ridge: float = 1e-9,
        n_pca: int | None = None,
        contamination: float = 0.01,
    ) -> None:
        self.ridge = ridge
        self.n_pca = n_pca
        self.contamination = contamination

    def needs_space(self) -> bool:
        """False: a pixel's score depends on the scene statistics only."""
        return False

    def _fit_scores(self, cube: np.ndarray, callback: FitCallback | None = None) -> np.ndarray:
        # As rednmf.scoring.global_rx.global_rx, keeping the statistics for new pixels.
        # Block by block (float64 copies of one block at a time): a 1000 x 1000 x 50 float32
        # scene needs no float64 copy of itself.
        data = cube if self.n_pca is None else pca_project(cube, self.n_pca)
        self.location_, cov = pixel_moments(data.reshape(-1, data.shape[2]))
        self.cholesky_ = global_rx_factor(cov, float(self.ridge))
        return global_rx_apply(data, self.location_, self.cholesky_)

    def _decision_cube(self, cube: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        if self.n_pca is not None:
            return super()._decision_cube(cube, mask)
        data, valid = self._new_pixels(cube, mask)
        scores = global_rx_apply(data, self.location_, self.cholesky_)
        scores[~valid] = np.nan
        return scores


class LRX(BaseDetector):
    r"""Local dual-window RX detector.

    Each pixel :math:`x` is scored against the ring of pixels inside the
    centred ``outer x outer`` window but outside the centred ``inner x inner``
    guard window. With the ring mean :math:`\mu` and biased covariance
    :math:`C` (over :math:`k` bands or principal components):

    .. math::

        s(x) = (x - \mu)^\top \left(C + \mathrm{ridge}\,
        \frac{\operatorname{tr} C}{k} I\right)^{-1} (x - \mu).

    **Borders**: the windows are clipped at the image border, i.e. only pixels
    inside the image enter the ring statistics (a corner pixel has a smaller,
    one-sided ring; nothing is mirrored or padded).

    This is :func:`rednmf.scoring.cube.brad` of the raw cube: an optional PCA
    projection, then :func:`rednmf.scoring.local_rx.local_rx` (box-filter
    window sums, batched solves). The score is unchanged by a global rescaling
    or offset of the cube.

    The defaults were picked from windows (3, 9), (5, 15), (7, 21), (9, 27)
    and ``n_pca`` 10 or 20 on the 10 benchmark scenes (mean AUC 0.972 for the
    defaults, 0.974 for (9, 27)).

    Parameters
    ----------
    inner : int, default=7
        Side of the guard window (odd, >= 1; 1 excludes only the pixel itself).
    outer : int, default=21
        Side of the outer window (odd, > ``inner``, no larger than the scene).
    ridge : float, default=0.01
        Diagonal loading relative to each window's mean band variance.
    n_pca : int or None, default=10
        Number of leading principal components kept before the local
        statistics; ``None`` uses all bands (slow and ill-conditioned when the
        ring has fewer pixels than bands).
    contamination : float, default=0.01
        Fraction of pixels labelled anomalous in ``labels_``.

    Attributes
    ----------
    decision_scores_, threshold_, labels_ :
        See :class:`rednmf.detectors._base.BaseDetector`.

    References
    ----------
    I. S. Reed and X. Yu, "Adaptive multiple-band CFAR detection of an optical
    pattern with unknown spectral distribution," IEEE Trans. Acoust., Speech,
    Signal Process., 38(10), 1760-1770, 1990.
    J. M. Molero, E. M. Garzon, I. Garcia and A. Plaza, "Analysis and
    optimizations of global and local versions of the RX algorithm for anomaly
    detection in hyperspectral data," IEEE JSTARS, 6(2), 801-814, 2013.
    """

    name = "lrx"
    dual_window = True

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseDetector._parameter_constraints,
        "inner": WINDOW,
        "outer": WINDOW,
        "ridge": RIDGE,
        "n_pca": N_PCA,
    }

    def __init__(
        self,
        *,
        inner: int = 7,
        outer: int = 21,
        ridge: float = 0.01,
        n_pca: int | None = 10,
        contamination: float = 0.01,
    ) -> None:
        self.inner = inner
        self.outer = outer
        self.ridge = ridge
        self.n_pca = n_pca
        self.contamination = contamination

    def _fit_scores(self, cube: np.ndarray, callback: FitCallback | None = None) -> np.ndarray:
        return brad(cube, inner=self.inner, outer=self.outer, n_pca=self.n_pca, ridge=self.ridge)


class MSRX(BaseDetector):
    r"""Multi-scale RX: REDNMF's scorer applied to the cube itself, with no factorisation.

    The cube is projected on its principal components above its own noise
    (the noise variance of each band estimated from the cube's covariance,
    :func:`rednmf.solvers.noise.band_noise_variance`; the components of the
    noise-whitened covariance above the Marchenko-Pastur edge, at most
    ``n_pca``), then scored by four detectors: local dual-window RX
    (``inner``/``outer``), global RX with one-step reweighted statistics, each
    at the pixel and averaged over ``pool x pool`` pixels. Each score becomes
    its empirical upper-tail probability :math:`p_i` in the scene and the four
    are combined, by default by Fisher's :math:`-\sum_i \log_{10} p_i`
    (:func:`rednmf.scoring.cube.multiscale`).

    This is the honest baseline of REDNMF (``docs/choices.md``): whatever
    REDNMF gains must be gained over its own scorer on the raw cube. It is also
    a strong, fast detector of its own. The score does not change when the cube
    is multiplied by a constant or shifted.

    Parameters
    ----------
    scorer : MultiScale or 'multiscale', default='multiscale'
        REDNMF's scorer (:class:`rednmf.scoring.scorers.MultiScale`: windows
        ``inner``/``outer``, ``n_pca``, ``ridge``, ``pool``, ``combine``,
        ``pool_global``, ``robust_global``; ``scorer__inner`` and the like
        through ``get_params``/``set_params``). Its ``score_cube`` and
        ``suspect_level`` do not apply: the evidence here is the cube.
    contamination : float, default=0.01
        Fraction of pixels labelled anomalous in ``labels_``.

    Attributes
    ----------
    decision_scores_, threshold_, labels_ :
        See :class:`rednmf.detectors._base.BaseDetector`.

    References
    ----------
    I. S. Reed and X. Yu, "Adaptive multiple-band CFAR detection of an optical
    pattern with unknown spectral distribution," IEEE TASSP 38(10), 1990.
    R. A. Fisher, *Statistical Methods for Research Workers*, 1932.
    """

    name = "msrx"

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseDetector._parameter_constraints,
        "scorer": [MultiScale, StrOptions({"multiscale"})],
    }

    def __init__(
        self, *, scorer: MultiScale | str = "multiscale", contamination: float = 0.01
    ) -> None:
        self.scorer = scorer
        self.contamination = contamination

    def _fit_scores(self, cube: np.ndarray, callback: FitCallback | None = None) -> np.ndarray:
        sc = self._scorer()
        assert isinstance(sc, MultiScale)
        return multiscale(
            cube, inner=sc.inner, outer=sc.outer, n_pca=sc.n_pca, ridge=sc.ridge, pool=sc.pool,
            noise_var="estimate", combine=sc.combine, pool_global=sc.pool_global,
            robust_global=sc.robust_global,
        )  # fmt: skip
