"""A self-contained HTML report of a run: layers, spectra, a live threshold slider, the summary.

One file, opened from disk with no server and no network request: the
false-colour image is an embedded PNG, the score map, the ground truth and the
spectra are embedded as base64 typed arrays, and a small script draws them.

* Layers: false colour or scores as the base, detections and ground truth on top.
* Hovering over a pixel shows its spectrum (a click pins it, a double click
  unpins)
  beside the mean ± one standard deviation of its local background: the
  pixels of the ``outer`` window around it minus the ``inner`` guard window.
* A threshold slider moves over the score quantiles; the pixel and
  8-connected detection counts and, with ground truth, P_D (detected
  fraction of anomaly pixels) and P_F (detected fraction of background
  pixels) follow it.
* The run summary as a table.

Spectra are stored as 16-bit integers per band (min-max per band); a scene
with more than ``max_values`` numbers keeps the spectra of every ``stride``-th
row and column only, and the page says so.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rednmf.io.writers import atomic_open, jsonable

__all__ = [
    "markdown_html",
    "render_bench_report",
    "render_scene_report",
    "write_bench_report",
    "write_scene_report",
]


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _png_b64(image: np.ndarray) -> str:
    from matplotlib.image import imsave

    buf = io.BytesIO()
    imsave(buf, np.clip(image, 0.0, 1.0), format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _spectra(
    cube: Any, max_values: int
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Quantised spectra on a grid of every ``stride``-th pixel; per-band offsets and scales."""
    rows, cols, bands = (int(n) for n in cube.shape)
    stride = max(1, math.ceil(math.sqrt(rows * cols * bands / max_values)))
    grid = np.asarray(cube[::stride, ::stride, :], dtype=np.float64)
    g_rows, g_cols = grid.shape[:2]
    flat = grid.reshape(-1, bands)
    with np.errstate(invalid="ignore"):
        lo = np.nanmin(np.where(np.isfinite(flat), flat, np.nan), axis=0)
        hi = np.nanmax(np.where(np.isfinite(flat), flat, np.nan), axis=0)
    lo = np.nan_to_num(lo)
    hi = np.nan_to_num(hi)
    span = np.where(hi > lo, hi - lo, 1.0)
    q = np.round((np.nan_to_num(flat, nan=0.0) - lo) / span * 65534.0)
    q = np.clip(q, 0, 65534).astype(np.uint16)
    q[~np.all(np.isfinite(flat), axis=1)] = 65535  # no-data
    return stride, q, lo, span / 65534.0, g_rows, g_cols


def render_scene_report(
    *,
    cube: Any,
    image: np.ndarray,
    scores: np.ndarray,
    valid: np.ndarray,
    gt: np.ndarray | None,
    threshold: float,
    summary: dict[str, Any],
    wavelengths: np.ndarray | None = None,
    window: tuple[int, int] = (3, 15),
    max_values: int = 6_000_000,
) -> str:
    """Return the report's HTML text (see the module docstring).

    Parameters
    ----------
    cube : array-like of shape (rows, cols, bands)
        The scene (its spectra are embedded).
    image : numpy.ndarray of shape (rows, cols, 3)
        The false-colour composite in [0, 1].
    scores : numpy.ndarray of shape (rows, cols)
        The score map, NaN = no-data.
    valid : numpy.ndarray of shape (rows, cols)
        The pixels that took part.
    gt : numpy.ndarray of shape (rows, cols), optional
        Ground truth (nonzero = anomaly).
    threshold : float
        The run's threshold: the slider's start.
    summary : dict
        The run summary, shown as a table.
    wavelengths : array-like, optional
        Band centres for the spectrum axis (band numbers otherwise).
    window : (int, int)
        Inner and outer window sizes of the local background statistics.
    max_values : int
        Most spectral values embedded before the spectra are subsampled.
    """
    rows, cols = scores.shape
    s = np.where(valid, scores, np.nan).astype(np.float32)
    stride, q, offset, scale, g_rows, g_cols = _spectra(cube, max_values)
    bands = q.shape[1]
    wl = (
        np.arange(1, bands + 1, dtype=np.float64)
        if wavelengths is None or len(wavelengths) != bands
        else np.asarray(wavelengths, dtype=np.float64)
    )
    data = {
        "rows": rows,
        "cols": cols,
        "bands": bands,
        "threshold": float(threshold),
        "scores": _b64(s),
        "gt": None if gt is None else _b64((np.asarray(gt) != 0).astype(np.uint8)),
        "spectra": _b64(q),
        "offset": offset.tolist(),
        "scale": scale.tolist(),
        "stride": stride,
        "gridRows": g_rows,
        "gridCols": g_cols,
        "wavelengths": wl.tolist(),
        "wavelengthLabel": "band" if wavelengths is None else "wavelength",
        "inner": int(window[0]),
        "outer": int(window[1]),
    }
    rows_html = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_cell(v))}</td></tr>"
        for k, v in jsonable(summary).items()
        if k not in ("environment", "inputs", "files", "wavelengths", "variables")
    )
    env = jsonable(summary.get("environment", {}))
    inputs = jsonable(summary.get("inputs", []))
    rows_html += (
        f"<tr><th>inputs</th><td>{html.escape(_cell(inputs))}</td></tr>"
        f"<tr><th>environment</th><td>{html.escape(_cell(env))}</td></tr>"
    )
    title = f"{summary.get('method', '')} on {summary.get('scene', '')}"
    note = (
        ""
        if stride == 1
        else f"<p class='note'>Spectra kept for every {stride}th row and column "
        "(nearest kept pixel shown).</p>"
    )
    return _TEMPLATE.format(
        title=html.escape(title),
        png=_png_b64(image),
        data=json.dumps(data, allow_nan=False).replace("</", "<\\/"),
        summary_rows=rows_html,
        note=note,
        core=_CORE_JS,
        script=_SCRIPT,
        style=_STYLE,
        width=min(720, max(360, cols * 4)),
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return "" if value is None else str(value)


def write_scene_report(path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write :func:`render_scene_report` to ``path`` atomically and return the path."""
    target = Path(path)
    text = render_scene_report(**kwargs)
    with atomic_open(target, "w") as fh:
        fh.write(text)
    return target


def _inline(text: str) -> str:
    """Escape one line of Markdown and turn its ``code`` spans into <code>."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _table_html(lines: list[str]) -> str:
    """A Markdown table (header, separator, rows) as an HTML table."""

    def cells(line: str) -> list[str]:
        return [c.strip() for c in line.strip().strip("|").split("|")]

    head, body = cells(lines[0]), [cells(x) for x in lines[1:] if not _is_rule(x)]
    return (
        "<table class='bench'><thead><tr>"
        + "".join(f"<th>{_inline(c)}</th>" for c in head)
        + "</tr></thead><tbody>"
        + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body)
        + "</tbody></table>"
    )


def _is_rule(line: str) -> bool:
    return set(line.strip()) <= set("|-: ") and "-" in line


def markdown_html(text: str) -> str:
    """The subset of Markdown the bench report uses, as HTML: headings, tables, lists, text."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|"):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            out.append(_table_html(lines[i:j]))
            i = j
            continue
        if line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        level = len(line) - len(line.lstrip("#"))
        if 0 < level <= 4 and line[level : level + 1] == " ":
            out.append(f"<h{level}>{_inline(line[level + 1 :])}</h{level}>")
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
        i += 1
    return "\n".join(out)


def _map_panel(index: int, scene: str, methods: list[str], has_gt: bool, width: int) -> str:
    options = "".join(
        f"<option value='{html.escape(m)}'>{html.escape(m)}</option>" for m in methods
    )
    truth = "<label><input type='checkbox' class='truth'>ground truth</label>" if has_gt else ""
    return (
        f"<section class='scene-map' id='map-{index}' data-scene='{html.escape(scene)}'>"
        f"<h3>{html.escape(scene)}</h3>"
        f"<p><label>method <select class='method'>{options}</select></label> {truth}</p>"
        "<p>threshold <input type='range' class='slider' min='0' max='1000' step='1' "
        "style='width:360px'> <span class='thr'></span></p>"
        "<p class='stats'><span class='count'></span><span class='pixels'></span>"
        "<span class='pd'></span><span class='pf'></span></p>"
        f"<canvas class='map' style='width:{width}px'></canvas></section>"
    )


def render_bench_report(
    markdown: str,
    images: Sequence[Path],
    title: str,
    maps: Sequence[Mapping[str, Any]] = (),
    max_pixels: int = 250_000,
) -> str:
    """Return a benchmark report as one self-contained, interactive HTML page.

    Parameters
    ----------
    markdown : str
        The text of ``report.md``: rendered (headings, tables, lists), and kept
        verbatim in a collapsed block.
    images : sequence of Path
        PNG figures, embedded.
    title : str
        The page title.
    maps : sequence of mapping
        Per scene: ``{"scene": name, "gt": (rows, cols) array or None,
        "scores": {method: (rows, cols) array}}``. Each becomes a score map
        with a method selector and a threshold slider over the score
        quantiles; the pixel and 8-connected detection counts and, with
        ground truth, P_D and P_F follow it (the same code as the run report).
    max_pixels : int
        Maps larger than this keep every ``stride``-th row and column (the
        counts are then of the kept pixels, and the page says so).
    """
    panels, data = [], []
    for entry in maps:
        methods = list(entry["scores"])
        if not methods:
            continue
        first = np.asarray(entry["scores"][methods[0]])
        rows, cols = first.shape
        stride = max(1, math.ceil(math.sqrt(rows * cols / max_pixels)))
        sub = (slice(None, None, stride), slice(None, None, stride))
        gt = entry.get("gt")
        grid = first[sub].shape
        data.append(
            {
                "rows": grid[0],
                "cols": grid[1],
                "stride": stride,
                "gt": None if gt is None else _b64((np.asarray(gt)[sub] != 0).astype(np.uint8)),
                "scores": {
                    m: _b64(np.asarray(s, dtype=np.float32)[sub])
                    for m, s in entry["scores"].items()
                },
            }
        )
        note = (
            ""
            if stride == 1
            else f"<p class='note'>Every {stride}th row and column shown and counted.</p>"
        )
        panels.append(
            _map_panel(len(data) - 1, str(entry["scene"]), methods, gt is not None, 360) + note
        )
    maps_html = (
        "<h2 id='score-maps'>Score maps</h2><p>Per scene and method: the scores (viridis, "
        "median to maximum) with the pixels above the threshold in red (yellow on the truth). "
        "The slider moves over the score quantiles; it starts at the top 1 %.</p>"
        + "".join(panels)
        if panels
        else ""
    )
    figures = "".join(
        f"<h3>{html.escape(p.stem)}</h3><img alt='{html.escape(p.stem)}' "
        f"src='data:image/png;base64,{base64.b64encode(p.read_bytes()).decode('ascii')}'>"
        for p in images
    )
    payload = json.dumps({"maps": data}, allow_nan=False).replace("</", "<\\/")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<link rel='icon' href='data:,'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"{markdown_html(markdown)}{maps_html}"
        + ("<h2>Figures</h2>" + figures if figures else "")
        + "<details><summary>report.md</summary>"
        f"<pre class='md'>{html.escape(markdown)}</pre></details>"
        f"<script id='bench-data' type='application/json'>{payload}</script>"
        f"<script>{_CORE_JS}</script><script>{_BENCH_SCRIPT}</script>"
        "</body></html>\n"
    )


def write_bench_report(
    path: str | os.PathLike[str],
    markdown: str,
    images: Sequence[Path],
    title: str,
    maps: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write :func:`render_bench_report` to ``path`` atomically and return the path."""
    target = Path(path)
    text = render_bench_report(markdown, images, title, maps)
    with atomic_open(target, "w") as fh:
        fh.write(text)
    return target


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1em 2em;color:#222}
#view{display:flex;gap:1.5em;flex-wrap:wrap;align-items:flex-start}
canvas#map{image-rendering:pixelated;border:1px solid #999;cursor:crosshair}
#controls label{margin-right:1em}
table.summary{border-collapse:collapse;font-size:13px;max-width:100%}
table.summary th{text-align:left;padding:2px 8px;background:#f2f2f2;vertical-align:top}
table.summary td{padding:2px 8px;word-break:break-all}
.note{color:#a40}
pre.md{background:#f7f7f7;padding:1em;overflow:auto}
table.bench{border-collapse:collapse;font-size:13px;margin:0.5em 0}
table.bench th,table.bench td{border:1px solid #ccc;padding:2px 6px;text-align:right}
table.bench th:first-child,table.bench td:first-child{text-align:left}
section.scene-map{display:inline-block;vertical-align:top;margin:0 2em 1.5em 0}
canvas.map{image-rendering:pixelated;border:1px solid #999}
.stats span{margin-right:1.2em;font-weight:600}
#stats span{margin-right:1.2em;font-weight:600}
img{max-width:100%}
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<link rel="icon" href="data:,">
<title>rednmf report: {title}</title>
<style>{style}</style></head>
<body>
<h1>rednmf: {title}</h1>
<div id="controls">
 base: <label><input type="radio" name="base" id="layer-rgb" value="rgb" checked>
 false colour</label>
 <label><input type="radio" name="base" id="layer-scores" value="scores">scores</label>
 <label><input type="checkbox" id="layer-det" checked>detections</label>
 <label><input type="checkbox" id="layer-gt" checked>ground truth</label>
</div>
<p>threshold <input type="range" id="slider" min="0" max="1000" step="1" style="width:360px">
 <span id="thr"></span></p>
<p id="stats"><span id="count"></span><span id="pixels"></span><span id="pd"></span>
<span id="pf"></span></p>
<div id="view">
 <canvas id="map" style="width:{width}px"></canvas>
 <div><p id="pixel-info">Hover over a pixel to see its spectrum; click to pin it.</p>
 <svg id="spectrum" width="460" height="300" role="img"></svg></div>
</div>
{note}
<h2>Summary</h2>
<table class="summary">{summary_rows}</table>
<img id="rgb" alt="" hidden src="data:image/png;base64,{png}">
<script id="data" type="application/json">{data}</script>
<script>{core}</script>
<script>{script}</script>
</body></html>
"""

#: Shared by the run report and the bench report: decoding, colours, the slider's quantile
#: scale, detection statistics (pixels, 8-connected detections, P_D, P_F) and painting.
_CORE_JS = r"""
"use strict";
function bytes(b64) {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
function floats(b64) { return new Float32Array(bytes(b64).buffer); }
const VIRIDIS = [[68,1,84],[59,82,139],[33,145,140],[94,201,98],[253,231,37]];
function colour(t) {
  t = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(t)), f = t - i;
  return VIRIDIS[i].map((c, k) => c + f * (VIRIDIS[i + 1][k] - c));
}
function components(mask, R, C) {
  const N = R * C, lab = new Int32Array(N); let n = 0; const stack = [];
  for (let p = 0; p < N; p++) {
    if (!mask[p] || lab[p]) continue;
    n++; lab[p] = n; stack.push(p);
    while (stack.length) {
      const q = stack.pop(), r = Math.floor(q / C), c = q % C;
      for (let dr = -1; dr <= 1; dr++) for (let dc = -1; dc <= 1; dc++) {
        const rr = r + dr, cc = c + dc;
        if (rr < 0 || cc < 0 || rr >= R || cc >= C) continue;
        const k = rr * C + cc;
        if (mask[k] && !lab[k]) { lab[k] = n; stack.push(k); }
      }
    }
  }
  return n;
}
// The slider (0..1000) moves over the score quantiles, log-spaced in the fraction above.
function scoreScale(scores) {
  const sorted = Array.from(scores).filter(Number.isFinite).sort((a, b) => a - b);
  const M = sorted.length;
  const lo = sorted[Math.floor(M / 2)];
  let hi = sorted[M - 1];
  if (!(hi > lo)) hi = lo + 1;
  function toThreshold(v) {
    const frac = Math.pow(10, -(v / 1000) * Math.log10(M));  // fraction above, 1 .. 1/M
    const idx = Math.min(M - 1, Math.max(0, Math.floor(M * (1 - frac))));
    return v >= 1000 ? sorted[M - 1] : sorted[idx];
  }
  function toSlider(t) {
    let best = 0, gap = Infinity;
    for (let v = 0; v <= 1000; v++) {
      const g = Math.abs(toThreshold(v) - t);
      if (g < gap) { gap = g; best = v; }
    }
    return best;
  }
  return {lo: lo, hi: hi, toThreshold: toThreshold, toSlider: toSlider};
}
// Flag the pixels above the threshold into `detected`; count them and, with truth, P_D / P_F.
function detect(scores, gt, threshold, detected) {
  let px = 0, tp = 0, nt = 0, fp = 0, nb = 0;
  for (let p = 0; p < scores.length; p++) {
    const s = scores[p], ok = Number.isFinite(s);
    detected[p] = ok && s > threshold ? 1 : 0;
    px += detected[p];
    if (gt && ok) { if (gt[p]) { nt++; tp += detected[p]; } else { nb++; fp += detected[p]; } }
  }
  return {pixels: px, pd: nt ? tp / nt : 0, pf: nb ? fp / nb : 0};
}
// Write the threshold and the statistics into the elements el.thr, count, pixels, pd, pf.
function showStats(el, threshold, st, count, hasGt) {
  el.thr.textContent = threshold.toPrecision(5);
  el.thr.dataset.value = String(threshold);  // exact, for scripts and tests
  el.count.textContent = "detections: " + count;
  el.pixels.textContent = "pixels: " + st.pixels;
  el.pd.textContent = hasGt ? "P_D: " + st.pd.toFixed(4) : "";
  el.pf.textContent = hasGt ? "P_F: " + st.pf.toFixed(6) : "";
}
// Paint pixel p of an RGBA buffer: the score colour (when scale is given), then the truth in
// cyan and the detections in red (yellow where both).
function paintPixel(data, p, s, scale, isGt, isDet) {
  const o = 4 * p;
  if (scale) {
    const c = Number.isFinite(s) ? colour((s - scale.lo) / (scale.hi - scale.lo)) : [0, 0, 0];
    data[o] = c[0]; data[o + 1] = c[1]; data[o + 2] = c[2];
  }
  data[o + 3] = 255;
  if (isGt) { data[o] = 0; data[o + 1] = 255; data[o + 2] = 255; }
  if (isDet) { data[o] = 255; data[o + 1] = isGt ? 255 : 0; data[o + 2] = 0; }
}
"""

_SCRIPT = r"""
const D = JSON.parse(document.getElementById("data").textContent);
const R = D.rows, C = D.cols, N = R * C;
const scores = floats(D.scores);
const gt = D.gt ? bytes(D.gt) : null;
const spec = new Uint16Array(bytes(D.spectra).buffer);
const scale = scoreScale(scores);
const slider = document.getElementById("slider");
slider.value = scale.toSlider(D.threshold);
let threshold = D.threshold;
const canvas = document.getElementById("map");
canvas.width = C; canvas.height = R;
const ctx = canvas.getContext("2d");
const rgbImg = document.getElementById("rgb");
const EL = {};
for (const id of ["thr", "count", "pixels", "pd", "pf"]) EL[id] = document.getElementById(id);
let detected = new Uint8Array(N);
function update() {
  const st = detect(scores, gt, threshold, detected);
  showStats(EL, threshold, st, components(detected, R, C), !!gt);
  draw();
}
function draw() {
  const img = ctx.createImageData(C, R);
  const base = document.querySelector("input[name=base]:checked").value;
  if (base === "rgb" && rgbImg.complete && rgbImg.naturalWidth) {
    ctx.drawImage(rgbImg, 0, 0);
    img.data.set(ctx.getImageData(0, 0, C, R).data);
  }
  const showDet = document.getElementById("layer-det").checked;
  const showGt = document.getElementById("layer-gt").checked && gt;
  const sc = base === "scores" ? scale : null;
  for (let p = 0; p < N; p++)
    paintPixel(img.data, p, scores[p], sc, showGt && gt[p], showDet && detected[p]);
  ctx.putImageData(img, 0, 0);
}
function spectrumAt(gr, gc) {
  const b = D.bands, o = (gr * D.gridCols + gc) * b;
  if (spec[o] === 65535) return null;
  const out = new Float64Array(b);
  for (let k = 0; k < b; k++) out[k] = D.offset[k] + D.scale[k] * spec[o + k];
  return out;
}
function showPixel(r, c) {
  const gr = Math.min(D.gridRows - 1, Math.round(r / D.stride));
  const gc = Math.min(D.gridCols - 1, Math.round(c / D.stride));
  const x = spectrumAt(gr, gc);
  const b = D.bands, sum = new Float64Array(b), sq = new Float64Array(b);
  const ho = Math.max(1, Math.floor(D.outer / 2 / D.stride));
  const hi_ = Math.floor(D.inner / 2 / D.stride);
  let n = 0;
  for (let dr = -ho; dr <= ho; dr++) for (let dc = -ho; dc <= ho; dc++) {
    if (Math.abs(dr) <= hi_ && Math.abs(dc) <= hi_) continue;
    const rr = gr + dr, cc = gc + dc;
    if (rr < 0 || cc < 0 || rr >= D.gridRows || cc >= D.gridCols) continue;
    const y = spectrumAt(rr, cc);
    if (!y) continue;
    n++;
    for (let k = 0; k < b; k++) { sum[k] += y[k]; sq[k] += y[k] * y[k]; }
  }
  const mean = Array.from(sum, (v) => v / Math.max(n, 1));
  const std = Array.from(sq, (v, k) => Math.sqrt(Math.max(0, v / Math.max(n, 1) - mean[k] ** 2)));
  const s = scores[r * C + c];
  const info = document.getElementById("pixel-info");
  info.textContent = "row " + r + ", col " + c + ", score " +
    (Number.isFinite(s) ? s.toPrecision(5) : "no-data") +
    (gt ? (gt[r * C + c] ? ", truth: anomaly" : ", truth: background") : "") +
    "; background: " + n + " pixels (" + D.inner + "/" + D.outer + " window)";
  plot(x, mean, std);
}
function plot(x, mean, std) {
  const svg = document.getElementById("spectrum"), W = 460, H = 300, P = 40;
  const wl = D.wavelengths, b = D.bands;
  let ymin = Infinity, ymax = -Infinity;
  for (let k = 0; k < b; k++) {
    ymin = Math.min(ymin, mean[k] - std[k], x ? x[k] : Infinity);
    ymax = Math.max(ymax, mean[k] + std[k], x ? x[k] : -Infinity);
  }
  if (!(ymax > ymin)) ymax = ymin + 1;
  const X = (k) => P + (W - 2 * P) * (wl[k] - wl[0]) / ((wl[b - 1] - wl[0]) || 1);
  const Y = (v) => H - P - (H - 2 * P) * (v - ymin) / (ymax - ymin);
  const pt = (k, v) => X(k).toFixed(1) + "," + Y(v).toFixed(1);
  const line = (f) => Array.from({length: b}, (_, k) => pt(k, f(k))).join(" ");
  const band = line((k) => mean[k] + std[k]) + " " +
    Array.from({length: b}, (_, j) => { const k = b - 1 - j;
      return X(k).toFixed(1) + "," + Y(mean[k] - std[k]).toFixed(1); }).join(" ");
  svg.innerHTML =
    '<polygon id="bg-band" points="' + band + '" fill="#9ecae1" opacity="0.6"/>' +
    '<polyline id="bg-mean" points="' + line((k) => mean[k]) + '" fill="none" stroke="#3182bd"/>' +
    (x ? '<polyline id="pixel-spectrum" points="' + line((k) => x[k]) +
      '" fill="none" stroke="#d62728" stroke-width="1.5"/>' : "") +
    '<text x="' + P + '" y="16" font-size="12">red: pixel; blue: background mean ± std</text>' +
    '<text x="' + (W / 2) + '" y="' + (H - 8) + '" font-size="12">' +
    D.wavelengthLabel + "</text>" +
    '<text x="4" y="' + (P - 4) + '" font-size="11">' + ymax.toPrecision(3) + "</text>" +
    '<text x="4" y="' + (H - P) + '" font-size="11">' + ymin.toPrecision(3) + "</text>";
}
function pixelOf(ev) {
  const rect = canvas.getBoundingClientRect();
  const c = Math.floor((ev.clientX - rect.left) / rect.width * C);
  const r = Math.floor((ev.clientY - rect.top) / rect.height * R);
  return [Math.min(R - 1, Math.max(0, r)), Math.min(C - 1, Math.max(0, c))];
}
let pinned = false;  // a click pins the pixel; hovering shows pixels until then
canvas.addEventListener("click", (ev) => {
  const [r, c] = pixelOf(ev); pinned = true; showPixel(r, c);
});
canvas.addEventListener("mousemove", (ev) => {
  if (!pinned) { const [r, c] = pixelOf(ev); showPixel(r, c); }
});
canvas.addEventListener("dblclick", () => { pinned = false; });
slider.addEventListener("input", () => {
  threshold = scale.toThreshold(Number(slider.value));
  update();
});
for (const id of ["layer-rgb", "layer-scores", "layer-det", "layer-gt"])
  document.getElementById(id).addEventListener("change", draw);
if (!gt) document.getElementById("layer-gt").disabled = true;
if (rgbImg.complete) update(); else { rgbImg.addEventListener("load", update); update(); }
"""

_BENCH_SCRIPT = r"""
const B = JSON.parse(document.getElementById("bench-data").textContent);
B.maps.forEach((m, i) => {
  const root = document.getElementById("map-" + i);
  const q = (name) => root.querySelector("." + name);
  const el = {thr: q("thr"), count: q("count"), pixels: q("pixels"), pd: q("pd"), pf: q("pf")};
  const gt = m.gt ? bytes(m.gt) : null;
  const canvas = q("map"), select = q("method"), slider = q("slider"), truth = q("truth");
  canvas.width = m.cols; canvas.height = m.rows;
  const ctx = canvas.getContext("2d");
  const detected = new Uint8Array(m.rows * m.cols);
  let scores = null, scale = null, threshold = 0;
  function update() {
    const st = detect(scores, gt, threshold, detected);
    showStats(el, threshold, st, components(detected, m.rows, m.cols), !!gt);
    const img = ctx.createImageData(m.cols, m.rows), showGt = truth && truth.checked;
    for (let p = 0; p < scores.length; p++)
      paintPixel(img.data, p, scores[p], scale, showGt && gt[p], detected[p]);
    ctx.putImageData(img, 0, 0);
  }
  function choose() {
    scores = floats(m.scores[select.value]);
    scale = scoreScale(scores);
    threshold = scale.toThreshold(Number(slider.value));
    update();
  }
  const finite = floats(m.scores[select.value]).filter(Number.isFinite).length;
  slider.value = Math.round(2000 / Math.log10(Math.max(finite, 101)));  // the top 1 %
  select.addEventListener("change", choose);
  slider.addEventListener("input", () => {
    threshold = scale.toThreshold(Number(slider.value));
    update();
  });
  if (truth) truth.addEventListener("change", update);
  choose();
});
"""
