"""The NMF-family baselines of the REDNMF paper: NMF, RNMF, L1NMF, EWNMF.

Each is a thin :class:`~rednmf.detectors._factorization.FactorizationDetector`
around one solver of :mod:`rednmf.solvers`; scaling, initialisation, the
shared parameters and the scoring live in that base class.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.utils._param_validation import StrOptions

from rednmf.detectors._base import positive
from rednmf.detectors._factorization import FactorizationDetector
from rednmf.scoring.scorers import Scorer
from rednmf.solvers.ewnmf import ewnmf_solve, weighted_evidence
from rednmf.solvers.l1nmf import l1nmf_solve
from rednmf.solvers.nmf import NMFResult, nmf_solve, residual_matrix
from rednmf.solvers.rnmf import anomaly_matrix, rnmf_solve

__all__ = ["NMF", "RNMF", "L1NMF", "EWNMF"]

#: The scale modes of RNMF, L1NMF and EWNMF (of :data:`SCALE_MODES`).
_MODES = StrOptions({"adaptive", "absolute"})


class _ReweightedFactorization(FactorizationDetector):
    """RNMF, L1NMF and EWNMF: NMF with one data-scaled weight parameter.

    The parameter ``p`` (:attr:`_scale`) and its mode ``p_mode`` go to the
    solver; the value used at each iteration is kept as ``p_history_``. The
    last ``S`` or weights are not kept (a bands x pixels array): the solvers
    form them again by blocks where the evidence needs them.
    """

    #: The weight parameter (``'lam'``, ``'delta'``, ``'gamma'``).
    _scale: ClassVar[str]
    #: The solver's switch that would keep the last ``S`` or weights.
    _keep: ClassVar[str] = "keep_weights"

    def _solver_params(self) -> dict[str, Any]:
        p = self._scale
        return {self._keep: False, p: getattr(self, p), f"{p}_mode": getattr(self, f"{p}_mode")}

    def _keep_history(self, res: NMFResult) -> None:
        """Store the scale history."""
        setattr(self, f"{self._scale}_history_", res.param_history)


class NMF(FactorizationDetector):
    r"""Basic NMF anomaly detector: pixels badly reconstructed by a low-rank ``WH``.

    Model (eq. 1 of the REDNMF paper)::

        min_{W,H >= 0} ||X - WH||_F^2,

    ``X`` the min-max scaled cube as bands x pixels, solved by the Lee-Seung
    multiplicative updates (:func:`rednmf.solvers.nmf.nmf_solve`). The anomaly
    evidence is the residual ``X - WH``, scored per pixel by its norm or BRAD.

    Parameters
    ----------
    n_components : int, default=8
        Rank ``r`` of the background ``WH`` (the REDNMF default, for a like-for-like
        comparison).
    max_iter : int, default=200
        Maximum number of iterations.
    tol : float, default=1e-4
        Relative change of the objective at which the fit stops.
    init : {'random', 'nndsvda'}, default='random'
        Initialisation of ``W, H`` (:func:`rednmf.solvers.init.initialize_factors`).
    random_state : int or None, default=0
        Seed of the initialisation; the same seed and input give identical scores.
    scorer : Scorer or {'norm', 'brad', 'multiscale'}, default='norm'
        Pixel score from the evidence matrix, an object of
        :mod:`rednmf.scoring.scorers` or its name: its column norm
        (:class:`~rednmf.scoring.scorers.Norm`), or BRAD
        (:class:`~rednmf.scoring.scorers.BRAD`: windows 9/27, 20 principal
        components); a name takes the covariance ridge 0.1 (relative to the
        mean variance in the window).
    scale : {'minmax', 'max', 'none'}, default='minmax'
        Global scaling of the cube before fitting.
    dtype : {'float32', 'float64'}, default='float32'
        Working precision of the solver.
    contamination : float, default=0.01
        Fraction of pixels labelled anomalous in ``labels_``.

    Attributes
    ----------
    decision_scores_, threshold_, labels_ :
        See :class:`rednmf.detectors._base.BaseDetector`.
    components_ : ndarray of shape (bands, n_components)
        ``W`` (on the scaled data).
    coefficients_ : ndarray of shape (n_components, rows * cols)
        ``H``.
    n_iter_ : int
        Iterations run.
    objective_ : ndarray
        ``||X - WH||_F^2`` after each iteration.
    converged_ : bool
        Whether ``tol`` was reached.

    References
    ----------
    D. D. Lee and H. S. Seung, "Learning the parts of objects by non-negative
    matrix factorization", Nature 401, 1999, 788-791 (ref. [28] of the paper).
    """

    name = "nmf"
    _solver = staticmethod(nmf_solve)

    def __init__(
        self,
        *,
        n_components: int = 8,
        max_iter: int = 200,
        tol: float = 1e-4,
        init: str = "random",
        random_state: int | None = 0,
        scorer: Scorer | str = "norm",
        scale: str = "minmax",
        dtype: str = "float32",
        contamination: float = 0.01,
    ) -> None:
        self.n_components = n_components
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.random_state = random_state
        self.scorer = scorer
        self.scale = scale
        self.dtype = dtype
        self.contamination = contamination

    def _evidence(self, X: np.ndarray, res: NMFResult, shape: tuple[int, int]) -> Any:
        return residual_matrix(X, res.W, res.H)


class RNMF(_ReweightedFactorization):
    r"""Robust NMF anomaly detector (Zhang et al., 2011): a sparse term takes the outliers.

    Model (eqs. 4-5 of the REDNMF paper)::

        X ~ WH + S,   min_{W,H >= 0, S} ||X - WH - S||_F^2 + lam ||S||_1,

    solved by the element-wise soft threshold (6) for ``S`` (threshold
    ``lam / 2``) and multiplicative updates for ``W, H``
    (:func:`rednmf.solvers.rnmf.rnmf_solve`). Pixels are scored from ``S``,
    formed block by block as the scorer reads it
    (:func:`rednmf.solvers.rnmf.anomaly_matrix`; it is not kept).

    Parameters
    ----------
    lam : float, default=4.0
        Sparsity weight. With ``lam_mode='adaptive'`` the threshold of the S
        step is ``lam / 2`` times the median ``|X - WH|`` (recomputed each
        iteration): the default zeroes entries within twice the median
        absolute residual.
    lam_mode : {'adaptive', 'absolute'}, default='adaptive'
        Scale of ``lam`` (:data:`~rednmf.detectors._factorization.SCALE_MODES`);
        ``'absolute'`` applies it to the scaled data as is.
    n_components, max_iter, tol, init, random_state, scorer, scale, dtype, contamination
        As in :class:`NMF`.

    Attributes
    ----------
    lam_history_ : ndarray
        ``lam_t`` used at each iteration.
    components_, coefficients_, n_iter_, objective_, converged_ :
        As in :class:`NMF`; ``objective_`` is (5) with that iteration's ``lam_t``.

    References
    ----------
    L. Zhang, Z. Chen, M. Zheng and X. He, "Robust non-negative matrix
    factorization", Front. Electr. Electron. Eng. China 6 (2), 2011 (ref. [40]).
    """

    name = "rnmf"
    _scale = "lam"
    _solver = staticmethod(rnmf_solve)
    _keep = "keep_S"

    def __init__(
        self,
        *,
        n_components: int = 8,
        lam: float = 4.0,
        max_iter: int = 200,
        tol: float = 1e-4,
        init: str = "random",
        random_state: int | None = 0,
        scorer: Scorer | str = "norm",
        lam_mode: str = "adaptive",
        scale: str = "minmax",
        dtype: str = "float32",
        contamination: float = 0.01,
    ) -> None:
        self.n_components = n_components
        self.lam = lam
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.random_state = random_state
        self.scorer = scorer
        self.lam_mode = lam_mode
        self.scale = scale
        self.dtype = dtype
        self.contamination = contamination

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **FactorizationDetector._parameter_constraints,
        "lam": positive(),
        "lam_mode": [_MODES],
    }

    def _evidence(self, X: np.ndarray, res: NMFResult, shape: tuple[int, int]) -> Any:
        self._keep_history(res)
        assert res.last_step is not None
        return anomaly_matrix(X, *res.last_step)


class L1NMF(_ReweightedFactorization):
    r"""L1 (Manhattan) NMF anomaly detector: a background fit that outliers cannot pull.

    Model (our reading of "L1NMF [45]" in the REDNMF paper, which does not
    define it; see :mod:`rednmf.solvers.l1nmf`)::

        min_{W,H >= 0} ||X - WH||_1   (Huber-smoothed below delta_t),

    solved by iteratively reweighted multiplicative updates with weights
    ``U = 1 / max(|X - WH|, delta_t)``. Pixels are scored from the residual
    ``X - WH``. Reasoning: [45] reconstructs the background with a robust NMF
    and scores the reconstruction error; the L1 loss is the robust loss the
    name points to (Manhattan NMF, refs. [35, 36]).

    Parameters
    ----------
    delta : float, default=0.5
        Smoothing width of the L1 loss; with ``delta_mode='adaptive'``,
        ``delta_t = delta * median |X - WH|`` at each iteration.
    delta_mode : {'adaptive', 'absolute'}, default='adaptive'
        Scale of ``delta`` (:data:`~rednmf.detectors._factorization.SCALE_MODES`);
        ``'absolute'`` applies it to the scaled data as is.
    n_components, max_iter, tol, init, random_state, scorer, scale, dtype, contamination
        As in :class:`NMF`.

    Attributes
    ----------
    delta_history_ : ndarray
        ``delta_t`` used at each iteration.
    components_, coefficients_, n_iter_, objective_, converged_ :
        As in :class:`NMF`; ``objective_`` is the smoothed L1 loss.

    References
    ----------
    S. Xiaorui, C. Lingyan, L. Caiping, D. Tao, Z. Haojun and W. Heng, "Robust
    nonnegative matrix factorization based background reconstruction for
    hyperspectral image anomaly detection", ICSIP 2022, 316-321 (ref. [45]).
    """

    name = "l1nmf"
    _scale = "delta"
    _solver = staticmethod(l1nmf_solve)

    def __init__(
        self,
        *,
        n_components: int = 8,
        delta: float = 0.5,
        max_iter: int = 200,
        tol: float = 1e-4,
        init: str = "random",
        random_state: int | None = 0,
        scorer: Scorer | str = "norm",
        delta_mode: str = "adaptive",
        scale: str = "minmax",
        dtype: str = "float32",
        contamination: float = 0.01,
    ) -> None:
        self.n_components = n_components
        self.delta = delta
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.random_state = random_state
        self.scorer = scorer
        self.delta_mode = delta_mode
        self.scale = scale
        self.dtype = dtype
        self.contamination = contamination

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **FactorizationDetector._parameter_constraints,
        "delta": positive("neither"),
        "delta_mode": [_MODES],
    }

    def _evidence(self, X: np.ndarray, res: NMFResult, shape: tuple[int, int]) -> Any:
        self._keep_history(res)
        return residual_matrix(X, res.W, res.H)


class EWNMF(_ReweightedFactorization):
    r"""Entropy-weighted NMF anomaly detector (Wei et al., 2022).

    Model (ref. [71] of the REDNMF paper; see :mod:`rednmf.solvers.ewnmf`)::

        min_{W,H >= 0, T} sum T * (X - WH)^2 + gamma_t sum_j KL(T_j || uniform),
        T >= 0, each pixel's weights over the bands sum to one,

    so ``T_ij`` is a per-pixel softmax of ``-(X - WH)_ij^2 / gamma_t``, and
    ``W, H`` follow weighted multiplicative updates. Pixels are scored from
    the weighted residual ``sqrt(d T) * (X - WH)`` (``d`` bands), whose squared
    column norm is ``d`` times the pixel's weighted fit.

    Parameters
    ----------
    gamma : float, default=3.0
        Entropy weight. With ``gamma_mode='adaptive'`` (default),
        ``gamma_t = gamma * mean (X - WH)^2`` at each iteration, so ``gamma`` is
        scale-free: a band whose residual is ``k`` times the root-mean-square
        residual is down-weighted by ``exp(-k^2 / gamma)``. Large ``gamma``
        tends to plain NMF (uniform weights).
    gamma_mode : {'adaptive', 'absolute'}, default='adaptive'
        Scale of ``gamma`` (:data:`~rednmf.detectors._factorization.SCALE_MODES`);
        ``'absolute'`` applies it to the scaled data as is.
    n_components, max_iter, tol, init, random_state, scorer, scale, dtype, contamination
        As in :class:`NMF`.

    Attributes
    ----------
    gamma_history_ : ndarray
        ``gamma_t`` used at each iteration.
    components_, coefficients_, n_iter_, objective_, converged_ :
        As in :class:`NMF`; ``objective_`` uses that iteration's ``gamma_t``.

    References
    ----------
    J. Wei, C. Tong, B. Wu, Q. He, S. Qi, Y. Yao and Y. Teng, "An entropy
    weighted nonnegative matrix factorization algorithm for feature
    representation", IEEE Trans. Neural Netw. Learn. Syst. 34 (9), 2022, 5381-5391.
    """

    name = "ewnmf"
    _scale = "gamma"
    _solver = staticmethod(ewnmf_solve)

    def __init__(
        self,
        *,
        n_components: int = 8,
        gamma: float = 3.0,
        max_iter: int = 200,
        tol: float = 1e-4,
        init: str = "random",
        random_state: int | None = 0,
        scorer: Scorer | str = "norm",
        gamma_mode: str = "adaptive",
        scale: str = "minmax",
        dtype: str = "float32",
        contamination: float = 0.01,
    ) -> None:
        self.n_components = n_components
        self.gamma = gamma
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.random_state = random_state
        self.scorer = scorer
        self.gamma_mode = gamma_mode
        self.scale = scale
        self.dtype = dtype
        self.contamination = contamination

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **FactorizationDetector._parameter_constraints,
        "gamma": positive("neither"),
        "gamma_mode": [_MODES],
    }

    def _evidence(self, X: np.ndarray, res: NMFResult, shape: tuple[int, int]) -> Any:
        self._keep_history(res)
        assert res.last_step is not None
        return weighted_evidence(X, res.W, res.H, res.last_step)
