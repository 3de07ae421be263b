"""The stopping rule shared by every iterative solver: relative objective change and ``tol``."""

from __future__ import annotations

import warnings

import numpy as np

from rednmf.exceptions import ConvergenceWarning

__all__ = ["has_converged", "warn_max_iter"]


def has_converged(objective: list[float], tol: float) -> bool:
    """Whether the last relative objective change ``|f_{t-1} - f_t| / |f_{t-1}|`` is <= ``tol``.

    ``tol = 0`` never stops (the solver runs ``max_iter`` iterations).
    """
    if tol <= 0 or len(objective) < 2:
        return False
    prev, cur = objective[-2], objective[-1]
    return abs(prev - cur) <= tol * max(abs(prev), np.finfo(np.float64).tiny)


def warn_max_iter(method: str, max_iter: int, tol: float, stacklevel: int = 3) -> None:
    """Emit the :class:`ConvergenceWarning` of a solver that ran out of iterations.

    ``stacklevel`` as in :func:`warnings.warn`: the default points at the caller
    of the solver that calls this function.
    """
    warnings.warn(
        f"{method} stopped at max_iter={max_iter} before the relative objective change "
        f"fell below tol={tol}; raise max_iter or tol",
        ConvergenceWarning,
        stacklevel=stacklevel,
    )
