"""Figures of detection results, written as PNG files.

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas,
never through :mod:`matplotlib.pyplot`, so no global state (open figures,
backend choice) leaks into the caller's session. Files are written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rednmf.composite import rgb8, stretch
from rednmf.exceptions import InputError
from rednmf.io.writers import atomic_open

__all__ = [
    "display_range",
    "false_colour",
    "save_detection_figure",
    "save_figure",
    "save_overview",
    "save_score_map",
    "tail_stretch",
]

_DPI = 120


def save_figure(fig: Figure, path: str | os.PathLike[str], *, tight: bool = True) -> Path:
    """Write ``fig`` as a PNG file, atomically, and return its path.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (drawn on an Agg canvas, no display needed).
    path : str or path-like
        The file.
    tight : bool, default True
        Trim the margins (``bbox_inches="tight"``); False for a figure laid out by
        hand (one draw, not two).

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
    return save_figure(fig, path)


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
    return save_figure(fig, path)


def tail_stretch(scores: np.ndarray) -> tuple[np.ndarray, int]:
    """Scores as ``-log10`` of their empirical tail probability, for display.

    Each finite score ``s`` becomes ``-log10(p)``, ``p`` the fraction of the
    finite scores that are at least ``s``: 0 for the lowest score, ``log10(n)``
    for the highest. The stretch depends on the ranks only, so every method
    shows its structure the same way (a linear stretch of RX scores shows a
    handful of pixels and a black scene), and a scene without outliers is not
    painted brighter than one with them: the top fifth of the colours holds the
    top ``n**-0.8`` of the pixels, whatever the scores.

    Parameters
    ----------
    scores : numpy.ndarray of shape (rows, cols)
        NaN (or any non-finite value) = no-data; stays NaN.

    Returns
    -------
    stretched : numpy.ndarray of shape (rows, cols)
    n : int
        The number of finite scores (the colour range is ``0 .. log10(n)``).
    """
    s = np.asarray(scores, dtype=np.float64)
    ok = np.isfinite(s)
    values = s[ok]
    order = np.argsort(values)  # ties: searchsorted gives equal values one rank; 3x stable
    finite = values[order]
    n = int(finite.size)
    out = np.full(s.shape, np.nan)
    if n:
        at_least = np.empty(n)
        # sorted queries: the search walks the array in order (4x faster at 10^6 pixels)
        at_least[order] = n - np.searchsorted(finite, finite, side="left")
        out[ok] = -np.log10(at_least / n)
    return out, n


def _ranked(detected: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Detection ids, 1 = highest peak score (an integer label map is taken as it is)."""
    from scipy import ndimage

    det = np.asarray(detected)
    if det.dtype.kind in "iu" and det.max(initial=0) > 1:
        return det.astype(np.int64)
    labels, n = ndimage.label(det != 0, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return labels
    finite = np.where(np.isfinite(scores), scores, -np.inf)
    peaks = ndimage.maximum(finite, labels, np.arange(1, n + 1))
    order = np.zeros(n + 1, dtype=np.int64)
    order[1:][np.argsort(-np.asarray(peaks), kind="stable")] = np.arange(1, n + 1)
    return order[labels]


def _edges(mask: np.ndarray) -> np.ndarray:
    """The pixel edges between ``mask`` and the rest: segments (n, 2, 2) of (x, y) = (col, row)."""
    m = np.pad(np.asarray(mask, bool), 1)
    r, c = np.nonzero(m[1:, 1:-1] != m[:-1, 1:-1])  # horizontal edge above row r, at col c
    y = r - 0.5
    horiz = np.stack([np.stack([c - 0.5, y], 1), np.stack([c + 0.5, y], 1)], 1)
    r, c = np.nonzero(m[1:-1, 1:] != m[1:-1, :-1])  # vertical edge left of col c, at row r
    x = c - 0.5
    vert = np.stack([np.stack([x, r - 0.5], 1), np.stack([x, r + 0.5], 1)], 1)
    return np.concatenate([horiz, vert]).astype(float)


#: Overlay colours: detections, ground truth, the halo under both, no-data.
DETECTION_RGB, TRUTH_RGB, HALO_RGB, NODATA_RGB = "#ff2a2a", "#00e5ff", "black", "#b4b4b4"
#: More detections than this are painted pixel by pixel instead of outlined, and only the top
#: ``_RINGED`` by peak score are ringed and numbered.
_OUTLINED = 300
_RINGED = 20


def _outline(ax: object, mask: np.ndarray, colour: str, lw: float, halo: bool) -> None:
    from matplotlib.collections import LineCollection

    segments = _edges(mask)
    if not len(segments):
        return
    if halo:
        ax.add_collection(LineCollection(segments, colors=HALO_RGB, linewidths=lw + 2.2))
    ax.add_collection(LineCollection(segments, colors=colour, linewidths=lw))


def save_overview(
    path: str | os.PathLike[str],
    image: np.ndarray,
    scores: np.ndarray,
    detected: np.ndarray,
    gt: np.ndarray | None = None,
    *,
    threshold: float | None = None,
    title: str | None = None,
    subtitle: str | None = None,
    image_title: str = "false colour",
) -> Path:
    """Save the run's overview: the scene with outlines beside the score map.

    Left, the composite (:func:`rednmf.composite.scene_rgb`, titled ``image_title``: say
    :func:`rednmf.composite.composite_title`); right, the scores on the stretch of
    :func:`tail_stretch` with a colour bar of tail probabilities (the threshold
    marked). On both: every detection outlined along its own pixel edges, the
    ground truth likewise, each line over a black halo so that it stays
    visible on any base (red on red, cyan on cyan); detections too small to
    see at the figure's scale are ringed (on both) and numbered (on the left;
    their id in the CSV and the report), the top ``20`` by peak score when there are more. Over 300
    detections, their pixels are painted red instead of outlined and only the top 20
    are ringed. No-data is the same grey on both panels. A legend under the
    panels names every layer. The figure is about 1300 pixels wide whatever
    the scene size.

    Parameters
    ----------
    path : str or path-like
        Output PNG.
    image : numpy.ndarray of shape (rows, cols, 3)
        The composite in [0, 1].
    scores : numpy.ndarray of shape (rows, cols)
        The score map; NaN = no-data.
    detected : numpy.ndarray of shape (rows, cols)
        The detections: a label map (ids 1.. by decreasing peak score, as
        :func:`rednmf.io.detections.find_detections` returns) or a binary map.
    gt : numpy.ndarray of shape (rows, cols), optional
        Ground truth (nonzero = anomaly).
    threshold : float, optional
        Marked on the colour bar.
    title, subtitle : str, optional
        Figure title and a second line (threshold rule, counts, AUC).
    image_title : str
        The left panel's title.

    Returns
    -------
    pathlib.Path
    """
    from matplotlib import colormaps
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    data = _as_map("scores", scores)
    rows, cols = data.shape
    if image.shape[:2] != data.shape:
        raise InputError(f"image {image.shape[:2]} does not match the scores {data.shape}")
    nodata = ~np.isfinite(data)
    base = rgb8(image)  # 8 bits a channel, as drawn: a quarter of float32's memory
    base[nodata] = _rgb(NODATA_RGB)
    stretched, n_valid = tail_stretch(data)
    top_value = max(np.log10(max(n_valid, 2)), 1e-9)

    # laid out by hand, in inches: constrained layout and a tight box cost a draw each
    pw = 5.2
    ph = max(2.6, min(7.0, pw * rows / max(cols, 1)))
    top, bottom, left, gap, bar_w, right = 0.95, 0.45, 0.12, 0.25, 0.18, 1.0
    width, height = left + 2 * pw + gap + 0.15 + bar_w + right, bottom + ph + top
    fig = Figure(figsize=(width, height))

    def rect(x: float, w: float) -> list[float]:
        return [x / width, bottom / height, w / width, ph / height]

    ax_img = fig.add_axes(rect(left, pw))
    ax_sc = fig.add_axes(rect(left + pw + gap, pw))
    ax_bar = fig.add_axes(rect(left + 2 * pw + gap + 0.15, bar_w))
    interp = "nearest" if max(rows, cols) <= 600 else "antialiased"
    ax_img.imshow(base, interpolation=interp)
    cmap = colormaps["magma"].with_extremes(bad=NODATA_RGB)
    im = ax_sc.imshow(stretched, cmap=cmap, vmin=0.0, vmax=top_value, interpolation=interp)
    bar = fig.colorbar(im, cax=ax_bar)
    ticks = np.arange(0, int(np.floor(top_value)) + 1)
    sup = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")  # plain text: mathtext costs 0.1 s
    bar.set_ticks(ticks, labels=["1"] + [f"10⁻{str(k).translate(sup)}" for k in ticks[1:]])
    bar.set_label("fraction of pixels scoring at least as high")
    if threshold is not None and n_valid:
        frac = max(float(np.sum(data[~nodata] > threshold)), 1.0) / n_valid
        bar.ax.axhline(-np.log10(frac), color=DETECTION_RGB, lw=2.0)
        bar.ax.axhline(-np.log10(frac), color=HALO_RGB, lw=0.6)

    labels = _ranked(detected, data)
    n_det = int(labels.max(initial=0))
    det = labels > 0
    truth = None if gt is None else np.asarray(gt) != 0
    screen_px = min(pw / cols, ph / rows) * _DPI  # figure pixels per scene pixel
    rings = _small_ids(labels, n_det, screen_px)
    centres = _centres(labels, rings)
    painted = None
    for ax in (ax_img, ax_sc):
        if truth is not None:
            _outline(ax, truth, TRUTH_RGB, 1.0, halo=True)
        if n_det <= _OUTLINED:
            _outline(ax, det, DETECTION_RGB, 1.2, halo=True)
        else:  # too many to outline: their pixels in red (lines would cover the scene)
            painted = _paint(det, DETECTION_RGB) if painted is None else painted
            ax.imshow(painted, interpolation=interp)
        if len(rings):
            ax.scatter(
                centres[:, 1], centres[:, 0], s=110, facecolors="none", edgecolors=HALO_RGB, lw=3.4
            )
            ax.scatter(
                centres[:, 1],
                centres[:, 0],
                s=110,
                facecolors="none",
                edgecolors=DETECTION_RGB,
                lw=1.4,
            )
            # numbered on the left panel only: haloed text is the slowest thing drawn
            for (r, c), k in zip(centres, rings if ax is ax_img else [], strict=False):
                ax.annotate(
                    str(k),
                    (c, r),
                    xytext=(6, 6),
                    textcoords="offset points",
                    fontsize=7,
                    color="white",
                    fontweight="bold",
                    path_effects=_text_halo(),
                )
        ax.set_xlim(-0.5, cols - 0.5)
        ax.set_ylim(rows - 0.5, -0.5)
        ax.set_xticks([])
        ax.set_yticks([])
    ax_img.set_title(image_title, fontsize=10)
    ax_sc.set_title("anomaly score, as its tail probability", fontsize=10)
    handles = [
        Line2D(
            [],
            [],
            color=DETECTION_RGB,
            lw=1.4,
            path_effects=_line_halo(),
            label=f"detections ({n_det})",
        ),
    ]
    if truth is not None:
        handles.append(
            Line2D(
                [], [], color=TRUTH_RGB, lw=1.4, path_effects=_line_halo(), label="ground truth"
            )
        )
    if len(rings):
        if n_det > _OUTLINED:
            ringed = f"top {len(rings)} of {n_det} by peak score"
        elif len(rings) == _RINGED:
            ringed = f"the {_RINGED} small detections of highest peak score"
        else:
            ringed = "small detections"
        ringed += ", numbered as in the CSV"
        handles.append(
            Line2D(
                [],
                [],
                ls="",
                marker="o",
                ms=9,
                mfc="none",
                mec=DETECTION_RGB,
                mew=1.4,
                label=ringed,
            )
        )
    handles.append(
        Patch(facecolor=NODATA_RGB, edgecolor="0.3", label=f"no-data ({int(nodata.sum())} px)")
    )
    fig.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=len(handles),
        frameon=False,
        fontsize=9,
    )
    if title or subtitle:
        fig.suptitle(
            "\n".join(t for t in (title, subtitle) if t),
            fontsize=11,
            y=1 - 0.08 / height,
            va="top",
        )
    return save_figure(fig, path, tight=False)


def _rgb(colour: str) -> list[int]:
    """``#rrggbb`` as three 8-bit values."""
    return [int(colour[i : i + 2], 16) for i in (1, 3, 5)]


def _paint(mask: np.ndarray, colour: str) -> np.ndarray:
    """An 8-bit RGBA layer: ``colour`` on ``mask``, transparent elsewhere."""
    layer = np.zeros((*mask.shape, 4), dtype=np.uint8)
    layer[mask] = [*_rgb(colour), 255]
    return layer


def _line_halo() -> list[object]:
    from matplotlib import patheffects

    return [patheffects.Stroke(linewidth=3.6, foreground=HALO_RGB), patheffects.Normal()]


def _text_halo() -> list[object]:
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=2.5, foreground=HALO_RGB)]


def _small_ids(labels: np.ndarray, n_det: int, screen_px: float) -> np.ndarray:
    """Ids to ring: detections under ~8 figure pixels across, at most the top ``_RINGED``.

    Over ``_OUTLINED`` detections, the top ``_RINGED`` whatever their size.
    """
    from scipy import ndimage

    if n_det == 0:
        return np.zeros(0, dtype=np.int64)
    if n_det > _OUTLINED:
        return np.arange(1, min(n_det, _RINGED) + 1)
    boxes = ndimage.find_objects(labels, max_label=n_det)
    small = [
        k + 1
        for k, b in enumerate(boxes)
        if b is not None and max(b[0].stop - b[0].start, b[1].stop - b[1].start) * screen_px < 8.0
    ]
    return np.asarray(small[:_RINGED], dtype=np.int64)


def _centres(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(row, col) centres of the detections ``ids`` of a label map, shape (n, 2)."""
    from scipy import ndimage

    if not len(ids):
        return np.zeros((0, 2))
    return np.asarray(ndimage.center_of_mass(labels > 0, labels, ids), dtype=float).reshape(-1, 2)
