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

Inside :func:`keep_chunks` a finished fit leaves its chunks on the workers
(:class:`KeptChunks`), so that ``S`` can be scored there
(:mod:`rednmf.scoring.dask_scoring`) instead of on the driver.

``dask[distributed]`` is imported only here, and only when a client is given.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import fields
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from rednmf.solvers.rednmf import anomaly_evidence
from rednmf.solvers.rednmf_blocks import BlockRange, _Sums, balanced_ranges, block_ranges

__all__ = ["DaskParts", "KeptChunks", "chunk_ranges", "keep_chunks"]

#: Where the fits run inside :func:`keep_chunks` leave their :class:`KeptChunks`.
_KEPT: ContextVar[list[KeptChunks] | None] = ContextVar("rednmf_kept_chunks", default=None)


@contextmanager
def keep_chunks() -> Iterator[list[KeptChunks]]:
    """Keep the chunks of the Dask fits run inside on their workers after the fit.

    Yields a list to which every fit that ends here appends its
    :class:`KeptChunks` (when it gathers ``H`` and ``S``, before its actors are
    released). The chunks stay on the workers as long as a handle refers to
    them: drop the handle (the list is emptied on exit) to free them.
    """
    kept: list[KeptChunks] = []
    token = _KEPT.set(kept)
    try:
        yield kept
    finally:
        _KEPT.reset(token)
        kept.clear()


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
    """The chunks of a finished Dask fit, left on their workers (see :func:`keep_chunks`).

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

    Same interface as :class:`rednmf.solvers.rednmf_blocks.LocalParts`.
    ``X[:, a:b]`` and ``H[:, a:b]`` of each chunk are read here once (``X``
    may be a :class:`numpy.memmap` or a lazily scaled view) and sent to a
    worker; chunks are dealt to the workers in turn.
    """

    def __init__(
        self,
        client: Any,
        X: Any,
        H: np.ndarray,
        ranges: list[tuple[int, int]],
        **kwargs: Any,
    ) -> None:
        workers = sorted(client.scheduler_info()["workers"])
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

        Inside :func:`keep_chunks` the chunks are also kept on their workers.
        """
        for (a, b), actor in zip(self.ranges, self.actors, strict=True):
            Hc, Sc = _aligned(actor.call("factors").result())
            H[:, a:b] = Hc
            S[:, a:b] = Sc
        kept = _KEPT.get()
        if kept is not None:
            kept.append(self.keep())

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
