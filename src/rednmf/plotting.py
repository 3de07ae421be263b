"""Figures of detection results, written as PNG files.

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas,
never through :mod:`matplotlib.pyplot`, so no global state (open figures,
backend choice) leaks into the caller's session. Files are written atomically.
The run's overview is drawn without matplotlib, in :mod:`rednmf.overview`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rednmf.composite import stretch
from rednmf.exceptions import InputError
from rednmf.io.writers import atomic_open

__all__ = [
    "display_range",
    "false_colour",
    "save_figure",
]

_DPI = 120


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as a PNG file, atomically, and return its path.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (drawn on an Agg canvas, no display needed).
    path : str or path-like
        The file.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    FigureCanvasAgg(fig)
    target = Path(path)
    with atomic_open(target, "wb") as fh:
        fig.savefig(
            fh,
            format="png",
            dpi=_DPI,
            bbox_inches="tight",
            pil_kwargs={"compress_level": 3},
        )
    return target


def false_colour(cube: np.ndarray) -> np.ndarray:
    """Return an RGB (or grey) display image of a cube, each channel stretched to [0, 1].

    Three bands at 80 %, 50 % and 20 % of the band range are taken as red,
    green and blue (red at the long-wavelength end as in a colour-infrared
    composite); with fewer than 3 bands the mean band is shown in grey. Each
    channel is clipped to its 2nd-98th percentiles.

    Parameters
    ----------
    cube : array-like of shape (rows, cols, bands)

    Returns
    -------
    numpy.ndarray of shape (rows, cols, 3) or (rows, cols)
    """
    arr = np.asarray(cube, dtype=np.float64)
    if arr.ndim != 3:
        raise InputError(f"cube must be 3-D (rows, cols, bands), got shape {arr.shape}")
    bands = arr.shape[2]
    if bands >= 3:
        idx = [int(round(f * (bands - 1))) for f in (0.8, 0.5, 0.2)]
        img = arr[:, :, idx]
    else:
        img = arr.mean(axis=2)
    img = np.where(np.isfinite(img), img, np.nan)
    if img.ndim == 3:
        out = np.empty_like(img)
        for c in range(3):
            out[:, :, c] = stretch(img[:, :, c])
        return out
    return stretch(img)


#: Colour bar label; the display range is clipped, the saved scores are not.
def display_range(scores: np.ndarray) -> dict[str, float]:
    """Colour limits from the 0.5th to the 99.5th percentile of the finite scores.

    A few extreme pixels would otherwise compress every other score into one
    colour; the clipping affects the picture only.
    """
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        return {}
    lo, hi = np.percentile(finite, [0.5, 99.5])
    return {"vmin": float(lo), "vmax": float(hi)} if hi > lo else {}
