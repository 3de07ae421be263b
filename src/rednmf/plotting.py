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

from rednmf.exceptions import InputError
from rednmf.io.writers import atomic_open

__all__ = [
    "display_range",
    "false_colour",
    "save_detection_figure",
    "save_overview",
    "save_roc",
    "save_score_map",
    "scene_rgb",
    "score_norm",
]

_DPI = 120


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    FigureCanvasAgg(fig)
    target = Path(path)
    with atomic_open(target, "wb") as fh:
        fig.savefig(fh, format="png", dpi=_DPI, bbox_inches="tight")
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
            out[:, :, c] = _stretch(img[:, :, c])
        return out
    return _stretch(img)


def _stretch(channel: np.ndarray) -> np.ndarray:
    finite = channel[np.isfinite(channel)]
    if finite.size == 0:
        return np.zeros_like(channel)
    lo, hi = np.percentile(finite, [2.0, 98.0])
    if hi <= lo:
        hi = lo + 1.0
    return np.clip((np.nan_to_num(channel, nan=lo) - lo) / (hi - lo), 0.0, 1.0)


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


def save_roc(
    path: str | os.PathLike[str],
    fpr: np.ndarray,
    tpr: np.ndarray,
    auc: float | None = None,
    label: str | None = None,
) -> Path:
    """Save a ROC curve (false- vs true-positive rate) as a PNG image.

    Parameters
    ----------
    path : str or path-like
        Output file; its directory is created if missing.
    fpr, tpr : array-like of shape (n_thresholds,)
        The curve, as returned by :func:`rednmf.metrics.roc_curve`.
    auc : float, optional
        Area under the curve, shown in the legend.
    label : str, optional
        Name of the curve (method or scene), shown in the legend.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    x = np.asarray(fpr, dtype=np.float64).ravel()
    y = np.asarray(tpr, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise InputError(f"fpr and tpr differ in length ({x.size} vs {y.size})")
    text = label or "detector"
    if auc is not None:
        text = f"{text} (AUC = {auc:.4f})"
    fig = Figure(figsize=(5.0, 4.5))
    ax = fig.add_subplot()
    ax.plot(x, y, lw=1.8, label=text)
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.6", label="chance")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title("ROC")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
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


#: Target wavelengths (nm) of the red, green and blue channels of a true-colour composite.
_RGB_NM = (640.0, 550.0, 460.0)


def _nanometres(wavelengths: np.ndarray) -> np.ndarray:
    wl = np.asarray(wavelengths, dtype=np.float64)
    return wl * 1000.0 if np.nanmax(wl) < 50.0 else wl  # micrometres -> nm


def scene_rgb(
    cube: object,
    wavelengths: np.ndarray | None = None,
    *,
    valid: np.ndarray | None = None,
    max_fit_pixels: int = 50_000,
) -> np.ndarray:
    """A false-colour composite of a cube, each channel stretched to [0, 1].

    With wavelengths covering the visible range (each of 640, 550 and 460 nm
    within 30 nm of a band) the nearest bands make a true-colour image;
    otherwise the first three principal components (fitted on at most
    ``max_fit_pixels`` valid pixels) are shown as red, green and blue. Each
    channel is clipped to its 2nd-98th percentiles; no-data pixels are black.

    Parameters
    ----------
    cube : array-like of shape (rows, cols, bands)
        Any cube :func:`rednmf.io.read_scene` returns (lazy cubes are read in
        row blocks).
    wavelengths : array-like of shape (bands,), optional
        Band centres in nm (or micrometres, recognised by their size).
    valid : array-like of shape (rows, cols), optional
        The pixels with data.
    max_fit_pixels : int
        Pixels sampled for the principal components.

    Returns
    -------
    numpy.ndarray of shape (rows, cols, 3), float64 in [0, 1]
    """
    rows, cols, bands = (int(n) for n in cube.shape)  # type: ignore[attr-defined]
    ok = np.ones((rows, cols), bool) if valid is None else np.asarray(valid, bool)
    idx: list[int] | None = None
    if wavelengths is not None and len(wavelengths) == bands:
        wl = _nanometres(np.asarray(wavelengths))
        near = [int(np.nanargmin(np.abs(wl - t))) for t in _RGB_NM]
        if all(abs(wl[i] - t) <= 30.0 for i, t in zip(near, _RGB_NM, strict=True)):
            idx = near
    step = max(1, (1 << 22) // max(cols * bands, 1))  # ~32 MB of float64 per block
    if idx is not None:
        img = np.asarray(cube[:, :, idx], dtype=np.float64)  # type: ignore[index]
    else:
        flat = np.flatnonzero(ok.ravel())
        pick = flat[:: max(1, flat.size // max_fit_pixels)]
        sample = _sample_rows(cube, pick, rows, cols)
        sample = sample[np.all(np.isfinite(sample), axis=1)]
        mean = sample.mean(axis=0) if sample.size else np.zeros(bands)
        if sample.shape[0] > 2 and bands >= 2:
            _, _, vt = np.linalg.svd(sample - mean, full_matrices=False)
            axes = vt[: min(3, vt.shape[0])].T
        else:
            axes = np.eye(bands)[:, :1]
        img = np.zeros((rows, cols, 3))
        for r0 in range(0, rows, step):
            block = np.asarray(cube[r0 : r0 + step], dtype=np.float64)  # type: ignore[index]
            proj = (block.reshape(-1, bands) - mean) @ axes
            img[r0 : r0 + step, :, : proj.shape[1]] = proj.reshape(block.shape[0], cols, -1)
            if proj.shape[1] < 3:
                img[r0 : r0 + step, :, proj.shape[1] :] = img[r0 : r0 + step, :, :1]
    img = np.where(ok[:, :, None] & np.isfinite(img), img, np.nan)
    out = np.stack([_stretch(img[:, :, c]) for c in range(3)], axis=2)
    out[~ok] = 0.0
    return out


def _sample_rows(cube: object, pick: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The spectra at flat indices ``pick``, read one image row at a time."""
    r_idx, c_idx = np.unravel_index(pick, (rows, cols))
    out = []
    for r in np.unique(r_idx):
        line = np.asarray(cube[int(r)], dtype=np.float64)  # type: ignore[index]
        out.append(line[c_idx[r_idx == r]])
    return np.concatenate(out, axis=0)


def score_norm(scores: np.ndarray, threshold: float | None = None) -> tuple[float, float]:
    """Colour limits of a score map that do not make background look like targets.

    From the median of the finite scores (the background level) to their
    maximum (or the threshold, if higher): a scene without strong outliers
    stays dark instead of being stretched until its noise fills the colour
    range, as a percentile clip does.
    """
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        return 0.0, 1.0
    lo = float(np.median(finite))
    hi = float(finite.max())
    if threshold is not None and np.isfinite(threshold):
        hi = max(hi, float(threshold))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def _centres(mask: np.ndarray) -> np.ndarray:
    """(row, col) centres of the 8-connected components of ``mask``, shape (n, 2)."""
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return np.zeros((0, 2))
    return np.asarray(ndimage.center_of_mass(mask, labels, np.arange(1, n + 1)), dtype=float)


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
) -> Path:
    """Save the run's overview: false colour with outlines beside the score map.

    Left, the false-colour scene (:func:`scene_rgb`) with every detection
    outlined in red and the ground truth contoured in cyan; right, the score
    map on the stretch of :func:`score_norm` with its colour bar (the
    threshold marked) and the same outlines. The figure is about 1300 pixels
    wide whatever the scene size, and outlines are drawn as vector lines, so
    they stay visible on a 1000 x 1000 scene.

    Parameters
    ----------
    path : str or path-like
        Output PNG.
    image : numpy.ndarray of shape (rows, cols, 3)
        The false-colour composite.
    scores : numpy.ndarray of shape (rows, cols)
        The score map (NaN = no-data).
    detected : numpy.ndarray of shape (rows, cols)
        The detection map (nonzero = detected).
    gt : numpy.ndarray of shape (rows, cols), optional
        Ground truth (nonzero = anomaly).
    threshold : float, optional
        Marked on the colour bar.
    title, subtitle : str, optional
        Figure title and a second line (threshold rule, counts, AUC).

    Returns
    -------
    pathlib.Path
    """
    data = _as_map("scores", scores)
    rows, cols = data.shape
    if image.shape[:2] != data.shape:
        raise InputError(f"image {image.shape[:2]} does not match the scores {data.shape}")
    panel_w = 5.2
    panel_h = max(2.6, min(7.0, panel_w * rows / max(cols, 1)))
    fig = Figure(figsize=(2 * panel_w + 1.2, panel_h + 1.0), layout="constrained")
    ax_img, ax_sc = fig.subplots(1, 2)
    interp = "nearest" if max(rows, cols) <= 600 else "antialiased"
    ax_img.imshow(image, interpolation=interp)
    vmin, vmax = score_norm(data, threshold)
    im = ax_sc.imshow(data, cmap="magma", vmin=vmin, vmax=vmax, interpolation=interp)
    bar = fig.colorbar(im, ax=ax_sc, fraction=0.046, pad=0.03)
    bar.set_label("anomaly score (median .. max)")
    if threshold is not None and vmin <= threshold <= vmax:
        bar.ax.axhline(threshold, color="red", lw=1.5)
    det = np.asarray(detected) != 0
    centres = _centres(det)
    outline = min(det.shape) >= 2  # a contour needs 2 x 2 pixels; a 1 x N scene has rings only
    for ax in (ax_img, ax_sc):
        if det.any():
            if outline:
                ax.contour(det.astype(float), levels=[0.5], colors="red", linewidths=1.0)
            # a ring of fixed size in points: a one-pixel detection stays visible at 1000 x 1000
            ax.scatter(
                centres[:, 1], centres[:, 0], s=90, facecolors="none", edgecolors="red", lw=1.0
            )
        if outline and gt is not None and np.asarray(gt).any():
            ax.contour(
                (np.asarray(gt) != 0).astype(float), levels=[0.5], colors="cyan", linewidths=0.8
            )
        ax.set_xticks([])
        ax.set_yticks([])
    ax_img.set_title(
        "false colour; red: detections" + ("; cyan: truth" if gt is not None else ""), fontsize=10
    )
    ax_sc.set_title("anomaly scores", fontsize=10)
    if title or subtitle:
        fig.suptitle("\n".join(t for t in (title, subtitle) if t), fontsize=11)
    return _save(fig, path)
