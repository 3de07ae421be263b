r"""Pixel-block engine of the REDNMF solver: one pass over the data per iteration.

The updates of Algorithm 1 touch the pixels in two ways. ``S`` (17, with pixel
groups or element-wise L1) and ``H`` (16) are computed pixel by pixel; ``W``
(14) and ``M`` (15) need sums over all pixels, and only a few small ones:

=====================  =========================================  ==========
sum over pixels        used by                                    shape
=====================  =========================================  ==========
``H H'``               (14)                                       r x r
``H X'``, ``H S+'``,   (14), (15)                                 r x d each
``H S-'``
``(MX) S+'``,          (15)                                       r x d each
``(MX) S-'``,
``(MS+) X'``,
``(MS-) X'``
``S S'``               (15), split into ``[SS']+`` and ``[SS']-``  d x d
=====================  =========================================  ==========

``X X'`` is computed once. So one iteration is one sweep over blocks of
pixels: for a block ``J`` the sweep applies the H step of iteration ``t``
(with the new ``W``, ``M`` and the stored ``S_J``), adds the block's share of
the objective of iteration ``t``, forms ``S_J`` of iteration ``t + 1`` from
the new residual and adds the block's share of the sums above; then ``W`` and
``M`` of iteration ``t + 1`` are updated from the totals. The sequence of
iterates is exactly Algorithm 1's (the test suite checks it against a plain
transcription of (14)-(17)); only the order of the floating-point sums
changes.

Products with the positive and negative parts of ``S`` are formed from one
product with ``|S|``: ``P S+ = (P|S| + PS) / 2``, ``P S- = (P|S| - PS) / 2``.
With pixel groups ``S = (X - W_s H) diag(f)`` (``W_s`` the ``W`` of its S
step, ``f`` the per-pixel shrink factors, both kept), so ``PS`` for
``P = [W'; M]`` and ``P = M`` is ``(PX - (P W_s) H) diag(f)`` from the ``PX``
already formed: per pixel and iteration the engine does ``13 r d`` multiply-adds
of rank-``r`` products and ``d^2 / 2`` for ``SS'``.

What this buys:

* every bands x pixels operation is done on a block that stays in the CPU
  cache, and no bands x pixels array is allocated per iteration (each thread
  keeps three block-sized scratch buffers);
* the data are read once per iteration, block by block, so ``X`` may be a
  :class:`numpy.memmap` of a file larger than memory (``S`` can be one too);
* on pixel-major NumPy blocks with pixel groups (the default), the residual,
  the fit term, the S step and ``|S|`` are one compiled pass per block
  (:mod:`rednmf.solvers._kernels`, without the GIL); the namespace path below
  does the same in six NumPy passes and serves torch, ``'l1'`` and band-major
  data;
* blocks are independent within a sweep, so they run on ``n_jobs`` threads
  (BLAS and NumPy release the GIL); the caller pins BLAS to one thread and the
  per-block sums are added in block order, so the result does not depend on
  ``n_jobs``.

The array code is written once against the namespace ``xp`` of
:mod:`rednmf.backend`: with NumPy arrays it makes exactly the NumPy calls
(in-place ``out=`` ufuncs), with torch tensors the same updates run on the
tensors' device (``rednmf_solve_blocks(backend='torch')``, CPU or CUDA).

:func:`rednmf.solvers.rednmf.rednmf_solve_blocks` drives this engine: the S
steps that act pixel by pixel at a threshold fixed before the first sweep
(``sparsity`` ``'l21'`` over pixels, ``'l1'``, ``'none'``; ``lam_mode``
``'noise'``, ``'svd'``, ``'absolute'``). Band groups and the adaptive threshold
need a statistic of the whole residual before each S step:
:func:`rednmf.solvers.rednmf.rednmf_solve`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info

from rednmf.backend import NumpyBackend, namespace
from rednmf.solvers import _kernels
from rednmf.solvers.prox import shrink_factors, soft_threshold

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "GPU_BLOCK_SIZE",
    "balanced_ranges",
    "block_ranges",
    "default_block_size",
    "gram",
    "resolve_n_jobs",
    "BlockRange",
    "BlockSolver",
    "LocalParts",
    "sum_in_order",
]

#: Pixels per block. Blocks of 1024-8192 pixels keep the three scratch buffers
#: of a thread in the L2/L3 cache; smaller blocks pay NumPy's per-call overhead
#: (and, with two threads, hold the GIL for more calls). Measured with two
#: threads (docs/performance.md): 4096 against 2048 was 4 % faster on
#: abu-airport-1, 14 % at 10^5 and 8 % at 10^6 pixels; with the compiled S step,
#: 8192 against 4096 was 5-8 % faster on abu-airport-1 (one and two threads),
#: within 3 % either way at 10^5, and no faster at 10^6 before it.
DEFAULT_BLOCK_SIZE = 8192

#: Pixels per block on a CUDA device (torch backend): large blocks, so that each
#: operation is one large kernel; three d x 2^18 float32 scratch buffers are
#: 210 MB for 200 bands. Not measured here (no GPU on the development machine).
GPU_BLOCK_SIZE = 1 << 18


#: A block's non-zero columns of ``S`` are gathered (and every product with ``S``
#: runs over them alone) while they are at most this fraction of the block;
#: above it the products run over the whole block, without a gather.
DENSE_FRACTION = 0.5

#: Whether blocks of pixel-major NumPy arrays (as the detectors lay them out) with
#: pixel groups (``sparsity='l21'``) form the residual, the fit term and the S step
#: in one compiled pass
#: (:mod:`rednmf.solvers._kernels`) rather than in six NumPy passes. The two paths
#: agree to rounding (``tests/solvers/test_kernels.py``).
USE_KERNELS = True

#: Largest ``S`` (bytes) that the in-memory solver keeps as an array by default;
#: a larger one is formed again block by block from the factors of its S step
#: (``rednmf_solve_blocks(store_s=None)``; :class:`BlockRange` with ``S=None``), which
#: costs ``r d`` multiply-adds per pixel and iteration and saves a bands x pixels
#: array. The detector reads a scene this large scaled block by block too.
STORED_S_BYTES = 64 << 20

#: Every column of a block (a view, no gather).
ALL = slice(None)

#: Columns of a block: ``None`` (none), :data:`ALL` or an index array.
Cols = Any


def _pixel_major(A: Any) -> bool:
    """Whether each pixel's spectrum (a column of the d x n ``A``) is contiguous in memory.

    From the strides of an array, else from the ``flags`` of an object that
    forms its blocks on demand (:class:`rednmf.outofcore.CubeMatrix`).
    """
    strides = getattr(A, "strides", None)
    if strides is None:
        return bool(getattr(getattr(A, "flags", None), "f_contiguous", False))
    return A.shape[0] == 1 or strides[0] == A.dtype.itemsize


def default_block_size(xp: NumpyBackend) -> int:
    """Pixels per block on ``xp``: :data:`GPU_BLOCK_SIZE` on CUDA, else the default."""
    cuda = xp.device is not None and xp.device.type == "cuda"
    return GPU_BLOCK_SIZE if cuda else DEFAULT_BLOCK_SIZE


def resolve_n_jobs(n_jobs: int | None) -> int:
    """Number of threads over blocks.

    ``None``: as many as BLAS is allowed to use here (``OPENBLAS_NUM_THREADS``,
    ``OMP_NUM_THREADS`` or a :func:`threadpoolctl.threadpool_limits` in effect
    are respected, so a caller that pinned BLAS to one thread per process gets
    one thread). ``-1``: every CPU of this process. A positive int: that many.
    """
    if n_jobs is None:
        blas = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
        return max(1, min(blas) if blas else 1)
    if n_jobs == -1:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - not Linux
            return max(1, os.cpu_count() or 1)
    return max(1, int(n_jobs))


def block_ranges(n: int, size: int) -> list[tuple[int, int]]:
    """Consecutive ``(start, stop)`` column ranges of at most ``size`` pixels covering ``n``."""
    size = max(1, int(size))
    return [(a, min(a + size, n)) for a in range(0, n, size)]


def balanced_ranges(n: int, size: int) -> list[tuple[int, int]]:
    """``n`` pixels in an even number of near-equal blocks of at most ``size`` pixels.

    The blocks of a sweep: with an even count of equal blocks two threads get
    equal shares (10^4 pixels in blocks of 2048 were five blocks, 3 + 2 per
    thread; now six of 1666-1667); one block when ``n <= size``. The split
    depends on ``n`` and ``size`` only, never on the number of threads, so
    neither does the result.
    """
    size = max(1, int(size))
    count = -(-n // size)
    if count > 1:
        count += count % 2
    edges = [n * i // count for i in range(count + 1)]
    return [(edges[i], edges[i + 1]) for i in range(count)]


def _map_blocks(
    fn: Callable[[int, int], object],
    ranges: list[tuple[int, int]],
    n_jobs: int,
    pool: ThreadPoolExecutor | None = None,
) -> Iterator[object]:
    """``fn(a, b)`` for every block, on ``n_jobs`` threads; results in block order.

    ``pool``: threads to run on (kept by the caller across sweeps, so that
    their scratch buffers are allocated once); default a pool for this call.
    """
    if n_jobs <= 1 or len(ranges) <= 1:
        return (fn(a, b) for a, b in ranges)
    if pool is not None:
        return iter(list(pool.map(lambda ab: fn(*ab), ranges)))
    with ThreadPoolExecutor(max_workers=min(n_jobs, len(ranges))) as own:
        return iter(list(own.map(lambda ab: fn(*ab), ranges)))


def gram(
    X: np.ndarray,
    block_size: int = DEFAULT_BLOCK_SIZE,
    n_jobs: int = 1,
    xp: NumpyBackend | None = None,
) -> np.ndarray:
    """``X X'`` summed over blocks of columns (a symmetric rank-k update per block)."""
    d = X.shape[0]
    xp = namespace(X) if xp is None else xp

    def part(a: int, b: int) -> np.ndarray:
        B = xp.ascontiguous(X[:, a:b])
        return B @ B.T

    G = xp.zeros((d, d), dtype=X.dtype)
    for P in _map_blocks(part, balanced_ranges(X.shape[1], block_size), n_jobs):
        G += P
    return G


@dataclass
class _Sums:
    """Per-block sums over pixels for the W and M steps, and objective parts."""

    HHt: np.ndarray
    HXt: np.ndarray  # rows: H X', and with the encoder also (MS+) X', (MS-) X'
    PSp: np.ndarray  # rows: H S+', and with the encoder also (MX) S+'
    PSn: np.ndarray  # rows: H S-', and with the encoder also (MX) S-'
    SSt: np.ndarray | None
    # Scalars: Python numbers on NumPy, 0-d tensors on torch until to_python().
    penalty: float  # R(S) of the new S
    fit: float = 0.0  # ||X - WH - S||^2 of the finished iteration
    enc: float = 0.0  # ||H - M(X - S)||^2 of the finished iteration
    nonzero: int = 0
    # m_split='factored': M [S+S+' + S-S-'] and M [S+S-' + S-S+'] (r x d), instead of SS'
    QSp: np.ndarray | None = None
    QSn: np.ndarray | None = None

    def add(self, other: _Sums) -> None:
        """Accumulate another block's sums into this one."""
        self.HHt += other.HHt
        self.HXt += other.HXt
        self.PSp += other.PSp
        self.PSn += other.PSn
        if self.SSt is not None:
            self.SSt += other.SSt
        if self.QSp is not None:
            self.QSp += other.QSp
            self.QSn += other.QSn
        self.penalty += other.penalty
        self.fit += other.fit
        self.enc += other.enc
        self.nonzero += other.nonzero

    def to_python(self) -> _Sums:
        """The scalars as Python numbers (one device synchronisation on torch)."""
        self.penalty, self.fit, self.enc = float(self.penalty), float(self.fit), float(self.enc)
        self.nonzero = int(self.nonzero)
        return self


class BlockRange:
    """The per-pixel half of the iteration: ``X``, ``H`` and ``S`` of a range of pixels.

    Everything that Algorithm 1 computes pixel by pixel lives here: the H step
    (16), the S step (17), the objective shares and the sums of :class:`_Sums`
    for the W and M steps. A sweep takes the current ``W`` and ``M`` and
    returns the range's sums, added over its blocks in block order (blocks on
    ``n_jobs`` threads). The global W and M steps are :class:`BlockSolver`'s.

    The in-memory solver holds one range over all pixels; the Dask solver
    (:mod:`rednmf.engines.dask`) one per chunk, on the workers. ``X``
    (d x m) is read block by block (``X[:, a:b]``: an array, a
    :class:`numpy.memmap` or any object with ``shape``, ``dtype`` and that
    indexing); ``H`` (r x m) and ``S`` (d x m) are updated in place. ``xp``
    is the array backend (:mod:`rednmf.backend`) of ``X``, ``H`` and ``S``:
    NumPy, or torch with all three tensors on one device. ``compiled``: whether
    the residual, the fit term and the S step run as one compiled pass
    (:mod:`rednmf.solvers._kernels`); default (``None``): on pixel-major NumPy
    arrays with pixel groups, while :data:`USE_KERNELS` holds.

    ``S=None`` (compiled ranges only) keeps no ``S``: with pixel groups
    ``S = shrink(X - W_s H)`` of the ``W_s`` and ``H`` of its S step, so each
    block's ``S`` is formed again from them, by the same compiled pass and so
    bit for bit, when a sweep needs it (one residual per pixel, ``r d``
    multiply-adds, instead of a bands x pixels array). :meth:`anomaly_factors`
    then names the ``(W, H)`` of the final ``S``.
    """

    def __init__(
        self,
        X: np.ndarray,
        H: np.ndarray,
        S: np.ndarray,
        *,
        tau: float,
        beta: float,
        sparsity: str,
        eps: float,
        block_size: int,
        n_jobs: int,
        keep_prev: bool = False,
        xp: NumpyBackend | None = None,
        m_split: str = "elementwise",
        compiled: bool | None = None,
    ) -> None:
        self.xp = namespace(H) if xp is None else xp
        self.X, self.H, self.S = X, H, S
        self.implicit = S is None
        #: ``(W, H)`` whose S step at ``tau`` is the current ``S`` (implicit ``S``: set by
        #: the last sweep and by :meth:`recompute_S`).
        self.S_factors: tuple[np.ndarray, np.ndarray] | None = None
        self.m_split = m_split
        self.tau, self.beta, self.sparsity, self.eps = tau, beta, sparsity, eps
        self.enc = beta > 0
        self.has_s = sparsity != "none"
        self.r = H.shape[0]
        self.d, self.n = X.shape
        self.dtype = X.dtype
        self.block_size_arg = block_size
        self.ranges = balanced_ranges(self.n, block_size)
        self.block_size = max(b - a for a, b in self.ranges)
        self.n_jobs = n_jobs
        self.keep_prev = keep_prev
        self.H_prev: np.ndarray | None = None
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        self.M = self.V = self.WtW = self.W = None
        # Pixel groups: S_j = f_j (X_j - W_s H_j), with W_s the W of the S step
        # (kept, with f, so that products with S need no bands x pixels product).
        self.f = self.xp.zeros((self.n,), dtype=self.dtype) if sparsity == "l21" else None
        self.W_s = self.VW = self.MW = None
        # The residual and the pixel-group S step in one compiled pass (NumPy arrays).
        if compiled is None:  # the kernel reads and writes one pixel's spectrum at a time
            compiled = (
                USE_KERNELS
                and self.xp.name == "numpy"
                and sparsity == "l21"
                and _pixel_major(X)
                and (S is None or _pixel_major(S))
            )
        if self.implicit and not compiled:
            raise ValueError("S=None needs the compiled pass (pixel-major NumPy, sparsity='l21')")
        self.compiled = compiled

    # -- threads and scratch -----------------------------------------------------------

    def _threads(self) -> ThreadPoolExecutor | None:
        """The range's worker threads, started at the first sweep and kept until :meth:`close`.

        Kept across sweeps so that each thread's scratch buffers
        (:meth:`_buffers`, thread-local) are allocated and first touched once:
        a pool per sweep allocated them anew every iteration.
        """
        workers = min(self.n_jobs, len(self.ranges))
        if workers <= 1:
            return None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=workers)
        return self._pool

    def close(self) -> None:
        """Stop the range's threads (if any)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _buffers(self, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Two d x width scratch buffers owned by the calling thread (``|S|`` and ``E``)."""
        bufs = getattr(self._local, "bufs", None)
        if bufs is None:
            xp, shape = self.xp, (self.d, self.block_size)
            # The layout of X (pixel-major X is Fortran-ordered d x n), so that
            # element-wise operations between blocks and buffers run contiguously.
            order = xp.order(self.X)
            bufs = tuple(xp.empty(shape, dtype=self.dtype, order=order) for _ in range(2))
            self._local.bufs = bufs
        return tuple(B[:, :width] for B in bufs)  # type: ignore[return-value]

    def _stack(self, width: int) -> np.ndarray:
        """A ``3r x width`` scratch buffer owned by the calling thread (rows of products)."""
        B = getattr(self._local, "stack", None)
        if B is None:
            B = self._local.stack = self.xp.empty((3 * self.r, self.block_size), dtype=self.dtype)
        return B[:, :width]

    def _S_block(self, X: np.ndarray, H: np.ndarray, a: int, b: int) -> np.ndarray:
        """``S`` of pixels ``a:b`` as the sweep finds it (``H``: their codes before the H step).

        Stored ``S``: a view. Implicit ``S``: formed in the calling thread's
        second scratch buffer (unused by the compiled pass) from ``W_s`` and
        ``H``, by :func:`rednmf.solvers._kernels.shrink_residual`, the pass that
        formed it (each pixel's ``S`` is ``f_j (x_j - W_s h_j)``; the same
        inputs give the same factor ``f_j`` and the same values); zero before
        the first S step.
        """
        if not self.implicit:
            return self.S[:, a:b]
        S = self._buffers(b - a)[1]
        if self.W_s is None:
            S[...] = 0
        else:
            _kernels.shrink_residual(X, self.W_s, H, S, self._buffers(b - a)[0], self.tau)
        return S

    def _block(self, a: int, b: int) -> np.ndarray:
        X = self.X[:, a:b]
        return X if X.dtype == self.dtype else self.xp.astype(X, self.dtype)

    # -- statistics of X ---------------------------------------------------------------

    def gram(self) -> np.ndarray:
        """``X X'`` of the range, summed over its blocks in block order."""
        return gram(self.X, self.block_size_arg, self.n_jobs, self.xp)

    def moments64(self) -> tuple[np.ndarray, np.ndarray]:
        """``(sum_j x_j, sum_j x_j x_j')`` of the range in float64, for the noise estimate."""
        xp = self.xp
        d = self.X.shape[0]
        s1, s2 = np.zeros(d), np.zeros((d, d))
        for a, b in self.ranges:  # on the backend's device; only d and d x d numbers come back
            B = xp.astype(self.X[:, a:b], xp.float64)
            s1 += xp.to_numpy(B @ xp.ones((b - a,), dtype=xp.float64))
            s2 += xp.to_numpy(B @ B.T)
        return s1, s2

    def svd_norms(self, U: np.ndarray) -> np.ndarray:
        """Pixel norms of ``X - U U' X`` (float64 NumPy), for the ``'svd'`` scale of lambda."""
        xp = self.xp
        U = xp.asarray(U, dtype=self.dtype)
        norms = np.empty(self.n, dtype=np.float64)
        for a, b in self.ranges:
            B = xp.astype(self.X[:, a:b], self.dtype)
            R = B - U @ (U.T @ B)
            norms[a:b] = xp.to_numpy(xp.sqrt(xp.col_sqnorms(R)))
        return norms

    # -- per-block pieces --------------------------------------------------------------

    def _columns(self, mask: np.ndarray) -> Cols:
        """The columns of a block where ``mask`` holds, as an index for ``A[:, cols]``.

        ``None`` when there are none, ``slice(None)`` (every column, no copy)
        when they are more than :data:`DENSE_FRACTION` of the block, else
        their indices. Products with ``S`` run over these columns only: ``S``
        is zero elsewhere.
        """
        xp = self.xp
        nnz = int(xp.count_nonzero(mask))
        if nnz == 0:
            return None
        if nnz > DENSE_FRACTION * mask.shape[0]:
            return ALL
        return xp.flatnonzero(mask)

    def _support(self, S: np.ndarray, a: int) -> Cols:
        """The non-zero columns of the block ``S`` of pixels ``a:a+m`` (:meth:`_columns`)."""
        if not self.has_s:
            return None
        if self.sparsity == "l21":
            return self._columns(self.f[a : a + S.shape[1]] != 0)
        return self._columns(self.xp.any0(S))

    def _s_step(
        self, E: np.ndarray, sq: np.ndarray | None, S: np.ndarray, a: int
    ) -> tuple[float, int, Cols]:
        """Write the S step (17) of residual ``E`` into ``S`` (pixels ``a:a+m``).

        By :func:`~rednmf.solvers.prox.soft_threshold` (``'l1'``) or
        :func:`~rednmf.solvers.prox.shrink_factors` on ``sq``, the squared
        column norms of ``E`` (pixel groups), on the range's backend. Returns
        ``R(S)``, the number of non-zero pixels of ``S`` and the columns of
        the new ``S`` (:meth:`_columns`). With pixel groups ``S_j = f_j E_j``:
        only the columns of the old or the new support are written (``S`` is
        zero elsewhere), and the factors ``f`` are kept for
        :meth:`_low_rank_PS` of the next sweep.
        """
        xp, tau = self.xp, self.tau
        if self.sparsity == "l1":
            soft_threshold(E, tau, out=S, xp=xp)
            nz = xp.any0(S)
            penalty = xp.sum_cols64(xp.abs(S, out=self._buffers(S.shape[1])[0]))
            return penalty, xp.count_nonzero(nz), self._columns(nz)
        f = self.f[a : a + E.shape[1]]
        norms = xp.sqrt(sq)
        keep = norms > tau
        factor = shrink_factors(norms, tau, self.dtype, xp)
        touched = self._columns(keep | (f != 0))  # old support: to be zeroed if not kept
        if isinstance(touched, slice):
            xp.multiply(E, factor, out=S)
        elif touched is not None:
            S[:, touched] = E[:, touched] * factor[touched]
        f[...] = factor
        penalty = xp.total(xp.relu(xp.astype(norms, xp.float64) - tau))
        return penalty, xp.count_nonzero(keep), self._columns(keep)

    def _split_products(self, PA: np.ndarray, PS: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(P S+, P S-)`` from ``PA = P|S|`` and ``PS``, in place in ``PA``, ``PS``.

        ``P S+ = (P|S| + PS) / 2`` and ``P S- = (P|S| - PS) / 2``, so two
        products with the positive and negative parts of ``S`` cost one with
        ``|S|`` (and ``PS``, often without a product: :meth:`_low_rank_PS`).
        Both are clipped at 0, which they are but for rounding.
        """
        xp = self.xp
        PA *= 0.5
        PS *= 0.5
        PSn = PA - PS
        PA += PS
        return xp.relu(PA, out=PA), xp.relu(PSn, out=PSn)

    def _low_rank_PS(
        self, P: np.ndarray, S: np.ndarray, PX: np.ndarray, PW: np.ndarray, H: np.ndarray, f: Any
    ) -> np.ndarray:
        """``P S`` for columns ``S`` of ``S`` formed from ``X - W_s H``.

        With pixel groups ``S = (X - W_s H) diag(f)``, so
        ``PS = (PX - (P W_s) H) diag(f)`` from the known ``PX`` and
        ``PW = P W_s`` (``PX``, ``H`` and ``f`` of the same columns): no
        product with a bands x pixels array. Element-wise groups (``'l1'``):
        the product ``P @ S``.
        """
        if self.sparsity != "l21":
            return P @ S
        PS = PX - PW @ H
        PS *= f
        return PS

    def _abs(self, S: np.ndarray, cols: Cols) -> np.ndarray:
        """``|S|`` of the selected columns: in a scratch buffer when they are all of them."""
        if isinstance(cols, slice):
            return self.xp.abs(S, out=self._buffers(S.shape[1])[0])
        return self.xp.abs(S)

    def _sums(
        self,
        X: np.ndarray,
        H: np.ndarray,
        MX: np.ndarray | None,
        S: np.ndarray,
        cols: Cols,
        a: int,
        A: np.ndarray | None = None,
    ) -> _Sums:
        """The block's sums for (14) and (15) from ``H`` (old), ``M X`` (old) and the new ``S``.

        ``S`` was formed from ``X - W H`` with the sweep's ``W`` and this ``H``;
        ``cols`` are its non-zero columns: every product with ``S`` runs over
        them alone. ``A``: ``|S|`` of the whole block, if already formed.
        """
        xp, r, d, dtype = self.xp, self.r, self.d, self.dtype
        k = 2 * r if self.enc else r  # rows of P = [H; MX]
        zeros = lambda rows: xp.zeros((rows, d), dtype=dtype)  # noqa: E731
        PSp = PSn = QSp = QSn = SSt = HXt = None
        if cols is not None:
            Xc, Sc, Hc = X[:, cols], S[:, cols], H[:, cols]
            Ac = A if A is not None and isinstance(cols, slice) else self._abs(Sc, cols)
            if self.enc:
                f = self.f[a : a + X.shape[1]][cols] if self.sparsity == "l21" else None
                MS = self._low_rank_PS(self.M, Sc, MX[:, cols], self.MW, Hc, f)
                MA = xp.lmul(self.M, Ac)
            factored = self.enc and self.m_split == "factored"
            if factored:
                # (M|S|)|S|' and (MS)S' with the products of P: M[S+S+' + S-S-'] is their
                # half-sum, M[S+S-' + S-S+'] their half-difference (r d m multiply-adds each).
                # The rows [H; MX; M|S|], then [H; MX; MS], then [H; MS+; MS-] are stacked
                # in one scratch buffer B: three products, no stacked copies.
                B = self._stack(Hc.shape[1])
                B[:r] = Hc
                B[r:k] = MX[:, cols]
                B[k:] = MA
                PA = B @ Ac.T
                B[k:] = MS
                PS = B @ Sc.T
                PSp, PSn = self._split_products(PA[:k], PS[:k])
                QSp, QSn = self._split_products(PA[k:], PS[k:])
            else:
                P = xp.vstack([Hc, MX[:, cols]]) if self.enc else Hc
                if self.enc:
                    SSt = Sc @ Sc.T
                PSp, PSn = self._split_products(P @ Ac.T, P @ Sc.T)
            if self.enc:
                MSp, MSn = self._split_products(MA, MS)
            if factored and isinstance(cols, slice):  # H X' and [MS+; MS-] X' in one product
                B[r:k] = MSp
                B[k:] = MSn
                HXt = B @ X.T
            else:
                HXt = H @ X.T
                if self.enc:
                    HXt = xp.vstack([HXt, xp.vstack([MSp, MSn]) @ Xc.T])
        else:
            PSp, PSn = zeros(k), zeros(k)
            HXt = H @ X.T
            if self.enc:
                HXt = xp.vstack([HXt, zeros(2 * r)])
                if self.m_split == "factored" and self.has_s:
                    QSp, QSn = zeros(r), zeros(r)
                else:
                    SSt = xp.zeros((d, d), dtype=dtype)
        return _Sums(
            HHt=H @ H.T, HXt=HXt, PSp=PSp, PSn=PSn, SSt=SSt, QSp=QSp, QSn=QSn, penalty=0.0
        )

    def _residual(self, X: np.ndarray, W: np.ndarray, H: np.ndarray) -> tuple[Any, Any]:
        """``E = X - W H`` (in a scratch buffer) and its squared column norms (pixel groups)."""
        xp = self.xp
        E = self._buffers(X.shape[1])[1]
        xp.matmul(W, H, out=E)
        xp.subtract(X, E, out=E)
        return E, (xp.col_sqnorms(E) if self.sparsity == "l21" else None)

    def _compiled_s_step(
        self,
        X: np.ndarray,
        W: np.ndarray,
        H: np.ndarray,
        S: np.ndarray,
        a: int,
        *,
        with_fit: bool,
        shrink: bool = True,
    ) -> tuple[float, float, int, Cols, np.ndarray]:
        """:meth:`_residual`, the fit term and :meth:`_s_step` in one compiled pass.

        :func:`rednmf.solvers._kernels.residual_shrink` (pixel groups, NumPy):
        returns the fit term ``||X - W H - S||^2`` with ``S`` as it was, the
        penalty, the non-zero count and columns of the new ``S``, and a scratch
        buffer that holds ``|S|`` of the new ``S`` when the columns are all of
        them (:data:`ALL`).
        """
        m = X.shape[1]
        A = self._buffers(m)[0]
        f = self.f[a : a + m]
        fit, penalty, nnz = _kernels.residual_shrink(
            X, W, H, S, A, f, self.tau, with_fit=with_fit, shrink=shrink
        )
        if not shrink:
            return fit, penalty, nnz, None, A
        zero = f == 0
        cols = self._columns(~zero)
        if isinstance(cols, slice) and nnz < m:  # |S| over the whole block: clear the rest
            A[:, zero] = 0
        return fit, penalty, nnz, cols, A

    def _new_S(
        self, X: np.ndarray, W: np.ndarray, H: np.ndarray, S: np.ndarray, a: int
    ) -> tuple[float, int, Cols, np.ndarray | None]:
        """S step of ``X - W H`` into ``S``: ``R(S)``, non-zeros, columns, ``|S|`` if compiled."""
        if self.compiled:
            return self._compiled_s_step(X, W, H, S, a, with_fit=False)[1:]
        if not self.has_s:
            return 0.0, 0, None, None
        E, sq = self._residual(X, W, H)
        return (*self._s_step(E, sq, S, a), None)

    def _first(self, a: int, b: int) -> _Sums:
        """Sweep 0: the S step of iteration 1 and the sums for its W and M steps."""
        X, H = self._block(a, b), self.H[:, a:b]
        S = self._S_block(X, H, a, b)
        penalty, nnz, cols, A = self._new_S(X, self.W, H, S, a)
        MX = self.xp.lmul(self.M, X) if self.enc else None
        out = self._sums(X, H, MX, S, cols, a, A)
        out.penalty, out.nonzero = penalty, nnz
        return out

    def _fused(self, a: int, b: int, more: bool) -> _Sums:
        """H step of iteration t, its objective share, then (if ``more``) S and sums of t+1.

        The products with ``S`` (of iteration t) run over its non-zero columns
        only; so do the fit term's ``E - S`` and the writes of the S step.
        """
        xp, r, beta, eps = self.xp, self.r, self.beta, self.eps
        X, H = self._block(a, b), self.H[:, a:b]
        S = self._S_block(X, H, a, b)
        cols = self._support(S, a)  # S of iteration t, from W_s and this H
        VX = xp.lmul(self.V, X)
        num = xp.copy(VX[:r])
        den = self.WtW @ H
        den += eps
        if cols is not None:
            Sc, Hc = S[:, cols], H[:, cols]
            f = self.f[a:b][cols] if self.sparsity == "l21" else None
            VS = self._low_rank_PS(self.V, Sc, VX[:, cols], self.VW, Hc, f)
            VSp, VSn = self._split_products(xp.lmul(self.V, self._abs(Sc, cols)), VS)
            num[:, cols] += VSn[:r]
            den[:, cols] += VSp[:r]
        MX = None
        if self.enc:
            MX = VX[r:]
            MA = xp.copy(MX)  # M (X + S-)
            if cols is not None:
                MA[:, cols] += VSn[r:]
            num += beta * MA
            den += beta * H
            if cols is not None:
                den[:, cols] += beta * VSp[r:]
        H *= num / den
        enc_part = 0.0
        if self.enc:
            Q = H - MA
            if cols is not None:
                Q[:, cols] += VSp[r:]
            enc_part = xp.sq64(Q)  # ||H - M(X - S)||^2
        if self.compiled:  # the fit term of iteration t, then (if more) S of t + 1
            fit, penalty, nnz, cols, A = self._compiled_s_step(
                X, self.W, H, S, a, with_fit=True, shrink=more
            )
            if not more:
                return self._last(fit, enc_part)
            out = self._sums(X, H, MX, S, cols, a, A)
            out.penalty, out.nonzero, out.fit, out.enc = penalty, nnz, fit, enc_part
            return out
        E, sq = self._residual(X, self.W, H)  # residual of iteration t
        if cols is None:  # S = 0
            fit = xp.sq64(E)
        elif isinstance(cols, slice) or sq is None:  # S over (nearly) the whole block
            fit = xp.sq64(E - S)
        else:  # ||E - S||^2 = sum ||E_j||^2, with E_j - S_j on the support of S
            rest = xp.total(xp.astype(sq, xp.float64)) - xp.total(xp.astype(sq[cols], xp.float64))
            fit = rest + xp.sq64(E[:, cols] - Sc)
        if not more:
            return self._last(fit, enc_part)
        penalty, nnz, cols = self._s_step(E, sq, S, a) if self.has_s else (0.0, 0, None)
        out = self._sums(X, H, MX, S, cols, a)
        out.penalty, out.nonzero, out.fit, out.enc = penalty, nnz, fit, enc_part
        return out

    def _last(self, fit: float, enc: float) -> _Sums:
        """The objective shares of the last sweep (no sums: no W and M step follows)."""
        none = self.xp.empty((0,), dtype=self.dtype)
        return _Sums(
            HHt=none, HXt=none, PSp=none, PSn=none, SSt=None, penalty=0.0, fit=fit, enc=enc
        )

    # -- sweeps ------------------------------------------------------------------------

    def first(self, W: np.ndarray, M: np.ndarray) -> _Sums:
        """Sweep 0 with the initial ``W`` and ``M``: S of iteration 1 and the range's sums."""
        self.W, self.M = W, M
        self.W_s = None  # no S yet
        self.MW = M @ W if self.enc else None
        out = _total(_map_blocks(self._first, self.ranges, self.n_jobs, self._threads()))
        self.W_s = self.xp.copy(W)
        return out

    def sweep(self, W: np.ndarray, M: np.ndarray, more: bool) -> _Sums:
        """H step and objective shares of the current iteration; then S and sums of the next."""
        self.W, self.M = W, M
        xp = self.xp
        self.V = xp.vstack([W.T, M]) if self.enc else xp.ascontiguous(W.T)
        self.WtW = W.T @ W
        self.VW = self.V @ self.W_s  # S of this sweep's H step came from W_s
        self.MW = M @ W if self.enc else None
        if self.keep_prev:
            self.H_prev = xp.copy(self.H)
        if self.implicit and not more:  # the last sweep: S stays that of W_s and this H
            self.S_factors = (self.W_s, self.H_prev if self.keep_prev else xp.copy(self.H))
        sweep = _map_blocks(
            lambda a, b: self._fused(a, b, more), self.ranges, self.n_jobs, self._threads()
        )
        out = _total(sweep)
        self.W_s = xp.copy(W)  # the W of the S step just done (W is updated in place next)
        return out

    def recompute_S(self, W_prev: np.ndarray) -> None:
        """Overwrite ``S`` with the S step of ``X - W_prev H_prev`` (after an early stop).

        ``H_prev`` is ``H`` as it was before the last sweep (``keep_prev=True``).
        """
        H = self.H_prev
        assert H is not None, "recompute_S needs keep_prev=True"
        if self.implicit:
            self.S_factors = (W_prev, H)
            return

        def one(a: int, b: int) -> None:
            self._new_S(self._block(a, b), W_prev, H[:, a:b], self.S[:, a:b], a)

        for _ in _map_blocks(one, self.ranges, self.n_jobs, self._threads()):
            pass

    def set_tau(self, tau: float) -> None:
        """Threshold of the S step (``lam / 2``), fixed once ``lam`` is scaled."""
        self.tau = tau

    def anomaly_factors(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Implicit ``S``: the ``(W, H)`` whose S step at ``tau`` is ``S`` (None: no sweep)."""
        return self.S_factors

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        """``H`` and ``S`` of the range."""
        return self.H, self.S


def _total(parts: Iterator[object] | list[object]) -> _Sums:
    """Add :class:`_Sums` in the order given (the first one is updated in place)."""
    total = None
    for p in parts:
        assert isinstance(p, _Sums)
        if total is None:
            total = p
        else:
            total.add(p)
    assert total is not None
    return total


class LocalParts:
    """Pixel ranges held in this process; :meth:`call` runs a method on each, in order."""

    def __init__(self, parts: list[BlockRange]) -> None:
        self.parts = parts

    def call(self, method: str, *args: object) -> list[object]:
        """``part.method(*args)`` for every part; results in part order."""
        return [getattr(p, method)(*args) for p in self.parts]

    def close(self) -> None:
        """Stop the ranges' threads."""
        for p in self.parts:
            p.close()


class BlockSolver:
    """The global half of the block-wise REDNMF iteration: ``W``, ``M`` and the sweeps.

    Not a public estimator: :func:`rednmf.solvers.rednmf.rednmf_solve_blocks`
    drives it. ``parts`` holds the pixel ranges (:class:`BlockRange`): in this process
    (:class:`LocalParts`) or on Dask workers
    (:class:`rednmf.engines.dask.DaskParts`). Each sweep hands them
    ``W`` and ``M``, adds their :class:`_Sums` in range order and applies the W
    step (14) and M step (15) to ``W`` and ``M`` in place. ``W`` and ``M``
    are arrays of the ranges' backend (NumPy, or torch tensors on their device).
    """

    def __init__(
        self,
        parts: LocalParts,
        W: np.ndarray,
        M: np.ndarray,
        *,
        beta: float,
        sparsity: str,
        eps: float,
        G: np.ndarray | None = None,
    ) -> None:
        self.parts = parts
        self.xp = namespace(W)
        self.W, self.M = W, M
        self.beta, self.sparsity, self.eps = beta, sparsity, eps
        self.enc = beta > 0
        self.has_s = sparsity != "none"
        self.r = W.shape[1]
        if self.enc and G is None:
            G = sum_in_order(parts.call("gram"))
        self.G = G

    def first_sweep(self) -> _Sums:
        """Run sweep 0 and apply the W and M steps of iteration 1."""
        sums = _total(self.parts.call("first", self.W, self.M))
        self._update_WM(sums)
        return sums.to_python()

    def sweep(self, more: bool) -> _Sums:
        """H step and objective of the current iteration; then S, W, M of the next if ``more``."""
        sums = _total(self.parts.call("sweep", self.W, self.M, more))
        if more:
            self._update_WM(sums)
        return sums.to_python()

    def recompute_S(self, W_prev: np.ndarray) -> None:
        """Every range's ``S`` from ``W_prev`` and its ``H`` before the last sweep."""
        self.parts.call("recompute_S", W_prev)

    def _update_WM(self, s: _Sums) -> None:
        """W step (14) and M step (15) from the summed statistics."""
        r, eps = self.r, self.eps
        HXt, HSpt, HSnt = s.HXt[:r], s.PSp[:r], s.PSn[:r]
        HAt = HXt + HSnt  # H (X + S-)'
        W, M = self.W, self.M
        W_new = W * (HAt.T / (W @ s.HHt + HSpt.T + eps))
        if self.enc:
            MSpXt, MSnXt = (s.HXt[r : 2 * r], s.HXt[2 * r :]) if self.has_s else (0.0, 0.0)
            MXSpt, MXSnt = s.PSp[r:], s.PSn[r:]
            if s.QSp is not None:  # m_split='factored': M [SS']+ and M [SS']- as formed
                MSSp, MSSn = s.QSp, s.QSn
            else:
                MSSp, MSSn = M @ self.xp.relu(s.SSt), M @ self.xp.relu(-s.SSt)
            num = HAt + MXSpt + MSpXt + MSSn
            den = M @ self.G + MXSnt + MSnXt + MSSp + HSpt + eps
            M *= num / den
        W[...] = W_new


def sum_in_order(arrays: list[object]) -> np.ndarray:
    """``0 + a_0 + a_1 + ...`` in the order given (as :func:`gram` adds its blocks)."""
    first = arrays[0]
    out = namespace(first).zeros_like(first)
    for a in arrays:
        out += a
    return out
