"""The iteration loop of the multiplicative solvers, written once.

Every whole-matrix solver (:func:`~rednmf.solvers.nmf.nmf_solve`,
:func:`~rednmf.solvers.rnmf.rnmf_solve`, :func:`~rednmf.solvers.l1nmf.l1nmf_solve`,
:func:`~rednmf.solvers.ewnmf.ewnmf_solve` and REDNMF's
:func:`~rednmf.solvers.rednmf.rednmf_solve`) supplies one ``step``: a function
that does one iteration and returns the objective after it. :func:`iterate`
runs the steps, records the objectives, reports each iteration to the fit
callback, stops by the shared rule of :mod:`rednmf.solvers._stopping` and warns
when ``max_iter`` ran out first.

The fit callback is called as ``callback(iteration, objective, state)`` with
``state`` an :class:`Iterate` (or ``None`` where a method has no factors to
show, the deep detectors). A callback written as ``callback(iteration,
objective)`` keeps working: :func:`as_fit_callback` wraps it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rednmf.solvers._stopping import has_converged, warn_max_iter

__all__ = ["FitCallback", "Iterate", "Run", "as_fit_callback", "iterate"]


@dataclass(frozen=True)
class Iterate:
    """The state of a fit after one iteration, as the fit callback sees it.

    The arrays are the solver's own (no copies): valid during the call only,
    and not to be modified; copy what is to be kept. A field is ``None`` where
    the solver does not hold it at that moment.

    Attributes
    ----------
    X : array of shape (d, n)
        The (scaled) data the solver fits.
    W, H : ndarray or None
        Factors after the iteration, ``(d, r)`` and ``(r, n)``. REDNMF's block
        engine has already formed the next iteration's ``W`` when it reports,
        so it gives neither (see ``fit``).
    S : ndarray, matrix formed on demand, or None
        Sparse anomaly matrix of the iteration (RNMF: a
        :class:`~rednmf.solvers._mu_blocks.BlockMatrix`, formed when read;
        REDNMF); ``None`` for a method without one.
    M : ndarray or None
        Encoder of the iteration (REDNMF's whole-matrix loop).
    fit : float or None
        ``||X - WH - S||_F^2`` of the iteration accumulated in float64, where
        the solver has it without extra work (REDNMF's block engine).
    """

    X: Any
    W: np.ndarray | None = None
    H: np.ndarray | None = None
    S: Any = None
    M: np.ndarray | None = None
    fit: float | None = None

    def residual_norm(self) -> float:
        """``||X - WH - S||_F`` of the iteration (``S = 0`` when absent).

        From the factors when the state holds them (``np.linalg.norm`` in the
        dtype of ``X``), else the square root of ``fit``.
        """
        if self.W is not None and self.H is not None:
            R = self.X - self.W @ self.H
            if self.S is not None:
                R = R - np.asarray(self.S)
            return float(np.linalg.norm(R))
        if self.fit is None:
            raise ValueError("this iterate holds neither the factors nor the fit term")
        return float(np.sqrt(self.fit))


#: ``callback(iteration, objective, state)``, called after each iteration of a fit.
FitCallback = Callable[[int, float, Iterate | None], None]


def _positional_arity(fn: Callable[..., Any]) -> int | None:
    """How many positional arguments ``fn`` accepts (``None``: any number, or unknown)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return None
    kinds = [p.kind for p in params]
    if inspect.Parameter.VAR_POSITIONAL in kinds:
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(k in positional for k in kinds)


def as_fit_callback(callback: Callable[..., Any] | None) -> FitCallback | None:
    """``callback`` in the form ``callback(iteration, objective, state)``.

    A callback that takes two positional arguments, ``callback(iteration,
    objective)``, is wrapped so that it is called without the state; any other
    is returned as it is.
    """
    if callback is None or _positional_arity(callback) != 2:
        return callback

    def with_state(iteration: int, objective: float, state: Iterate | None) -> None:
        callback(iteration, objective)

    return with_state


@dataclass(frozen=True)
class Run:
    """What :func:`iterate` returns: iterations run, objective history, convergence."""

    n_iter: int
    objective: np.ndarray
    converged: bool


def iterate(
    step: Callable[[], float],
    *,
    max_iter: int,
    tol: float,
    method: str,
    callback: Callable[..., Any] | None = None,
    state: Callable[[], Iterate] | None = None,
    stacklevel: int = 4,
) -> Run:
    """Run up to ``max_iter`` iterations of ``step`` and return their history.

    Parameters
    ----------
    step : callable
        ``step()`` does one iteration (updating the solver's factors) and
        returns the objective after it.
    max_iter : int
        Maximum number of iterations.
    tol : float
        Stop when the relative objective change is at most ``tol``
        (:func:`~rednmf.solvers._stopping.has_converged`); ``tol = 0`` runs
        ``max_iter`` iterations. With ``tol > 0`` and no convergence, a
        :class:`~rednmf.exceptions.ConvergenceWarning` names ``method``.
    method : str
        Name of the method in the warning.
    callback : callable, optional
        Called after each iteration (before the stopping test) as
        ``callback(iteration, objective, state)``, or ``callback(iteration,
        objective)`` (:func:`as_fit_callback`).
    state : callable, optional
        ``state()`` returns the :class:`Iterate` handed to the callback (called
        only when there is a callback); ``None`` hands ``None``.
    stacklevel : int, default=4
        Of the warning (:func:`warnings.warn`): the default points at the
        solver's caller when the solver calls this function itself.

    Returns
    -------
    Run
        Iterations run, the objective after each, and whether ``tol`` was met.
    """
    report = as_fit_callback(callback)
    objective: list[float] = []
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - n_iter is used after the loop
        obj = step()
        objective.append(obj)
        if report is not None:
            report(n_iter, obj, None if state is None else state())
        if has_converged(objective, tol):
            converged = True
            break
    if not converged and tol > 0:
        warn_max_iter(method, max_iter, tol, stacklevel=stacklevel)
    return Run(n_iter=n_iter, objective=np.asarray(objective), converged=converged)
