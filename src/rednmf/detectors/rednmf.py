"""REDNMF detector: the estimator around :func:`rednmf.solvers.rednmf.rednmf_solve`."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.utils._param_validation import Hidden, Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted

from rednmf._validation import check_choice, check_dtype, matrix_to_cube
from rednmf.backend import BACKENDS, get_backend
from rednmf.detectors._base import at_least, positive
from rednmf.detectors._factorization import SCALE_MODES, FactorizationDetector
from rednmf.engines import (
    DaskEngine,
    Engine,
    InMemory,
    LocalSession,
    OutOfCore,
    TorchEngine,
    does_not_fit,
    resolve_engine,
    score_evidence,
)
from rednmf.exceptions import InputError
from rednmf.preprocessing import scale_data, scale_params
from rednmf.scoring.brad import project_by_blocks
from rednmf.scoring.multiscale import COMBINATIONS, SUSPECT_LEVEL
from rednmf.solvers import rednmf_blocks
from rednmf.solvers._driver import FitCallback, as_fit_callback
from rednmf.solvers.rednmf import (
    M_SPLITS,
    SHRINK,
    SPARSITY,
    EvidenceMatrix,
    RednmfResult,
    anomaly_evidence,
    check_lam_mode,
    rednmf_solve,
)

__all__ = ["PRESETS", "REDNMF"]

#: Named configurations: parameters that differ from REDNMF's defaults.
#: ``'paper'`` is the paper's model as we read it before the robust defaults
#: (docs/choices.md): the S step's threshold relative to the median residual of
#: a rank-r SVD, the fixed 9/27 BRAD on ``S`` with 20 principal components, and
#: the M step (15) split as printed.
PRESETS: dict[str, dict[str, Any]] = {
    "robust": {},
    "paper": {"lam_mode": "svd", "scorer": "brad", "m_split": "elementwise"},
}

#: The execution parameters that ``engine`` replaced (accepted with a
#: ``FutureWarning`` until the next release; :func:`legacy_engine`).
LEGACY_EXECUTION = ("n_jobs", "scheduler", "chunk_size", "out_of_core", "backend", "device")
_DEPRECATED = "deprecated"


def legacy_engine(
    n_jobs: int | None = None,
    scheduler: Any = None,
    chunk_size: int | None = None,
    out_of_core: bool | None = None,
    backend: str = "numpy",
    device: Any = None,
) -> Engine:
    """The engine that REDNMF's old execution parameters describe.

    ``backend='torch'`` is :class:`~rednmf.engines.TorchEngine` (``device``), a
    ``scheduler`` :class:`~rednmf.engines.DaskEngine` (``chunk_size``,
    ``out_of_core``), ``out_of_core=True`` :class:`~rednmf.engines.OutOfCore`,
    otherwise :class:`~rednmf.engines.InMemory` (``n_jobs``; ``out_of_core=False``
    is ``spill=False``).

    Raises
    ------
    InputError
        For a combination that has no engine (torch on Dask or out of core,
        a device without torch).
    """
    if backend == "torch":
        if scheduler is not None:
            raise InputError(
                "backend='torch' cannot fit on a Dask scheduler; drop scheduler or use "
                "backend='numpy'"
            )
        if out_of_core:
            raise InputError(
                "backend='torch' fits in memory only; drop out_of_core or use backend='numpy'"
            )
        return TorchEngine(device)
    get_backend(backend, device)  # a device needs torch
    if scheduler is not None:
        return DaskEngine(scheduler, chunk_size=chunk_size, out_of_core=out_of_core)
    if out_of_core:
        return OutOfCore(n_jobs=n_jobs)
    return InMemory(n_jobs=n_jobs, spill=out_of_core is None)


class REDNMF(FactorizationDetector):
    r"""Robust asymmetric encoder-decoder NMF anomaly detector (Moradi et al., 2026).

    Model (eq. 10)::

        X ~ WH + S,   H ~ M(X - S),
        min ||X - WH - S||_F^2 + beta ||H - M(X - S)||_F^2 + lam ||S||_{2,1},
        W, H, M >= 0,

    solved by the multiplicative updates (14)-(16) and the L2,1 shrinkage (17)
    (see :mod:`rednmf.solvers.rednmf`). The threshold of (17) accounts for the
    scene's noise (``lam_mode='noise'``, :mod:`rednmf.solvers.noise`). Pixels
    are scored by the multi-scale detectors (:func:`rednmf.scoring.multiscale`:
    local and global RX, at a pixel and pooled, on one calibrated scale) on the
    anomaly evidence and, by default, on the cube itself with the pixels the
    evidence flags kept out of the cube's background statistics
    (``score_cube``, :func:`rednmf.scoring.multiscale.cube_and_evidence`: the
    background ``WH`` absorbs most of every anomaly, which only the cube keeps);
    or by BRAD, a local dual-window Mahalanobis detector
    (:func:`rednmf.scoring.brad`), or by the column norm ``||S_j||_2``, of the
    evidence alone.

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
        probabilities of a local and a global RX, each also pooled over
        ``pool x pool`` pixels, combined by ``combine``
        (:func:`rednmf.scoring.multiscale`); BRAD (the local RX alone); or the
        column norm.
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
        local (and, with ``pool_global``, the global) score is averaged.
    combine : {'max', 'sum', 'hmp'}, default='sum'
        ``scorer='multiscale'``: Tippett's (the smallest tail probability),
        Fisher's (their product) or the harmonic-mean combination of the
        detectors (:mod:`rednmf.scoring.multiscale`; ``docs/choices.md``).
    pool_global : bool, default=True
        ``scorer='multiscale'``: also average the global score over the
        ``pool x pool`` neighbourhood (a fourth detector: a spatial support of
        several pixels against the whole scene).
    robust_global : bool, default=True
        ``scorer='multiscale'``: estimate the global detector's statistics once
        more without the pixels beyond the chi-square 0.975 quantile (the
        one-step reweighting of :func:`rednmf.scoring.global_rx.global_rx`), so
        that the anomalies do not widen the background they are measured against.
    score_cube : bool, default=True
        ``scorer='multiscale'``: also score the cube itself, against background
        statistics of the pixels that the evidence does not flag, and combine
        it with the evidence's local detectors
        (:func:`rednmf.scoring.multiscale.cube_and_evidence`). The background
        ``WH`` absorbs the part of an anomaly that lies in the span of ``W``,
        which only the cube keeps; ``False`` scores the evidence alone
        (``docs/choices.md``: what each part adds).
    suspect_level : float, default=0.05
        ``score_cube``: the evidence's tail probability at or below which a
        pixel is a suspect and leaves the cube's background statistics.
    m_split : {'factored', 'elementwise'}, default='factored'
        How the M step (15) splits ``SS'`` between numerator and denominator:
        ``S+S+' + S-S-'`` over ``S+S-' + S-S+'``, which costs ``r d n`` instead
        of ``d^2 n`` (``update_M_factored`` of ``tests/oracles/reference.py``), or the
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
    engine : Engine, str or None, default=None
        Where and how the fit runs (:mod:`rednmf.engines`):
        :class:`~rednmf.engines.InMemory` (``n_jobs`` threads over pixel
        blocks; the default), :class:`~rednmf.engines.OutOfCore` (a scene
        larger than memory read block by block from its file, ``S`` in a
        temporary file; ``anomaly_`` is then not kept),
        :class:`~rednmf.engines.DaskEngine` (the pixel chunks and the scoring
        on the workers of a Dask cluster) or :class:`~rednmf.engines.TorchEngine`
        (the updates and BRAD in PyTorch on a device), or a name:
        ``'memory'``, ``'out-of-core'``, ``'torch'``, ``'torch:DEVICE'``, or a
        scheduler address ``'tcp://host:8786'``. ``None``: in memory, or out of
        core when the cube is memory-mapped and would not fit. Every engine
        but ``InMemory`` needs the block engine of the solver (``lam_mode``
        other than ``'adaptive'``, ``shrink='column'``; out of core also
        ``sparsity`` other than ``'l1'``). The scores do not depend on it
        beyond float rounding.
    n_jobs, scheduler, chunk_size, out_of_core, backend, device : deprecated
        The execution parameters before ``engine``; still accepted with a
        ``FutureWarning`` (mapped by :func:`legacy_engine`), to be removed in
        the next release. Not together with ``engine``.

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

    #: Accepted for one more release (FutureWarning), not listed as valid parameters.
    deprecated_params: ClassVar[tuple[str, ...]] = LEGACY_EXECUTION

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **FactorizationDetector._parameter_constraints,
        "lam": positive(),
        "beta": positive(),
        "pool": at_least(1),
        "combine": [StrOptions(set(COMBINATIONS))],
        "pool_global": ["boolean"],
        "robust_global": ["boolean"],
        "score_cube": ["boolean"],
        "suspect_level": [Interval(Real, 0.0, 1.0, closed="neither")],
        "m_split": [StrOptions(set(M_SPLITS))],
        "noise_margin": positive(),
        "encoder": ["boolean"],
        "sparsity": [StrOptions(set(SPARSITY))],
        "shrink": [StrOptions(set(SHRINK))],
        "lam_mode": [StrOptions(set(SCALE_MODES))],
        "engine": [Engine, str, None],  # a name is checked by rednmf.engines.resolve_engine
        # deprecated: mapped onto engine by legacy_engine
        "n_jobs": [*at_least(1), Options(Integral, {-1}), None, Hidden(StrOptions({_DEPRECATED}))],
        "scheduler": "no_validation",  # an address or a distributed.Client
        "chunk_size": [*at_least(1), None, Hidden(StrOptions({_DEPRECATED}))],
        "out_of_core": ["boolean", None, Hidden(StrOptions({_DEPRECATED}))],
        "backend": [StrOptions(set(BACKENDS)), Hidden(StrOptions({_DEPRECATED}))],
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
        combine: str = "sum",
        pool_global: bool = True,
        robust_global: bool = True,
        score_cube: bool = True,
        suspect_level: float = SUSPECT_LEVEL,
        m_split: str = "factored",
        noise_margin: float = 3.0,
        encoder: bool = True,
        sparsity: str = "l21",
        shrink: str = "column",
        lam_mode: str = "noise",
        scale: str = "minmax",
        dtype: str = "float32",
        contamination: float = 0.01,
        engine: Engine | str | None = None,
        n_jobs: Any = _DEPRECATED,
        scheduler: Any = _DEPRECATED,
        chunk_size: Any = _DEPRECATED,
        out_of_core: Any = _DEPRECATED,
        backend: Any = _DEPRECATED,
        device: Any = _DEPRECATED,
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
        self.pool_global = pool_global
        self.robust_global = robust_global
        self.score_cube = score_cube
        self.suspect_level = suspect_level
        self.m_split = m_split
        self.noise_margin = noise_margin
        self.encoder = encoder
        self.sparsity = sparsity
        self.shrink = shrink
        self.lam_mode = lam_mode
        self.scale = scale
        self.dtype = dtype
        self.contamination = contamination
        self.engine = engine
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

    def _block_engine(self) -> bool:
        return self.lam_mode != "adaptive" and (self.shrink == "column" or self.sparsity != "l21")

    def _can_fit_out_of_core(self) -> bool:
        return self._block_engine() and self.sparsity != "l1"

    # -- where the fit runs -----------------------------------------------------------

    def _engine(self, *, warn: bool = True) -> Engine:
        """The engine of the fit, checked: ``engine``, or the one the deprecated parameters name.

        Raises
        ------
        InputError
            For an invalid engine, both ``engine`` and a deprecated parameter,
            or an engine the model cannot run on.
        """
        legacy = {k: getattr(self, k) for k in LEGACY_EXECUTION}
        legacy = {k: v for k, v in legacy.items() if not (isinstance(v, str) and v == _DEPRECATED)}
        if not legacy:
            engine = resolve_engine(self.engine)
        elif self.engine is not None:
            names = ", ".join(legacy)
            raise InputError(
                f"engine and {names} are exclusive ({names}: deprecated, now given by the "
                "engine); pass engine only"
            )
        else:
            engine = resolve_engine(legacy_engine(**legacy))
            if warn:
                warnings.warn(
                    f"REDNMF({', '.join(legacy)}) is deprecated and will be removed in the "
                    f"next release; pass engine={engine!r} (rednmf.engines)",
                    FutureWarning,
                    stacklevel=5,  # the caller of fit (through _fit_context and _fit)
                )
        if not self._block_engine():
            if isinstance(engine, TorchEngine | DaskEngine) or engine.out_of_core:
                raise InputError(
                    f"{type(engine).__name__} runs only the block engine: use lam_mode 'noise', "
                    "'svd' or 'absolute' and shrink='column'"
                )
        elif engine.out_of_core and self.sparsity == "l1":
            raise InputError(
                "out of core needs the block engine with sparsity 'l21' or 'none'; "
                "use engine=None (in memory)"
            )
        return engine

    def _out_of_core(self, engine: Engine, cube: Any) -> bool:
        """Whether ``engine`` fits ``cube`` out of core: always, never, or if it does not fit."""
        if engine.out_of_core is not None:
            return bool(engine.out_of_core)
        if not (self._can_fit_out_of_core() and does_not_fit(cube)):
            return False
        if engine.backend == "torch":
            raise InputError(
                "the scene does not fit in memory and TorchEngine fits in memory only; "
                "use engine=None (out of core)"
            )
        return True

    def _fit(
        self, cube: Any, mask: np.ndarray | None, callback: Callable[..., None] | None
    ) -> None:
        """Fit and score (see :meth:`BaseDetector.fit`) on the engine's session."""
        callback = as_fit_callback(callback)
        engine = self._engine()
        if self._out_of_core(engine, cube):
            self._check_window_fits(tuple(cube.shape))
            with engine.session() as run:
                scores, valid, kept = self._fit_out_of_core(
                    cube, mask, run, callback, engine.temp_dir
                )
        else:
            data, valid, kept = self._valid_cube(cube, mask)
            with engine.session() as run:
                scores = self._fit_in_memory(data, run, callback)
        self._set_results(np.asarray(scores, dtype=np.float64), valid, kept)

    def _fit_scores(self, cube: np.ndarray, callback: FitCallback | None = None) -> np.ndarray:
        with self._engine().session() as run:
            return self._fit_in_memory(cube, run, callback)

    def _fit_in_memory(
        self, cube: np.ndarray, run: Any, callback: Callable[[int, float], None] | None
    ) -> np.ndarray:
        """Scores of a validated cube, fitted and scored on the session ``run``.

        On NumPy in this process, for a scene larger than
        :data:`rednmf.solvers.rednmf_blocks.STORED_S_BYTES` in the working
        dtype, the block engine reads the cube scaled block by block
        (:class:`rednmf.preprocessing.ScaledMatrix`, no scaled copy), as it
        forms ``S`` (not stored).
        """
        lazy = (
            getattr(run, "backend", "numpy") == "numpy"
            and getattr(run, "client", None) is None
            and self._block_engine()
            and cube.size * check_dtype(self.dtype).itemsize > rednmf_blocks.STORED_S_BYTES
        )
        X, shape = self._data_matrix(cube, lazy=lazy)
        xp = get_backend(getattr(run, "backend", "numpy"), getattr(run, "device", None))
        W0, H0, M0 = self._initial_factors(X, xp=xp)
        res = self._solve(X, W0, H0, M0, run=run, callback=callback)
        del W0, H0, M0  # the solver works on copies
        self._set_factors(res)
        projected = self._project_cube(X, shape)  # before the evidence takes X's buffer
        E = self._evidence(X, res, shape, run)
        del X, res  # the scaled data are not needed to score: let them go first
        return self._score(E, shape, run, projected)

    def _fit_out_of_core(
        self,
        cube: Any,
        mask: np.ndarray | None,
        run: Any,
        callback: Callable[[int, float], None] | None,
        temp_dir: Any = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scores, valid pixels and kept bands, with the scene and ``S`` on disk."""
        from rednmf.outofcore import CubeMatrix, scan_cube

        valid, kept, fill, lo, hi = scan_cube(cube, mask, self.min_bands, "REDNMF")
        X = CubeMatrix(
            cube, check_dtype(self.dtype), kept=kept, valid=valid, fill=fill, lo=lo, hi=hi,
            scale=self.scale,
        )  # fmt: skip
        self.scaling_ = scale_params(np.array([X.lo, X.hi]), self.scale, X.dtype)
        W0, H0, M0 = self._initial_factors(X)  # type: ignore[arg-type]
        with tempfile.TemporaryDirectory(prefix="rednmf-", dir=temp_dir) as tmp:
            S = np.lib.format.open_memmap(
                Path(tmp) / "S.npy", mode="w+", dtype=X.dtype, shape=X.shape, fortran_order=True
            )
            res = self._solve(X, W0, H0, M0, anomaly_out=S, run=run, callback=callback)  # type: ignore[arg-type]
            self._set_factors(res)
            self._set_fit_attributes(res)
            self._anomaly = None
            tau = self._evidence_threshold(res)
            E = run.kept_evidence(None if tau is None else res.W, tau)  # fitted on a cluster
            if E is None:  # S on disk, or the residual X - WH shrunk at tau, in its place
                E = S if tau is None else anomaly_evidence(X, res.W, res.H, tau, out=S)
            scores = self._score(E, valid.shape, run, self._project_cube(X, valid.shape))
            del S, E, res
        return scores, valid, kept

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
        projected = self._project_cube(X, (rows, cols))
        E = anomaly_evidence(X, self.components_, H, self.evidence_threshold_, out=X)
        scores = np.asarray(self._score(E, (rows, cols), None, projected), dtype=np.float64)
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
        return {
            "pool": self.pool,
            "noise_var": noise_var,
            "combine": self.combine,
            "pool_global": self.pool_global,
            "robust_global": self.robust_global,
            "suspect_level": self.suspect_level,
        }

    def _scores_cube(self) -> bool:
        return bool(self.score_cube) and self.scorer == "multiscale"

    def _project_cube(self, X: Any, shape: tuple[int, int]) -> np.ndarray | None:
        """The scaled data ``X`` (bands x pixels) on its components above its own noise.

        ``None`` unless the cube is scored with the evidence (``score_cube``).
        Read a block of pixels at a time
        (:func:`rednmf.scoring.brad.project_by_blocks`), so the same arithmetic
        serves an array, a :class:`rednmf.outofcore.CubeMatrix` and every engine.
        """
        if not self._scores_cube():
            return None
        if not isinstance(X, np.ndarray) and hasattr(X, "cpu"):  # a torch tensor
            X = X.cpu().numpy()
        return project_by_blocks(X, shape, self.n_pca, "estimate")

    def _score(
        self,
        E: Any,
        shape: tuple[int, int],
        run: Any = None,
        projected_cube: np.ndarray | None = None,
    ) -> np.ndarray:
        """Score the evidence handle ``E`` where it is (:func:`rednmf.engines.score_evidence`).

        ``projected_cube``: the data the evidence came from (:meth:`_project_cube`),
        scored with it. Without a session (new pixels, :meth:`decision_function`)
        on the engine's array backend, in this process.
        """
        if run is None:
            engine = self._engine(warn=False)
            run = LocalSession(backend=engine.backend, device=engine.device)
        return score_evidence(
            E, shape, session=run, projected_cube=projected_cube, **self._scorer_params()
        )

    def _solve(
        self,
        X: np.ndarray,
        W: np.ndarray,
        H: np.ndarray,
        M: np.ndarray,
        anomaly_out: np.ndarray | None = None,
        *,
        run: Any = None,
        callback: Callable[[int, float], None] | None = None,
    ) -> RednmfResult:
        """:func:`rednmf_solve` on the session ``run`` (its threads, parts and backend)."""
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
            callback=callback,
            anomaly_out=anomaly_out,
            **(LocalSession() if run is None else run).solver_kwargs(),
        )

    def _evidence(
        self, X: np.ndarray, res: RednmfResult, shape: tuple[int, int], run: Any = None
    ) -> Any:
        """The evidence handle of an in-memory fit.

        ``S`` itself, a Dask array on the workers, or the S step on the final
        residual at the evidence threshold: in NumPy formed block by block on
        demand (:class:`rednmf.solvers.rednmf.EvidenceMatrix`: no cube of it
        exists, the scorer projects it block by block), on torch in the
        buffer of the scaled data, which is not needed any more. Keeps what
        :meth:`anomaly` needs: ``S`` as a cube when the solver returned an
        array, else the factors of its S step (``W``, ``H``, the threshold).
        """
        self._set_fit_attributes(res)
        S = res.S
        if isinstance(S, EvidenceMatrix):
            self._anomaly = (S.W, S.H, S.tau)
        else:
            self._anomaly = matrix_to_cube(S, shape)
        tau = self._evidence_threshold(res)
        run = LocalSession() if run is None else run
        E = run.kept_evidence(
            None if tau is None else res.W, tau
        )  # fitted on a cluster: left there
        if E is not None:
            return E
        if tau is None:
            return S
        xp = get_backend(run.backend, run.device)
        if xp.name == "numpy":
            return EvidenceMatrix(X, res.W, res.H, tau)
        return anomaly_evidence(X, res.W, res.H, tau, out=X, xp=xp)

    def _fitted_matrix(
        self, X: Any, mask: np.ndarray | None
    ) -> tuple[np.ndarray, tuple[int, int]]:
        """The fitted scene ``X`` as :meth:`fit` scaled it (pixel-major ``d x n``), and its shape.

        Raises
        ------
        InputError
            If ``X`` does not have the fitted scene's pixels and bands.
        """
        check_is_fitted(self)
        cube, _ = self._as_cube(X, None)
        data, _, _ = self._valid_cube(cube, mask)
        rows, cols, d = data.shape
        if rows * cols != self.coefficients_.shape[1] or d != self.components_.shape[0]:
            raise InputError(
                f"X has {rows * cols} pixels and {d} usable bands, the fitted scene "
                f"{self.coefficients_.shape[1]} and {self.components_.shape[0]}: pass the "
                "scene (and mask) given to fit"
            )
        Xm = np.ascontiguousarray(data).reshape(rows * cols, d).T
        Xm = scale_data(Xm, self.scale, dtype=check_dtype(self.dtype), params=self.scaling_)
        return Xm, (rows, cols)

    def anomaly(self, X: Any, *, mask: np.ndarray | None = None) -> np.ndarray:
        """``S``, the fitted anomaly part, of the fitted scene ``X`` as a cube.

        A cube the size of the scene, which :meth:`fit` does not keep when it
        need not: on the block engine in this process the solver keeps the
        factors of the final S step instead (:class:`rednmf.solvers.rednmf.RednmfResult`),
        and this forms ``S`` from them and ``X`` (the scene and the ``mask``
        given to :meth:`fit`), equal bit for bit to the fit's. Otherwise
        (another engine, the whole-matrix loop) the fit's ``S`` was kept and
        is returned.

        Returns
        -------
        ndarray of shape (rows, cols, len(bands_kept_))
            ``S`` on the scaled data, in the working ``dtype``.

        Raises
        ------
        InputError
            If ``X`` does not have the fitted scene's pixels, or the fit ran
            out of core (``S`` was not kept).
        """
        check_is_fitted(self)
        if self._anomaly is None:
            raise InputError(
                "the fit ran out of core and did not keep S; fit in memory "
                "(engine='memory') to keep it"
            )
        if isinstance(self._anomaly, np.ndarray):
            self._fitted_matrix(X, mask)  # the same checks
            return self._anomaly
        Xm, shape = self._fitted_matrix(X, mask)
        W, H, tau = self._anomaly
        return matrix_to_cube(anomaly_evidence(Xm, W, H, tau, out=Xm), shape)

    def evidence(self, X: Any, *, mask: np.ndarray | None = None) -> np.ndarray:
        """The evidence that the fit scored, of the fitted scene ``X``.

        A cube the size of the scene, so :meth:`fit` scores it block by block
        and does not keep it; this recomputes it from ``X`` (the scene and the
        ``mask`` given to :meth:`fit`) with the fitted factors: :meth:`anomaly`
        when the fit's ``S`` was scored, otherwise the S step (17) on the final
        residual ``X - W H`` at ``evidence_threshold_``
        (:func:`rednmf.solvers.rednmf.anomaly_evidence`), equal to what was
        scored.

        Returns
        -------
        ndarray of shape (rows, cols, len(bands_kept_))
            On the scaled data, in the working ``dtype``.

        Raises
        ------
        InputError
            As :meth:`anomaly`.
        """
        check_is_fitted(self)
        if self.sparsity != "none" and self.noise_std_ is None:  # the fit's S was scored
            return self.anomaly(X, mask=mask)
        Xm, shape = self._fitted_matrix(X, mask)
        tau = self.evidence_threshold_
        E = anomaly_evidence(Xm, self.components_, self.coefficients_, tau, out=Xm)
        return matrix_to_cube(E, shape)
