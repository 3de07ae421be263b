"""Pixel ranges of the REDNMF block engine on Dask workers.

One global REDNMF model is fitted across a ``dask.distributed`` cluster with
the algorithm of :mod:`rednmf.solvers.rednmf_blocks`: the pixels are cut into
chunks, and each chunk is a :class:`~rednmf.solvers.rednmf_blocks.BlockRange`
living on a worker (a Dask actor), which keeps the chunk's ``X``, ``H`` and
``S`` between sweeps. Every sweep the driver sends ``W`` and ``M`` (``d x r``
and ``r x d``: small) to every chunk, the workers run the block sweep and
return their sums, and the driver adds them in chunk order and applies the W
and M steps (:class:`~rednmf.solvers.rednmf_blocks.BlockSolver`). The per-pixel
and the global code are the in-memory solver's: only where the ranges live
differs. With chunks of ``block_size`` pixels the sums are added exactly as
the in-memory solver adds its blocks, so the fit is identical to it.

:class:`DaskEngine` (:mod:`rednmf.engines`) opens a :class:`DaskSession` for a
fit: the connection to the scheduler, and the :class:`DaskPlacement` that the
solver calls to lay its pixel ranges out as :class:`DaskParts`. A finished fit
leaves its chunks on the workers (:class:`KeptChunks`, held by the parts), so
that the evidence is formed and scored there (the session is the
:class:`~rednmf.scoring.from_matrix.ScoringSession` of the Dask array) instead
of on the driver.

``dask[distributed]`` is imported only here, and only when a client is used.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from rednmf._validation import check_int
from rednmf.backend import NumpyBackend, get_backend
from rednmf.exceptions import InputError
from rednmf.scoring.global_rx import global_rx_apply, global_rx_factor, reweighted
from rednmf.scoring.local_rx import local_rx_backend
from rednmf.scoring.windows import loading_floor
from rednmf.solvers.rednmf import anomaly_evidence
from rednmf.solvers.rednmf_blocks import BlockRange, balanced_ranges, block_ranges

__all__ = [
    "CONNECT_TIMEOUT",
    "DaskParts",
    "DaskPlacement",
    "DaskSession",
    "KeptChunks",
    "chunk_ranges",
    "dask_client",
]

#: How long to wait for a Dask scheduler given by its address.
CONNECT_TIMEOUT = "20s"


@contextmanager
def dask_client(scheduler: Any) -> Iterator[Any]:
    """A :class:`distributed.Client` for ``scheduler``: None, an address, or a client.

    A client made here from an address is closed on exit; a given client is not.
    """
    if scheduler is None or not isinstance(scheduler, str):
        yield scheduler
        return
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - a dependency
        raise InputError(
            "fitting on a Dask cluster needs dask[distributed]; pip install 'dask[distributed]'"
        ) from exc
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(
            f"cannot reach the Dask scheduler at {scheduler!r} ({exc}); start it with "
            "'dask scheduler' and pass its tcp://HOST:PORT address"
        ) from exc
    try:
        yield client
    finally:
        client.close()


def chunk_ranges(n: int, chunk_size: int | None, n_workers: int, block_size: int) -> list:
    """Pixel ranges of the chunks: at most ``chunk_size`` pixels, or (``None``) one per worker.

    A given ``chunk_size`` splits the pixels as the in-memory engine splits its
    blocks (:func:`~rednmf.solvers.rednmf_blocks.balanced_ranges`), so that
    with ``chunk_size == block_size`` every chunk is one of its blocks and the
    fit is the in-memory one. A default chunk size is rounded up to a whole
    number of blocks.
    """
    if chunk_size is None:
        per = -(-n // max(1, n_workers))
        return block_ranges(n, -(-per // block_size) * block_size)
    return balanced_ranges(n, chunk_size)


def _aligned(obj: object) -> object:
    """``obj`` with every array aligned (a copy where needed).

    Arrays unpickled from a message may be unaligned views of its buffer, and
    NumPy does not hand unaligned arrays to BLAS: its own loops would sum in
    another order and the result would differ in the last bits.
    """
    if isinstance(obj, np.ndarray):
        return np.require(obj, requirements="A")
    if isinstance(obj, tuple | list):
        return type(obj)(_aligned(o) for o in obj)
    if is_dataclass(obj) and not isinstance(obj, type):  # the sums of a sweep
        for f in fields(obj):
            setattr(obj, f.name, _aligned(getattr(obj, f.name)))
    return obj


class _RemoteRange:
    """Actor on a worker: a :class:`BlockRange` whose methods run with BLAS on one thread."""

    def __init__(self, X: np.ndarray, H: np.ndarray, **kwargs: Any) -> None:
        X = np.array(X, order="K", copy=True)
        S = np.zeros_like(X)
        self.part = BlockRange(X, np.array(H, order="C", copy=True), S, **kwargs)

    def call(self, method: str, *args: object) -> object:
        with threadpool_limits(1):
            return getattr(self.part, method)(*_aligned(args))


def _chunk_arrays(actor_key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``X, H, S`` of a chunk, read on the worker that holds its actor (no copy).

    The actor is looked up by its key: passing the actor itself would make the
    task hold a handle (and a worker client) that keeps the actor alive.
    """
    from distributed import get_worker

    part = get_worker().state.actors[actor_key].part
    return part.X, part.H, part.S


def _chunk_evidence(
    arrays: tuple[np.ndarray, ...], W: np.ndarray | None, tau: float | None = None
) -> np.ndarray:
    """``S`` of a chunk, or with ``W`` its residual ``X - W H``, shrunk at ``tau`` if given.

    BLAS on one thread.
    """
    X, H, S = arrays
    if W is None:
        return S
    with threadpool_limits(1):
        if tau is not None:
            return anomaly_evidence(X, _aligned(W), H, tau)
        return X - _aligned(W) @ H


class KeptChunks:
    """The chunks of a finished Dask fit, left on their workers (``DaskParts(keep=True)``).

    Holds one future per chunk, on the worker where the chunk was fitted, of its
    ``X``, ``H`` and ``S``.
    """

    def __init__(
        self,
        client: Any,
        ranges: list[tuple[int, int]],
        workers: list[str],
        futures: list[Any],
        shape: tuple[int, int],
        dtype: np.dtype,
    ) -> None:
        self.client = client
        self.ranges = ranges
        self.workers = workers
        self.futures = futures
        self.shape = shape
        self.dtype = dtype

    def evidence(self, W: np.ndarray | None = None, tau: float | None = None) -> Any:
        """``S`` (or, given ``W``, the residual ``X - W H``) as a ``bands x pixels`` Dask array.

        With ``W`` and ``tau`` the residual is shrunk at ``tau``
        (:func:`rednmf.solvers.rednmf.anomaly_evidence`).

        Each chunk is formed on its worker and stays there. The handle lets go
        of the chunks' ``X`` and ``H`` (they are freed once the evidence is formed).
        """
        import dask.array as da

        if not self.futures:
            raise RuntimeError("the chunks of this fit were already handed over")
        d = self.shape[0]
        blocks = []
        for (a, b), where, fut in zip(self.ranges, self.workers, self.futures, strict=True):
            f = self.client.submit(
                _chunk_evidence,
                fut,
                W,
                tau,
                workers=[where],
                allow_other_workers=True,
                pure=False,
            )
            blocks.append(da.from_delayed(f, shape=(d, b - a), dtype=self.dtype))
        self.futures = []
        return da.concatenate(blocks, axis=1)


class DaskParts:
    """The chunks of a fit, as actors on the workers of a :class:`distributed.Client`.

    Same interface as :class:`rednmf.solvers.rednmf_blocks.LocalParts`, plus
    :meth:`gather_into`, which the solver calls at the end of the fit.
    ``X[:, a:b]`` and ``H[:, a:b]`` of each chunk are read here once (``X``
    may be a :class:`numpy.memmap` or a lazily scaled view) and sent to a
    worker; chunks are dealt to the workers in turn. With ``keep`` the chunks
    stay on their workers past :meth:`close` (:attr:`kept`). ``kwargs`` go to
    every chunk's :class:`~rednmf.solvers.rednmf_blocks.BlockRange`.
    """

    def __init__(
        self,
        client: Any,
        X: Any,
        H: np.ndarray,
        ranges: list[tuple[int, int]],
        *,
        keep: bool = False,
        **kwargs: Any,
    ) -> None:
        workers = sorted(client.scheduler_info()["workers"])
        self.keep_chunks = keep
        #: With ``keep``: the chunks left on the workers by :meth:`gather_into`.
        self.kept: KeptChunks | None = None
        if not workers:
            raise RuntimeError("the Dask cluster has no workers")
        self.client = client
        self.ranges = ranges
        self.shape, self.dtype = (X.shape[0], X.shape[1]), np.dtype(X.dtype)
        self.workers = [workers[i % len(workers)] for i in range(len(ranges))]
        futures = []
        for i, (a, b) in enumerate(ranges):
            where = [self.workers[i]]
            Xc = np.array(X[:, a:b], order="K", copy=True)
            Hc = np.array(H[:, a:b], copy=True)
            data = client.scatter([Xc, Hc], workers=where, broadcast=False, direct=False)
            futures.append(
                client.submit(
                    _RemoteRange,
                    *data,
                    **kwargs,
                    actor=True,
                    workers=where,
                    allow_other_workers=False,
                    pure=False,
                )
            )
            del Xc, Hc
        self._futures = futures
        self.actors = [f.result() for f in futures]

    def call(self, method: str, *args: object) -> list[object]:
        """``method(*args)`` on every chunk at once; results in chunk order."""
        pending = [a.call(method, *args) for a in self.actors]
        return [_aligned(p.result()) for p in pending]

    def gather_into(self, H: np.ndarray, S: np.ndarray) -> None:
        """Copy every chunk's ``H`` and ``S`` into ``H`` and ``S`` (one chunk at a time).

        With ``keep`` the chunks are also kept on their workers (:attr:`kept`).
        """
        for (a, b), actor in zip(self.ranges, self.actors, strict=True):
            Hc, Sc = _aligned(actor.call("factors").result())
            H[:, a:b] = Hc
            S[:, a:b] = Sc
        if self.keep_chunks:
            self.kept = self.keep()

    def keep(self) -> KeptChunks:
        """The chunks' ``X``, ``H`` and ``S`` as futures on their workers, past :meth:`close`."""
        from distributed import wait

        futures = [
            self.client.submit(
                _chunk_arrays, f.key, workers=[w], allow_other_workers=False, pure=False
            )
            for f, w in zip(self._futures, self.workers, strict=True)
        ]
        wait(futures)  # read from the actors before they are released
        return KeptChunks(self.client, self.ranges, self.workers, futures, self.shape, self.dtype)

    def close(self) -> None:
        """Release the actors (and the chunks they hold)."""
        for f in self._futures:
            f.release()
        self._futures, self.actors = [], []


class DaskPlacement:
    """Lays a fit's pixel ranges out on a cluster: the ``parts`` of :func:`rednmf_solve_blocks`.

    Called by the solver as ``placement(X, H, S, **range_kwargs)``; cuts the
    pixels into chunks (:func:`chunk_ranges`) and returns their
    :class:`DaskParts` (``S`` is gathered into by the solver at the end). With
    ``keep`` the chunks of the fit stay on the workers: :attr:`parts` holds
    the last parts made, whose :attr:`DaskParts.kept` the caller reads.

    Parameters
    ----------
    client : distributed.Client
        A connected client.
    chunk_size : int, optional
        Pixels per chunk (default: one chunk per worker).
    keep : bool, default=False
        Leave the chunks on the workers after the fit.
    """

    def __init__(self, client: Any, chunk_size: int | None = None, *, keep: bool = False) -> None:
        self.client = client
        self.chunk_size = chunk_size
        self.keep = keep
        self.parts: DaskParts | None = None

    def __call__(self, X: Any, H: np.ndarray, S: np.ndarray, **kwargs: Any) -> DaskParts:
        """The :class:`DaskParts` of ``X`` and ``H``; ``kwargs`` go to every chunk's range."""
        del S  # held by the chunks on the workers; the solver gathers it
        n_workers = len(self.client.scheduler_info()["workers"])
        ranges = chunk_ranges(X.shape[1], self.chunk_size, n_workers, kwargs["block_size"])
        kwargs["n_jobs"] = 1  # one chunk per call on a worker, BLAS on one thread
        self.parts = DaskParts(self.client, X, H, ranges, keep=self.keep, **kwargs)
        return self.parts


class DaskSession:
    """One fit of :class:`rednmf.engines.DaskEngine`: a client, and where the chunks go.

    The scoring runs on the same client, where the fit left the evidence
    (:meth:`kept_evidence`): this is the
    :class:`~rednmf.scoring.from_matrix.ScoringSession` of a ``bands x pixels``
    Dask array. Its moments are float64 Dask reductions over the chunks (only
    ``bands``-sized results come back); the chunks are projected where they
    are and regrouped into tiles of whole rows (``chunk_rows`` rows each;
    default one tile per worker). The local RX of each tile runs through
    :func:`dask.array.map_overlap` with a halo of ``outer // 2`` pixels and
    ``boundary='none'`` (a tile on the image edge gets no halo on that side, so
    its windows are clipped there, as on the whole image) and the scene mean
    and loading floor of the whole projection
    (:func:`rednmf.scoring.local_rx.local_rx_backend`'s ``scene_stats``); the
    global RX scores the chunks against reduced statistics. The scores equal
    the in-process ones up to float rounding (the sums add in another order).

    Parameters
    ----------
    client : distributed.Client or None
        The cluster that holds the chunks (None: Dask's default scheduler,
        for scoring only).
    chunk_size : int, optional
        Pixels per chunk of the fit (default: one chunk per worker).
    chunk_rows : int, optional
        Rows per tile of the local RX.
    """

    backend = "numpy"
    device = None
    n_jobs = 1

    def __init__(
        self, client: Any, chunk_size: int | None = None, chunk_rows: int | None = None
    ) -> None:
        self.client = client
        self.placement = DaskPlacement(client, chunk_size, keep=True)
        if chunk_rows is not None:
            chunk_rows = check_int("chunk_rows", chunk_rows, low=1)
        self.chunk_rows = chunk_rows

    def solver_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~rednmf.solvers.rednmf.rednmf_solve_blocks` here."""
        return {"placement": self.placement}

    def kept_evidence(self, W: np.ndarray | None, tau: float | None) -> Any:
        """The evidence of the fit, a Dask array on the workers (:meth:`KeptChunks.evidence`).

        ``S`` when ``W`` is None, else ``X - WH`` shrunk at ``tau`` (if not None).
        """
        parts = self.placement.parts
        if parts is None or parts.kept is None:  # pragma: no cover - a programming error
            raise RuntimeError("no Dask fit has run in this session")
        kept, parts.kept = parts.kept, None
        return kept.evidence(W, tau)

    # -- the scoring primitives (rednmf.scoring.from_matrix.ScoringSession) -------------

    @property
    def xp(self) -> NumpyBackend:
        """NumPy: the score maps come back to this process."""
        return get_backend("numpy")

    def _compute(self, x: Any) -> Any:
        """``x`` computed on the client (or Dask's default scheduler) as a NumPy value."""
        if self.client is None:
            import dask

            return np.asarray(dask.compute(x)[0])
        return np.asarray(self.client.compute(x, sync=True))

    def _persist(self, x: Any) -> Any:
        """``x`` computed and kept where it is computed (on the workers)."""
        return x.persist() if self.client is None else self.client.persist(x)

    @staticmethod
    def _pixels(E: Any) -> Any:
        """The pixels of ``E`` as ``(pixels, bands)``, the bands in one chunk, floating point."""
        x = E.T.rechunk({1: -1})
        return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)

    def _moments(self, x64: Any, keep: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean and biased covariance of the pixels (the leading axes) of ``x64``, or of
        those where ``keep``."""
        import dask.array as da

        axes = tuple(range(x64.ndim - 1))
        if keep is None:
            n = math.prod(x64.shape[:-1])
            mean = self._compute(x64.mean(axis=axes))
            xc = x64 - mean
        else:
            n = int(self._compute(keep.sum()))
            w = keep[..., None].astype(np.float64)
            mean = self._compute((x64 * w).sum(axis=axes)) / n
            xc = (x64 - mean) * w
        return mean, self._compute(da.tensordot(xc, xc, axes=(axes, axes))) / n

    def moments(self, E: Any, with_cov: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Float64 mean (and covariance) of the pixels, reduced over the chunks."""
        x64 = self._pixels(E).astype(np.float64)
        if not with_cov:
            return self._compute(x64.mean(axis=0)), None
        return self._moments(x64)

    def project(
        self, E: Any, mean: np.ndarray, vecs: np.ndarray | None, shape: tuple[int, int]
    ) -> Any:
        """Each chunk projected where it is, regrouped into tiles of whole rows, kept there."""
        x = self._pixels(E)
        if vecs is None:
            proj = x.map_blocks(_centre, mean, dtype=x.dtype)
        else:
            chunks = (x.chunks[0], (vecs.shape[1],))
            proj = x.map_blocks(_project, mean, vecs, chunks=chunks, dtype=x.dtype)
        rows, cols = shape
        chunk_rows = self.chunk_rows
        if chunk_rows is None:
            tiles = x.numblocks[0]
            if self.client is not None:
                tiles = min(tiles, len(self.client.scheduler_info()["workers"]))
            chunk_rows = math.ceil(rows / max(1, tiles))
        sizes = [min(chunk_rows, rows - r) * cols for r in range(0, rows, chunk_rows)]
        proj = proj.rechunk({0: tuple(sizes)}).reshape(rows, cols, proj.shape[1])
        return self._persist(proj)

    def column_norms(self, E: Any) -> np.ndarray:
        """Column norms of each chunk where it is."""
        x = self._pixels(E)
        return self._compute(x.map_blocks(np.linalg.norm, axis=1, drop_axis=1, dtype=x.dtype))

    def local_rx(self, P: Any, inner: int, outer: int, ridge: float, out_dtype: np.dtype) -> Any:
        """Local RX of every tile with its halo, against the scene's mean and loading floor."""
        import dask.array as da

        x64 = P.astype(np.float64)
        mean = self._compute(x64.mean(axis=(0, 1)))
        floor = loading_floor(float(self._compute(((x64 - mean) ** 2).mean())))
        half = outer // 2
        scores = da.map_overlap(
            _tile_scores, P, depth={0: half, 1: half, 2: 0}, boundary="none", trim=True,
            drop_axis=2, dtype=out_dtype, meta=np.empty((0, 0), dtype=out_dtype),
            inner=inner, outer=outer, ridge=ridge, out_dtype=out_dtype,
            scene_stats=(mean, floor),
        )  # fmt: skip
        return self._compute(scores)

    def global_rx(self, P: Any, ridge: float, reweight: float | None) -> Any:
        """Global RX of the chunks against reduced statistics (reweighted as in memory)."""
        x64 = P.astype(np.float64)

        def scores_of(keep: Any) -> Any:
            mean, cov = self._moments(x64, keep)
            chol = global_rx_factor(cov, ridge)
            return self._persist(
                P.map_blocks(global_rx_apply, mean, chol, drop_axis=2, dtype=np.float64)
            )

        scores = reweighted(scores_of, P.shape[2], reweight, lambda m: int(self._compute(m.sum())))
        return self._compute(scores)

    def gather(self, P: Any) -> np.ndarray:
        """The projection, computed and brought here."""
        return self._compute(P)


def _centre(block: np.ndarray, mean: np.ndarray) -> np.ndarray:
    return (block.astype(np.float64) - mean).astype(block.dtype)


def _project(block: np.ndarray, mean: np.ndarray, vecs: np.ndarray) -> np.ndarray:
    """One chunk of the projection, as :meth:`~rednmf.scoring.from_matrix.InProcess.project`."""
    return ((block.astype(np.float64) - mean) @ vecs).astype(block.dtype)


def _tile_scores(
    tile: np.ndarray,
    *,
    inner: int,
    outer: int,
    ridge: float,
    out_dtype: np.dtype,
    scene_stats: tuple[np.ndarray, float],
) -> np.ndarray:
    """Local RX of a tile with its halo (the halo's scores are trimmed by Dask)."""
    return local_rx_backend(
        tile, inner, outer, ridge, out_dtype, get_backend("numpy"), scene_stats=scene_stats
    )
