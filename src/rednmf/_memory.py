"""Is a cube on disk, would the in-memory detector path hold it, how much is held,
and keeping an array on disk instead of in memory.

No rednmf imports.
Shared by the readers (:mod:`rednmf.io.scene`: read a large raster lazily)
and the execution engines (:mod:`rednmf.engines`: fit a large memory-mapped
scene out of core), which must not import each other.
"""

from __future__ import annotations

import mmap
import tempfile
from typing import Any

import numpy as np

__all__ = [
    "BYTES_PER_ELEMENT_IN_MEMORY",
    "DiskArray",
    "available_memory",
    "fits_in_memory",
    "is_memory_mapped",
    "peak_rss_mib",
]

#: Bytes per cube element that the in-memory detector path holds at its peak
#: (float copies of the cube and of X, the scaled X, S, the anomaly cube, BRAD).
BYTES_PER_ELEMENT_IN_MEMORY = 32


def is_memory_mapped(a: object) -> bool:
    """Whether ``a`` is a :class:`numpy.memmap` or a view of one (or of an ``mmap``).

    Also True for a cube read from disk on demand, marked ``on_disk = True``
    (:class:`rednmf.io.geotiff.GeoTiffCube`, a raster read window by window).
    """
    while a is not None:
        if isinstance(a, np.memmap | mmap.mmap) or getattr(a, "on_disk", False) is True:
            return True
        a = getattr(a, "base", None)
    return False


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable``), or a large number if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return 1 << 62  # pragma: no cover


def fits_in_memory(shape: tuple[int, ...]) -> bool:
    """Whether the in-memory detector path would fit in the memory available now."""
    return int(np.prod(shape)) * BYTES_PER_ELEMENT_IN_MEMORY <= available_memory()


def peak_rss_mib() -> float | None:
    """The peak resident set size of this process so far, in MiB (None where unknown).

    ``getrusage(RUSAGE_SELF).ru_maxrss``: the number ``/usr/bin/time -v`` reports at the
    end of a command. It never decreases.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # kilobytes on Linux, bytes on macOS
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


class DiskArray:
    """An array kept in an anonymous temporary file instead of in this process's memory.

    For what a fitted model keeps only for a later request and its scoring
    never reads (REDNMF's codes of the last S step, which :meth:`anomaly`
    needs): written once with :func:`numpy.save` to a file of
    :func:`tempfile.TemporaryFile` (in ``TMPDIR``, without a name, so it
    leaves nothing behind and goes with the object), the array's memory is
    freed, and :meth:`load` reads it back bit for bit. Where the file
    cannot be written (no space, a read-only ``TMPDIR``) the array stays in
    memory and :meth:`load` returns it. Pickled as the array it holds.

    Parameters
    ----------
    a : ndarray
        The array; not kept (the caller lets its last reference go).
    """

    def __init__(self, a: np.ndarray) -> None:
        self.shape, self.dtype = a.shape, a.dtype
        self._array: np.ndarray | None = None
        self._file: Any = None
        try:
            f = tempfile.TemporaryFile()  # noqa: SIM115 - open for the object's life
        except OSError:
            self._array = a
            return
        try:
            np.save(f, a, allow_pickle=False)
            f.flush()
        except OSError:
            f.close()
            self._array = a
            return
        self._file = f

    def load(self) -> np.ndarray:
        """The array, read back from its file (a new array each call)."""
        if self._file is None:
            assert self._array is not None
            return self._array
        self._file.seek(0)
        return np.load(self._file, allow_pickle=False)

    def __reduce__(self) -> tuple[Any, ...]:
        return (DiskArray, (self.load(),))
