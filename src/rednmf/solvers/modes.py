"""The one vocabulary of scale modes, for every factorisation's weight (solvers and detectors)."""

from __future__ import annotations

__all__ = ["SCALE_MODES"]

#: How a factorisation's weight (REDNMF's and RNMF's ``lam``, L1NMF's ``delta``,
#: EWNMF's ``gamma``) is scaled; each method accepts the modes it implements:
#:
#: * ``'absolute'``: as given, on the scaled data (every method);
#: * ``'adaptive'``: relative to the current residual, recomputed at every
#:   iteration (every method; the default of RNMF, L1NMF and EWNMF);
#: * ``'svd'``: relative to the residual of a rank-``r`` truncated SVD, fixed (REDNMF);
#: * ``'noise'``: ``'svd'`` with the noise energy taken out and added back (REDNMF's
#:   default; :mod:`rednmf.solvers.noise`).
SCALE_MODES = ("noise", "svd", "adaptive", "absolute")
