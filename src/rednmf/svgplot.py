"""The ROC curve of a run as an SVG file, written directly (no matplotlib).

A run's ROC picture is a line, two axes and a legend: writing it as SVG text takes about a
millisecond where a matplotlib PNG took 0.07 s, and it stays sharp at any zoom. A curve of
many points (one per distinct score, up to a million) is thinned to the vertices that
differ at a quarter of a drawn pixel, which the eye cannot tell from the full curve.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np

from rednmf.exceptions import InputError
from rednmf.io.writers import atomic_open

__all__ = ["roc_svg", "save_roc_svg"]

#: Size of the picture and of its plot area, in pixels (left, top, right, bottom margins).
_WIDTH, _HEIGHT = 500, 450
_LEFT, _TOP, _RIGHT, _BOTTOM = 62, 34, 16, 50
_CURVE, _CHANCE, _GRID = "#1f77b4", "#999999", "#e3e3e3"


def _thin(x: np.ndarray, y: np.ndarray, resolution: float) -> tuple[np.ndarray, np.ndarray]:
    """The points whose position, rounded to ``resolution``, differs from the one before."""
    if x.size <= 2:
        return x, y
    qx, qy = np.round(x / resolution), np.round(y / resolution)
    keep = np.ones(x.size, bool)
    keep[1:] = (qx[1:] != qx[:-1]) | (qy[1:] != qy[:-1])
    keep[-1] = True
    return x[keep], y[keep]


def roc_svg(
    fpr: np.ndarray, tpr: np.ndarray, auc: float | None = None, label: str | None = None
) -> str:
    """A ROC curve (false- vs true-positive rate) as a standalone SVG document.

    Parameters
    ----------
    fpr, tpr : array-like of shape (n_thresholds,)
        The curve, as returned by :func:`rednmf.metrics.roc_curve` (values in [0, 1]).
    auc : float, optional
        Area under the curve, shown in the legend.
    label : str, optional
        Name of the curve (method or scene), shown in the legend.

    Returns
    -------
    str
        The SVG text: axes from 0 to 1 with a grid every 0.2, the curve, the chance line,
        a legend and the title "ROC".
    """
    x = np.asarray(fpr, dtype=np.float64).ravel()
    y = np.asarray(tpr, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise InputError(f"fpr and tpr differ in length ({x.size} vs {y.size})")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = np.clip(x[ok], 0.0, 1.0), np.clip(y[ok], 0.0, 1.0)
    w, h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    px, py = _LEFT + w * x, _TOP + h * (1.0 - y / 1.02)  # y up to 1.02, as the old picture
    px, py = _thin(px, py, 0.25)
    points = " ".join(f"{a:.2f},{b:.2f}" for a, b in zip(px, py, strict=True))
    text = html.escape(label or "detector")
    if auc is not None:
        text = f"{text} (AUC = {auc:.4f})"
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{_WIDTH}' height='{_HEIGHT}' "
        f"viewBox='0 0 {_WIDTH} {_HEIGHT}' font-family='DejaVu Sans, Arial, sans-serif' "
        "font-size='12'>",
        f"<rect width='{_WIDTH}' height='{_HEIGHT}' fill='white'/>",
    ]
    for k in range(6):  # grid and ticks every 0.2
        t = k / 5
        gx, gy = _LEFT + w * t, _TOP + h * (1.0 - t / 1.02)
        parts += [
            f"<line x1='{gx:.2f}' y1='{_TOP}' x2='{gx:.2f}' y2='{_TOP + h}' stroke='{_GRID}'/>",
            f"<line x1='{_LEFT}' y1='{gy:.2f}' x2='{_LEFT + w}' y2='{gy:.2f}' stroke='{_GRID}'/>",
            f"<text x='{gx:.2f}' y='{_TOP + h + 16}' text-anchor='middle'>{t:.1f}</text>",
            f"<text x='{_LEFT - 6}' y='{gy + 4:.2f}' text-anchor='end'>{t:.1f}</text>",
        ]
    chance_top = _TOP + h * (1.0 - 1.0 / 1.02)
    parts += [
        f"<line x1='{_LEFT}' y1='{_TOP + h}' x2='{_LEFT + w}' y2='{chance_top:.2f}' "
        f"stroke='{_CHANCE}' stroke-width='0.8' stroke-dasharray='4 3'/>",
        f"<polyline points='{points}' fill='none' stroke='{_CURVE}' stroke-width='1.8' "
        "stroke-linejoin='round'/>",
        f"<rect x='{_LEFT}' y='{_TOP}' width='{w}' height='{h}' fill='none' stroke='#333'/>",
        f"<text x='{_LEFT + w / 2}' y='{_TOP - 12}' text-anchor='middle' font-size='14'>"
        "ROC</text>",
        f"<text x='{_LEFT + w / 2}' y='{_HEIGHT - 12}' text-anchor='middle'>"
        "false-positive rate</text>",
        f"<text x='16' y='{_TOP + h / 2}' text-anchor='middle' "
        f"transform='rotate(-90 16 {_TOP + h / 2})'>true-positive rate</text>",
    ]
    lx, ly = _LEFT + w - 10, _TOP + h - 40  # the legend, lower right: text, then its line
    parts += [
        f"<text x='{lx - 30}' y='{ly + 4}' text-anchor='end'>{text}</text>",
        f"<line x1='{lx - 24}' y1='{ly}' x2='{lx}' y2='{ly}' stroke='{_CURVE}' "
        "stroke-width='1.8'/>",
        f"<text x='{lx - 30}' y='{ly + 24}' text-anchor='end'>chance</text>",
        f"<line x1='{lx - 24}' y1='{ly + 20}' x2='{lx}' y2='{ly + 20}' stroke='{_CHANCE}' "
        "stroke-dasharray='4 3'/>",
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def save_roc_svg(
    path: str | os.PathLike[str],
    fpr: np.ndarray,
    tpr: np.ndarray,
    auc: float | None = None,
    label: str | None = None,
) -> Path:
    """Write :func:`roc_svg` to ``path`` atomically and return the path."""
    target = Path(path)
    with atomic_open(target, "w") as fh:
        fh.write(roc_svg(fpr, tpr, auc=auc, label=label))
    return target
