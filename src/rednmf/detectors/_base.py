"""The detector contract every method in rednmf fills.

A scikit-learn estimator (:class:`sklearn.base.BaseEstimator`: ``get_params``,
``set_params``, ``clone``, ``check_is_fitted`` work) with PyOD's attributes,
keeping the spatial shape as Spectral Python does: a ``(rows, cols, bands)``
cube in, a ``(rows, cols)`` score map out.

* Parameters are keyword-only, stored unchanged by ``__init__`` and validated
  in ``fit`` against the class's ``_parameter_constraints`` (scikit-learn's
  machinery); a bad value raises :class:`ParameterError`, an
  :class:`~rednmf.exceptions.InputError` with a one-line message (the CLI
  prints it as ``error: ...``). Checks that tie parameters together live in
  :meth:`BaseDetector._check_params`; a dual window (``dual_window``, or the
  window of the ``scorer``: odd ``inner < outer``, the outer window inside the
  scene) is checked here for every method that has one.
* A method that scores an evidence cube takes a ``scorer`` parameter, an
  object of :mod:`rednmf.scoring.scorers` or its name: ``get_params(deep=True)``
  lists its parameters as ``scorer__inner`` and the like (those of the scorer
  a name stands for, too), and ``set_params(scorer__inner=7)`` turns a name
  into its object first. :func:`rednmf.detectors.registry.check_params`
  runs the same checks before a run reads its scene.
* ``fit(X)`` takes a cube, a :class:`rednmf.io.Scene`, or a 2-D
  ``(pixels, bands)`` matrix. A matrix is accepted as it is by the methods
  whose score of a pixel does not depend on its neighbours
  (:meth:`BaseDetector.needs_space` False: GRX, the factorisations with
  ``scorer='norm'``); the others need ``image_shape=(rows, cols)`` (pixels in
  row-major order) or say so in one line. The per-pixel outputs follow the
  input: a ``(pixels,)`` vector for a matrix.
* ``fit`` returns ``self`` and sets

  - ``decision_scores_`` : ``(rows, cols)`` float array, higher = more anomalous;
  - ``threshold_`` : the score above which a pixel is labelled anomalous: at most
    a fraction ``contamination`` of the valid pixels lie above it
    (:func:`rednmf.thresholding.contamination_threshold`);
  - ``labels_`` : ``(rows, cols)`` int array, 1 = anomaly, 0 = background;
  - ``valid_mask_`` : ``(rows, cols)`` bool array, the pixels that took part;
  - ``bands_kept_`` : indices of the bands used (all-NaN and constant bands dropped);
  - ``n_features_in_`` : the number of bands of the input.

  Reading one of them before ``fit`` raises
  :class:`sklearn.exceptions.NotFittedError`.
* ``decision_function(X)`` scores another scene with the fitted model and
  ``predict(X)`` labels it with ``threshold_`` (1 = anomaly, PyOD's
  convention). What "the fitted model" is depends on the method: GRX applies
  the fitted mean and covariance, REDNMF its background ``(W, M)``
  (:meth:`rednmf.detectors.rednmf.REDNMF.decision_function`). The local
  detectors (LRX, the CR family), the NMF baselines and the deep methods have
  no background model that outlives the scene (a local window, a coefficient
  matrix ``H`` per pixel, a network trained on the scene): for them
  ``decision_function(X)`` fits a copy with the same parameters on ``X``
  (with the fitted ``bands_kept_``) and returns its scores.

No-data is handled here, once, for every detector: a pixel with a NaN in any
(kept) band, or outside the user's ``mask``, is *invalid*. Invalid pixels are
replaced by the mean spectrum of the valid pixels before ``_fit_scores`` (the
window-based scorers need a full grid; the mean spectrum adds nothing to the
mean, is the least anomalous spectrum under global RX, and brings no spatial
structure), their scores are set to NaN, and the threshold and labels are
computed over valid pixels only (label 0 at invalid pixels). The fill does
shrink the covariance a little, and window statistics near a large no-data
region are drawn from fewer real pixels.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import Interval, InvalidParameterError
from sklearn.utils.validation import check_is_fitted

from rednmf._validation import check_cube, check_magnitude, masked_to_nan
from rednmf.exceptions import InputError, one_line
from rednmf.outofcore import scan_cube
from rednmf.scoring.scorers import SCORER_CLASSES, Scorer, resolve_scorer
from rednmf.scoring.windows import check_window_sides
from rednmf.solvers._driver import FitCallback, as_fit_callback
from rednmf.thresholding import choose_threshold

__all__ = ["BaseDetector", "ParameterError", "at_least", "positive"]


def positive(closed: str = "left") -> list[Any]:
    """The constraint of a real weight ``>= 0`` (``closed='left'``) or ``> 0`` (``'neither'``)."""
    return [Interval(Real, 0.0, None, closed=closed)]


def at_least(low: int) -> list[Any]:
    """The constraint of an integer ``>= low``."""
    return [Interval(Integral, low, None, closed="left")]


class ParameterError(InputError, InvalidParameterError):
    """A constructor parameter out of its declared constraints (one-line message).

    Both an :class:`~rednmf.exceptions.InputError` (what the CLI prints as one
    line) and scikit-learn's ``InvalidParameterError``.
    """


class BaseDetector(BaseEstimator, ABC):
    """Abstract base class of all rednmf detectors.

    Subclasses declare ``_parameter_constraints`` (merged with this class's),
    may add cross-parameter checks in :meth:`_check_params` (raise
    :class:`~rednmf.exceptions.InputError`), and implement
    :meth:`_fit_scores`, which receives a validated float cube and returns the
    ``(rows, cols)`` score map. Everything else (validation of the input,
    threshold, labels, scoring new data) lives here once.
    """

    #: Short registry name, e.g. ``"rednmf"``; set by subclasses.
    name: str = ""
    #: Smallest number of bands the method can work with.
    min_bands: int = 2
    #: Old parameter names -> new ones, for the error on an old name (registry).
    renamed_params: ClassVar[dict[str, str]] = {}
    #: Whether the parameters ``inner`` and ``outer`` are the sides of a dual window
    #: (:mod:`rednmf.scoring.windows`): checked with the other parameters, and
    #: against the scene before the fit when :meth:`needs_space`. A ``scorer``
    #: brings its own window (:meth:`_window_sides`).
    dual_window: ClassVar[bool] = False
    #: A ``scorer`` given by name: its parameters that differ from the scorer
    #: class's defaults (:func:`rednmf.scoring.scorers.resolve_scorer`).
    _scorer_defaults: ClassVar[dict[str, Any]] = {}

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "contamination": [Interval(Real, 0.0, 0.5, closed="right")],
    }

    contamination: float

    #: The fitted attributes that raise ``NotFittedError`` when read before ``fit``.
    _FITTED = ("decision_scores_", "threshold_", "labels_", "valid_mask_", "bands_kept_")

    # -- parameters -------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: a fitted attribute read too early.
        if name in BaseDetector._FITTED:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted yet: call fit(X) before reading {name}"
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __sklearn_is_fitted__(self) -> bool:
        return "decision_scores_" in vars(self)

    def _validate_params(self) -> None:
        """Check the parameters: declared constraints, then :meth:`_check_params`.

        An unbounded :class:`~sklearn.utils._param_validation.Interval` is open at
        infinity, so infinite values are refused with the rest.

        Raises
        ------
        ParameterError
            One line naming the parameter and what it accepts.
        """
        try:
            super()._validate_params()
        except InvalidParameterError as exc:
            raise ParameterError(one_line(exc)) from None
        sides = self._window_sides()  # checks the scorer's own parameters too
        if sides is not None:
            check_window_sides(*sides)
        self._check_params()

    def _scorer(self) -> Scorer | None:
        """The ``scorer`` as an object (a name resolved, checked); None without one."""
        if "scorer" not in self._get_param_names():
            return None
        return resolve_scorer(self.scorer, **self._scorer_defaults)  # type: ignore[attr-defined]

    def _window_sides(self) -> tuple[int, int] | None:
        """``(inner, outer)`` of the method's dual window: its scorer's, or its own."""
        scorer = self._scorer()
        if scorer is not None:
            return scorer.window
        if self.dual_window:
            return self.inner, self.outer  # type: ignore[attr-defined]
        return None

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The parameters; with ``deep``, those of a scorer given by name too."""
        params = super().get_params(deep=deep)
        name = params.get("scorer")
        if deep and isinstance(name, str) and name in SCORER_CLASSES:
            scorer = resolve_scorer(name, **self._scorer_defaults)
            params.update((f"scorer__{k}", v) for k, v in scorer.get_params().items())
        return params

    def set_params(self, **params: Any) -> BaseDetector:
        """Set parameters; ``scorer__KEY`` on a scorer given by name sets it on its object.

        So does ``engine__KEY`` on an engine given by name or left to its
        default (``engine=None``: the :class:`~rednmf.engines.InMemory` it
        stands for).
        """
        nested = {k: params.pop(k) for k in list(params) if k.startswith(("scorer__", "engine__"))}
        super().set_params(**params)
        named = getattr(self, "scorer", None)
        if any(k.startswith("scorer__") for k in nested) and named in SCORER_CLASSES:
            self.scorer = resolve_scorer(named, **self._scorer_defaults)
        if any(k.startswith("engine__") for k in nested) and "engine" in self._get_param_names():
            from rednmf.engines import Engine, resolve_engine

            if not isinstance(self.engine, Engine):  # type: ignore[attr-defined]
                # the engine named, unchecked: fit checks it with the values set here
                self.engine = resolve_engine(self.engine, check=False)  # type: ignore[attr-defined]
        if nested:
            super().set_params(**nested)
        return self

    def _check_params(self) -> None:  # noqa: B027 - optional hook
        """Raise ``InputError`` when parameters disagree (hook for subclasses)."""

    def needs_space(self) -> bool:
        """Whether a pixel's score depends on its neighbours (then 2-D input needs a shape).

        True unless a subclass says otherwise for its parameters.
        """
        return True

    # -- input ------------------------------------------------------------
    def _as_cube(self, X: Any, image_shape: tuple[int, int] | None) -> tuple[Any, bool]:
        """The input as a ``(rows, cols, bands)`` cube, and whether it came as a matrix.

        A :class:`rednmf.io.Scene` gives its cube; a cube (array, memory map or a
        cube read from disk) is passed on as it is; a 2-D ``(pixels, bands)``
        matrix is reshaped to ``image_shape`` or, for a method that does not use
        space, to ``(pixels, 1)``.
        """
        cube = getattr(X, "cube", None)
        if cube is not None and hasattr(X, "nodata_mask"):  # a rednmf.io.Scene
            X = cube
        if type(X).__module__.startswith("scipy.sparse"):
            raise InputError("sparse input is not supported: pass a dense array (X.toarray())")
        if hasattr(X, "shape") and hasattr(X, "dtype") and len(X.shape) == 3:
            if image_shape is not None:
                raise InputError(
                    f"image_shape is for a 2-D (pixels, bands) input; the input is already a "
                    f"cube of shape {tuple(X.shape)}: drop image_shape"
                )
            return X, False
        arr = masked_to_nan(X) if np.ma.isMaskedArray(X) else np.asarray(X)
        if arr.ndim != 2:
            return arr, False  # check_cube names the problem
        n, bands = arr.shape
        if image_shape is not None:
            shape = tuple(int(v) for v in np.atleast_1d(image_shape))
            if len(shape) != 2 or min(shape) < 1 or shape[0] * shape[1] != n:
                raise InputError(
                    f"image_shape={image_shape!r} does not hold the {n} pixels of X; pass "
                    "(rows, cols) with rows * cols equal to the number of rows of X"
                )
            return arr.reshape(shape[0], shape[1], bands), True
        if self.needs_space():
            raise InputError(
                f"{type(self).__name__} scores a pixel against its neighbours, and X is 2-D "
                f"{arr.shape}: pass a (rows, cols, bands) cube or fit(X, image_shape=(rows, cols))"
            )
        return arr.reshape(n, 1, bands), True

    # -- the contract -----------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self,
        X: Any,
        y: None = None,
        *,
        mask: np.ndarray | None = None,
        callback: Callable[..., None] | None = None,
        image_shape: tuple[int, int] | None = None,
    ) -> BaseDetector:
        """Fit the detector on a scene and score every pixel.

        Parameters
        ----------
        X : array-like of shape (rows, cols, bands) or (pixels, bands), or Scene
            The scene: a cube, a :class:`rednmf.io.Scene`, or a matrix of
            pixels (see ``image_shape``). NaN marks no-data: a pixel with a
            NaN in any band is left out of the fit and scored NaN; a band that
            is NaN everywhere (or constant over the valid pixels) is dropped
            with a warning; when every band is constant there is nothing to
            detect, and :class:`~rednmf.exceptions.InputError` says so. Infinite
            values raise :class:`~rednmf.exceptions.InputError`.
        y : None
            Ignored; present for scikit-learn compatibility.
        mask : array-like of shape (rows, cols), optional
            Pixels to use (True or nonzero); the others are treated as no-data.
        callback : callable, optional
            Called as ``callback(iteration, objective, state)`` after each
            iteration by the iterative detectors (the factorisations: ``state``
            is a :class:`rednmf.solvers._driver.Iterate` with the factors; the
            deep methods: the step and its loss, ``state=None``); the others
            ignore it. A two-argument ``callback(iteration, objective)`` works
            too. Used by the CLI's progress bar and the convergence experiment.
        image_shape : (int, int), optional
            ``(rows, cols)`` of a 2-D ``X`` whose pixels are in row-major
            order; needed when :meth:`needs_space` is True.

        Returns
        -------
        self
        """
        cube, flat = self._as_cube(X, image_shape)
        if mask is not None and flat:
            mask = np.asarray(mask).reshape(cube.shape[:2])
        self._fit(cube, mask, callback)
        self.n_features_in_ = int(cube.shape[2])
        if flat:
            for key in ("decision_scores_", "labels_", "valid_mask_"):
                setattr(self, key, getattr(self, key).reshape(-1))
        return self

    def _fit(
        self, cube: Any, mask: np.ndarray | None, callback: Callable[..., None] | None
    ) -> None:
        """Fit on a cube with validated parameters and set the fitted attributes."""
        data, valid, kept = self._valid_cube(cube, mask)
        scores = np.asarray(self._fit_scores(data, as_fit_callback(callback)), dtype=np.float64)
        if scores.shape != data.shape[:2]:  # pragma: no cover - a programming error
            raise RuntimeError(f"{self.name}: scores of shape {scores.shape} for {data.shape}")
        self._set_results(scores, valid, kept)

    def _valid_cube(
        self, cube: Any, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The cube checked, with its invalid pixels filled (:meth:`_mask_invalid`)."""
        data = check_cube(cube, min_bands=self.min_bands, allow_nan=True)
        check_magnitude(data)
        self._check_window_fits(data.shape)
        return self._mask_invalid(data, mask)

    def _check_window_fits(self, shape: tuple[int, ...]) -> None:
        """Refuse, before any work, a dual window that the scene cannot hold."""
        sides = self._window_sides()
        if sides is not None and self.needs_space():
            check_window_sides(*sides, tuple(shape))

    def decision_function(
        self,
        X: Any,
        *,
        mask: np.ndarray | None = None,
        image_shape: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """Anomaly scores of a scene under the fitted model (higher = more anomalous).

        Parameters
        ----------
        X : array-like of shape (rows, cols, bands) or (pixels, bands), or Scene
            A scene with the bands of the one fitted (as in :meth:`fit`).
        mask : array-like of shape (rows, cols), optional
            Pixels to score; the others (and pixels with a NaN in a kept band)
            are scored NaN.
        image_shape : (int, int), optional
            As in :meth:`fit`.

        Returns
        -------
        ndarray of shape (rows, cols) or (pixels,)
            The scores, in the layout of ``X``. See the module docstring for
            what each method applies.
        """
        check_is_fitted(self)
        cube, flat = self._as_cube(X, image_shape)
        data = check_cube(cube, min_pixels=1, min_bands=1, allow_nan=True)
        if data.shape[2] != self.n_features_in_:
            raise InputError(
                f"X has {data.shape[2]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input: pass a scene with the fitted bands"
            )
        if mask is not None and flat:
            mask = np.asarray(mask).reshape(data.shape[:2])
        scores = self._decision_cube(data[:, :, self.bands_kept_], mask)
        return scores.reshape(-1) if flat else scores

    def _decision_cube(self, cube: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """Scores of a validated cube (fitted bands only): a copy fitted on it, by default."""
        return clone(self).fit(cube, mask=mask).decision_scores_

    def _new_pixels(
        self, cube: np.ndarray, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """A new cube with its invalid pixels filled by the valid mean, and the valid map.

        For the detectors that apply a fitted model to new pixels; unlike
        :meth:`_mask_invalid` no band is dropped (the fitted ones are kept).
        """
        valid = ~np.isnan(cube).any(axis=2)
        if mask is not None:
            valid &= np.asarray(mask).reshape(valid.shape) != 0
        if not valid.any():
            raise InputError("no valid pixel to score (NaN everywhere or an empty mask)")
        if valid.all():
            return cube, valid
        out = cube.copy()
        out[~valid] = cube[valid].mean(axis=0, dtype=np.float64).astype(out.dtype)
        return out, valid

    def predict(
        self,
        X: Any,
        *,
        mask: np.ndarray | None = None,
        image_shape: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """Labels of a scene under the fitted model: 1 where the score exceeds ``threshold_``.

        PyOD's convention (1 = anomaly, 0 = background; invalid pixels 0).
        Parameters as in :meth:`decision_function`.
        """
        scores = self.decision_function(X, mask=mask, image_shape=image_shape)
        with np.errstate(invalid="ignore"):
            return (scores > self.threshold_).astype(np.int8)

    def _set_results(self, scores: np.ndarray, valid: np.ndarray, kept: np.ndarray) -> None:
        """Store the fitted attributes: no-data scored NaN; threshold, labels over valid pixels."""
        if not valid.all():
            scores = scores.copy()
            scores[~valid] = np.nan
        self.decision_scores_ = scores
        self.valid_mask_ = valid
        self.bands_kept_ = kept
        self.threshold_ = choose_threshold(scores[valid], contamination=self.contamination).value
        self.labels_ = ((scores > self.threshold_) & valid).astype(np.int8)

    def _mask_invalid(
        self, data: np.ndarray, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Drop unusable bands, find the valid pixels and fill the others.

        Returns the cube to fit (a new array only when something changed), the
        ``(rows, cols)`` valid-pixel mask and the indices of the kept bands.
        """
        if mask is not None:
            m = np.asarray(mask)
            if not (np.issubdtype(m.dtype, np.number) or m.dtype == np.bool_):
                raise InputError(f"mask has dtype {m.dtype}; pass a 0/1 or boolean map")
            if m.dtype.kind == "f" and not np.all(np.isfinite(m)):
                raise InputError("mask holds NaN or infinite values; pass a 0/1 or boolean map")
        bands = data.shape[2]
        # block by block: no copy of the cube but the one returned (issue 25's memory)
        valid, kept, fill, _, _ = scan_cube(
            data, mask, self.min_bands, self.name or type(self).__name__
        )
        if kept.size == bands and fill is None:
            return data, valid, kept
        out = data[:, :, kept] if kept.size < bands else data.copy()
        if fill is not None:
            out[~valid] = fill.astype(out.dtype)
        return np.ascontiguousarray(out), valid, kept

    def fit_predict(
        self,
        X: Any,
        y: None = None,
        *,
        mask: np.ndarray | None = None,
        image_shape: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """Fit and return ``labels_``."""
        return self.fit(X, mask=mask, image_shape=image_shape).labels_

    @abstractmethod
    def _fit_scores(self, cube: np.ndarray, callback: FitCallback | None = None) -> np.ndarray:
        """Return the ``(rows, cols)`` score map of a validated float cube.

        ``callback`` (three-argument form, :func:`rednmf.solvers._driver.as_fit_callback`)
        is called after each iteration or training step; methods without
        iterations ignore it.
        """
