"""REDNMF detector: the estimator around :func:`rednmf.solvers.rednmf.rednmf_solve`."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from numbers import Integral
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.utils._param_validation import Options, StrOptions

from rednmf._validation import check_choice, check_dtype, matrix_to_cube
from rednmf.backend import BACKENDS, get_backend
from rednmf.detectors._base import at_least, positive
from rednmf.detectors._factorization import SCALE_MODES, FactorizationDetector
from rednmf.exceptions import InputError
from rednmf.preprocessing import scale_data, scale_params
from rednmf.scoring.multiscale import COMBINATIONS
from rednmf.solvers._driver import as_fit_callback
from rednmf.solvers.rednmf import (
    M_SPLITS,
    SHRINK,
    SPARSITY,
    RednmfResult,
    anomaly_evidence,
    check_lam_mode,
    rednmf_solve,
)

__all__ = ["PRESETS", "REDNMF", "dask_client"]

#: Named configurations: parameters that differ from REDNMF's defaults.
#: ``'paper'`` is the paper's model as we read it before the robust defaults
#: (docs/choices.md): the S step's threshold relative to the median residual of
#: a rank-r SVD, the fixed 9/27 BRAD on ``S`` with 20 principal components, and
#: the M step (15) split as printed.
PRESETS: dict[str, dict[str, Any]] = {
    "robust": {},
    "paper": {"lam_mode": "svd", "scorer": "brad", "m_split": "elementwise"},
}

#: How long to wait for a Dask scheduler given by its address.
CONNECT_TIMEOUT = "20s"


@contextmanager
def dask_client(scheduler: Any) -> Iterator[Any]:
    """A :class:`distributed.Client` for ``scheduler``: None, an address, or a client.

    A client made here from an address is closed on exit; a given client is not.
    """
    if scheduler is None or not isinstance(scheduler, str):
        yield scheduler
        return
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - a dependency
        raise InputError(
            "fitting on a Dask cluster needs dask[distributed]; pip install 'dask[distributed]'"
        ) from exc
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(
            f"cannot reach the Dask scheduler at {scheduler!r} ({exc}); start it with "
            "'dask scheduler' and pass its tcp://HOST:PORT address"
        ) from exc
    try:
        yield client
    finally:
        client.close()


class REDNMF(FactorizationDetector):
    r"""Robust asymmetric encoder-decoder NMF anomaly detector (Moradi et al., 2026).

    Model (eq. 10)::

        X ~ WH + S,   H ~ M(X - S),
        min ||X - WH - S||_F^2 + beta ||H - M(X - S)||_F^2 + lam ||S||_{2,1},
        W, H, M >= 0,

    solved by the multiplicative updates (14)-(16) and the L2,1 shrinkage (17)
    (see :mod:`rednmf.solvers.rednmf`). The threshold of (17) accounts for the
    scene's noise (``lam_mode='noise'``, :mod:`rednmf.solvers.noise`). Pixels
    are scored from the anomaly matrix by the multi-scale detector
    (:func:`rednmf.scoring.multiscale`: local, pooled and global RX on one
    calibrated scale), by BRAD, a local dual-window Mahalanobis detector
    (:func:`rednmf.scoring.brad`), or by the column norm ``||S_j||_2``.

    The defaults were chosen by leave-one-scene-out over 12 real scenes, clean
    and with added noise (``docs/choices.md``). The paper's configuration is
    ``REDNMF.from_preset('paper')``.

    Parameters
    ----------
    n_components : int, default=8
        Rank ``r`` of the background ``WH``.
    lam : float, default=4.0
        Sparsity weight. With ``lam_mode='svd'`` it is relative to the median
        pixel norm of the residual of the best rank-``n_components``
        approximation of the scaled data: the S step zeroes pixels whose
        residual norm is below ``lam / 2`` times that median (so the default
        threshold is twice the median), which makes ``lam`` scale-free. With
        ``lam_mode='noise'`` (default) the median is first cleared of the
        noise energy and the threshold adds that energy back with a margin
        (``noise_margin``), so that noise alone does not enter ``S``.
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
    scorer : {'multiscale', 'brad', 'norm'}, default='multiscale'
        How pixels are scored from the anomaly evidence: the tail
        probabilities of a local, a pooled and a global RX, combined by
        ``combine`` (:func:`rednmf.scoring.multiscale`); BRAD (the local RX
        alone); or the column norm.
    inner, outer : int, default=9, 27
        Guard and outer window sides of the local detector (odd).
    n_pca : int or None, default=20
        The scorer projects the evidence on at most ``n_pca`` leading principal
        components first; with ``lam_mode='noise'`` only those above the
        noise are kept.
    ridge : float, default=0.01
        Covariance ridge, relative to the mean band variance.
    pool : int, default=3
        ``scorer='multiscale'``: side of the neighbourhood over which the
        local score is averaged.
    combine : {'max', 'sum', 'hmp'}, default='hmp'
        ``scorer='multiscale'``: Tippett's (the smallest tail probability),
        Fisher's (their product) or the harmonic-mean combination of the three
        detectors (:mod:`rednmf.scoring.multiscale`; ``docs/choices.md``).
    m_split : {'factored', 'elementwise'}, default='factored'
        How the M step (15) splits ``SS'`` between numerator and denominator:
        ``S+S+' + S-S-'`` over ``S+S-' + S-S+'``, which costs ``r d n`` instead
        of ``d^2 n`` (:func:`rednmf.solvers.reference.update_M_factored`), or the
        element-wise ``[SS']+`` over ``[SS']-`` as printed (the paper preset).
        Same AUC within 1.1e-5 on the 12 scenes, clean and noisy
        (``docs/choices.md``).
    noise_margin : float, default=3.0
        ``lam_mode='noise'``: standard deviations of a pixel's expected noise
        energy added to the threshold (a pure-noise pixel then enters ``S``
        with probability about 0.1 %).
    encoder : bool, default=True
        ``False`` drops the encoder term (``beta = 0``): the ``-Encoder`` ablation.
    sparsity : {'l21', 'l1', 'none'}, default='l21'
        Regulariser of ``S``. ``'l1'`` is the ``-L2,1`` ablation (element-wise
        sparsity, as RNMF); ``'none'`` fits without ``S`` and scores the
        residual ``X - WH``.
    shrink : {'column', 'row'}, default='column'
        L2,1 groups: pixels (as Sec. 4.2 says) or bands (eq. 17 as printed).
    lam_mode : {'noise', 'svd', 'adaptive', 'absolute'}, default='noise'
        Scale of ``lam`` (see :mod:`rednmf.solvers.rednmf`): ``'noise'``
        relative to the structured part of the rank-r SVD residual, plus the
        noise it carries (fixed; :mod:`rednmf.solvers.noise`); ``'svd'`` relative
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
    scheduler : str or distributed.Client, optional
        Fit across a Dask cluster: the address of its scheduler
        (``'tcp://host:8786'``) or a connected :class:`distributed.Client`
        (:mod:`rednmf.solvers.rednmf_dask`). The pixel chunks live on the
        workers, and so does the scoring: ``S`` is scored where its chunks
        are (:mod:`rednmf.scoring.dask_scoring`), the scores equal the
        in-memory ones up to float rounding; ``anomaly_`` is still gathered.
        Needs the block engine (``lam_mode`` ``'svd'`` or ``'absolute'``,
        ``shrink='column'``).
    chunk_size : int, optional
        Pixels per Dask chunk (default: one chunk per worker). With
        ``chunk_size`` equal to the solver's block size (2048) the fit is
        identical to the in-memory one.
    out_of_core : bool or None, default=None
        Fit a scene larger than memory (:mod:`rednmf.outofcore`): the cube is
        read block by block from its memory map (as the ENVI reader returns
        it), scaled on the fly, ``S`` is kept in a temporary file and scored
        block by block; ``anomaly_`` is then not kept. ``None``: only when the
        cube is memory-mapped and the in-memory path would not fit in the
        memory available. Needs the block engine, like ``scheduler``. The
        scores equal the in-memory ones up to float rounding.
    backend : {'numpy', 'torch'}, default='numpy'
        Array backend of the solver and of BRAD (:mod:`rednmf.backend`):
        ``'torch'`` moves the scaled data once to ``device`` and runs the
        block engine's updates and the BRAD scoring there (a CUDA GPU, or the
        CPU); the fitted attributes are NumPy arrays either way and the scores
        equal NumPy's up to float rounding. Needs PyTorch
        (``pip install 'rednmf[torch]'``) and the block engine, in memory
        (no ``scheduler``, no ``out_of_core``).
    device : str or None, default=None
        Torch device for ``backend='torch'`` (``'cuda'``, ``'cuda:1'``,
        ``'cpu'``); ``None``: ``'cuda'`` when available, else ``'cpu'``.

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
    evidence_ : ndarray of shape (rows, cols, bands)
        What the scorer scored: ``anomaly_`` itself, or with
        ``lam_mode='noise'`` the S step (17) on the final residual at the
        structured threshold alone (:func:`rednmf.solvers.rednmf.anomaly_evidence`),
        which keeps each pixel's noise for the scorer to weigh.
    noise_std_ : ndarray of shape (bands,) or None
        ``lam_mode='noise'``: the estimated noise standard deviation of each
        band (of the data scaled by ``scale``; :mod:`rednmf.solvers.noise`).
    lam_ : float
        The absolute ``lam`` of the fit (the S step thresholds at ``lam_ / 2``).
    n_iter_ : int
        Iterations run.
    objective_ : ndarray
        Objective (10) after each iteration.
    converged_ : bool
        Whether the fit stopped on ``tol`` (always False with ``tol=0``).
    lam_history_ : ndarray
        The ``lam_t`` used at each iteration (constant unless ``lam_mode='adaptive'``).
    evidence_threshold_ : float
        Threshold of the S step that made the scored evidence (``lam_ / 2``,
        or with ``lam_mode='noise'`` its structured part alone; 0 with
        ``sparsity='none'``); :meth:`decision_function` applies it to new pixels.
    scaling_ : (float, float)
        ``(offset, divisor)`` of the scaling of the fitted cube.

    References
    ----------
    S. Moradi et al., "Robust asymmetric encoder-decoder nonnegative matrix
    factorization for hyperspectral anomaly detection", Neurocomputing, 2026.
    """

    name = "rednmf"
    _pixel_major = True

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **FactorizationDetector._parameter_constraints,
        "lam": positive(),
        "beta": positive(),
        "pool": at_least(1),
        "combine": [StrOptions(set(COMBINATIONS))],
        "m_split": [StrOptions(set(M_SPLITS))],
        "noise_margin": positive(),
        "encoder": ["boolean"],
        "sparsity": [StrOptions(set(SPARSITY))],
        "shrink": [StrOptions(set(SHRINK))],
        "lam_mode": [StrOptions(set(SCALE_MODES))],
        "n_jobs": [*at_least(1), Options(Integral, {-1}), None],
        "scheduler": "no_validation",  # an address or a distributed.Client
        "chunk_size": [*at_least(1), None],
        "out_of_core": ["boolean", None],
        "backend": [StrOptions(set(BACKENDS))],
        "device": "no_validation",  # checked by rednmf.backend.get_backend
    }

    def __init__(
        self,
        *,
        n_components: int = 8,
        lam: float = 4.0,
        beta: float = 1.0,
        max_iter: int = 100,
        tol: float = 0.0,
        init: str = "nndsvda",
        random_state: int | None = 0,
        scorer: str = "multiscale",
        inner: int = 9,
        outer: int = 27,
        n_pca: int | None = 20,
        ridge: float = 0.01,
        pool: int = 3,
        combine: str = "hmp",
        m_split: str = "factored",
        noise_margin: float = 3.0,
        encoder: bool = True,
        sparsity: str = "l21",
        shrink: str = "column",
        lam_mode: str = "noise",
        scale: str = "minmax",
        dtype: str = "float32",
        contamination: float = 0.01,
        n_jobs: int | None = None,
        scheduler: Any = None,
        chunk_size: int | None = None,
        out_of_core: bool | None = None,
        backend: str = "numpy",
        device: Any = None,
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
        self.pool = pool
        self.combine = combine
        self.m_split = m_split
        self.noise_margin = noise_margin
        self.encoder = encoder
        self.sparsity = sparsity
        self.shrink = shrink
        self.lam_mode = lam_mode
        self.scale = scale
        self.dtype = dtype
        self.contamination = contamination
        self.n_jobs = n_jobs
        self.scheduler = scheduler
        self.chunk_size = chunk_size
        self.out_of_core = out_of_core
        self.backend = backend
        self.device = device

    @classmethod
    def from_preset(cls, name: str, **params: Any) -> REDNMF:
        """A detector in a named configuration of :data:`PRESETS`, ``params`` on top.

        ``REDNMF.from_preset('paper')`` is the paper's model with the λ scale
        and BRAD scorer of our first reproduction and the M step as printed
        (``lam_mode='svd'``, ``scorer='brad'``, ``m_split='elementwise'``);
        ``'robust'`` is the defaults.
        """
        key = check_choice("preset", name, tuple(PRESETS))
        return cls(**{**PRESETS[key], **params})

    def _check_params(self) -> None:
        check_lam_mode(self.lam_mode, self.sparsity, self.shrink)
        if self.backend == "torch":
            if self.scheduler is not None:
                raise InputError(
                    "backend='torch' cannot fit on a Dask scheduler; drop scheduler or use "
                    "backend='numpy'"
                )
            if self.out_of_core:
                raise InputError(
                    "backend='torch' fits in memory only; drop out_of_core or use backend='numpy'"
                )
            if not self._block_engine():
                raise InputError(
                    "backend='torch' needs the block engine: use lam_mode 'svd' or 'absolute' "
                    "and shrink='column'"
                )
        get_backend(self.backend, self.device)  # torch installed, device usable
        if self.scheduler is not None and not self._block_engine():
            raise InputError(
                "a Dask scheduler fits only the block engine: use lam_mode 'svd' or "
                "'absolute' and shrink='column'"
            )
        if self.out_of_core and not (self._block_engine() and self.sparsity != "l1"):
            raise InputError(
                "out_of_core needs the block engine: lam_mode 'svd' or 'absolute', "
                "shrink='column', sparsity 'l21' or 'none'"
            )

    def _block_engine(self) -> bool:
        return self.lam_mode != "adaptive" and (self.shrink == "column" or self.sparsity != "l21")

    # -- larger than memory -----------------------------------------------------------

    def _fit(
        self, cube: Any, mask: np.ndarray | None, callback: Callable[..., None] | None
    ) -> None:
        """Fit and score (see :meth:`BaseDetector.fit`); out of core when ``out_of_core`` says."""
        from rednmf.outofcore import fits_in_memory, is_memory_mapped

        ooc = self.out_of_core
        if ooc is None:
            shape = np.shape(cube)
            ooc = (
                is_memory_mapped(cube)
                and len(shape) == 3
                and not fits_in_memory(shape)
                and self._block_engine()
                and self.sparsity != "l1"
            )
        if not ooc:
            super()._fit(cube, mask, callback)
            return
        if self.backend == "torch":
            raise InputError(
                "the scene does not fit in memory and backend='torch' fits in memory only; "
                "use backend='numpy' (out of core)"
            )
        self._callback = as_fit_callback(callback)
        try:
            with self._cluster():
                scores, valid, kept = self._fit_out_of_core(cube, mask)
        finally:
            del self._callback
        self._set_results(scores, valid, kept)

    @contextmanager
    def _cluster(self) -> Iterator[None]:
        """With a scheduler: one client for the fit and the scoring, which stays on the workers.

        Sets ``_client`` and ``_kept`` (:func:`rednmf.solvers.rednmf_dask.keep_chunks`:
        the fit's chunks left on the workers) for :meth:`_solve` and the scoring.
        """
        if self.scheduler is None:
            yield
            return
        from rednmf.solvers.rednmf_dask import keep_chunks

        with dask_client(self.scheduler) as client, keep_chunks() as kept:
            self._client, self._kept = client, kept
            try:
                yield
            finally:
                del self._client, self._kept

    def _fit_scores(self, cube: np.ndarray) -> np.ndarray:
        with self._cluster():
            return super()._fit_scores(cube)

    def _kept_evidence(self, W: np.ndarray, tau: float | None) -> Any:
        """The evidence of a Dask fit, on its workers; None in memory.

        ``S`` when ``tau`` is None, else ``X - WH`` shrunk at ``tau``
        (:meth:`_evidence_threshold`).
        """
        kept = getattr(self, "_kept", None)
        if not kept:
            return None
        return kept.pop().evidence(None if tau is None else W, tau)

    def _evidence_threshold(self, res: RednmfResult) -> float | None:
        """Threshold of the scored evidence: None scores the fit's ``S`` as it is.

        Without ``S`` (``sparsity='none'``) the evidence is the residual (0);
        with ``lam_mode='noise'`` it is the S step at the structured threshold
        (:func:`rednmf.solvers.rednmf.anomaly_evidence`).
        """
        if self.sparsity == "none":
            return 0.0
        if res.noise is not None:
            return res.noise.evidence_threshold
        return None

    def _set_fit_attributes(self, res: RednmfResult) -> None:
        self.encoder_ = res.M
        self.lam_history_ = res.lam_history
        self.lam_ = float(res.lam_history[-1]) if len(res.lam_history) else float(self.lam)
        self.noise_std_ = None if res.noise is None else np.sqrt(res.noise.noise_var)
        tau = self._evidence_threshold(res)
        self.evidence_threshold_ = self.lam_ / 2 if tau is None else float(tau)

    def _decision_cube(self, cube: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """Scores of new pixels under the fitted ``(W, M)``; see :meth:`decision_function`."""
        if not self._encodes_new_pixels():
            return super()._decision_cube(cube, mask)
        data, valid = self._new_pixels(cube, mask)
        rows, cols, d = data.shape
        X = np.ascontiguousarray(data).reshape(rows * cols, d).T
        X = scale_data(X, self.scale, dtype=check_dtype(self.dtype), params=self.scaling_)
        H = self.encoder_ @ X
        E = anomaly_evidence(X, self.components_, H, self.evidence_threshold_, out=X)
        scores = np.asarray(self._score(E, (rows, cols)), dtype=np.float64)
        scores[~valid] = np.nan
        return scores

    def _encodes_new_pixels(self) -> bool:
        """Whether :meth:`decision_function` applies ``(W, M)`` (else it fits a copy)."""
        pixel_groups = self.sparsity == "none" or (
            self.sparsity == "l21" and self.shrink == "column"
        )
        return bool(self.encoder) and pixel_groups

    def decision_function(
        self,
        X: Any,
        *,
        mask: np.ndarray | None = None,
        image_shape: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """Anomaly scores of another scene under the fitted background ``(W, M)``.

        The asymmetric model gives every pixel its code through the encoder,
        ``H = M(X - S)``, so new pixels need no new fit. ``X`` is scaled by the
        fitted ``scaling_`` (values outside the fitted range are not clipped),
        encoded by ``H = M X`` (the encoder applied to the pixels as they
        are: their ``S`` is not known yet), and the S step (17) is applied once
        to the residual ``X - W H`` at the fitted threshold
        ``evidence_threshold_`` (that of the scored evidence:
        :func:`rednmf.solvers.rednmf.anomaly_evidence`); the result is scored
        by ``scorer`` with the fitted noise (``noise_std_``). Nothing is
        re-estimated from ``X`` but the scorer's own statistics (the local,
        pooled and global RX of ``scorer='multiscale'`` are statistics of the
        scored scene).

        With ``encoder=False`` (no trained ``M``) or an S step that does not
        act on pixels one by one (``sparsity='l1'``, ``shrink='row'``), a copy
        with the same parameters is fitted on ``X`` instead.

        Parameters and returns as in
        :meth:`rednmf.detectors._base.BaseDetector.decision_function`.
        """
        return super().decision_function(X, mask=mask, image_shape=image_shape)

    def _scorer_extras(self) -> dict[str, Any]:
        noise_var = None if self.noise_std_ is None else self.noise_std_**2
        return {"pool": self.pool, "noise_var": noise_var, "combine": self.combine}

    def _score(self, E: Any, shape: tuple[int, int]) -> np.ndarray:
        if isinstance(E, np.ndarray):
            return super()._score(E, shape)
        from rednmf.scoring.dask_scoring import score_matrix_dask

        return score_matrix_dask(
            E, shape, scorer=self.scorer, inner=self.inner, outer=self.outer,
            n_pca=self.n_pca, ridge=self.ridge, client=self._client,
            **self._scorer_extras(),
        )  # fmt: skip

    def _fit_out_of_core(
        self, cube: np.ndarray, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scores, valid pixels and kept bands, with the scene and ``S`` on disk."""
        from rednmf.outofcore import CubeMatrix, scan_cube, score_blocks

        valid, kept, fill, lo, hi = scan_cube(cube, mask, self.min_bands, "REDNMF")
        X = CubeMatrix(
            cube, check_dtype(self.dtype), kept=kept, valid=valid, fill=fill, lo=lo, hi=hi,
            scale=self.scale,
        )  # fmt: skip
        self.scaling_ = scale_params(np.array([X.lo, X.hi]), self.scale, X.dtype)
        W0, H0, M0 = self._initial_factors(X)  # type: ignore[arg-type]
        with tempfile.TemporaryDirectory(prefix="rednmf-") as tmp:
            S = np.lib.format.open_memmap(
                Path(tmp) / "S.npy", mode="w+", dtype=X.dtype, shape=X.shape, fortran_order=True
            )
            res = self._solve(X, W0, H0, M0, anomaly_out=S)  # type: ignore[arg-type]
            self.components_, self.coefficients_ = res.W, res.H
            self.n_iter_ = res.n_iter
            self.objective_ = res.objective
            self.converged_ = res.converged
            self._set_fit_attributes(res)
            self.anomaly_ = self.evidence_ = None
            tau = self._evidence_threshold(res)
            E = self._kept_evidence(res.W, tau)
            if E is not None:  # fitted on a Dask cluster: scored there
                scores = self._score(E, valid.shape)
            else:
                if tau is not None:  # the residual X - WH, shrunk at tau
                    anomaly_evidence(X, res.W, res.H, tau, out=S)
                scores = score_blocks(
                    S, valid.shape, scorer=self.scorer, inner=self.inner, outer=self.outer,
                    n_pca=self.n_pca, ridge=self.ridge, **self._scorer_extras(),
                )  # fmt: skip
            del S, res
        return np.asarray(scores, dtype=np.float64), valid, kept

    def _solve(
        self,
        X: np.ndarray,
        W: np.ndarray,
        H: np.ndarray,
        M: np.ndarray,
        anomaly_out: np.ndarray | None = None,
    ) -> RednmfResult:
        with dask_client(getattr(self, "_client", self.scheduler)) as client:
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
                noise_margin=self.noise_margin,
                m_split=self.m_split,
                n_jobs=self.n_jobs,
                callback=self._fit_callback(),
                anomaly_out=anomaly_out,
                client=client,
                chunk_size=self.chunk_size,
                backend=self.backend,
                device=self.device,
            )

    def _scoring_backend(self) -> tuple[str, Any]:
        return self.backend, self.device

    def _evidence(self, X: np.ndarray, res: RednmfResult, shape: tuple[int, int]) -> np.ndarray:
        self._set_fit_attributes(res)
        self.anomaly_ = matrix_to_cube(res.S, shape)
        tau = self._evidence_threshold(res)
        E = self._kept_evidence(res.W, tau)  # fitted on a Dask cluster: left there
        if E is not None:
            self.evidence_ = None
            return E
        if tau is None:
            self.evidence_ = self.anomaly_
            return res.S
        # In the buffer of the scaled data, which is not needed any more.
        xp = get_backend(self.backend, self.device)
        E = anomaly_evidence(X, res.W, res.H, tau, out=X, xp=xp)
        self.evidence_ = matrix_to_cube(E, shape)
        return E
