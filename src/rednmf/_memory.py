"""Is a cube on disk, would the in-memory detector path hold it, and how much is held?

No rednmf imports.
Shared by the readers (:mod:`rednmf.io.scene`: read a large raster lazily)
and the execution engines (:mod:`rednmf.engines`: fit a large memory-mapped
scene out of core), which must not import each other.
"""

from __future__ import annotations

import mmap

import numpy as np

__all__ = [
    "BYTES_PER_ELEMENT_IN_MEMORY",
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
