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
that the evidence is formed and scored there
(:mod:`rednmf.scoring.dask_scoring`) instead of on the driver.

``dask[distributed]`` is imported only here, and only when a client is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from rednmf.exceptions import InputError
from rednmf.solvers.rednmf import anomaly_evidence
from rednmf.solvers.rednmf_blocks import BlockRange, _Sums, balanced_ranges, block_ranges

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
    if isinstance(obj, _Sums):
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
    (:meth:`kept_evidence`).
    """

    backend = "numpy"
    device = None
    n_jobs = 1

    def __init__(self, client: Any, chunk_size: int | None) -> None:
        self.client = client
        self.placement = DaskPlacement(client, chunk_size, keep=True)

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
