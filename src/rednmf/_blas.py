"""One BLAS thread for the small dense decompositions (``d x d`` eigh, inverse, Cholesky).

On this project's machines (2 shared vCPUs) a multi-threaded OpenBLAS/LAPACK
``eigh`` of a 205 x 205 matrix took 0.05-0.6 s when the other vCPU was busy
(its threads wait for each other), against 9-16 ms on one thread, measured in
one run. The decompositions here are of ``bands x bands`` matrices, where one
thread is never much slower, so they run on one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import lru_cache

from threadpoolctl import ThreadpoolController

__all__ = ["one_blas_thread"]


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # inspects the loaded libraries once (about 0.1 ms per call)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit BLAS/LAPACK to one thread inside the ``with`` block."""
    with _controller().limit(limits=1, user_api="blas"):
        yield
