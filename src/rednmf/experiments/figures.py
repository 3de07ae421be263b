"""Figures of the benchmark (Figs 2-9 of the paper), as PNG files.

Same conventions as :mod:`rednmf.plotting`: a :class:`matplotlib.figure.Figure`
on the Agg canvas (no pyplot state), written atomically.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from rednmf.plotting import display_range, false_colour, save_figure

__all__ = [
    "save_bars",
    "save_boxplots",
    "save_convergence",
    "save_detection_maps",
    "save_heatmap",
    "save_roc3d",
    "save_roc_curves",
]

PathLike = str | os.PathLike[str]


def save_detection_maps(
    path: PathLike,
    cube: np.ndarray,
    gt: np.ndarray,
    maps: Mapping[str, np.ndarray],
    aucs: Mapping[str, float] | None = None,
    title: str | None = None,
) -> Path:
    """Scene (false colour), ground truth and one score map per method (Figs 3 and 5).

    Score colours are clipped at the 0.5th/99.5th percentiles (display only).
    """
    panels: list[tuple[str, np.ndarray, str | None]] = [
        ("scene", false_colour(cube), None),
        ("ground truth", np.asarray(gt) != 0, "gray"),
    ]
    for name, scores in maps.items():
        auc = (aucs or {}).get(name)
        panels.append((name if auc is None else f"{name}\n{auc:.4f}", scores, "viridis"))
    ncols = min(6, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(2.3 * ncols, 2.5 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, (name, img, cmap) in zip(axes, panels, strict=False):
        clip = display_range(img) if cmap == "viridis" else {}
        ax.imshow(img, cmap=cmap, interpolation="nearest", **clip)
        ax.set_title(name, fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def save_roc_curves(
    path: PathLike,
    curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]],
    title: str | None = None,
) -> Path:
    """ROC curves ``label -> (fpr, tpr, auc)`` on a logarithmic false-positive axis."""
    fig = Figure(figsize=(5.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for label, (fpr, tpr, auc) in curves.items():
        ax.plot(np.maximum(fpr, 1e-5), tpr, lw=1.4, label=f"{label} ({auc:.4f})")
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def save_roc3d(
    path: PathLike,
    curves: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    title: str | None = None,
) -> Path:
    """Chang's 3D ROC ``label -> (tau, P_D, P_F)`` and its projections (Figs 2 and 4)."""
    fig = Figure(figsize=(14.0, 4.0), layout="constrained")
    ax3 = fig.add_subplot(1, 4, 1, projection="3d")
    axes = [fig.add_subplot(1, 4, k) for k in (2, 3, 4)]
    for label, (tau, pd, pf) in curves.items():
        ax3.plot(pf, tau, pd, lw=1.2, label=label)
        axes[0].plot(np.maximum(pf, 1e-5), pd, lw=1.2, label=label)
        axes[1].plot(tau, pd, lw=1.2, label=label)
        axes[2].plot(tau, pf, lw=1.2, label=label)
    ax3.set_xlabel("P_F")
    ax3.set_ylabel("tau")
    ax3.set_zlabel("P_D")
    axes[0].set_xscale("log")
    axes[0].set_xlim(1e-4, 1.0)
    for ax, (x, y) in zip(axes, [("P_F", "P_D"), ("tau", "P_D"), ("tau", "P_F")], strict=True):
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.grid(True, alpha=0.3)
    axes[2].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def save_heatmap(
    path: PathLike,
    values: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
) -> Path:
    """An annotated heat map (Fig 6: AUC over lambda x beta)."""
    data = np.asarray(values, dtype=np.float64)
    fig = Figure(figsize=(1.0 + 0.7 * len(col_labels), 1.0 + 0.45 * len(row_labels)))
    fig.set_layout_engine("constrained")
    ax = fig.add_subplot()
    im = ax.imshow(data, cmap="viridis", aspect="auto", origin="lower")
    ax.set_xticks(range(len(col_labels)), col_labels, fontsize=7)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    for (i, j), v in np.ndenumerate(data):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=6, color="w")
    fig.colorbar(im, ax=ax, label="AUC")
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def save_convergence(
    path: PathLike,
    traces: Mapping[str, np.ndarray],
    *,
    ylabel: str,
    title: str | None = None,
    logy: bool = True,
) -> Path:
    """Curves ``label -> values per iteration`` (Fig 9)."""
    fig = Figure(figsize=(5.5, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for label, values in traces.items():
        v = np.asarray(values, dtype=np.float64)
        ax.plot(np.arange(1, v.size + 1), v, lw=1.4, label=label)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def save_boxplots(
    path: PathLike,
    groups: Mapping[str, tuple[np.ndarray, np.ndarray]],
    title: str | None = None,
) -> Path:
    """Anomaly vs background score distributions per method (normalised scores)."""
    fig = Figure(figsize=(1.2 + 1.1 * len(groups), 4.0), layout="constrained")
    ax = fig.add_subplot()
    data, positions, colours = [], [], []
    for k, (anom, back) in enumerate(groups.values()):
        data += [np.asarray(anom), np.asarray(back)]
        positions += [3 * k + 0.6, 3 * k + 1.4]
        colours += ["tab:red", "tab:blue"]
    parts = ax.boxplot(data, positions=positions, widths=0.6, showfliers=False, patch_artist=True)
    for patch, colour in zip(parts["boxes"], colours, strict=True):
        patch.set_facecolor(colour)
        patch.set_alpha(0.5)
    ax.set_xticks([3 * k + 1 for k in range(len(groups))], list(groups), rotation=30, fontsize=8)
    ax.set_ylabel("normalised score (red: anomaly, blue: background)")
    ax.grid(True, axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def save_bars(
    path: PathLike,
    values: Mapping[str, Mapping[str, float]],
    *,
    ylabel: str,
    title: str | None = None,
) -> Path:
    """Grouped bars ``group -> {bar label -> value}`` (Fig 7: AUC per scene and variant)."""
    groups = list(values)
    labels = list(dict.fromkeys(k for g in values.values() for k in g))
    width = 0.8 / max(len(labels), 1)
    fig = Figure(figsize=(1.5 + 1.2 * len(groups), 4.0), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(groups))
    for k, label in enumerate(labels):
        heights = [values[g].get(label, np.nan) for g in groups]
        ax.bar(x + (k - (len(labels) - 1) / 2) * width, heights, width, label=label)
    ax.set_xticks(x, groups, rotation=20, fontsize=8)
    finite = [v for g in values.values() for v in g.values() if np.isfinite(v)]
    if finite:
        ax.set_ylim(max(0.0, min(finite) - 0.05), min(1.0, max(finite)) + 0.02)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, ncols=2)
    ax.grid(True, axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)
