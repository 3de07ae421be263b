"""REDNMF detector: the estimator around the solvers of :mod:`rednmf.solvers.rednmf`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

from rednmf._memory import DiskArray
from rednmf._validation import check_choice, check_dtype, matrix_to_cube
from rednmf.backend import get_backend
from rednmf.detectors._base import positive
from rednmf.detectors._factorization import SCALE_MODES, FactorizationDetector
from rednmf.engines import (
    DaskEngine,
    Engine,
    LocalSession,
    OutOfCoreData,
    TorchEngine,
    resolve_engine,
)
from rednmf.exceptions import InputError
from rednmf.preprocessing import ScaledMatrix, scale_data, scale_params
from rednmf.scoring.from_matrix import project_matrix, score_matrix
from rednmf.scoring.scorers import MultiScale, Scorer
from rednmf.solvers import rednmf_blocks
from rednmf.solvers._driver import as_fit_callback
from rednmf.solvers.rednmf import (
    BLOCK_LAM_MODES,
    M_SPLITS,
    EvidenceMatrix,
    RednmfResult,
    anomaly_evidence,
    check_lam_mode,
    rednmf_solve,
    rednmf_solve_blocks,
)

__all__ = ["PRESETS", "REDNMF", "SPARSITY"]

#: REDNMF's ``sparsity`` -> the solver's ``(sparsity, shrink)``: the L2,1 norm
#: over the columns of ``S`` (pixels, Sec. 4.2) or over its rows (bands, eq. 17
#: as printed), the element-wise L1 norm, or no ``S``.
SPARSITY: dict[str, tuple[str, str]] = {
    "l21": ("l21", "column"),
    "l21-row": ("l21", "row"),
    "l1": ("l1", "column"),
    "none": ("none", "column"),
}

#: Named configurations: parameters that differ from REDNMF's defaults.
#: ``'paper'`` is the paper's model as we read it before the robust defaults
#: (docs/choices.md): the S step's threshold relative to the median residual of
#: a rank-r SVD, the fixed 9/27 BRAD on ``S`` with 20 principal components, and
#: the M step (15) split as printed.
PRESETS: dict[str, dict[str, Any]] = {
    "robust": {},
    "paper": {"lam_mode": "svd", "scorer": "brad", "m_split": "elementwise"},
}


class REDNMF(FactorizationDetector):
    r"""Robust asymmetric encoder-decoder NMF anomaly detector (Moradi et al., 2026).

    Model (eq. 10)::

        X ~ WH + S,   H ~ M(X - S),
        min ||X - WH - S||_F^2 + beta ||H - M(X - S)||_F^2 + lam ||S||_{2,1},
        W, H, M >= 0,

    solved by the multiplicative updates (14)-(16) and the L2,1 shrinkage (17)
    (see :mod:`rednmf.solvers.rednmf`). The threshold of (17) accounts for the
    scene's noise (``lam_mode='noise'``, :mod:`rednmf.solvers.noise`). Pixels
    are scored by the ``scorer`` object (:mod:`rednmf.scoring.scorers`), by
    default the multi-scale detectors (:func:`rednmf.scoring.multiscale`:
    local and global RX, at a pixel and pooled, on one calibrated scale) on the
    anomaly evidence and on the cube itself with the pixels the evidence flags
    kept out of the cube's background statistics (the scorer's ``score_cube``,
    :func:`rednmf.scoring.multiscale.cube_and_evidence`: the background ``WH``
    absorbs most of every anomaly, which only the cube keeps); or by BRAD, a
    local dual-window Mahalanobis detector (:func:`rednmf.scoring.cube.brad`), or by
    the column norm ``||S_j||_2``, of the evidence alone.

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
        (``noise_margin``), so that noise alone does not enter ``S``; on a
        scene whose rank-``n_components`` residual is noise alone (a synthetic
        scene of fewer endmembers, say) nothing is left for ``lam`` to scale,
        and it has no effect (``evidence_threshold_`` is 0).
    beta : float, default=1.0
        Weight of the encoder term ``||H - M(X - S)||^2``; 0 drops it (the
        ``-Encoder`` ablation).
    max_iter : int, default=100
        Maximum number of iterations. Measured among 1 to 100 with every other
        default (``docs/choices.md``, "The iteration budget"): on the 12 real
        scenes detection is best after the first few iterations and falls as
        the fit goes on (mean AUC at sigma = 0.05: 0.9893 after 5, 0.9861
        after 100), but large targets need the iterations, which move them
        from the background into the evidence: planted 15 x 15 targets at
        sigma = 0.05 score 0.9607 after 5 iterations and 0.9867 after 100
        (``msrx`` 0.9860). Only 100 finds targets of every size as well as
        ``msrx``; ``max_iter=5`` is the measured choice for scenes of small
        targets.
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
    scorer : Scorer or {'multiscale', 'brad', 'norm'}, default='multiscale'
        How pixels are scored from the anomaly evidence, an object of
        :mod:`rednmf.scoring.scorers` or its name (with its defaults):
        :class:`~rednmf.scoring.scorers.MultiScale` (the tail probabilities
        of a local and a global RX, each also pooled, combined; by default
        also the cube itself, scored against the background the evidence
        leaves: ``score_cube``), :class:`~rednmf.scoring.scorers.BRAD` (the
        local RX alone) or :class:`~rednmf.scoring.scorers.Norm` (the column
        norm). Its parameters are ``scorer__inner`` and the like
        (``get_params(deep=True)``, ``set_params``). With ``lam_mode='noise'``
        the scorer keeps only the evidence's principal components above the
        noise.
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
    sparsity : {'l21', 'l21-row', 'l1', 'none'}, default='l21'
        Regulariser of ``S``: the L2,1 norm with pixels as groups (as Sec. 4.2
        says), or with bands as groups (``'l21-row'``, eq. 17 as printed).
        ``'l1'`` is the ``-L2,1`` ablation (element-wise sparsity, as RNMF);
        ``'none'`` fits without ``S`` and scores the residual ``X - WH``.
    lam_mode : {'noise', 'svd', 'adaptive', 'absolute'}, default='noise'
        Scale of ``lam`` (see :mod:`rednmf.solvers.rednmf`): ``'noise'``
        relative to the structured part of the rank-r SVD residual, plus the
        noise it carries (fixed; :mod:`rednmf.solvers.noise`); ``'svd'`` relative
        to the residual of a rank-r truncated SVD (fixed), ``'adaptive'``
        relative to the current residual (every iteration), ``'absolute'`` as
        given on the scaled data (the paper's ``(lam, beta) = (50, 1)``).
    dtype : {'float32', 'float64'}, default='float32'
        Working precision of the solver.
    contamination : float, default=0.01
        Fraction of pixels labelled anomalous in ``labels_``.
    engine : Engine, str or None, default=None
        Where and how the fit runs (:mod:`rednmf.engines`):
        :class:`~rednmf.engines.InMemory` (``n_jobs`` threads over pixel
        blocks; the default), :class:`~rednmf.engines.OutOfCore` (a scene
        larger than memory read block by block from its file, ``S`` in a
        temporary file, not kept: :meth:`anomaly` then raises),
        :class:`~rednmf.engines.DaskEngine` (the pixel chunks and the scoring
        on the workers of a Dask cluster) or :class:`~rednmf.engines.TorchEngine`
        (the updates and BRAD in PyTorch on a device), or a name:
        ``'memory'``, ``'out-of-core'``, ``'torch'``, ``'torch:DEVICE'``, or a
        scheduler address ``'tcp://host:8786'``. ``None``: in memory, or out of
        core when the cube is memory-mapped and would not fit. Every engine
        but ``InMemory`` needs the block engine of the solver (``lam_mode``
        other than ``'adaptive'``, ``sparsity`` other than ``'l21-row'``; out
        of core also other than ``'l1'``). The scores do not depend on it
        beyond float rounding (:mod:`rednmf.engines` says how far).

    The cube is always min-max scaled to [0, 1] before the fit (``scaling_``).

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
        band (of the min-max scaled data; :mod:`rednmf.solvers.noise`).
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

    #: The scaling of the cube (not a parameter: REDNMF's model is on [0, 1]).
    scale: ClassVar[str] = "minmax"  # type: ignore[misc]
    #: A scorer given by name keeps the scorer class's defaults (ridge 0.01).
    _scorer_defaults: ClassVar[dict[str, Any]] = {}

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **{k: v for k, v in FactorizationDetector._parameter_constraints.items() if k != "scale"},
        "lam": positive(),
        "beta": positive(),
        "m_split": [StrOptions(set(M_SPLITS))],
        "noise_margin": positive(),
        "sparsity": [StrOptions(set(SPARSITY))],
        "lam_mode": [StrOptions(set(SCALE_MODES))],
        "engine": [Engine, str, None],  # a name is checked by rednmf.engines.resolve_engine
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
        scorer: Scorer | str = "multiscale",
        m_split: str = "factored",
        noise_margin: float = 3.0,
        sparsity: str = "l21",
        lam_mode: str = "noise",
        dtype: str = "float32",
        contamination: float = 0.01,
        engine: Engine | str | None = None,
    ) -> None:
        self.n_components = n_components
        self.lam = lam
        self.beta = beta
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.random_state = random_state
        self.scorer = scorer
        self.m_split = m_split
        self.noise_margin = noise_margin
        self.sparsity = sparsity
        self.lam_mode = lam_mode
        self.dtype = dtype
        self.contamination = contamination
        self.engine = engine

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
        check_lam_mode(self.lam_mode, *SPARSITY[self.sparsity])

    def _block_engine(self) -> bool:
        return self.lam_mode in BLOCK_LAM_MODES and self.sparsity != "l21-row"

    def _can_fit_out_of_core(self) -> bool:
        return self._block_engine() and self.sparsity != "l1"

    # -- where the fit runs -----------------------------------------------------------

    def _engine(self) -> Engine:
        """The engine of the fit, checked.

        Raises
        ------
        InputError
            For an invalid engine, or an engine the model cannot run on.
        """
        engine = resolve_engine(self.engine)
        if not self._block_engine():
            if isinstance(engine, TorchEngine | DaskEngine) or engine.out_of_core:
                raise InputError(
                    f"{type(engine).__name__} runs only the block engine: use lam_mode 'noise', "
                    "'svd' or 'absolute' and sparsity other than 'l21-row'"
                )
        elif engine.out_of_core and self.sparsity == "l1":
            raise InputError(
                "out of core needs the block engine with sparsity 'l21' or 'none'; "
                "use engine=None (in memory)"
            )
        return engine

    def _fit(
        self, cube: Any, mask: np.ndarray | None, callback: Callable[..., None] | None
    ) -> None:
        """Fit and score (see :meth:`BaseDetector.fit`) on the engine's session."""
        callback = as_fit_callback(callback)
        engine = self._engine()
        if engine.fits_out_of_core(cube, self._can_fit_out_of_core()):
            self._check_window_fits(tuple(cube.shape))
            with (
                engine.session() as run,
                engine.out_of_core_data(
                    cube, mask, dtype=check_dtype(self.dtype), scale=self.scale,
                    min_bands=self.min_bands, name="REDNMF",
                ) as data,
            ):  # fmt: skip
                scores = self._fit_out_of_core(data, run, callback)
            valid, kept = data.valid, data.kept
        else:
            data, valid, kept = self._valid_cube(cube, mask)
            with engine.session() as run:
                scores = self._fit_in_memory(data, run, callback)
        self._set_results(np.asarray(scores, dtype=np.float64), valid, kept)

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
        # The cube's projection: of a view of the cube, made once the evidence's detectors
        # have run (the two projections are never held together); otherwise now, before the
        # evidence takes X's buffer (torch) and so that X can go.
        projected: Any = (
            functools.partial(self._project_cube, X, shape)
            if isinstance(X, ScaledMatrix) and self._scores_cube()
            else self._project_cube(X, shape)
        )
        E = self._evidence(X, res, shape, run)
        del X, res  # the scaled data are not needed to score: let them go first
        return self._score(E, shape, run, projected)

    def _fit_out_of_core(
        self, data: OutOfCoreData, run: Any, callback: Callable[[int, float], None] | None
    ) -> np.ndarray:
        """Scores of a scene fitted out of core (the engine's ``data``: the scene and ``S``
        on disk)."""
        X, S = data.X, data.S
        self.scaling_ = scale_params(np.array([X.lo, X.hi]), self.scale, X.dtype)
        W0, H0, M0 = self._initial_factors(X)  # type: ignore[arg-type]
        res = self._solve(X, W0, H0, M0, anomaly_out=S, run=run, callback=callback)  # type: ignore[arg-type]
        self._set_factors(res)
        self._set_fit_attributes(res)
        self._anomaly = None
        tau = self._evidence_threshold(res)
        E = run.kept_evidence(None if tau is None else res.W, tau)  # fitted on a cluster
        if E is None:  # S on disk, or the residual X - WH shrunk at tau, in its place
            E = S if tau is None else anomaly_evidence(X, res.W, res.H, tau, out=S)
        del S, res
        return self._score(E, data.valid.shape, run, self._project_cube(X, data.valid.shape))

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
        return self.beta > 0 and self.sparsity in ("l21", "none")

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

        With ``beta=0`` (no trained ``M``) or an S step that does not act on
        pixels one by one (``sparsity`` ``'l1'`` or ``'l21-row'``), a copy with
        the same parameters is fitted on ``X`` instead.

        Parameters and returns as in
        :meth:`rednmf.detectors._base.BaseDetector.decision_function`.
        """
        return super().decision_function(X, mask=mask, image_shape=image_shape)

    def _scorer_extras(self) -> dict[str, Any]:
        return {"noise_var": None if self.noise_std_ is None else self.noise_std_**2}

    def _scores_cube(self) -> bool:
        scorer = self._scorer()
        return isinstance(scorer, MultiScale) and bool(scorer.score_cube)

    def _project_cube(self, X: Any, shape: tuple[int, int]) -> np.ndarray | None:
        """The scaled data ``X`` (bands x pixels) on its components above its own noise.

        ``None`` unless the cube is scored with the evidence (the scorer's
        ``score_cube``).
        Read a block of pixels at a time, in this process
        (:func:`rednmf.scoring.from_matrix.project_matrix`), so the same arithmetic
        serves an array, a :class:`rednmf.outofcore.CubeMatrix` and every engine.
        """
        if not self._scores_cube():
            return None
        if not isinstance(X, np.ndarray) and hasattr(X, "cpu"):  # a torch tensor
            X = X.cpu().numpy()
        return project_matrix(X, shape, self._scorer().n_pca, "estimate")  # type: ignore[union-attr]

    def _score(
        self,
        E: Any,
        shape: tuple[int, int],
        run: Any = None,
        projected_cube: np.ndarray | Callable[[], np.ndarray] | None = None,
    ) -> np.ndarray:
        """Score the evidence handle ``E`` where it is: on the session ``run``
        (:func:`rednmf.scoring.from_matrix.score_matrix`).

        ``projected_cube``: the data the evidence came from (:meth:`_project_cube`),
        scored with it, or a callable that projects it when the scorer needs it.
        Without a session (new pixels, :meth:`decision_function`) on the engine's
        array backend, in this process.
        """
        if run is None:
            engine = self._engine()
            run = LocalSession(backend=engine.backend, device=engine.device)
        return score_matrix(E, shape, run, projected_cube=projected_cube, **self._scorer_params())

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
        """Fit the model: :func:`rednmf_solve_blocks` on the session ``run`` (its threads,
        parts and backend), or :func:`rednmf_solve` for the S steps that it alone runs."""
        sparsity, shrink = SPARSITY[self.sparsity]
        model = dict(
            lam=self.lam, beta=self.beta, max_iter=self.max_iter, tol=self.tol,
            sparsity=sparsity, lam_mode=self.lam_mode, m_split=self.m_split, callback=callback,
        )  # fmt: skip
        if not self._block_engine():  # _engine() has refused every session but this process
            return rednmf_solve(X, W, H, M, shrink=shrink, **model)
        model.update(noise_margin=self.noise_margin, anomaly_out=anomaly_out)
        execution = (LocalSession() if run is None else run).solver_kwargs()
        return rednmf_solve_blocks(X, W, H, M, **model, **execution)

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
        if isinstance(S, EvidenceMatrix):  # codes kept on disk: only anomaly() reads them
            self._anomaly = (S.W, DiskArray(S.H), S.tau)
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
        factors of the final S step instead (:class:`rednmf.solvers.rednmf.RednmfResult`;
        its codes, ``r x pixels``, in an anonymous temporary file:
        :class:`rednmf._memory.DiskArray`, as the scoring never reads them),
        and this forms ``S`` from them and ``X`` (the scene and the ``mask``
        given to :meth:`fit`), equal bit for bit to the fit's. Otherwise
        (another engine, the whole-matrix loop, or a scene small enough that
        the solver stored ``S``) the fit's ``S`` was kept and is returned:
        ``X`` is then only checked for its shape, not its values.

        Returns
        -------
        ndarray of shape (rows, cols, len(bands_kept_))
            ``S`` on the scaled data, in the working ``dtype``.

        Raises
        ------
        InputError
            If ``X`` does not have the fitted scene's shape (rows, columns and
            bands), or the fit ran out of core (``S`` was not kept).
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
        return matrix_to_cube(anomaly_evidence(Xm, W, H.load(), tau, out=Xm), shape)

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
