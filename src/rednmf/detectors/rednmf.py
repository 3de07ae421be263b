"""REDNMF detector: the estimator around :func:`rednmf.solvers.rednmf.rednmf_solve`."""

from __future__ import annotations

import numpy as np

from rednmf._validation import check_choice, check_int, check_real, matrix_to_cube
from rednmf.detectors._factorization import FactorizationDetector
from rednmf.solvers.rednmf import LAM_MODES, SHRINK, SPARSITY, RednmfResult, rednmf_solve

__all__ = ["REDNMF"]


class REDNMF(FactorizationDetector):
    r"""Robust asymmetric encoder-decoder NMF anomaly detector (Moradi et al., 2026).

    Model (eq. 10)::

        X ~ WH + S,   H ~ M(X - S),
        min ||X - WH - S||_F^2 + beta ||H - M(X - S)||_F^2 + lam ||S||_{2,1},
        W, H, M >= 0,

    solved by the multiplicative updates (14)-(16) and the L2,1 shrinkage (17)
    (see :mod:`rednmf.solvers.rednmf`). Pixels are scored from the anomaly
    matrix ``S`` by BRAD, a local dual-window Mahalanobis detector
    (:func:`rednmf.scoring.brad`), or by the column norm ``||S_j||_2``.

    Defaults were chosen by a grid search on the 10 benchmark scenes;
    ``docs/choices.md`` has the numbers.

    Parameters
    ----------
    n_components : int, default=8
        Rank ``r`` of the background ``WH``.
    lam : float, default=4.0
        Sparsity weight. With ``lam_mode='svd'`` it is relative to the median
        pixel norm of the residual of the best rank-``n_components``
        approximation of the scaled data: the S step zeroes pixels whose
        residual norm is below ``lam / 2`` times that median (so the default
        threshold is twice the median), which makes ``lam`` scale-free.
    beta : float, default=1.0
        Weight of the encoder term ``||H - M(X - S)||^2``.
    max_iter : int, default=100
        Maximum number of iterations. Detection peaks near 100 iterations
        while the objective is still falling by about 0.5 % per iteration;
        longer fits lower the AUC (``docs/choices.md``).
    tol : float, default=0.0
        Relative change of the objective at which the fit stops; 0 runs
        exactly ``max_iter`` iterations (the default: a fixed budget).
        With ``tol > 0`` a ``ConvergenceWarning`` is issued if ``max_iter`` is
        reached first.
    init : {'random', 'nndsvda'}, default='nndsvda'
        Initialisation of ``W, H`` (NNDSVD with zeros set to the mean, or
        uniform random); ``M`` is always random.
    random_state : int or None, default=0
        Seed of the initialisation. The same seed and input give identical
        scores.
    scorer : {'brad', 'norm'}, default='brad'
        How pixels are scored from ``S``.
    inner, outer : int, default=9, 27
        Guard and outer window sides of BRAD (odd).
    n_pca : int or None, default=20
        BRAD projects ``S`` on its ``n_pca`` leading principal components first.
    ridge : float, default=0.01
        BRAD covariance ridge, relative to the mean variance in the window.
    encoder : bool, default=True
        ``False`` drops the encoder term (``beta = 0``): the ``-Encoder`` ablation.
    sparsity : {'l21', 'l1', 'none'}, default='l21'
        Regulariser of ``S``. ``'l1'`` is the ``-L2,1`` ablation (element-wise
        sparsity, as RNMF); ``'none'`` fits without ``S`` and scores the
        residual ``X - WH``.
    shrink : {'column', 'row'}, default='column'
        L2,1 groups: pixels (as Sec. 4.2 says) or bands (eq. 17 as printed).
    lam_mode : {'svd', 'adaptive', 'absolute'}, default='svd'
        Scale of ``lam`` (see :mod:`rednmf.solvers.rednmf`): ``'svd'`` relative
        to the residual of a rank-r truncated SVD (fixed), ``'adaptive'``
        relative to the current residual (every iteration), ``'absolute'`` as
        given on the scaled data (the paper's ``(lam, beta) = (50, 1)``).
    scale : {'minmax', 'max', 'none'}, default='minmax'
        Global scaling of the cube before fitting.
    dtype : {'float32', 'float64'}, default='float32'
        Working precision of the solver.
    contamination : float, default=0.01
        Fraction of pixels labelled anomalous in ``labels_``.
    n_jobs : int or None, default=None
        Threads over pixel blocks in the solver (``None``: as many as BLAS may
        use here, which respects ``OPENBLAS_NUM_THREADS``; ``-1``: every CPU).
        The result does not depend on it.

    Attributes
    ----------
    decision_scores_ : ndarray of shape (rows, cols)
        Anomaly scores, higher = more anomalous.
    threshold_, labels_ :
        See :class:`rednmf.detectors._base.BaseDetector`.
    components_ : ndarray of shape (bands, n_components)
        ``W``, the background basis (on the scaled data).
    encoder_ : ndarray of shape (n_components, bands)
        ``M``.
    coefficients_ : ndarray of shape (n_components, rows * cols)
        ``H``.
    anomaly_ : ndarray of shape (rows, cols, bands)
        ``S`` (on the scaled data).
    n_iter_ : int
        Iterations run.
    objective_ : ndarray
        Objective (10) after each iteration.
    converged_ : bool
        Whether the fit stopped on ``tol`` (always False with ``tol=0``).
    lam_history_ : ndarray
        The ``lam_t`` used at each iteration (constant unless ``lam_mode='adaptive'``).

    References
    ----------
    S. Moradi et al., "Robust asymmetric encoder-decoder nonnegative matrix
    factorization for hyperspectral anomaly detection", Neurocomputing, 2026.
    """

    name = "rednmf"

    def __init__(
        self,
        n_components: int = 8,
        lam: float = 4.0,
        beta: float = 1.0,
        max_iter: int = 100,
        tol: float = 0.0,
        init: str = "nndsvda",
        random_state: int | None = 0,
        scorer: str = "brad",
        inner: int = 9,
        outer: int = 27,
        n_pca: int | None = 20,
        ridge: float = 0.01,
        encoder: bool = True,
        sparsity: str = "l21",
        shrink: str = "column",
        lam_mode: str = "svd",
        scale: str = "minmax",
        dtype: str = "float32",
        contamination: float = 0.01,
        n_jobs: int | None = None,
    ) -> None:
        self.n_components = n_components
        self.lam = lam
        self.beta = beta
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.random_state = random_state
        self.scorer = scorer
        self.inner = inner
        self.outer = outer
        self.n_pca = n_pca
        self.ridge = ridge
        self.encoder = encoder
        self.sparsity = sparsity
        self.shrink = shrink
        self.lam_mode = lam_mode
        self.scale = scale
        self.dtype = dtype
        self.contamination = contamination
        self.n_jobs = n_jobs

    def _validate_method_params(self) -> None:
        check_real("lam", self.lam, low=0.0)
        check_real("beta", self.beta, low=0.0)
        check_choice("encoder", self.encoder, (True, False))
        check_choice("sparsity", self.sparsity, SPARSITY)
        check_choice("shrink", self.shrink, SHRINK)
        check_choice("lam_mode", self.lam_mode, LAM_MODES)
        if self.n_jobs is not None and self.n_jobs != -1:
            check_int("n_jobs", self.n_jobs, low=1)

    def _solve(self, X: np.ndarray, W: np.ndarray, H: np.ndarray, M: np.ndarray) -> RednmfResult:
        return rednmf_solve(
            X,
            W,
            H,
            M,
            lam=self.lam,
            beta=self.beta if self.encoder else 0.0,
            max_iter=self.max_iter,
            tol=self.tol,
            sparsity=self.sparsity,
            shrink=self.shrink,
            lam_mode=self.lam_mode,
            n_jobs=self.n_jobs,
            callback=getattr(self, "_callback", None),
        )

    def _evidence(self, X: np.ndarray, res: RednmfResult, shape: tuple[int, int]) -> np.ndarray:
        self.encoder_ = res.M
        self.anomaly_ = matrix_to_cube(res.S, shape)
        self.lam_history_ = res.lam_history
        # Without S (sparsity='none') the anomaly evidence is the residual.
        return X - res.W @ res.H if self.sparsity == "none" else res.S
