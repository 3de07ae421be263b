"""Code shared by the factorisation detectors: REDNMF and the NMF family.

Every NMF-family detector does the same around its solver: validate the
shared parameters (rank, iterations, tolerance, initialisation, scorer,
scaling, precision), turn the cube into ``X`` (bands x pixels),
scale it, draw the initial factors from ``random_state``, run the solver on
arrays, and score an evidence matrix (a residual or an anomaly matrix) with
its ``scorer`` (:mod:`rednmf.scoring.scorers`) through
:func:`rednmf.scoring.from_matrix.score_matrix`. :class:`FactorizationDetector`
does all of that once; a method supplies only its ``_parameter_constraints``,
its solver (``_solver`` and :meth:`_solver_params`, or its own :meth:`_solve`)
and :meth:`_evidence`.

The scale of a method's weight (``lam``, ``delta``, ``gamma``) is named by one
vocabulary, :data:`SCALE_MODES`; each method accepts the subset it implements.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from sklearn.utils._param_validation import Options, StrOptions

from rednmf._validation import check_dtype
from rednmf.detectors._base import BaseDetector, at_least, positive
from rednmf.exceptions import InputError
from rednmf.preprocessing import SCALINGS, ScaledMatrix, scale_data, scale_params
from rednmf.scoring.from_matrix import InProcess, score_matrix
from rednmf.scoring.scorers import SCORER_CLASSES, Norm, Scorer
from rednmf.solvers._driver import FitCallback
from rednmf.solvers.init import INIT_METHODS, initialize_factors
from rednmf.solvers.modes import SCALE_MODES
from rednmf.solvers.nmf import NMFResult

__all__ = ["SCALE_MODES", "FactorizationDetector"]


class FactorizationDetector(BaseDetector):
    """Base class of the NMF-family detectors (not registered itself).

    Subclasses store these parameters in ``__init__`` (next to their own):
    ``n_components, max_iter, tol, init, random_state, scorer, scale, dtype,
    contamination`` (REDNMF: all but ``scale``, always ``'minmax'``); their
    meaning is that of :class:`rednmf.detectors.nmf.NMF`. A ``scorer`` given by
    name takes ``ridge=0.1`` (:attr:`_scorer_defaults`), the NMF family's
    BRAD ridge.

    After ``fit`` every subclass has ``components_`` (``W``, bands x rank, on
    the scaled data), ``coefficients_`` (``H``, rank x pixels), ``n_iter_``,
    ``objective_`` (the method's objective after each iteration),
    ``converged_`` and ``scaling_`` (the ``(offset, divisor)`` of the scaling,
    :func:`rednmf.preprocessing.scale_params`).
    """

    n_components: int
    max_iter: int
    tol: float
    init: str
    random_state: int | None
    scorer: Scorer | str
    scale: str
    dtype: str

    _scorer_defaults: ClassVar[dict[str, Any]] = {"ridge": 0.1}

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseDetector._parameter_constraints,
        "n_components": at_least(1),
        "max_iter": at_least(1),
        "tol": positive(),
        "init": [StrOptions(set(INIT_METHODS))],
        "random_state": [*at_least(0), None],
        "scorer": [Scorer, StrOptions(set(SCORER_CLASSES))],
        "scale": [StrOptions(set(SCALINGS))],
        "dtype": [StrOptions({"float32", "float64"}), Options(type, {np.float32, np.float64})],
    }

    def needs_space(self) -> bool:
        """True unless the scorer is :class:`~rednmf.scoring.scorers.Norm` (a pixel's own norm)."""
        return not isinstance(self._scorer(), Norm)

    #: The method's solver (:func:`rednmf.solvers.nmf.nmf_solve` and its relatives).
    _solver: ClassVar[Callable[..., NMFResult]]

    def _solve(
        self,
        X: np.ndarray,
        W: np.ndarray,
        H: np.ndarray,
        M: np.ndarray,
        callback: FitCallback | None = None,
    ) -> NMFResult:
        """Run the method's solver from the initial factors (``M``: encoder, REDNMF only).

        :attr:`_solver` with the shared parameters and :meth:`_solver_params`; ``H``
        is the solver's to overwrite.
        """
        return type(self)._solver(
            X, W, H, max_iter=self.max_iter, tol=self.tol, callback=callback, overwrite_H=True,
            **self._solver_params(),
        )  # fmt: skip

    def _solver_params(self) -> dict[str, Any]:
        """The method's own arguments of :attr:`_solver`."""
        return {}

    @abstractmethod
    def _evidence(self, X: np.ndarray, res: NMFResult, shape: tuple[int, int]) -> Any:
        """Return the bands x pixels matrix to score (read ``E[:, a:b]``); may store attributes."""

    def _scoring_backend(self) -> tuple[str, Any]:
        """Array backend and device of the scorer (:mod:`rednmf.backend`)."""
        return "numpy", None

    #: Whether the solver takes ``X`` pixel-major (a Fortran-ordered ``d x n``, the
    #: layout of the cube itself, so that scaling makes the only copy, a block of
    #: pixels is contiguous and ``S`` reshapes back to a cube for free).
    _pixel_major = True

    #: The NMF family scales a scene whose scaled matrix is at most this many bytes
    #: into a copy; a larger one is read scaled block by block
    #: (:class:`~rednmf.preprocessing.ScaledMatrix`, the same values, no copy).
    _stored_bytes = 64 << 20

    def _data_matrix(
        self, cube: np.ndarray, lazy: bool = False
    ) -> tuple[np.ndarray, tuple[int, int]]:
        """The scaled ``d x n`` data matrix in the working dtype, and the scene shape.

        ``lazy`` (pixel-major only): a :class:`rednmf.preprocessing.ScaledMatrix`
        over the cube, scaled block by block when read (no copy of the scene),
        for a solver that reads its data by blocks.
        """
        dtype = check_dtype(self.dtype)
        rows, cols, d = cube.shape
        # a view of the cube: the scaled matrix is the only copy (band-major: written
        # transposed, block by block, as cube_to_matrix lays it out)
        X, shape = np.ascontiguousarray(cube).reshape(rows * cols, d).T, (rows, cols)
        self.scaling_ = scale_params(X, self.scale, dtype=dtype)
        if lazy and self._pixel_major:
            return ScaledMatrix(X, self.scale, dtype, self.scaling_), shape  # type: ignore[return-value]
        order = "K" if self._pixel_major else "C"
        return scale_data(X, self.scale, dtype=dtype, params=self.scaling_, order=order), shape

    def _initial_factors(
        self, X: np.ndarray, xp: Any = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Check the rank against ``X`` (d x n) and draw ``W, H, M`` from ``random_state``.

        ``xp``: the array backend of the NNDSVD's passes over ``X`` (NumPy by default).
        """
        d, n = X.shape
        if self.n_components > min(d, n):
            raise InputError(
                f"n_components={self.n_components} exceeds min(bands, pixels)={min(d, n)}; "
                "choose a smaller rank"
            )
        rng = np.random.default_rng(self.random_state)
        return initialize_factors(X, self.n_components, self.init, rng, xp=xp)

    def _fit_scores(self, cube: np.ndarray, callback: FitCallback | None = None) -> np.ndarray:
        lazy = cube.size * check_dtype(self.dtype).itemsize > self._stored_bytes
        X, shape = self._data_matrix(cube, lazy=lazy)
        W0, H0, M0 = self._initial_factors(X)
        res = self._solve(X, W0, H0, M0, callback)  # H0 becomes the solver's H
        del W0, H0, M0
        self._set_factors(res)
        E = self._evidence(X, res, shape)  # formed by blocks when the scorer reads it
        del X, res
        return self._score(E, shape)

    def _set_factors(self, res: NMFResult) -> None:
        """Store the solver's ``W``, ``H`` and diagnostics as fitted attributes."""
        self.components_, self.coefficients_ = res.W, res.H
        self.n_iter_ = res.n_iter
        self.objective_ = res.objective
        self.converged_ = res.converged

    def _scorer_extras(self) -> dict[str, Any]:
        """Scoring arguments beyond the scorer's own (REDNMF adds the noise)."""
        return {}

    def _scorer_params(self) -> dict[str, Any]:
        """The scorer's parameters (:meth:`Scorer.score_params`) and :meth:`_scorer_extras`."""
        scorer = self._scorer()
        assert scorer is not None
        return {**scorer.score_params(), **self._scorer_extras()}

    def _score(self, E: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """Score the evidence matrix ``E`` (bands x pixels) of a ``rows x cols`` scene.

        In this process on the scorer's backend
        (:class:`rednmf.scoring.from_matrix.InProcess`: on NumPy the evidence is
        projected a block of pixels at a time, no cube of it is made).
        """
        session = InProcess(*self._scoring_backend())
        return score_matrix(E, shape, session, **self._scorer_params())
