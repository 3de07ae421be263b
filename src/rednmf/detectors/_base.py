"""The detector contract every method in rednmf fills.

Modelled on PyOD's ``BaseDetector`` and scikit-learn's estimators, but keeping
the spatial shape as Spectral Python does: a ``(rows, cols, bands)`` cube in, a
``(rows, cols)`` score map out.

* Parameters are stored unchanged by ``__init__`` and validated in ``fit``.
* ``fit(cube)`` returns ``self`` and sets

  - ``decision_scores_`` : ``(rows, cols)`` float array, higher = more anomalous;
  - ``threshold_`` : the score above which a pixel is labelled anomalous, the
    ``1 - contamination`` quantile of the scores;
  - ``labels_`` : ``(rows, cols)`` int array, 1 = anomaly, 0 = background.
  - ``valid_mask_`` : ``(rows, cols)`` bool array, the pixels that took part;
  - ``bands_kept_`` : indices of the bands used (all-NaN and constant bands dropped).

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

import inspect
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from rednmf._validation import check_cube, check_real, drop_all_nan_bands
from rednmf.exceptions import InputError
from rednmf.thresholding import select_threshold

__all__ = ["BaseDetector"]


#: Largest magnitude accepted: squares stay finite in float64, values finite in float32.
MAX_MAGNITUDE = 1e36


def _check_magnitude(data: np.ndarray) -> None:
    """Refuse values so large that squaring them (or casting to float32) overflows."""
    if data.dtype.kind != "f" or data.size == 0:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        top = max(abs(float(np.nanmax(data))), abs(float(np.nanmin(data))))
    if top > MAX_MAGNITUDE:
        power = int(np.floor(np.log10(top)))
        raise InputError(
            f"values reach {top:.3g}: the detectors' squares and float32 arithmetic overflow "
            f"above {MAX_MAGNITUDE:g}; divide the cube by a constant (e.g. 1e{power}) first"
        )


class BaseDetector(ABC):
    """Abstract base class of all rednmf detectors.

    Subclasses implement :meth:`_validate_params` (raise
    :class:`rednmf.exceptions.InputError` on a bad parameter) and
    :meth:`_fit_scores`, which receives a validated float cube and returns the
    ``(rows, cols)`` score map. Everything else (validation of the cube,
    threshold, labels) lives here once.
    """

    #: Short registry name, e.g. ``"rednmf"``; set by subclasses.
    name: str = ""
    #: Smallest number of bands the method can work with.
    min_bands: int = 2

    contamination: float

    # -- parameters -------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters as a dict (JSON-friendly values)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> BaseDetector:
        """Set constructor parameters; unknown names raise ``TypeError``."""
        valid = set(self._param_names())
        for key, value in params.items():
            if key not in valid:
                raise TypeError(f"{type(self).__name__} has no parameter {key!r}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- the contract -----------------------------------------------------
    def fit(
        self,
        cube: np.ndarray,
        y: None = None,
        *,
        mask: np.ndarray | None = None,
        callback: Callable[[int, float], None] | None = None,
    ) -> BaseDetector:
        """Fit the detector on a cube and score every pixel.

        Parameters
        ----------
        cube : array-like of shape (rows, cols, bands)
            The scene. NaN marks no-data: a pixel with a NaN in any band is
            left out of the fit and scored NaN; a band that is NaN everywhere
            (or constant over the valid pixels) is dropped with a warning,
            unless every band is constant: then the method decides (the
            factorisations raise an error, GRX scores every pixel 0).
            Infinite values raise :class:`~rednmf.exceptions.InputError`.
        y : None
            Ignored; present for scikit-learn compatibility.
        mask : array-like of shape (rows, cols), optional
            Pixels to use (True or nonzero); the others are treated as no-data.
        callback : callable, optional
            Called as ``callback(iteration, objective)`` after each iteration
            by the detectors whose solver reports its progress (REDNMF); the
            others ignore it. Used by the CLI's progress bar.

        Returns
        -------
        self
        """
        check_real("contamination", self.contamination, low=0.0, high=0.5, low_inclusive=False)
        self._validate_params()
        data = check_cube(cube, min_bands=self.min_bands, allow_nan=True)
        _check_magnitude(data)
        data, valid, kept = self._mask_invalid(data, mask)
        self._callback = callback
        try:
            scores = np.asarray(self._fit_scores(data), dtype=np.float64)
        finally:
            del self._callback
        if scores.shape != data.shape[:2]:  # pragma: no cover - a programming error
            raise RuntimeError(f"{self.name}: scores of shape {scores.shape} for {data.shape}")
        return self._set_results(scores, valid, kept)

    def _set_results(
        self, scores: np.ndarray, valid: np.ndarray, kept: np.ndarray
    ) -> BaseDetector:
        """Store the fitted attributes: no-data scored NaN; threshold, labels over valid pixels."""
        if not valid.all():
            scores = scores.copy()
            scores[~valid] = np.nan
        self.decision_scores_ = scores
        self.valid_mask_ = valid
        self.bands_kept_ = kept
        self.threshold_ = select_threshold(scores[valid], contamination=self.contamination)
        self.labels_ = ((scores > self.threshold_) & valid).astype(np.int8)
        return self

    def _mask_invalid(
        self, data: np.ndarray, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Drop unusable bands, find the valid pixels and fill the others.

        Returns the cube to fit (a new array only when something changed), the
        ``(rows, cols)`` valid-pixel mask and the indices of the kept bands.
        """
        rows, cols, bands = data.shape
        user = np.ones((rows, cols), dtype=bool)
        if mask is not None:
            m = np.asarray(mask)
            if m.shape != (rows, cols):
                raise InputError(
                    f"mask has shape {m.shape} but the cube is {rows}x{cols}; "
                    "pass a (rows, cols) mask of the same scene"
                )
            if not (np.issubdtype(m.dtype, np.number) or m.dtype == np.bool_):
                raise InputError(f"mask has dtype {m.dtype}; pass a 0/1 or boolean map")
            if m.dtype.kind == "f" and not np.all(np.isfinite(m)):
                raise InputError("mask holds NaN or infinite values; pass a 0/1 or boolean map")
            user = m != 0
            if not user.any():
                raise InputError("the mask excludes every pixel; pass a mask with 1 on the scene")

        has_nan = data.dtype.kind == "f" and bool(np.isnan(data).any())
        kept = np.arange(bands)
        dropped: list[str] = []
        if has_nan:
            inside = data[user]  # (n_user, bands)
            kept = drop_all_nan_bands(np.isnan(inside).all(axis=0), kept, dropped)
            valid = user & ~np.isnan(data[:, :, kept]).any(axis=2)
        else:
            valid = user
        n_valid = int(valid.sum())
        if n_valid < 2:
            raise InputError(
                f"only {n_valid} valid pixel(s) (finite in every band and inside the mask); "
                "at least 2 are needed: check the no-data value and the mask"
            )
        if n_valid == rows * cols and kept.size == bands:
            pixels = data.reshape(-1, bands)  # a view: no copy of a clean cube
        else:
            pixels = data[valid][:, kept]  # (n_valid, n_kept)
        constant = pixels.min(axis=0) == pixels.max(axis=0)
        if constant.all():  # nothing would be left: the method decides (GRX scores 0)
            constant[:] = False
        if constant.any():
            dropped.append(f"{int(constant.sum())} constant")
            kept = kept[~constant]
            pixels = pixels[:, ~constant]
        if kept.size < self.min_bands:
            raise InputError(
                f"only {kept.size} usable band(s) after dropping all-NaN and constant bands; "
                f"{self.name or type(self).__name__} needs at least {self.min_bands}"
            )
        if dropped:
            warnings.warn(
                f"dropped {' and '.join(dropped)} band(s) of {bands}; {kept.size} band(s) used",
                UserWarning,
                stacklevel=3,
            )
        if kept.size == bands and n_valid == rows * cols:
            return data, valid, kept
        out = data[:, :, kept] if kept.size < bands else data.copy()
        if n_valid < rows * cols:
            out[~valid] = pixels.mean(axis=0, dtype=np.float64).astype(out.dtype)
        return np.ascontiguousarray(out), valid, kept

    def fit_predict(self, cube: np.ndarray, *, mask: np.ndarray | None = None) -> np.ndarray:
        """Fit and return ``labels_``."""
        return self.fit(cube, mask=mask).labels_

    def _validate_params(self) -> None:  # noqa: B027 - optional hook
        """Raise ``InputError`` when a parameter is invalid (hook for subclasses)."""

    @abstractmethod
    def _fit_scores(self, cube: np.ndarray) -> np.ndarray:
        """Return the ``(rows, cols)`` score map of a validated float cube."""
