"""Array backends: the few operations the REDNMF block engine and BRAD need, for NumPy and torch.

The solver's block engine (:mod:`rednmf.solvers.rednmf_blocks`) and the BRAD
scorer (:mod:`rednmf.scoring.from_matrix`, :mod:`rednmf.scoring.local_rx`) are
written once, against a small namespace ``xp`` (in the manner of TensorLy's
backends): Python operators (``@``, ``+=``, ``*``, slicing, ``.T``) are
shared by ``numpy.ndarray`` and ``torch.Tensor``; everything else, including
every call with an ``out=`` buffer, is a method of :class:`NumpyBackend` or
:class:`TorchBackend`. The NumPy methods are exactly the NumPy calls the engine
used before the backends existed (in-place ``out=`` ufuncs and all), so the
NumPy path costs only one Python method call per operation.

Conventions:

* reductions that end in a scalar (:meth:`~NumpyBackend.sum_cols64`,
  :meth:`~NumpyBackend.sq64`, :meth:`~NumpyBackend.total`,
  :meth:`~NumpyBackend.count_nonzero`) return a Python number on NumPy and a
  0-d tensor on torch, so that a GPU is not synchronised for every block;
  ``float()`` turns either into a float;
* ``order='F'`` arrays are ``d x n`` views of a contiguous ``n x d`` array
  (pixel-major), so that a block of columns ``[:, a:b]`` is contiguous;
* torch is imported only by :func:`get_backend` with ``'torch'`` (or by
  :func:`namespace` when it is handed a tensor), so ``import rednmf`` does not
  pay for it.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

__all__ = ["BACKENDS", "NumpyBackend", "TorchBackend", "get_backend", "namespace", "is_tensor"]

BACKENDS = ("numpy", "torch")


def is_tensor(a: object) -> bool:
    """Whether ``a`` is a ``torch.Tensor`` (without importing torch)."""
    return type(a).__module__.startswith("torch") and hasattr(a, "device")


class NumpyBackend:
    """NumPy operations, as the engine calls them."""

    name = "numpy"
    device = None
    float64 = np.float64
    float32 = np.float32

    # -- creation and conversion -------------------------------------------------------

    def asarray(self, a: Any, dtype: Any = None) -> np.ndarray:
        """``a`` as an array of this backend (no copy when it already is one)."""
        return np.asarray(a, dtype=dtype)

    def to_numpy(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def dtype(self, name: Any) -> Any:
        """The backend's dtype for a NumPy dtype or its name."""
        return np.dtype(name)

    def empty(self, shape: tuple[int, ...], dtype: Any, order: str = "C") -> np.ndarray:
        return np.empty(shape, dtype=dtype, order=order)

    def zeros(self, shape: tuple[int, ...], dtype: Any, order: str = "C") -> np.ndarray:
        return np.zeros(shape, dtype=dtype, order=order)

    def zeros_like(self, a: np.ndarray) -> np.ndarray:
        return np.zeros_like(a)

    def ones(self, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
        return np.ones(shape, dtype=dtype)

    def eye(self, k: int, dtype: Any = np.float64) -> np.ndarray:
        return np.eye(k, dtype=dtype)

    def index(self, idx: np.ndarray) -> np.ndarray:
        """An integer index array usable on this backend's arrays."""
        return idx

    def copy(self, a: np.ndarray) -> np.ndarray:
        return a.copy()

    def astype(self, a: np.ndarray, dtype: Any) -> np.ndarray:
        return a.astype(dtype, copy=False)

    def ascontiguous(self, a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a)

    def order(self, a: Any) -> str:
        """``'F'`` for a pixel-major (Fortran-ordered, not C-ordered) 2-D array, else ``'C'``."""
        flags = getattr(a, "flags", None)  # a may be a lazy view (rednmf.outofcore)
        return "F" if flags is not None and flags.f_contiguous and not flags.c_contiguous else "C"

    def vstack(self, arrays: list[np.ndarray]) -> np.ndarray:
        return np.vstack(arrays)

    def moveaxis(self, a: np.ndarray, source: int, destination: int) -> np.ndarray:
        """A view of ``a`` with axis ``source`` moved to ``destination``."""
        return np.moveaxis(a, source, destination)

    def concatenate(self, arrays: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(arrays)

    # -- element-wise and products -----------------------------------------------------

    def matmul(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.matmul(a, b, out=out)

    def lmul(self, p: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``p @ b`` (C-ordered) for a few rows ``p`` and a wide block ``b``.

        With a pixel-major (Fortran-ordered) ``b``, NumPy's ``p @ b`` let
        OpenBLAS pack the wide operand transposed: 400 against 240 us for
        ``16 x 205`` times ``205 x 2500`` float32 on one thread here (2026-12-04).
        ``(b' p')'`` computes the same products without that and is copied to
        C order (``tests/test_backend.py`` checks the numbers against ``p @ b``).
        """
        if b.ndim == 2 and b.flags.f_contiguous and not b.flags.c_contiguous:
            return np.ascontiguousarray((b.T @ p.T).T)
        return p @ b

    def relu(self, a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``max(a, 0)``."""
        return np.maximum(a, 0, out=out)

    def maximum(self, a: np.ndarray, b: float) -> np.ndarray:
        return np.maximum(a, b)

    def add(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.add(a, b, out=out)

    def subtract(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.subtract(a, b, out=out)

    def multiply(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.multiply(a, b, out=out)

    def divide(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.divide(a, b, out=out)

    def minimum(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.minimum(a, b, out=out)

    def abs(self, a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.abs(a, out=out)

    def sign(self, a: np.ndarray) -> np.ndarray:
        return np.sign(a)

    def sqrt(self, a: np.ndarray) -> np.ndarray:
        return np.sqrt(a)

    def where(self, cond: np.ndarray, a: Any, b: Any) -> np.ndarray:
        return np.where(cond, a, b)

    def errstate(self) -> Any:
        """Silence division warnings of a masked ``where`` (a no-op on torch)."""
        return np.errstate(divide="ignore", invalid="ignore")

    # -- reductions --------------------------------------------------------------------

    def col_sqnorms(self, a: np.ndarray) -> np.ndarray:
        """Squared norm of every column of a 2-D array."""
        return np.einsum("ij,ij->j", a, a)

    def rowdot(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``sum_k a[p, k] b[p, k]`` for every row ``p``."""
        return np.einsum("pk,pk->p", a, b)

    def any0(self, a: np.ndarray) -> np.ndarray:
        """Whether each column has a non-zero entry."""
        return np.any(a, axis=0)

    def flatnonzero(self, a: np.ndarray) -> np.ndarray:
        return np.flatnonzero(a)

    def count_nonzero(self, a: np.ndarray) -> int:
        return int(np.count_nonzero(a))

    def sq64(self, a: np.ndarray) -> float:
        """``||a||_F^2`` with float64 accumulation of per-column sums."""
        return float(np.einsum("ij,ij->j", a, a).sum(dtype=np.float64))

    def sum_cols64(self, a: np.ndarray) -> float:
        """Sum of a 2-D array's entries: per-column sums, added in float64."""
        return float(a.sum(axis=0).sum(dtype=np.float64))

    def total(self, a: np.ndarray) -> float:
        """Sum of all entries, as a scalar."""
        return float(a.sum())

    def mean(self, a: np.ndarray) -> float:
        """Mean of all entries, as a Python float."""
        return float(np.mean(a))

    def mean0_64(self, a: np.ndarray) -> np.ndarray:
        """Mean over axis 0 accumulated in float64."""
        return a.mean(axis=0, dtype=np.float64)

    def take_cols(self, a: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return np.take(a, idx, axis=1)

    def batch_trace(self, a: np.ndarray) -> np.ndarray:
        """Trace of every matrix of a ``(p, k, k)`` stack."""
        return np.trace(a, axis1=1, axis2=2)

    # -- linear algebra and filters ----------------------------------------------------

    def solve(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Batched ``a^{-1} b`` for ``a`` of shape ``(p, k, k)`` and ``b`` of shape ``(p, k)``."""
        return np.linalg.solve(a, b[..., None])[..., 0]

    def cumsum(self, a: np.ndarray, axis: int, out: np.ndarray | None = None) -> np.ndarray:
        """Inclusive cumulative sum along ``axis``; ``out`` may be ``a`` itself.

        One vectorised addition of whole slices per index along the axis, in
        order, so the float64 sums are those of :func:`numpy.cumsum`; but
        ``numpy.cumsum`` adds up one line of the axis after the other, a chain
        of dependent additions that is several times slower for the short
        lines (image rows and columns) of the local RX window sums.
        """
        out = np.empty(a.shape, dtype=a.dtype) if out is None else out
        src, dst = np.moveaxis(a, axis, 0), np.moveaxis(out, axis, 0)
        if out is not a:
            np.copyto(dst[0], src[0])
        for i in range(1, src.shape[0]):
            np.add(dst[i - 1], src[i], out=dst[i])
        return out

    def box_mean_nearest(self, a: np.ndarray, size: int) -> np.ndarray:
        """Mean over a centred ``size x size`` window of a 2-D map, edges repeated (float64).

        ``scipy.ndimage.uniform_filter(a, size, mode='nearest')``.
        """
        from scipy.ndimage import uniform_filter

        return uniform_filter(np.asarray(a, dtype=np.float64), size=size, mode="nearest")

    def tail_counts(self, a: np.ndarray) -> np.ndarray:
        """For every entry ``x`` of ``a``: how many entries are ``>= x`` (float64; ``a`` finite).

        ``scipy.stats.rankdata(-a, method='max')``, with two arrays of ``a``'s
        size besides the result rather than seven: one sort, then ``n`` minus
        the first sorted position of each value.
        """
        flat = np.ravel(a).astype(np.float64, copy=False)
        n = flat.size
        order = np.argsort(flat)  # ties in any order: they share their count
        first = flat[order]
        new = np.empty(n, dtype=bool)  # where a new value starts in the sorted order
        new[:1] = True
        np.not_equal(first[1:], first[:-1], out=new[1:])
        first[:] = 0.0
        first[new] = np.flatnonzero(new)
        del new
        np.maximum.accumulate(first, out=first)  # the first position of each entry's value
        counts = np.empty(n)
        counts[order] = np.subtract(n, first, out=first)
        return counts.reshape(np.shape(a))

    def log10(self, a: np.ndarray) -> np.ndarray:
        return np.log10(a)

    def stack_reduce(self, arrays: list[np.ndarray], how: str) -> np.ndarray:
        """Entry-wise ``'max'`` or ``'sum'`` of arrays of one shape."""
        return np.max(arrays, axis=0) if how == "max" else np.sum(arrays, axis=0)


class TorchBackend(NumpyBackend):
    """The same operations on ``torch.Tensor``, on ``device`` (CPU or CUDA)."""

    name = "torch"

    def __init__(self, device: Any = None) -> None:
        import torch

        self.torch = torch
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.float64, self.float32 = torch.float64, torch.float32

    # -- creation and conversion -------------------------------------------------------

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        """``a`` (array or tensor) as a tensor on the device, strides kept (one transfer)."""
        t = self.torch
        if dtype is not None and not isinstance(dtype, t.dtype):
            dtype = self.dtype(dtype)
        if not isinstance(a, t.Tensor):
            a = np.asarray(a)
            if not (a.flags.c_contiguous or a.flags.f_contiguous):
                a = np.ascontiguousarray(a)
            a = t.from_numpy(a)
        return a.to(device=self.device, dtype=dtype)

    def to_numpy(self, a: Any) -> np.ndarray:
        if isinstance(a, self.torch.Tensor):
            return a.detach().cpu().numpy()
        return np.asarray(a)

    def dtype(self, name: Any) -> Any:
        if isinstance(name, self.torch.dtype):
            return name
        return getattr(self.torch, np.dtype(name).name)

    def empty(self, shape: tuple[int, ...], dtype: Any, order: str = "C") -> Any:
        if order == "F":
            return self.torch.empty(shape[::-1], dtype=dtype, device=self.device).T
        return self.torch.empty(shape, dtype=dtype, device=self.device)

    def zeros(self, shape: tuple[int, ...], dtype: Any, order: str = "C") -> Any:
        if order == "F":
            return self.torch.zeros(shape[::-1], dtype=dtype, device=self.device).T
        return self.torch.zeros(shape, dtype=dtype, device=self.device)

    def zeros_like(self, a: Any) -> Any:
        return self.torch.zeros_like(a)

    def ones(self, shape: tuple[int, ...], dtype: Any = None) -> Any:
        return self.torch.ones(shape, dtype=dtype or self.float64, device=self.device)

    def eye(self, k: int, dtype: Any = None) -> Any:
        return self.torch.eye(k, dtype=dtype or self.float64, device=self.device)

    def index(self, idx: np.ndarray) -> Any:
        return self.torch.as_tensor(np.asarray(idx, dtype=np.int64), device=self.device)

    def copy(self, a: Any) -> Any:
        return a.clone()

    def astype(self, a: Any, dtype: Any) -> Any:
        return a.to(self.dtype(dtype))

    def ascontiguous(self, a: Any) -> Any:
        return a.contiguous()

    def order(self, a: Any) -> str:
        if a.dim() == 2 and a.stride(0) == 1 and not a.is_contiguous():
            return "F"
        return "C"

    def vstack(self, arrays: list[Any]) -> Any:
        return self.torch.vstack(arrays)

    def moveaxis(self, a: Any, source: int, destination: int) -> Any:
        return self.torch.movedim(a, source, destination)

    def concatenate(self, arrays: list[Any]) -> Any:
        return self.torch.cat(arrays)

    # -- element-wise and products -----------------------------------------------------

    def matmul(self, a: Any, b: Any, out: Any = None) -> Any:
        if out is None:
            return self.torch.matmul(a, b)
        return self.torch.matmul(a, b, out=out)

    def lmul(self, p: Any, b: Any) -> Any:
        return p @ b

    def relu(self, a: Any, out: Any = None) -> Any:
        if out is None:
            return self.torch.clamp_min(a, 0)
        return self.torch.clamp_min(a, 0, out=out)

    def maximum(self, a: Any, b: float) -> Any:
        return self.torch.clamp_min(a, b)

    def add(self, a: Any, b: Any, out: Any = None) -> Any:
        if out is None:
            return self.torch.add(a, b)
        return self.torch.add(a, b, out=out)

    def subtract(self, a: Any, b: Any, out: Any = None) -> Any:
        if out is None:
            return self.torch.sub(a, b)
        return self.torch.sub(a, b, out=out)

    def divide(self, a: Any, b: Any, out: Any = None) -> Any:
        if out is None:
            return self.torch.div(a, b)
        return self.torch.div(a, b, out=out)

    def minimum(self, a: Any, b: Any, out: Any = None) -> Any:
        if out is None:
            return self.torch.minimum(a, b)
        return self.torch.minimum(a, b, out=out)

    def multiply(self, a: Any, b: Any, out: Any = None) -> Any:
        if out is None:
            return self.torch.mul(a, b)
        return self.torch.mul(a, b, out=out)

    def abs(self, a: Any, out: Any = None) -> Any:
        if out is None:
            return self.torch.abs(a)
        return self.torch.abs(a, out=out)

    def sign(self, a: Any) -> Any:
        return self.torch.sign(a)

    def sqrt(self, a: Any) -> Any:
        return self.torch.sqrt(a)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return self.torch.where(cond, a, b)

    def errstate(self) -> Any:
        return contextlib.nullcontext()

    # -- reductions --------------------------------------------------------------------

    def col_sqnorms(self, a: Any) -> Any:
        return (a * a).sum(dim=0)

    def rowdot(self, a: Any, b: Any) -> Any:
        return (a * b).sum(dim=1)

    def any0(self, a: Any) -> Any:
        return (a != 0).any(dim=0)

    def flatnonzero(self, a: Any) -> Any:
        return self.torch.flatten(self.torch.nonzero(a.reshape(-1)))

    def count_nonzero(self, a: Any) -> Any:
        return self.torch.count_nonzero(a)

    def sq64(self, a: Any) -> Any:
        return (a * a).sum(dim=0).sum(dtype=self.float64)

    def sum_cols64(self, a: Any) -> Any:
        return a.sum(dim=0).sum(dtype=self.float64)

    def total(self, a: Any) -> Any:
        return a.sum()

    def mean(self, a: Any) -> float:
        return float(a.mean())

    def mean0_64(self, a: Any) -> Any:
        return a.mean(dim=0, dtype=self.float64)

    def take_cols(self, a: Any, idx: Any) -> Any:
        return self.torch.index_select(a, 1, idx)

    def batch_trace(self, a: Any) -> Any:
        return a.diagonal(dim1=1, dim2=2).sum(dim=-1)

    # -- linear algebra and filters ----------------------------------------------------

    def solve(self, a: Any, b: Any) -> Any:
        return self.torch.linalg.solve(a, b.unsqueeze(-1)).squeeze(-1)

    def cumsum(self, a: Any, axis: int, out: Any = None) -> Any:
        if out is None:
            return self.torch.cumsum(a, dim=axis)
        out.copy_(self.torch.cumsum(a, dim=axis))  # also when ``out`` is ``a``
        return out

    def box_mean_nearest(self, a: Any, size: int) -> Any:
        """Mean over a centred ``size x size`` window, edges repeated (float64; odd ``size``)."""
        if size % 2 == 0:  # scipy's even windows are not centred: as NumPy does it
            return self.asarray(_NUMPY.box_mean_nearest(self.to_numpy(a), size))
        F = self.torch.nn.functional
        h = size // 2
        t = F.pad(a.to(self.torch.float64)[None, None], (h, h, h, h), mode="replicate")
        return F.avg_pool2d(t, size, stride=1)[0, 0]

    def tail_counts(self, a: Any) -> Any:
        flat = a.reshape(-1).to(self.torch.float64)
        ascending = self.torch.sort(flat).values
        below = self.torch.searchsorted(ascending, flat, right=False)
        return (flat.numel() - below).to(self.torch.float64).reshape(a.shape)

    def log10(self, a: Any) -> Any:
        return self.torch.log10(a)

    def stack_reduce(self, arrays: list[Any], how: str) -> Any:
        t = self.torch.stack(arrays)
        return t.amax(dim=0) if how == "max" else t.sum(dim=0)


_NUMPY = NumpyBackend()
_TORCH: dict[str, TorchBackend] = {}


def get_backend(name: str | None = "numpy", device: Any = None) -> NumpyBackend:
    """The backend called ``name`` (``'numpy'`` or ``'torch'``) on ``device``.

    ``device`` is for torch only: ``None`` means ``'cuda'`` when a CUDA GPU is
    available, else ``'cpu'``.

    Raises
    ------
    InputError
        If ``name`` is unknown, torch is not installed, or the device is not usable.
    """
    from rednmf.exceptions import InputError

    if name is None or name == "numpy":
        if device is not None and str(device) != "cpu":
            raise InputError(
                f"device={device!r} needs backend='torch'; pass backend='torch' or drop device"
            )
        return _NUMPY
    if name != "torch":
        raise InputError(f"backend must be one of {BACKENDS}, got {name!r}")
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise InputError(
            "backend='torch' needs PyTorch; pip install 'rednmf[torch]' (or torch)"
        ) from exc
    key = str(device)
    if key in _TORCH:
        return _TORCH[key]
    try:
        xp = TorchBackend(device)
        if xp.device.type == "cuda" and not xp.torch.cuda.is_available():
            raise RuntimeError("CUDA is not available")
        xp.torch.empty(1, device=xp.device)
    except (RuntimeError, TypeError, ValueError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"torch device {device!r} is not usable ({msg}); pass device='cpu' or a valid device"
        ) from exc
    _TORCH[key] = xp
    return xp


def namespace(*arrays: Any) -> NumpyBackend:
    """The backend of the arrays given: torch (on the first tensor's device) or NumPy."""
    for a in arrays:
        if is_tensor(a):
            return get_backend("torch", a.device)
    return _NUMPY
