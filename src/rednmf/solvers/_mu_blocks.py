r"""The multiplicative steps of the NMF family, a block of pixels at a time.

The solvers of NMF, RNMF, L1NMF and EWNMF (:mod:`rednmf.solvers.nmf` and its
relatives) take the multiplicative steps written in :mod:`rednmf.solvers.nmf`,
with a target ``A = P - N`` and weights ``U`` that each method forms entry by
entry from the data ``X`` and the residual ``E = X - WH`` of the factors before
the step. Here they are taken over blocks of pixels (columns), so that no
bands x pixels array is ever formed: the W step sums its ``d x r`` products
over the blocks (in float64), the H step updates each block of ``H`` alone
(its columns do not interact) and hands the block's new residual to the
method (its objective, the statistics of the next step). ``X`` is read as
``X[:, a:b]``: an array, or a :class:`rednmf.preprocessing.ScaledMatrix`
that scales the cube block by block (no scaled copy of the scene).

:class:`BlockMedian` gives ``median |E|`` (RNMF's ``lam_t``, L1NMF's
``delta_t``) exactly, equal to ``np.median(np.abs(E))``, by radix selection
on the bit patterns of the blocks, and :class:`BlockMatrix` is a bands x
pixels matrix formed block by block on demand (the evidence to score).

The blocks and the order of every sum are fixed: the same input gives the
same output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

__all__ = [
    "BlockMatrix",
    "BlockMedian",
    "Factors",
    "Target",
    "h_pass",
    "residual_blocks",
    "spans",
    "w_step",
]

#: Elements per block (a block of pixels holds about this many ``d``-vectors' entries).
_BLOCK_ELEMENTS = 1 << 19

#: ``target(E, X, first) -> (U, P, N)``: the weights and the target's parts of a block from
#: its residual ``E`` (``None`` when the method needs none, see :func:`w_step`) and data
#: ``X`` (read-only); ``first`` is true in the W step's pass, false in the H step's.
Target = Callable[[np.ndarray | None, np.ndarray, bool], tuple[Any, np.ndarray, Any]]


def spans(n: int, d: int) -> Iterator[tuple[int, int]]:
    """The blocks ``(a, b)`` of ``n`` pixels of ``d`` bands (about 2^19 entries each)."""
    step = max(256, _BLOCK_ELEMENTS // max(d, 1))
    for a in range(0, n, step):
        yield a, min(a + step, n)


def _data(X: Any, a: int, b: int) -> np.ndarray:
    return np.asarray(X[:, a:b])


def residual_blocks(X: Any, W: np.ndarray, H: np.ndarray) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(a, b, X[:, a:b] - W H[:, a:b])`` block by block (each a new array)."""
    d, n = X.shape
    for a, b in spans(n, d):
        E = W @ H[:, a:b]
        np.subtract(_data(X, a, b), E, out=E)
        yield a, b, E


def w_step(
    X: Any, W: np.ndarray, H: np.ndarray, target: Target, eps: float, *, residual: bool = True
) -> np.ndarray:
    """The new ``W`` of the multiplicative step (module text), from sums over the blocks.

    ``target`` is called once per block with ``first=True``; ``residual=False``
    skips the residual (``target`` gets ``None``). Unweighted (``U`` is
    ``None``) the denominator is ``W (H H') + N H'``; ``N`` may be ``None``.
    """
    d, n = X.shape
    num = np.zeros(W.shape)
    den = np.zeros(W.shape)
    weighted = False
    for a, b in spans(n, d):
        Xb, Hb = _data(X, a, b), H[:, a:b]
        WH = W @ Hb if residual else None
        E = None if WH is None else np.subtract(Xb, WH)
        U, P, N = target(E, Xb, True)
        if U is None:
            num += P @ Hb.T
            if N is not None:
                den += N @ Hb.T
            continue
        weighted = True
        if WH is None:
            WH = W @ Hb
        num += (U * P) @ Hb.T
        np.multiply(U, WH, out=WH)
        den += WH @ Hb.T
    if not weighted:
        den += W @ (H @ H.T)
    den += eps
    np.divide(num, den, out=num)
    return (W * num).astype(W.dtype, copy=False)


def h_pass(
    X: Any,
    W_old: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    out: np.ndarray,
    target: Target,
    eps: float,
    then: Callable[[np.ndarray], None],
    *,
    residual: bool = True,
) -> None:
    """The H step with the new ``W``, block by block, written into ``out``; then ``then(E_new)``.

    Each block's weights and target come from the residual of the factors
    before the step (``W_old``, the block of ``H``) through ``target`` (with
    ``first=False``); its new ``H`` goes to ``out`` (which may be ``H``: a
    block is read before it is written), and ``then`` receives the block's
    new residual ``X - W out`` (a new array it may overwrite).
    """
    d, n = X.shape
    WtW = W.T @ W
    for a, b in spans(n, d):
        Xb, Hb = _data(X, a, b), H[:, a:b]
        E = np.subtract(Xb, W_old @ Hb) if residual else None
        U, P, N = target(E, Xb, False)
        if U is None:
            num = W.T @ P
            den = WtW @ Hb
            if N is not None:
                den += W.T @ N
        else:
            num = W.T @ (U * P)
            WH = W @ Hb
            np.multiply(U, WH, out=WH)
            den = W.T @ WH
        den += eps
        np.divide(num, den, out=num)
        np.multiply(Hb, num, out=out[:, a:b])
        E_new = W @ out[:, a:b]
        np.subtract(Xb, E_new, out=E_new)
        then(E_new)


class Factors:
    """``W, H`` of a reweighted solver (RNMF, L1NMF, EWNMF) and ``(W, H, p)`` before its last step.

    :meth:`step` takes one W step and one H step (:func:`w_step`, :func:`h_pass`);
    the H step writes into a second ``r x n`` buffer, so that the factors before
    it stay in :attr:`last` with the step's parameter ``p``: what the method's
    ``S`` or weights of that step are formed again from. ``H`` is copied unless
    ``overwrite_H``.
    """

    def __init__(self, W: np.ndarray, H: np.ndarray, overwrite_H: bool) -> None:
        self.W, self.H = W, H if overwrite_H else H.copy()
        self._next: np.ndarray | None = np.empty_like(self.H)
        self.last: tuple[np.ndarray, np.ndarray, float] | None = None

    def step(
        self, X: Any, target: Target, eps: float, then: Callable[[np.ndarray], None], p: float
    ) -> None:
        """The W step and the H step; ``then`` as in :func:`h_pass`."""
        assert self._next is not None
        W_new = w_step(X, self.W, self.H, target, eps)
        h_pass(X, self.W, W_new, self.H, self._next, target, eps, then)
        self.last = (self.W, self.H, p)
        self.W, self.H, self._next = W_new, self._next, self.H

    def abs_residuals(self, X: Any) -> Iterator[np.ndarray]:
        """``|X - WH|`` of the current factors, block by block (each a new array)."""
        for _, _, E in residual_blocks(X, self.W, self.H):
            yield np.abs(E, out=E)

    def done(self) -> tuple[np.ndarray, np.ndarray, float]:
        """:attr:`last`, once the loop has ended (the spare ``H`` buffer is let go)."""
        assert self.last is not None
        self._next = None
        return self.last


class BlockMatrix:
    """A ``d x n`` matrix formed block by block on demand: ``M[:, a:b] = block(a, b)``.

    Has ``shape``, ``dtype`` and ``ndim``, as the scorers that read a matrix by
    blocks need (:func:`rednmf.scoring.from_matrix.score_matrix`);
    :meth:`close` drops ``block`` (and what it holds, the data) once read.
    """

    def __init__(
        self, shape: tuple[int, int], dtype: Any, block: Callable[[int, int], np.ndarray]
    ) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self.ndim = 2
        self._block: Callable[[int, int], np.ndarray] | None = block

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        rows_key, cols_key = key
        if (
            rows_key != slice(None)
            or not isinstance(cols_key, slice)
            or cols_key.step
            not in (
                None,
                1,
            )
        ):
            raise IndexError("BlockMatrix supports M[:, a:b] only")
        if self._block is None:
            raise ValueError("the BlockMatrix was closed")
        a, b, _ = cols_key.indices(self.shape[1])
        return self._block(a, b)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """The whole matrix (a new array), formed block by block."""
        out = np.empty(self.shape, dtype=self.dtype if dtype is None else dtype)
        for a, b in spans(self.shape[1], self.shape[0]):
            out[:, a:b] = self[:, a:b]
        return out

    def close(self) -> None:
        """Drop the block function: the matrix cannot be read any more."""
        self._block = None


#: Bits of a bit pattern resolved by one level of :class:`BlockMedian`'s selection.
_LEVEL_BITS = 16
#: The candidates of the last level are gathered and partitioned once they are at most this many.
_GATHER = 1 << 21


class BlockMedian:
    """``np.median(np.abs(E))`` of a matrix seen only block by block, exactly.

    Nonnegative floats are ordered as their bit patterns read as unsigned
    integers, so the element of a given rank is found by radix selection:
    :meth:`add` counts the blocks' top 16 bits (folded into a pass a solver
    makes anyway), and :meth:`result` narrows the range of patterns holding
    the middle rank by further passes over the blocks (16 bits each) until it
    holds few enough elements, which it then gathers and partitions. The same
    two middle elements as ``np.median`` and the same mean of them: the same
    value bit for bit.

    Parameters
    ----------
    dtype : float32 or float64
        dtype of the blocks.
    size : int
        Number of elements of the whole matrix.
    """

    def __init__(self, dtype: Any, size: int) -> None:
        self.dtype = np.dtype(dtype)
        self.uint = np.dtype(f"u{self.dtype.itemsize}")
        self.bits = 8 * self.dtype.itemsize
        self.size = int(size)
        self.counts = np.zeros(1 << _LEVEL_BITS, dtype=np.int64)

    def add(self, A: np.ndarray) -> None:
        """Count a block of ``|E|`` (nonnegative, any shape) by its top bits."""
        top = A.reshape(-1).view(self.uint) >> (self.bits - _LEVEL_BITS)
        if top.dtype.itemsize == 8:  # bincount takes uint32 as it is, not uint64
            top = top.astype(np.intp)
        self.counts += np.bincount(top, minlength=1 << _LEVEL_BITS)

    def result(self, blocks: Callable[[], Iterable[np.ndarray]]) -> float:
        """The median; ``blocks()`` yields the blocks of ``|E|`` again for each further pass.

        The counts are reset afterwards for the next matrix.
        """
        k = self.size // 2  # the upper middle rank (0-based); the lower one is k - 1
        cum = np.cumsum(self.counts)
        level = self.bits - _LEVEL_BITS
        i = int(np.searchsorted(cum, k, side="right"))
        below = int(cum[i - 1]) if i else 0  # elements under the range
        lo, width = i << level, 1 << level  # the range of patterns [lo, lo + width)
        count = int(self.counts[i])
        while count > _GATHER and level > 0:
            level = max(level - _LEVEL_BITS, 0)
            counts = np.zeros(1 << _LEVEL_BITS, dtype=np.int64)
            for A in blocks():
                p = A.reshape(-1).view(self.uint)
                p = p[(p >= lo) & (p < lo + width)]
                counts += np.bincount(((p - lo) >> level).astype(np.intp), minlength=len(counts))
            cum = below + np.cumsum(counts)
            i = int(np.searchsorted(cum, k, side="right"))
            below = int(cum[i - 1]) if i else below
            lo, width, count = lo + (i << level), 1 << level, int(counts[i])
        self.counts[:] = 0
        r = k - below
        if width > 1:  # gather the range's elements
            vals = np.concatenate([_within(A, self.uint, lo, lo + width) for A in blocks()])
            vals.partition(r)
        else:  # one bit pattern: every element of the range is this value
            vals = np.full(r + 1, np.array(lo, dtype=self.uint).view(self.dtype))
        upper = vals[r]
        if self.size % 2:
            return float(upper)
        if r:
            lower = vals[:r].max()
        else:  # the lower middle element is the largest under the range: one more pass
            lower = max(_within(A, self.uint, 0, lo).max(initial=0) for A in blocks())
        return float(np.array([lower, upper], dtype=self.dtype).mean())


def _within(A: np.ndarray, uint: np.dtype, lo: int, hi: int) -> np.ndarray:
    """The elements of ``A`` whose bit patterns lie in ``[lo, hi)`` (a new 1-D array)."""
    a = A.reshape(-1)
    p = a.view(uint)
    return a[(p >= lo) & (p < hi)]
