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
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from rednmf._validation import check_cube, check_real

__all__ = ["BaseDetector"]


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
    def fit(self, cube: np.ndarray, y: None = None) -> BaseDetector:
        """Fit the detector on a cube and score every pixel.

        Parameters
        ----------
        cube : array-like of shape (rows, cols, bands)
            The scene.
        y : None
            Ignored; present for scikit-learn compatibility.

        Returns
        -------
        self
        """
        check_real("contamination", self.contamination, low=0.0, high=0.5, low_inclusive=False)
        self._validate_params()
        data = check_cube(cube, min_bands=self.min_bands)
        scores = np.asarray(self._fit_scores(data), dtype=np.float64)
        if scores.shape != data.shape[:2]:  # pragma: no cover - a programming error
            raise RuntimeError(f"{self.name}: scores of shape {scores.shape} for {data.shape}")
        self.decision_scores_ = scores
        self.threshold_ = float(np.quantile(scores, 1.0 - self.contamination))
        self.labels_ = (scores > self.threshold_).astype(np.int8)
        return self

    def fit_predict(self, cube: np.ndarray) -> np.ndarray:
        """Fit and return ``labels_``."""
        return self.fit(cube).labels_

    def _validate_params(self) -> None:  # noqa: B027 - optional hook
        """Raise ``InputError`` when a parameter is invalid (hook for subclasses)."""

    @abstractmethod
    def _fit_scores(self, cube: np.ndarray) -> np.ndarray:
        """Return the ``(rows, cols)`` score map of a validated float cube."""
