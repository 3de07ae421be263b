"""Score a bands x pixels evidence matrix (an anomaly matrix ``S`` or a residual) by name.

The factorisation detectors (REDNMF, and the NMF family) all end the same way:
their evidence matrix is scored by :func:`score_matrix`, the one scoring
pipeline, wherever the matrix lives: in memory, on disk (a memory map, or a
matrix formed a block of pixels at a time on demand) or on the workers of a
Dask cluster. The pipeline is written once::

    moments of E -> principal axes -> projection P (rows, cols, k)
        -> local RX of P, global RX of P -> combined (or the cube scored with them)

and what depends on where ``E`` lives is left to a few primitives of a
:class:`ScoringSession` (the moments of the evidence, its projection, the
local and global RX of the projection, its column norms). :class:`InProcess`
is the session of an array in this process (NumPy, read by blocks, or a torch
tensor on a device); :class:`rednmf.engines.dask.DaskSession` that of a Dask
array, scored where its chunks are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from numpy.typing import DTypeLike

from rednmf._validation import check_choice, check_int
from rednmf.backend import NumpyBackend, get_backend
from rednmf.exceptions import InputError
from rednmf.scoring.global_rx import REWEIGHT_QUANTILE, global_rx_backend
from rednmf.scoring.local_rx import check_windows, local_rx_backend
from rednmf.scoring.multiscale import (
    SUSPECT_LEVEL,
    Detectors,
    combine_scales,
    cube_against_background,
    evidence_suspects,
)
from rednmf.scoring.pca import noise_pca_count, principal_axes

__all__ = [
    "SCORERS",
    "InProcess",
    "ScoringSession",
    "project_matrix",
    "score_matrix",
]

SCORERS = ("multiscale", "brad", "norm")

#: Pixels per block of the in-process moments, projection and column norms.
BLOCK_PIXELS = 1 << 15


class ScoringSession(Protocol):
    """Where an evidence handle lives, and the operations :func:`score_matrix` needs there.

    ``E`` is a ``bands x pixels`` handle (pixels in row-major order), ``P`` the
    ``(rows, cols, k)`` projection that :meth:`project` returns, in whatever
    form the session keeps it. The means and covariances are float64 NumPy
    arrays; the score maps of :meth:`local_rx` and :meth:`global_rx` are
    arrays of backend :attr:`xp`.
    """

    @property
    def xp(self) -> NumpyBackend:
        """The array backend of the score maps (and of :meth:`gather`)."""
        ...

    def moments(self, E: Any, with_cov: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Mean spectrum and biased covariance of the pixels of ``E`` (no covariance unless
        ``with_cov``)."""
        ...

    def project(
        self, E: Any, mean: np.ndarray, vecs: np.ndarray | None, shape: tuple[int, int]
    ) -> Any:
        """The pixels of ``E`` centred by ``mean`` (and, with ``vecs``, projected on them), as
        a ``(rows, cols, k)`` cube in the dtype of ``E``."""
        ...

    def column_norms(self, E: Any) -> np.ndarray:
        """``||E_j||_2`` of every pixel, a NumPy vector."""
        ...

    def local_rx(self, P: Any, inner: int, outer: int, ridge: float, out_dtype: np.dtype) -> Any:
        """Local dual-window RX of ``P`` (:func:`rednmf.scoring.local_rx.local_rx`)."""
        ...

    def global_rx(self, P: Any, ridge: float, reweight: float | None) -> Any:
        """Global RX of ``P`` (:func:`rednmf.scoring.global_rx.global_rx`)."""
        ...

    def gather(self, P: Any) -> Any:
        """``P`` as an array of backend :attr:`xp` in this process."""
        ...


class InProcess:
    """The :class:`ScoringSession` of an evidence matrix in this process.

    On NumPy ``E`` is read ``E[:, a:b]`` a block of pixels at a time: an
    array, a :class:`numpy.memmap` (a scene fitted out of core), a matrix
    formed on demand (:class:`rednmf.solvers.rednmf.EvidenceMatrix`, closed once
    read, or :class:`rednmf.outofcore.CubeMatrix`); the
    moments are float64 sums over the blocks and no cube of ``E`` is made. On
    torch (``backend='torch'``) ``E`` is a tensor on ``device`` and every step
    runs there.
    """

    def __init__(self, backend: str | None = "numpy", device: Any = None) -> None:
        self.backend = backend
        self.device = device

    @property
    def xp(self) -> NumpyBackend:
        """The array backend (:func:`rednmf.backend.get_backend`)."""
        return get_backend(self.backend, self.device)

    def _blocks(self, n: int) -> list[tuple[int, int]]:
        return [(a, min(n, a + BLOCK_PIXELS)) for a in range(0, n, BLOCK_PIXELS)]

    def moments(self, E: Any, with_cov: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Float64 mean and covariance of the pixels, summed a block of pixels at a time."""
        xp = self.xp
        d, n = E.shape
        if xp.name != "numpy":
            x = xp.asarray(E).T
            mean = xp.mean0_64(x)
            cov = None
            if with_cov:
                cov = xp.zeros((d, d), dtype=xp.float64)
                for a, b in self._blocks(n):
                    xc = xp.subtract(x[a:b], mean)
                    cov += xc.T @ xc
                cov = xp.to_numpy(cov) / n
            return xp.to_numpy(mean), cov
        mean = np.zeros(d)
        for a, b in self._blocks(n):
            mean += np.asarray(E[:, a:b]).sum(axis=1, dtype=np.float64)
        mean /= n
        if not with_cov:
            return mean, None
        cov = np.zeros((d, d))
        for a, b in self._blocks(n):
            xc = _centred64(E[:, a:b], mean)
            cov += xc.T @ xc
        return mean, cov / n

    def project(
        self, E: Any, mean: np.ndarray, vecs: np.ndarray | None, shape: tuple[int, int]
    ) -> Any:
        """The projection, a block of pixels at a time (float64, then the dtype of ``E``)."""
        xp = self.xp
        d, n = E.shape
        k = d if vecs is None else vecs.shape[1]
        if xp.name != "numpy":
            x = xp.asarray(E).T
            mean_x = xp.asarray(mean)
            vecs_x = None if vecs is None else xp.asarray(vecs)
            proj = xp.empty((n, k), dtype=x.dtype)
            for a, b in self._blocks(n):
                xc = xp.subtract(x[a:b], mean_x)
                proj[a:b] = xc if vecs_x is None else xc @ vecs_x
            return proj.reshape(*shape, k)
        proj = np.empty((n, k), dtype=E.dtype)
        for a, b in self._blocks(n):
            xc = _centred64(E[:, a:b], mean)
            proj[a:b] = xc if vecs is None else xc @ vecs
        return proj.reshape(*shape, k)

    def column_norms(self, E: Any) -> np.ndarray:
        """Column norms by blocks, in the dtype of ``E``."""
        if self.xp.name != "numpy":
            E = self.xp.to_numpy(E)
        n = E.shape[1]
        out = np.empty(n, dtype=E.dtype)
        for a, b in self._blocks(n):
            out[a:b] = np.linalg.norm(np.ascontiguousarray(np.asarray(E[:, a:b]).T), axis=1)
        return out

    def local_rx(self, P: Any, inner: int, outer: int, ridge: float, out_dtype: np.dtype) -> Any:
        """:func:`rednmf.scoring.local_rx.local_rx_backend` of the whole projection."""
        return local_rx_backend(P, inner, outer, ridge, out_dtype, self.xp)

    def global_rx(self, P: Any, ridge: float, reweight: float | None) -> Any:
        """:func:`rednmf.scoring.global_rx.global_rx_backend` of the projection."""
        return global_rx_backend(P, ridge, reweight, self.xp)

    def gather(self, P: Any) -> Any:
        """``P`` itself: it is in this process."""
        return P


def _centred64(block: Any, mean: np.ndarray) -> np.ndarray:
    """The pixels of a ``bands x pixels`` block as rows, in float64, minus ``mean``.

    Widened as they are subtracted (one float64 array, not a widened copy and then the
    difference), in the layout of the transposed block.
    """
    rows = np.asarray(block).T
    return np.subtract(rows, mean, out=np.empty_like(rows, dtype=np.float64))


def project_matrix(
    E: Any,
    shape: tuple[int, int],
    n_pca: int | None,
    noise_var: np.ndarray | str | None,
    session: ScoringSession | None = None,
) -> Any:
    """The ``(rows, cols, k)`` projection of a ``bands x pixels`` matrix on its principal axes.

    The mean and covariance of its pixels (:meth:`ScoringSession.moments`), the
    ``k`` leading axes (:func:`rednmf.scoring.pca.principal_axes`; ``k`` at
    most ``n_pca``, and with ``noise_var`` only the components above the
    noise, :func:`rednmf.scoring.pca.noise_pca_count`; ``'estimate'`` takes
    the noise from the covariance itself,
    :func:`rednmf.solvers.noise.band_noise_variance`), then the centred pixels
    projected on them (:meth:`ScoringSession.project`). With ``n_pca`` None (or
    at least the bands) and no ``noise_var`` the pixels are only centred.
    ``session``: where ``E`` lives (default :class:`InProcess` on NumPy).
    An ``n_pca`` that is not a positive integer raises :class:`InputError`.
    """
    session = InProcess() if session is None else session
    if n_pca is not None:
        n_pca = check_int("n_pca", n_pca, low=1)
    d, n = E.shape
    k = d if n_pca is None or n_pca >= d else n_pca
    rotate = k < d or noise_var is not None
    mean, cov = session.moments(E, rotate)
    if not rotate:
        return session.project(E, mean, None, shape)
    assert cov is not None
    if isinstance(noise_var, str):  # 'estimate'
        from rednmf.solvers.noise import band_noise_variance

        noise_var = band_noise_variance(cov)
    if noise_var is not None:
        k = noise_pca_count(cov, noise_var, n, k)
    return session.project(E, mean, principal_axes(cov, k), shape)


def score_matrix(
    E: Any,
    shape: tuple[int, int],
    session: ScoringSession | None = None,
    *,
    scorer: str = "brad",
    inner: int = 9,
    outer: int = 27,
    n_pca: int | None = 20,
    ridge: float = 0.1,
    pool: int = 3,
    noise_var: np.ndarray | str | None = None,
    combine: str = "sum",
    pool_global: bool = True,
    robust_global: bool = True,
    projected_cube: np.ndarray | Callable[[], np.ndarray] | None = None,
    suspect_level: float = SUSPECT_LEVEL,
    dtype: DTypeLike = np.float64,
) -> np.ndarray:
    """Turn a ``(bands, pixels)`` evidence matrix into a ``(rows, cols)`` score map.

    The one scoring pipeline of the module docstring, that of every evidence
    matrix and of every cube (:mod:`rednmf.scoring.cube`); ``session`` says where
    ``E`` lives (:class:`ScoringSession`; default :class:`InProcess` on NumPy).
    Once projected, ``E`` is closed if it has a ``close`` method, so that what
    it holds can go before the detectors run.

    Parameters
    ----------
    E : array-like of shape (bands, rows * cols)
        Anomaly matrix or residual, pixels in row-major order, read ``E[:, a:b]``.
    shape : (rows, cols)
        Spatial shape.
    session : ScoringSession, optional
        Where ``E`` is scored.
    scorer : {'multiscale', 'brad', 'norm'}
        ``'multiscale'``: :func:`rednmf.scoring.cube.multiscale` (local
        and global RX, each also pooled, on one scale); ``'brad'``:
        :func:`rednmf.scoring.cube.brad` with the window parameters given;
        ``'norm'``: the column norm ``||E_j||_2``.
    inner, outer, n_pca, ridge
        Parameters of the local detector (ignored by ``'norm'``).
    pool : int, default 3
        ``'multiscale'``: side of the pooling neighbourhood.
    noise_var : ndarray of shape (bands,) or 'estimate', optional
        Noise variance of each band of ``E``: ``'multiscale'`` and ``'brad'``
        keep only the principal components above the noise (``'estimate'``:
        estimated from the covariance of ``E``, :func:`project_matrix`).
    combine : {'max', 'sum', 'hmp'}, default 'sum'
        ``'multiscale'``: Tippett's, Fisher's or the harmonic-mean combination
        of the detectors (:mod:`rednmf.scoring.multiscale`).
    pool_global, robust_global : bool, default True
        ``'multiscale'``: also pool the global detector; reweight its
        statistics (:func:`rednmf.scoring.cube.multiscale`).
    projected_cube : ndarray of shape (rows, cols, k), optional
        ``'multiscale'``: the data the evidence came from, on its principal
        components above its own noise (:func:`project_matrix` with
        ``noise_var='estimate'``); then the cube is scored too, in this
        process, against the background statistics of the pixels the evidence
        does not flag, and combined with the evidence's local detectors
        (:func:`rednmf.scoring.multiscale.cube_and_evidence`). A callable
        returning it is called once the evidence's detectors have run and its
        projection is let go (the two projections are then never held together).
    suspect_level : float, default 0.05
        With ``projected_cube``: the evidence's tail probability at or below
        which a pixel leaves the background statistics.
    dtype : {'float64', 'float32'}, default float64
        Precision of the local detector's solves (and of ``'brad'``'s scores).

    Returns
    -------
    numpy.ndarray of shape (rows, cols)

    Raises
    ------
    InputError
        For an unknown scorer, invalid parameters, a matrix that is not
        ``bands x pixels`` of the scene, or a scene smaller than the outer window.
    """
    check_choice("scorer", scorer, SCORERS)
    session = InProcess() if session is None else session
    rows, cols = shape
    if len(E.shape) != 2 or E.shape[1] != rows * cols:
        raise InputError(f"E of shape {E.shape} is not bands x pixels of a {rows}x{cols} scene")
    if scorer == "norm":
        norms = session.column_norms(E)
        _close(E)
        return norms.reshape(shape)
    inner, outer, ridge, out_dtype = check_windows(shape, inner, outer, ridge, dtype)
    P = project_matrix(E, shape, n_pca, noise_var, session)
    _close(E)
    del E
    xp = session.xp
    if scorer == "brad":
        return xp.to_numpy(session.local_rx(P, inner, outer, ridge, out_dtype))
    pool = check_int("pool", pool, low=1)
    if projected_cube is not None:  # cube_and_evidence, the evidence let go after step 1
        d = Detectors(
            inner, outer, ridge, pool, out_dtype, xp, combine, pool_global, robust_global
        )
        local_e, background = evidence_suspects(session.gather(P), d, suspect_level)
        del P
        if callable(projected_cube):
            projected_cube = projected_cube()
        return cube_against_background(xp.asarray(projected_cube), background, local_e, d)
    local = session.local_rx(P, inner, outer, ridge, out_dtype)
    glob = session.global_rx(P, ridge, REWEIGHT_QUANTILE if robust_global else None)
    return xp.to_numpy(combine_scales(local, glob, pool, combine, pool_global, xp))


def _close(E: Any) -> None:
    """Close a matrix formed on demand once it has been read (a no-op for an array)."""
    close = getattr(E, "close", None)
    if callable(close):
        close()
