"""The HTML report of ``rednmf bench``: report.md's tables sortable, score maps, ROC curves.

One self-contained page next to ``report.md``:

* the text of ``report.md`` rendered, its tables as HTML tables that sort by
  any column on a click of its header (numbers by the first number of a cell,
  so ``ours (paper, diff)`` cells sort by ours); every method row of the
  experiments shows, whatever the method;
* per scene of Table 2, the ROC curves of every method (linear or logarithmic
  false-positive axis, the AUC in the legend), and the score map of every
  method (a selector) with the run report's threshold slider: the pixel count,
  the 8-connected detections and, with ground truth, P_D and P_F follow it;
* every figure, embedded; the Markdown itself in a collapsed block.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rednmf.report._page import asset, b64, json_payload, write_page

__all__ = ["markdown_html", "render_bench_report", "roc_points", "write_bench_report"]


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


def _roc_panel(index: int, scene: str) -> str:
    return (
        f"<section class='roc' id='roc-{index}' data-scene='{html.escape(scene)}'>"
        f"<h3>ROC: {html.escape(scene)}</h3>"
        "<p><label><input type='checkbox' class='logx' checked>logarithmic false-positive "
        "axis</label></p><svg class='roc-plot' width='460' height='340' role='img'></svg>"
        "</section>"
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
        curves = {} if gt is None else {m: roc_points(sc, gt) for m, sc in entry["scores"].items()}
        data.append(
            {
                "rows": grid[0],
                "cols": grid[1],
                "stride": stride,
                "gt": None if gt is None else b64((np.asarray(gt)[sub] != 0).astype(np.uint8)),
                "scores": {
                    m: b64(np.asarray(s, dtype=np.float32)[sub])
                    for m, s in entry["scores"].items()
                },
                "roc": {m: c for m, c in curves.items() if c is not None},
            }
        )
        note = (
            ""
            if stride == 1
            else f"<p class='note'>Every {stride}th row and column shown and counted.</p>"
        )
        scene = str(entry["scene"])
        index = len(data) - 1
        roc = _roc_panel(index, scene) if data[-1]["roc"] else ""
        panels.append(
            f"<div class='scene-row'>{roc}"
            + _map_panel(index, scene, methods, gt is not None, 360)
            + note
            + "</div>"
        )
    maps_html = (
        "<h2 id='score-maps'>ROC curves and score maps</h2><p>Per scene: the ROC curve of "
        "every method, computed from the full score maps (the AUC in the legend); and the "
        "scores of the chosen method (magma, as the tail probability of each score, as in "
        "the run overview) with the pixels above the threshold in red (yellow on the truth, "
        "cyan the truth alone). The slider moves over the score quantiles; it starts at the "
        "top 1 %.</p>" + "".join(panels)
        if panels
        else ""
    )
    figures = "".join(
        f"<h3>{html.escape(p.stem)}</h3><img alt='{html.escape(p.stem)}' "
        f"src='data:image/png;base64,{base64.b64encode(p.read_bytes()).decode('ascii')}'>"
        for p in images
    )
    payload = json_payload({"maps": data})
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<link rel='icon' href='data:,'>"
        f"<title>{html.escape(title)}</title><style>{asset('style.css')}</style></head><body>"
        f"{markdown_html(markdown)}{maps_html}"
        + ("<h2>Figures</h2>" + figures if figures else "")
        + "<details><summary>report.md</summary>"
        f"<pre class='md'>{html.escape(markdown)}</pre></details>"
        f"<script id='bench-data' type='application/json'>{payload}</script>"
        f"<script>{asset('core.js')}</script><script>{asset('bench.js')}</script>"
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
    return write_page(path, render_bench_report(markdown, images, title, maps))


def roc_points(scores: np.ndarray, gt: np.ndarray, n: int = 200) -> dict[str, Any] | None:
    """A ROC curve for drawing: true-positive rates at ``n`` false-positive rates and the AUC.

    The rates are half linear in ``[0, 1]`` and half logarithmic from ``1e-5``,
    so the curve reads on a linear or a logarithmic axis; None without both
    classes among the finite scores.
    """
    from rednmf.metrics import roc_auc, roc_curve

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(gt) != 0
    ok = np.isfinite(s)
    if not (y[ok].any() and (~y[ok]).any()):
        return None
    fpr, tpr, _ = roc_curve(s[ok], y[ok])
    grid = np.unique(np.concatenate([np.linspace(0, 1, n // 2), np.logspace(-5, 0, n // 2)]))
    return {
        "fpr": [float(f"{v:.5g}") for v in grid],
        "tpr": [float(f"{v:.5g}") for v in np.interp(grid, fpr, tpr)],
        "auc": float(roc_auc(s[ok], y[ok])),
    }
