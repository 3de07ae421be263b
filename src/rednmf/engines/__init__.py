"""Where and how REDNMF runs: one ``engine=`` object, apart from the model.

:class:`rednmf.detectors.rednmf.REDNMF` describes the model (rank, weights,
scorer); its ``engine`` says where the block engine of the solver
(:mod:`rednmf.solvers.rednmf_blocks`) runs and where the evidence it returns
lives. The scores do not depend on the engine beyond float rounding, which the
iterations carry forward: ``InMemory`` gives identical scores at any ``n_jobs``
(tested); ``DaskEngine`` with ``chunk_size`` equal to the block size fits
identically (tested: ``S`` and the coefficients bit for bit; its scores, scored
on the workers, to 1e-7, and identical as measured on abu-airport-1);
``OutOfCore`` is tested to agree to rounding; torch, or Dask with other chunks,
add the sums in another order, and in
float32 the scores then differ by up to about 4e-4 relative (abu-airport-1, 10
iterations; the AUC and the labels identical), in float64 by about 1e-15.

================================  =============================================
``InMemory(n_jobs=None)``         threads over pixel blocks, the scene in
                                  memory (the default, ``engine=None``)
``OutOfCore(n_jobs, temp_dir)``   the scene read block by block from its file,
                                  ``S`` in a temporary file (:mod:`rednmf.outofcore`)
``DaskEngine(scheduler, ...)``    the pixel chunks on the workers of a Dask
                                  cluster (:mod:`rednmf.engines.dask`)
``TorchEngine(device=None)``      the updates and BRAD in PyTorch on a device
================================  =============================================

A string names an engine with its defaults: ``'memory'``, ``'out-of-core'``,
``'torch'`` (or ``'torch:cuda:1'``, a device after the colon), or the address of
a Dask scheduler (``'tcp://host:8786'``). With ``engine=None`` (or an
``InMemory`` whose ``spill`` is True) a memory-mapped scene that would not fit
in memory is fitted out of core instead.

An engine opens a *session* for each fit (:meth:`Engine.session`): the
solver's execution arguments (threads, the parts it runs on, the array
backend) and, for Dask, the connection to the cluster, closed after the
scoring. The fit's evidence is a handle: a NumPy array, a memory map (out of
core) or a Dask array on the workers, and the session is also where it is
scored: a :class:`~rednmf.scoring.from_matrix.ScoringSession` that
:func:`rednmf.scoring.from_matrix.score_matrix`, the one scoring pipeline,
runs on.

Whether a scene is fitted out of core is the engine's decision
(:meth:`Engine.fits_out_of_core`), and so is the setup of its data
(:meth:`Engine.out_of_core_data`: the scene scanned and read block by block,
``S`` in a temporary file); the model only says whether it can be.

Engines are scikit-learn style parameters (``get_params``, ``set_params``,
``clone``, a readable ``repr``); Dask and torch are imported only when a
session needs them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, InvalidParameterError, Options

from rednmf._memory import fits_in_memory, is_memory_mapped
from rednmf.exceptions import InputError, one_line
from rednmf.scoring.from_matrix import InProcess

__all__ = [
    "ENGINE_NAMES",
    "DaskEngine",
    "Engine",
    "InMemory",
    "LocalSession",
    "OutOfCore",
    "TorchEngine",
    "does_not_fit",
    "OutOfCoreData",
    "resolve_engine",
]

#: The names an ``engine`` string may take (besides a ``scheme://`` Dask address).
ENGINE_NAMES = ("memory", "out-of-core", "torch", "torch:DEVICE")

_N_JOBS = [Interval(Integral, 1, None, closed="left"), Options(Integral, {-1}), None]


def does_not_fit(cube: Any) -> bool:
    """Whether ``cube`` is on disk (:func:`rednmf._memory.is_memory_mapped`) and too large.

    Too large: the in-memory detector path would not fit in the memory
    available now (:func:`rednmf._memory.fits_in_memory`).
    """
    shape = np.shape(cube)
    return is_memory_mapped(cube) and len(shape) == 3 and not fits_in_memory(shape)


@dataclass
class LocalSession(InProcess):
    """One fit in this process: the solver's threads and array backend, nothing to close.

    Its evidence is scored in this process
    (:class:`~rednmf.scoring.from_matrix.InProcess`, on ``backend``).
    """

    n_jobs: int | None = None
    backend: str = "numpy"
    device: Any = None
    client: Any = None

    def solver_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~rednmf.solvers.rednmf.rednmf_solve_blocks` here."""
        return {"n_jobs": self.n_jobs, "backend": self.backend, "device": self.device}

    def kept_evidence(self, W: np.ndarray | None, tau: float | None) -> Any:
        """The evidence left where the fit ran; None: it is in the solver's result."""
        return None


class Engine(BaseEstimator):
    """Base class of the engines (not used itself).

    Attributes
    ----------
    out_of_core : bool or None
        Whether the scene is read from disk block by block: always (True),
        never (False), or when it is memory-mapped and would not fit (None).
    backend : str
        The array backend of the solver and of BRAD (:mod:`rednmf.backend`).
    device : str or None
        Its torch device.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}

    out_of_core: bool | None = None
    backend = "numpy"
    device: Any = None
    temp_dir: Any = None

    def check(self) -> None:
        """Validate the parameters (one-line :class:`~rednmf.exceptions.InputError`)."""
        try:
            self._validate_params()
        except InvalidParameterError as exc:
            raise InputError(f"engine: {one_line(exc)}") from None

    @contextmanager
    def session(self) -> Iterator[Any]:
        """A session for one fit and its scoring (:class:`LocalSession` here)."""
        yield LocalSession(
            n_jobs=getattr(self, "n_jobs", None), backend=self.backend, device=self.device
        )

    def fits_out_of_core(self, cube: Any, model_can: bool) -> bool:
        """Whether this engine fits ``cube`` out of core.

        Always (``out_of_core`` True), never (False), or (None) when the model
        can (``model_can``) and the cube is memory-mapped and would not fit
        (:func:`does_not_fit`).

        Raises
        ------
        InputError
            If the cube would not fit and the engine runs in memory only (torch).
        """
        if self.out_of_core is not None:
            return bool(self.out_of_core)
        if not (model_can and does_not_fit(cube)):
            return False
        if self.backend == "torch":
            raise InputError(
                "the scene does not fit in memory and TorchEngine fits in memory only; "
                "use engine=None (out of core)"
            )
        return True

    @contextmanager
    def out_of_core_data(
        self,
        cube: Any,
        mask: np.ndarray | None,
        *,
        dtype: np.dtype,
        scale: str,
        min_bands: int,
        name: str,
    ) -> Iterator[OutOfCoreData]:
        """The data of an out-of-core fit, for the duration of the ``with`` block.

        The cube is scanned block by block (:func:`rednmf.outofcore.scan_cube`:
        the valid pixels, the usable bands, the fill spectrum, the range), read
        as the scaled ``bands x pixels`` :class:`rednmf.outofcore.CubeMatrix`,
        and ``S`` is a Fortran-ordered memory map in a temporary folder of
        ``temp_dir`` (removed on exit). ``min_bands`` and ``name`` (the
        detector's) go to the scan's messages.
        """
        from rednmf.outofcore import CubeMatrix, scan_cube

        valid, kept, fill, lo, hi = scan_cube(cube, mask, min_bands, name)
        X = CubeMatrix(cube, dtype, kept=kept, valid=valid, fill=fill, lo=lo, hi=hi, scale=scale)
        with tempfile.TemporaryDirectory(prefix="rednmf-", dir=self.temp_dir) as tmp:
            S = np.lib.format.open_memmap(
                Path(tmp) / "S.npy", mode="w+", dtype=X.dtype, shape=X.shape, fortran_order=True
            )
            data = OutOfCoreData(X, S, valid, kept)
            del S
            try:
                yield data
            finally:
                data.S = None  # the map goes before its folder


@dataclass
class OutOfCoreData:
    """The data of an out-of-core fit (:meth:`Engine.out_of_core_data`).

    Attributes
    ----------
    X : rednmf.outofcore.CubeMatrix
        The scaled scene, read from its file block by block.
    S : numpy.memmap or None
        ``bands x pixels``, in ``X``'s dtype, Fortran-ordered, in a temporary
        file (None once the fit is over).
    valid : ndarray of bool, shape (rows, cols)
        The valid pixels.
    kept : ndarray of int
        The bands used.
    """

    X: Any
    S: np.ndarray | None
    valid: np.ndarray
    kept: np.ndarray


class InMemory(Engine):
    """The scene in memory, ``n_jobs`` threads over pixel blocks (the default engine).

    Parameters
    ----------
    n_jobs : int or None, default=None
        Threads over pixel blocks in the solver (``None``: as many as BLAS may
        use here, which respects ``OPENBLAS_NUM_THREADS``; ``-1``: every CPU).
        The result does not depend on it.
    spill : bool, default=True
        When the scene is memory-mapped (or read from disk on demand) and the
        in-memory path would not fit in the memory available, fit it out of
        core (as :class:`OutOfCore` with the same ``n_jobs``); False: always
        in memory.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_jobs": _N_JOBS,
        "spill": ["boolean"],
    }

    def __init__(self, n_jobs: int | None = None, spill: bool = True) -> None:
        self.n_jobs = n_jobs
        self.spill = spill

    @property
    def out_of_core(self) -> bool | None:  # type: ignore[override]
        return None if self.spill else False


class OutOfCore(Engine):
    """The scene read block by block from its file, ``S`` in a temporary file.

    See :mod:`rednmf.outofcore`: the cube (a memory map, or a raster read
    window by window) is scaled on the fly, ``S`` is a memory map in
    ``temp_dir`` scored block by block, and ``S`` is not kept (``REDNMF.anomaly``
    refuses). Needs
    the block engine (``lam_mode`` ``'noise'``, ``'svd'`` or ``'absolute'``,
    REDNMF's ``sparsity`` ``'l21'`` or ``'none'``). The scores
    equal the in-memory ones up to float rounding (see the module's docstring).

    Parameters
    ----------
    n_jobs : int or None, default=None
        As :class:`InMemory`.
    temp_dir : str or path-like, optional
        Folder of the temporary ``S`` (default: the system's temporary folder).
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_jobs": _N_JOBS,
        "temp_dir": [str, os.PathLike, None],  # an existing folder: check()
    }

    out_of_core = True

    def __init__(self, n_jobs: int | None = None, temp_dir: Any = None) -> None:
        self.n_jobs = n_jobs
        self.temp_dir = temp_dir

    def check(self) -> None:
        """Validate the parameters; ``temp_dir`` must be an existing folder."""
        super().check()
        if self.temp_dir is not None and not os.path.isdir(self.temp_dir):
            raise InputError(
                f"engine: temp_dir {str(self.temp_dir)!r} is not an existing folder; "
                "create it or pass another one (or None: the system's temporary folder)"
            )


class DaskEngine(Engine):
    """The pixel chunks on the workers of a Dask cluster (:mod:`rednmf.engines.dask`).

    The chunks live on the workers, and so does the scoring: the evidence is
    scored where its chunks are (:class:`rednmf.engines.dask.DaskSession`), the
    scores equal the in-memory ones up to float rounding (module docstring); ``S`` is still
    gathered (``REDNMF.anomaly``). Needs the block engine (``lam_mode`` other than
    ``'adaptive'``, ``sparsity`` other than ``'l21-row'``) and ``dask[distributed]``.

    Parameters
    ----------
    scheduler : str or distributed.Client
        The address of the scheduler (``'tcp://host:8786'``; connected for
        each fit and closed after it) or a connected client.
    chunk_size : int, optional
        Pixels per chunk (default: one chunk per worker). With ``chunk_size``
        equal to the solver's block size (8192) the fit is identical to the
        in-memory one.
    out_of_core : bool or None, default=None
        Read the scene on the driver block by block from its file and hold
        ``S`` in a temporary file there (as :class:`OutOfCore`) before sending
        the chunks; None: when it is memory-mapped and would not fit.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "scheduler": "no_validation",  # an address or a distributed.Client
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
        "out_of_core": ["boolean", None],
    }

    def __init__(
        self, scheduler: Any, chunk_size: int | None = None, out_of_core: bool | None = None
    ) -> None:
        self.scheduler = scheduler
        self.chunk_size = chunk_size
        self.out_of_core = out_of_core

    def check(self) -> None:
        """Validate the parameters; the scheduler must be given."""
        super().check()
        if self.scheduler is None:
            raise InputError(
                "DaskEngine needs a scheduler: its address 'tcp://HOST:PORT' or a "
                "distributed.Client"
            )

    def __sklearn_clone__(self) -> DaskEngine:
        # A connected client is shared, not copied.
        return DaskEngine(self.scheduler, chunk_size=self.chunk_size, out_of_core=self.out_of_core)

    @contextmanager
    def session(self) -> Iterator[Any]:
        """A :class:`rednmf.engines.dask.DaskSession` on a client of ``scheduler``."""
        from rednmf.engines.dask import DaskSession, dask_client

        with dask_client(self.scheduler) as client:
            yield DaskSession(client, self.chunk_size)


class TorchEngine(Engine):
    """The solver's updates and the BRAD scoring in PyTorch, on ``device``.

    The scaled data are moved once to the device; the fitted attributes are
    NumPy arrays and the scores equal NumPy's up to float rounding (module docstring). Needs
    PyTorch (``pip install 'rednmf[torch]'``) and the block engine, in memory.

    Parameters
    ----------
    device : str or None, default=None
        Torch device (``'cuda'``, ``'cuda:1'``, ``'cpu'``); ``None``:
        ``'cuda'`` when available, else ``'cpu'``.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "device": "no_validation",  # checked by rednmf.backend.get_backend
    }

    backend = "torch"

    def __init__(self, device: Any = None) -> None:
        self.device = device

    def check(self) -> None:
        """Torch installed and the device usable."""
        from rednmf.backend import get_backend

        get_backend("torch", self.device)


def resolve_engine(engine: Engine | str | None, *, check: bool = True) -> Engine:
    """The engine an ``engine`` parameter names, checked (unless ``check`` is False).

    Raises
    ------
    InputError
        One line, for an unknown name or invalid parameters.
    """
    if engine is None:
        engine = InMemory()
    elif isinstance(engine, str):
        engine = _from_name(engine)
    elif not isinstance(engine, Engine):
        raise InputError(
            f"engine={engine!r} is not an engine; pass None, one of {', '.join(ENGINE_NAMES)}, "
            "a Dask scheduler address 'tcp://HOST:PORT' or a rednmf.engines object "
            "(InMemory, OutOfCore, DaskEngine, TorchEngine)"
        )
    if check:
        engine.check()
    return engine


def _from_name(name: str) -> Engine:
    key = name.strip()
    if "://" in key:
        return DaskEngine(key)
    if key == "memory":
        return InMemory()
    if key == "out-of-core":
        return OutOfCore()
    if key == "torch" or key.startswith("torch:"):
        return TorchEngine(key.partition(":")[2] or None)
    raise InputError(
        f"engine={name!r} is not an engine; pass one of {', '.join(ENGINE_NAMES)} or a Dask "
        "scheduler address 'tcp://HOST:PORT'"
    )
