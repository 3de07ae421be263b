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
    "save_detection_figure",
    "save_score_map",
]

_DPI = 120


def _save(fig: Figure, path: str | os.PathLike[str], *, tight: bool = True) -> Path:
    """Write ``fig`` as PNG; ``tight=False`` for a figure laid out by hand (one draw, not two)."""
    FigureCanvasAgg(fig)
    target = Path(path)
    with atomic_open(target, "wb") as fh:
        fig.savefig(
            fh,
            format="png",
            dpi=_DPI,
            bbox_inches="tight" if tight else None,
            pil_kwargs={"compress_level": 3},
        )
    return target


def _as_map(name: str, values: object) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(f"{name} must be a 2-D (rows, cols) map, got shape {arr.shape}")
    return arr


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
_SCORE_LABEL = "anomaly score (colours clipped at the 99.5th percentile)"


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


def save_score_map(
    path: str | os.PathLike[str],
    scores: np.ndarray,
    title: str | None = None,
    *,
    cmap: str = "viridis",
) -> Path:
    """Save an anomaly score map as a PNG image with a colour bar.

    Parameters
    ----------
    path : str or path-like
        Output file; its directory is created if missing.
    scores : array-like of shape (rows, cols)
        Higher = more anomalous.
    title : str, optional
        Figure title.
    cmap : str
        Matplotlib colour map name.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    data = _as_map("scores", scores)
    rows, cols = data.shape
    width = 5.0
    height = max(2.5, min(8.0, width * rows / max(cols, 1)))
    fig = Figure(figsize=(width + 1.0, height), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(data, cmap=cmap, interpolation="nearest", **display_range(data))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=_SCORE_LABEL)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return _save(fig, path)


def save_detection_figure(
    path: str | os.PathLike[str],
    cube: np.ndarray,
    scores: np.ndarray,
    gt: np.ndarray | None = None,
    *,
    title: str | None = None,
    auc: float | None = None,
) -> Path:
    """Save the scene, its ground truth (if any) and the score map side by side.

    Parameters
    ----------
    path : str or path-like
        Output PNG file; its directory is created if missing.
    cube : array-like of shape (rows, cols, bands)
        The scene, shown in false colour (see :func:`false_colour`).
    scores : array-like of shape (rows, cols)
        The anomaly score map.
    gt : array-like of shape (rows, cols), optional
        Ground truth (nonzero = anomaly).
    title : str, optional
        Figure title.
    auc : float, optional
        Shown in the score panel's title.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    image = false_colour(cube)
    data = _as_map("scores", scores)
    if data.shape != image.shape[:2]:
        raise InputError(f"scores {data.shape} do not match the cube {image.shape[:2]}")
    panels: list[tuple[str, np.ndarray, dict[str, object]]] = [
        ("scene (false colour)", image, {"cmap": "gray"} if image.ndim == 2 else {}),
    ]
    if gt is not None:
        truth = _as_map("gt", gt)
        if truth.shape != data.shape:
            raise InputError(f"gt {truth.shape} does not match the scores {data.shape}")
        panels.append(("ground truth", truth != 0, {"cmap": "gray"}))
    score_title = "anomaly scores" if auc is None else f"anomaly scores (AUC = {auc:.4f})"
    panels.append((score_title, data, {"cmap": "viridis", **display_range(data)}))

    rows, cols = data.shape
    panel_w = 3.6
    panel_h = max(2.0, min(6.0, panel_w * rows / max(cols, 1)))
    fig = Figure(figsize=(panel_w * len(panels) + 0.8, panel_h + 0.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, img, kw) in zip(axes, panels, strict=True):
        im = ax.imshow(img, interpolation="nearest", **kw)
        ax.set_title(name, fontsize=10)
        ax.set_axis_off()
        if img is data:
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=_SCORE_LABEL)
    if title:
        fig.suptitle(title)
    return _save(fig, path)
