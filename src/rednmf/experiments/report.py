"""Markdown helpers of ``report.md``: our numbers beside the paper's, with the difference."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["machine_info", "markdown_table", "versus"]


def versus(ours: float | None, paper: float | None, digits: int = 4) -> str:
    """One cell: ``ours`` alone, or ``ours (paper, +diff)``; ``-`` when nothing is known."""
    if ours is None or not np.isfinite(ours):
        return "-" if paper is None else f"- ({paper:.{digits}f})"
    if paper is None:
        return f"{ours:.{digits}f}"
    return f"{ours:.{digits}f} ({paper:.{digits}f}, {ours - paper:+.{digits}f})"


def markdown_table(
    rows: Sequence[str],
    cols: Sequence[str],
    cell: Callable[[str, str], str],
    corner: str = "",
) -> str:
    """A markdown table with ``cell(row, col)`` in each cell."""
    lines = [
        f"| {corner} | " + " | ".join(cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    lines += [f"| {r} | " + " | ".join(cell(r, c) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def mean_or_none(values: Sequence[float | None]) -> float | None:
    """Mean of the known values, ``None`` if there is none."""
    known = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(known)) if known else None


def machine_info() -> dict[str, Any]:
    """CPU model, core count, Python, NumPy and the BLAS in use (threadpoolctl)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    from threadpoolctl import threadpool_info

    blas = [
        f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads)"
        for p in threadpool_info()
        if p.get("user_api") == "blas"
    ]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": ", ".join(blas) or "unknown",
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
    }


def format_machine(info: Mapping[str, Any]) -> str:
    """The machine as one markdown line."""
    return ", ".join(f"{k}: {v}" for k, v in info.items())
