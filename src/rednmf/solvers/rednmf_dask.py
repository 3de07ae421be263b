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

``dask[distributed]`` is imported only here, and only when a client is given.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from rednmf.solvers.rednmf_blocks import BlockRange, _Sums, block_ranges

__all__ = ["DaskParts", "chunk_ranges"]


def chunk_ranges(n: int, chunk_size: int | None, n_workers: int, block_size: int) -> list:
    """Pixel ranges of the chunks: ``chunk_size`` pixels, or (``None``) one chunk per worker.

    A default chunk size is rounded up to a whole number of blocks.
    """
    if chunk_size is None:
        per = -(-n // max(1, n_workers))
        chunk_size = -(-per // block_size) * block_size
    return block_ranges(n, chunk_size)


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
        futures = []
        for i, (a, b) in enumerate(ranges):
            where = [workers[i % len(workers)]]
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
        """Copy every chunk's ``H`` and ``S`` into ``H`` and ``S`` (one chunk at a time)."""
        for (a, b), actor in zip(self.ranges, self.actors, strict=True):
            Hc, Sc = _aligned(actor.call("factors").result())
            H[:, a:b] = Hc
            S[:, a:b] = Sc

    def close(self) -> None:
        """Release the actors (and the chunks they hold)."""
        for f in self._futures:
            f.release()
        self._futures, self.actors = [], []
