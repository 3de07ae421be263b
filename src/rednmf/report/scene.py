"""The HTML report of one run: a zoomable map, the detections, spectra, a live threshold.

One file, opened from disk with no server and no network request:

* **Map.** It fills the page; the wheel (or the + and - buttons) zooms about
  the pointer, a drag pans. The base is the composite of the overview or the
  scores (colour bar of tail probabilities, as in the overview); the
  detections (red), the ground truth (cyan; yellow where both) and no-data
  (grey) are layers with a legend.
* **Detections.** The run's detections, the rows of ``detections.csv``, as a
  table sorted by a click on its header (score, pixels, centroid row/col,
  lon/lat and area in m² when the scene is georeferenced); clicking a row
  centres the map on the detection, rings it and shows its peak pixel's
  spectrum.
* **Spectra.** Hovering shows a pixel's spectrum beside the mean ± one
  standard deviation of its local background (the ``outer`` window minus the
  ``inner`` one); a click pins it. The x axis is the wavelength in nm when the
  scene has wavelengths, the band number otherwise.
* **Threshold.** A slider over the score quantiles. The page starts at the
  run's own detections (the same filtered map as the summary, the GeoTIFF and
  the CSV); at any other threshold the pixels above it are grouped into
  8-connected detections and filtered by the run's ``min_area`` and
  ``exclude_border``, as the run does. The counts and, with ground truth,
  P_D and P_F follow.
* **Summary.** The run summary as tables: the run, the parameters one per
  row, the objective as a small convergence plot, the timings, the inputs and
  the versions.

Size: the scores are float32; the spectra of every pixel are coded by their
first ``k`` principal components (8 bits each, ``k`` from 4 to 10 so that they
take about 8 MB at most), and the pixels above the threshold (at least the top
1 %, at most ``max_full`` pixels) are kept in full as 16-bit integers per band.
The page says which a shown spectrum is.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from rednmf.io.writers import jsonable
from rednmf.report._page import asset, b64, bits_b64, json_payload, png_b64, write_page

__all__ = ["encode_spectra", "render_scene_report", "scene_spectra", "write_scene_report"]


def _components(n_pixels: int, bands: int) -> int:
    """Principal components kept: 4 to 10, about 8 MB of 8-bit coefficients at most."""
    return max(1, min(10, bands, max(4, 8_000_000 // max(n_pixels, 1))))


def encode_spectra(
    cube: Any,
    valid: np.ndarray,
    full: np.ndarray,
    *,
    max_fit_pixels: int = 20_000,
) -> dict[str, Any]:
    """Every pixel's spectrum as 8-bit principal-component coefficients; ``full`` ones in full.

    Parameters
    ----------
    cube : array-like of shape (rows, cols, bands)
        Read in row blocks (lazy cubes too).
    valid : numpy.ndarray of shape (rows, cols)
        The pixels with data (the components are fitted on them).
    full : numpy.ndarray of int
        Flat indices of the pixels whose spectra are kept in full (16 bits per
        band, per-band offset and scale).
    max_fit_pixels : int
        Valid pixels sampled, evenly, to fit the components.

    Returns
    -------
    dict
        The JSON-ready block the page decodes: ``mean``, ``basis`` (k x bands
        float32), ``coef`` (pixels x k uint8) with ``coefLo`` and ``coefStep``,
        and ``full`` (``index`` int32, ``values`` uint16, ``offset``,
        ``scale``).
    """
    from rednmf.composite import principal_axes, sample_spectra

    rows, cols, bands = (int(n) for n in cube.shape)
    ok = np.asarray(valid, bool)
    flat = np.flatnonzero(ok.ravel())
    pick = flat[:: max(1, flat.size // max_fit_pixels)]
    sample = sample_spectra(cube, pick, rows, cols) if pick.size else np.zeros((0, bands))
    mean, basis = principal_axes(sample, _components(rows * cols, bands))
    k = basis.shape[0]
    coef = np.zeros((rows * cols, k), dtype=np.float32)
    full = np.sort(np.asarray(full, dtype=np.int64))
    kept = np.zeros((full.size, bands))
    axes32 = basis.T.astype(np.float32)
    shift = (mean @ basis.T).astype(np.float32)
    step = max(1, (1 << 22) // max(cols * bands, 1))
    for r0 in range(0, rows, step):
        raw = np.asarray(cube[r0 : r0 + step]).reshape(-1, bands)
        lo_px, hi_px = r0 * cols, r0 * cols + raw.shape[0]
        sel = slice(*np.searchsorted(full, [lo_px, hi_px]))
        kept[sel] = raw[full[sel] - lo_px]  # in the cube's own precision
        block = raw.astype(np.float32, copy=False)
        bad = ~np.isfinite(block)
        if bad.any():  # a missing value counts as the mean
            block = np.where(bad, mean.astype(np.float32), block)
        coef[lo_px:hi_px] = block @ axes32 - shift
    where = ok.reshape(-1, 1) if ok.any() else np.ones((1, 1), bool)
    if coef.size:
        c_lo = coef.min(axis=0, where=where, initial=np.inf).astype(np.float64)
        c_hi = coef.max(axis=0, where=where, initial=-np.inf).astype(np.float64)
    else:
        c_lo, c_hi = np.zeros(k), np.ones(k)
    c_step = np.where(c_hi > c_lo, (c_hi - c_lo) / 255.0, 1.0)
    # quantised in place: no float copy of the coefficients (32 MB each at 10^6 pixels)
    coef -= c_lo.astype(np.float32)
    coef /= c_step.astype(np.float32)
    np.clip(np.round(coef, out=coef), 0, 255, out=coef)
    q = coef.astype(np.uint8)
    del coef
    finite = np.isfinite(kept)
    v_lo = np.where(finite, kept, np.inf).min(axis=0) if full.size else np.zeros(bands)
    v_hi = np.where(finite, kept, -np.inf).max(axis=0) if full.size else np.ones(bands)
    v_lo = np.where(np.isfinite(v_lo), v_lo, 0.0)
    v_scale = np.where(np.isfinite(v_hi) & (v_hi > v_lo), (v_hi - v_lo) / 65534.0, 1.0)
    vq = np.clip(np.round((np.nan_to_num(kept, nan=0.0) - v_lo) / v_scale), 0, 65534)
    vq = vq.astype(np.uint16)
    vq[~np.all(finite, axis=1)] = 65535  # no-data
    return {
        "k": int(k),
        "mean": [float(v) for v in mean],
        "basis": b64(basis.astype(np.float32)),
        "coef": b64(q),
        "coefLo": [float(v) for v in c_lo],
        "coefStep": [float(v) for v in c_step],
        "full": {
            "index": b64(full.astype(np.int32)),
            "values": b64(vq),
            "offset": [float(v) for v in v_lo],
            "scale": [float(v) for v in v_scale],
        },
    }


def _full_pixels(scores: np.ndarray, valid: np.ndarray, threshold: float, max_full: int) -> Any:
    """Flat indices of the top-scoring pixels: those above the threshold, at least 1 %."""
    s = np.where(valid, scores, -np.inf).ravel()
    n_valid = int(np.asarray(valid).sum())
    with np.errstate(invalid="ignore"):
        above = int(np.sum(s > threshold))
    m = min(max_full, n_valid, max(above, math.ceil(0.01 * n_valid)))
    if m <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.argpartition(-s, m - 1)[:m]


_DETECTION_FIELDS = (
    "id",
    "peak_score",
    "mean_score",
    "area_px",
    "row",
    "col",
    "lon",
    "lat",
    "area_m2",
    "border_distance",
    "peak_row",
    "peak_col",
)


def _detection_rows(detections: list[Any]) -> list[list[Any]]:
    """The CSV's detections as compact rows, in the order of ``_DETECTION_FIELDS``."""

    def column(field: str) -> list[Any]:
        values = [getattr(d, field, None) for d in detections]
        if field in ("id", "area_px", "border_distance", "peak_row", "peak_col"):
            return values
        digits = {"row": 2, "col": 2, "lon": 7, "lat": 7}.get(field)
        if digits is not None:
            return [None if v is None else round(v, digits) for v in values]
        return [None if v is None or not math.isfinite(v) else float(f"{v:.7g}") for v in values]

    return [list(row) for row in zip(*(column(f) for f in _DETECTION_FIELDS), strict=True)]


def scene_spectra(
    cube: Any, scores: np.ndarray, valid: np.ndarray, threshold: float, *, max_full: int = 5000
) -> dict[str, Any]:
    """What the report keeps of the cube: :func:`encode_spectra` of the pixels with a score.

    Taken before the report is written, so that the cube can be freed first.

    Parameters
    ----------
    cube : array-like of shape (rows, cols, bands)
        The scene (read in row blocks).
    scores : numpy.ndarray of shape (rows, cols)
        The score map, NaN = no-data.
    valid : numpy.ndarray of shape (rows, cols)
        The pixels that took part.
    threshold : float
        The run's threshold: the pixels above it (at least the top 1 %, at most
        ``max_full``) are kept in full.
    max_full : int
        Most pixels whose spectra are kept in full.
    """
    ok = np.asarray(valid, bool) & np.isfinite(scores)
    return encode_spectra(cube, ok, _full_pixels(scores, ok, threshold, max_full))


def render_scene_report(
    *,
    spectra: dict[str, Any],
    image: np.ndarray,
    scores: np.ndarray,
    valid: np.ndarray,
    gt: np.ndarray | None,
    threshold: float,
    summary: dict[str, Any],
    detections: list[Any],
    labels: np.ndarray,
    wavelengths: np.ndarray | None = None,
    window: tuple[int, int] = (3, 15),
) -> str:
    """Return the report's HTML text (see the module docstring).

    Parameters
    ----------
    spectra : dict
        The scene's spectra as :func:`scene_spectra` codes them (the cube itself is not
        needed here).
    image : numpy.ndarray of shape (rows, cols, 3)
        The composite in [0, 1] (:func:`rednmf.composite.scene_rgb`).
    scores : numpy.ndarray of shape (rows, cols)
        The score map, NaN = no-data.
    valid : numpy.ndarray of shape (rows, cols)
        The pixels that took part.
    gt : numpy.ndarray of shape (rows, cols), optional
        Ground truth (nonzero = anomaly).
    threshold : float
        The run's threshold: the slider's start.
    summary : dict
        The run summary (``min_area``, ``exclude_border`` and ``crs`` are
        read from it), shown as tables.
    detections : list of rednmf.io.detections.Detection
        The run's detections, the rows of its CSV.
    labels : numpy.ndarray of shape (rows, cols)
        Their label map (0 = none): the map the page starts with.
    wavelengths : array-like, optional
        Band centres (nm, or micrometres recognised by their size) for the
        spectrum axis; band numbers otherwise.
    window : (int, int)
        Inner and outer window sizes of the local background statistics.
    """
    from rednmf.composite import composite_title, nanometres

    rows, cols = scores.shape
    ok = np.asarray(valid, bool) & np.isfinite(scores)
    s = np.where(ok, scores, np.nan).astype(np.float32)
    bands = len(spectra["mean"])
    wl = None
    if wavelengths is not None and len(wavelengths) == bands:
        wl = [float(v) for v in nanometres(np.asarray(wavelengths))]
    data = {
        "rows": rows,
        "cols": cols,
        "bands": bands,
        "threshold": float(threshold),
        "minArea": int(summary.get("min_area") or 1),
        "excludeBorder": int(summary.get("exclude_border") or 0),
        "scores": b64(s),
        "gt": None if gt is None else bits_b64(np.asarray(gt) != 0),
        "runMask": bits_b64(np.asarray(labels) > 0),
        "detectionFields": list(_DETECTION_FIELDS),
        "detections": _detection_rows(detections),
        "georeferenced": bool(summary.get("crs")),
        "spectra": spectra,
        "wavelengths": wl,
        "inner": int(window[0]),
        "outer": int(window[1]),
    }
    title = f"{summary.get('method', '')} on {summary.get('scene', '')}"
    return asset("scene.html").format(
        title=html.escape(title),
        base_title=html.escape(composite_title(wavelengths, bands)),
        png=png_b64(image),
        data=json_payload(data),
        summary=summary_html(summary),
        core=asset("core.js"),
        script=asset("scene.js"),
        style=asset("style.css"),
    )


def write_scene_report(path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write :func:`render_scene_report` to ``path`` atomically and return the path."""
    return write_page(path, render_scene_report(**kwargs))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return "" if value is None else str(value)


def _table(pairs: list[tuple[str, Any]], cls: str = "summary") -> str:
    body = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_cell(v))}</td></tr>"
        for k, v in pairs
    )
    return f"<table class='{cls}'>{body}</table>"


_RUN_KEYS = (
    "scene",
    "path",
    "format",
    "shape",
    "data_var",
    "gt_var",
    "method",
    "detector",
    "seed",
    "threshold_rule",
    "threshold",
    "min_area",
    "exclude_border",
    "n_above_threshold",
    "n_detections",
    "n_detected_pixels",
    "auc",
    "pd",
    "pf",
    "nodata_pixels",
    "bands_used",
    "n_iter",
    "transform",
    "run_dir",
)


def convergence_svg(objective: list[float], width: int = 320, height: int = 150) -> str:
    """The objective per iteration as a small SVG line plot (log scale when all positive)."""
    y = np.asarray(objective, dtype=np.float64)
    y = y[np.isfinite(y)]
    if y.size < 2:
        return ""
    log = bool(np.all(y > 0))
    v = np.log10(y) if log else y
    lo, hi = float(v.min()), float(v.max())
    hi = hi if hi > lo else lo + 1.0
    pad_l, pad_b, pad_t, pad_r = 56, 28, 10, 10
    xs = pad_l + (width - pad_l - pad_r) * np.arange(y.size) / (y.size - 1)
    ys = pad_t + (height - pad_t - pad_b) * (hi - v) / (hi - lo)
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys, strict=True))

    def label(val: float) -> str:
        return f"{10**val:.4g}" if log else f"{val:.4g}"

    return (
        f"<svg id='convergence' width='{width}' height='{height}' role='img'>"
        f"<rect x='{pad_l}' y='{pad_t}' width='{width - pad_l - pad_r}' "
        f"height='{height - pad_t - pad_b}' fill='none' stroke='#bbb'/>"
        f"<polyline points='{points}' fill='none' stroke='#3182bd' stroke-width='1.5'/>"
        f"<text x='{pad_l - 4}' y='{pad_t + 10}' font-size='11' text-anchor='end'>"
        f"{label(hi)}</text>"
        f"<text x='{pad_l - 4}' y='{height - pad_b}' font-size='11' text-anchor='end'>"
        f"{label(lo)}</text>"
        f"<text x='{pad_l}' y='{height - 8}' font-size='11'>1</text>"
        f"<text x='{width - pad_r}' y='{height - 8}' font-size='11' text-anchor='end'>"
        f"{y.size}</text>"
        f"<text x='{(width + pad_l) / 2}' y='{height - 8}' font-size='11' "
        f"text-anchor='middle'>iteration</text></svg>"
        f"<p class='caption'>objective{' (log scale)' if log else ''}: "
        f"{y[0]:.6g} at the first iteration, {y[-1]:.6g} at the last ({y.size})</p>"
    )


def summary_html(summary: dict[str, Any]) -> str:
    """The run summary as readable HTML tables (one section per kind)."""
    s = jsonable(summary)
    out = ["<h3>Run</h3>", _table([(k, s.get(k)) for k in _RUN_KEYS if k in s])]
    if s.get("crs"):
        out.append(f"<details><summary>CRS (WKT)</summary><pre>{html.escape(s['crs'])}</pre>")
        out.append("</details>")
    if s.get("warnings"):
        items = "".join(f"<li>{html.escape(str(w))}</li>" for w in s["warnings"])
        out.append(f"<h3>Warnings</h3><ul>{items}</ul>")
    params = s.get("params") or {}
    out.append("<h3>Parameters</h3>")
    out.append(_table(list(params.items()), "summary params"))
    if s.get("objective"):
        out.append("<h3>Convergence</h3>" + convergence_svg(s["objective"]))
    seconds = s.get("seconds") or {}
    if seconds:
        out.append("<h3>Timings (s)</h3>" + _table(list(seconds.items())))
        if "write" not in seconds:
            out.append(
                "<p class='caption'>The writing of the outputs (this page among them) is "
                "timed in summary.json.</p>"
            )
    inputs = s.get("inputs") or []
    if inputs:
        head = "<tr><th>role</th><th>path</th><th>bytes</th><th>sha256</th></tr>"
        body = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(_cell(i.get(k)))}</td>"
                for k in ("role", "path", "bytes", "sha256")
            )
            + "</tr>"
            for i in inputs
        )
        out.append(f"<h3>Inputs</h3><table class='summary inputs'>{head}{body}</table>")
    env = s.get("environment") or {}
    if env:
        out.append("<h3>Versions</h3>" + _table(list(env.items())))
    return "\n".join(out)
