"""Scorer objects: how a detector turns its evidence into a score map (``scorer=``).

A detector that scores an evidence cube (REDNMF, the NMF family, MSRX) takes
one ``scorer`` parameter, apart from its model, as ``engine=`` is apart from
it: ``REDNMF(scorer=MultiScale(inner=7, outer=21))``. Scorers are
scikit-learn style parameters, so the detector's ``get_params(deep=True)``
lists ``scorer__inner`` and the like, ``set_params(scorer__inner=7)`` and
``clone`` work, and each scorer validates its own parameters with
scikit-learn's machinery (:meth:`Scorer.check`).

==========================  ===================================================
``MultiScale(...)``         local and global RX, each also pooled, on one
                            calibrated scale (:mod:`rednmf.scoring.multiscale`)
``BRAD(...)``               the local dual-window RX alone
                            (:func:`rednmf.scoring.cube.brad`)
``Norm()``                  the column norm ``||E_j||_2`` of each pixel's evidence
==========================  ===================================================

A string names a scorer with its defaults: ``'multiscale'``, ``'brad'``,
``'norm'`` (:func:`resolve_scorer`). The scoring itself is
:func:`rednmf.scoring.from_matrix.score_matrix` and its out-of-core and Dask
forms; a scorer hands them its parameters (:meth:`Scorer.score_params`).
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions

from rednmf.exceptions import InputError, one_line
from rednmf.scoring.multiscale import COMBINATIONS, SUSPECT_LEVEL

__all__ = ["BRAD", "SCORER_CLASSES", "MultiScale", "Norm", "Scorer", "resolve_scorer"]

_WINDOW = [Interval(Integral, 1, None, closed="left")]
_N_PCA = [Interval(Integral, 1, None, closed="left"), None]
_RIDGE = [Interval(Real, 0.0, None, closed="left")]


class Scorer(BaseEstimator):
    """Base class of the scorers (not used itself).

    Attributes
    ----------
    name : str
        The scorer's name in :func:`rednmf.scoring.from_matrix.score_matrix`.
    """

    name: ClassVar[str] = ""
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}

    def check(self) -> None:
        """Validate the parameters (one-line :class:`~rednmf.exceptions.InputError`)."""
        try:
            self._validate_params()
        except InvalidParameterError as exc:
            raise InputError(one_line(exc)) from None

    @property
    def window(self) -> tuple[int, int] | None:
        """``(inner, outer)`` of the local detector, None for a scorer without one."""
        return None

    def score_params(self) -> dict[str, Any]:
        """Keyword arguments of :func:`rednmf.scoring.from_matrix.score_matrix`."""
        return {"scorer": self.name, **self.get_params(deep=False)}


class _Windowed(Scorer):
    """A scorer with a local dual-window detector on the evidence's principal components."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "inner": _WINDOW,
        "outer": _WINDOW,
        "n_pca": _N_PCA,
        "ridge": _RIDGE,
    }

    inner: int
    outer: int

    @property
    def window(self) -> tuple[int, int]:
        return self.inner, self.outer


class MultiScale(_Windowed):
    """Local and global RX of the projected evidence, each also pooled, combined.

    :func:`rednmf.scoring.cube.multiscale`: the evidence is projected on
    its principal components above the noise (at most ``n_pca``); a local
    dual-window RX and a global RX, each at the pixel and averaged over
    ``pool x pool`` pixels, each turned into its empirical tail probability
    and combined by ``combine``.

    Parameters
    ----------
    inner, outer : int, default=9, 27
        Guard and outer window sides of the local detector (odd).
    n_pca : int or None, default=20
        Most principal components kept.
    ridge : float, default=0.01
        Covariance ridge, relative to the mean band variance.
    pool : int, default=3
        Side of the neighbourhood over which the local (and, with
        ``pool_global``, the global) score is averaged.
    combine : {'max', 'sum', 'hmp'}, default='sum'
        Tippett's (the smallest tail probability), Fisher's (their product)
        or the harmonic-mean combination (``docs/choices.md``).
    pool_global : bool, default=True
        Also average the global score over the ``pool x pool`` neighbourhood.
    robust_global : bool, default=True
        Estimate the global detector's statistics once more without the pixels
        beyond the chi-square 0.975 quantile.
    score_cube : bool, default=True
        For a detector that keeps the data its evidence came from (REDNMF):
        also score the data, against background statistics of the pixels that
        the evidence does not flag, and combine it with the evidence's local
        detectors (:func:`rednmf.scoring.multiscale.cube_and_evidence`).
        MSRX, whose evidence is the cube, and the NMF family score one matrix.
    suspect_level : float, default=0.05
        ``score_cube``: the evidence's tail probability at or below which a
        pixel is a suspect and leaves the data's background statistics.
    """

    name = "multiscale"

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_Windowed._parameter_constraints,
        "pool": _WINDOW,
        "combine": [StrOptions(set(COMBINATIONS))],
        "pool_global": ["boolean"],
        "robust_global": ["boolean"],
        "score_cube": ["boolean"],
        "suspect_level": [Interval(Real, 0.0, 1.0, closed="neither")],
    }

    def __init__(
        self,
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
    ) -> None:
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

    def score_params(self) -> dict[str, Any]:
        params = super().score_params()
        del params["score_cube"]  # what the detector hands over, not how it is scored
        return params


class BRAD(_Windowed):
    """The local dual-window RX of the projected evidence (:func:`rednmf.scoring.cube.brad`).

    Parameters
    ----------
    inner, outer : int, default=9, 27
        Guard and outer window sides (odd).
    n_pca : int or None, default=20
        Principal components kept (with a noise estimate: those above it, at
        most ``n_pca``).
    ridge : float, default=0.01
        Covariance ridge, relative to the mean variance in the window.
    """

    name = "brad"

    def __init__(
        self, inner: int = 9, outer: int = 27, n_pca: int | None = 20, ridge: float = 0.01
    ) -> None:
        self.inner = inner
        self.outer = outer
        self.n_pca = n_pca
        self.ridge = ridge


class Norm(Scorer):
    """The column norm ``||E_j||_2`` of each pixel's evidence (no neighbours used)."""

    name = "norm"

    def score_params(self) -> dict[str, Any]:
        # The block scorers take the windowed scorers' arguments by keyword: unused here.
        return {"scorer": self.name, "inner": None, "outer": None, "n_pca": None, "ridge": None}


#: Scorer name -> class.
SCORER_CLASSES: dict[str, type[Scorer]] = {c.name: c for c in (MultiScale, BRAD, Norm)}


def resolve_scorer(scorer: Scorer | str, **defaults: Any) -> Scorer:
    """The scorer object that ``scorer`` names, checked.

    Parameters
    ----------
    scorer : Scorer or str
        An object (returned as it is), or a name of :data:`SCORER_CLASSES`.
    **defaults
        For a name: parameters that differ from the class's defaults (the NMF
        family's ``ridge=0.1``); those the class lacks are ignored.

    Raises
    ------
    InputError
        For an unknown name or an invalid parameter of the scorer.
    """
    if isinstance(scorer, str) and scorer in SCORER_CLASSES:
        cls = SCORER_CLASSES[scorer]
        names = cls._get_param_names()
        scorer = cls(**{k: v for k, v in defaults.items() if k in names})
    elif not isinstance(scorer, Scorer):
        raise InputError(
            f"scorer={scorer!r} is not a scorer; pass one of {', '.join(SCORER_CLASSES)} or a "
            "rednmf.scoring.scorers object (MultiScale, BRAD, Norm)"
        )
    scorer.check()
    return scorer
