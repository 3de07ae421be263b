"""The run's overview picture, drawn with Pillow and NumPy (no matplotlib).

One PNG that explains a run without the report: the scene beside its scores,
the detections and the ground truth outlined on both, a colour bar and a
legend. It is drawn pixel by pixel on a fixed layout (about 1450 x 800 pixels
for a square scene), so a fresh ``rednmf detect`` process does not pay for
importing matplotlib (about 0.34 s, a third of the writes at 10⁴ pixels).
Text is Pillow's built-in scalable font; the score colours are matplotlib's
magma, shipped as a table (:mod:`rednmf._magma`).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rednmf.composite import rgb8
from rednmf.exceptions import InputError
from rednmf.io.writers import atomic_open

if TYPE_CHECKING:
    from PIL import Image, ImageDraw, ImageFont

__all__ = ["save_overview", "tail_stretch"]

#: Overlay colours: detections, ground truth, the halo under both, no-data.
DETECTION_RGB, TRUTH_RGB, HALO_RGB, NODATA_RGB = (
    (255, 42, 42),
    (0, 229, 255),
    (0, 0, 0),
    (180,) * 3,
)
#: More detections than this are painted pixel by pixel instead of outlined, and only the top
#: ``_RINGED`` by peak score are ringed and numbered.
_OUTLINED = 300
_RINGED = 20

#: The layout, in pixels: each panel's box (width; height between the bounds, by the scene's
#: aspect), the margins, the gap between the panels and the colour bar's gap and width.
_PANEL_W, _PANEL_H_MIN, _PANEL_H_MAX = 624, 312, 840
_TOP, _BOTTOM, _LEFT, _GAP, _BAR_GAP, _BAR_W, _RIGHT = 114, 54, 14, 30, 18, 22, 120
#: Text sizes in pixels: title, panel titles and colour bar, legend, detection numbers.
_TITLE_PX, _LABEL_PX, _LEGEND_PX, _NUMBER_PX = 18, 17, 15, 12
#: Outline widths in pixels: the coloured line and its halo (a black border each side).
_LINE, _HALO = 2, 6
#: Ring of a small detection: radius to the middle of the stroke, red and halo strokes.
_RING_R, _RING_LINE, _RING_HALO = 8.75, 2.3, 5.7
#: Below this many figure pixels across, a detection is ringed.
_SMALL_PX = 8.0


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
    :func:`tail_stretch` in magma, with a colour bar of tail probabilities (the
    threshold marked). On both: every detection outlined along its own pixel
    edges, the ground truth likewise, each line over a black halo so that it
    stays visible on any base (red on red, cyan on cyan); detections too small
    to see at the figure's scale are ringed (on both) and numbered (on the left;
    their id in the CSV and the report), the top 20 by peak score when there
    are more. Over 300 detections, their pixels are painted red instead of
    outlined (each at least one figure pixel) and only the top 20 are ringed.
    No-data is the same grey on both panels. A legend under the panels names
    every layer. The figure is about 1450 pixels wide whatever the scene size:
    a small scene is magnified (nearest neighbour), a big one averaged over
    each figure pixel's area.

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
    from PIL import Image, ImageDraw

    data = np.asarray(scores, dtype=np.float64)
    if data.ndim != 2:
        raise InputError(f"scores must be a 2-D (rows, cols) map, got shape {data.shape}")
    if image.shape[:2] != data.shape:
        raise InputError(f"image {image.shape[:2]} does not match the scores {data.shape}")
    rows, cols = data.shape
    nodata = ~np.isfinite(data)
    stretched, n_valid = tail_stretch(data)
    top_value = max(np.log10(max(n_valid, 2)), 1e-9)

    panel_h = int(round(min(_PANEL_H_MAX, max(_PANEL_H_MIN, _PANEL_W * rows / max(cols, 1)))))
    scale = min(_PANEL_W / cols, panel_h / rows)  # figure pixels per scene pixel
    w, h = max(1, round(cols * scale)), max(1, round(rows * scale))
    y0 = _TOP + (panel_h - h) // 2
    x_img = _LEFT + (_PANEL_W - w) // 2
    x_sc = _LEFT + _PANEL_W + _GAP + (_PANEL_W - w) // 2
    x_bar = _LEFT + 2 * _PANEL_W + _GAP + _BAR_GAP
    width, height = x_bar + _BAR_W + _RIGHT, _TOP + panel_h + _BOTTOM
    fig = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(fig)

    labels = _ranked(detected, data)
    n_det = int(labels.max(initial=0))
    det = labels > 0
    base = rgb8(image)  # 8 bits a channel, as drawn: a quarter of float32's memory
    base[nodata] = NODATA_RGB
    colours = _magma(stretched, top_value)
    colours[nodata] = NODATA_RGB
    painted = _resize_mask(det, w, h) if n_det > _OUTLINED else None
    layers = []
    if gt is not None:
        layers.append((_runs(np.asarray(gt) != 0), TRUTH_RGB))
    if n_det <= _OUTLINED:
        layers.append((_runs(det), DETECTION_RGB))
    rings = _small_ids(labels, n_det, scale)
    centres = _centres(labels, rings)
    ring = _ring_sprite()
    for x, rgb in ((x_img, base), (x_sc, colours)):
        pixels = np.asarray(_resize(rgb, w, h))
        if painted is not None:  # too many to outline: their pixels in red
            pixels = pixels.copy()
            pixels[painted] = DETECTION_RGB
        panel = Image.fromarray(pixels)  # drawn on alone: what overflows the panel is cut
        for runs, colour in layers:
            _outline(ImageDraw.Draw(panel), runs, scale, colour)
        for r, c in centres:
            _paste_ring(panel, ring, (c + 0.5) * scale, (r + 0.5) * scale)
        fig.paste(panel, (x, y0))
        draw.rectangle([x - 1, y0 - 1, x + w, y0 + h], outline="black")
    del base, colours
    font = _font(_NUMBER_PX)
    for (r, c), k in zip(centres, rings, strict=True):  # numbered on the left panel only
        # up and right of the ring, kept below the panel's top edge (and its title)
        px, py = x_img + (c + 0.5) * scale + 10, max(y0 + (r + 0.5) * scale - 10, y0 + _NUMBER_PX)
        draw.text(
            (px, py),
            str(k),
            fill="white",
            font=font,
            anchor="ls",
            stroke_width=2,
            stroke_fill="black",
        )

    label_font = _font(_LABEL_PX)
    for x, text in ((x_img, image_title), (x_sc, "anomaly score, as its tail probability")):
        draw.text((x + w / 2, y0 - 10), text, fill="black", font=label_font, anchor="md")
    frac = None
    if threshold is not None and n_valid:
        frac = max(float(np.sum(data[~nodata] > threshold)), 1.0) / n_valid
    _colour_bar(fig, draw, (x_bar, y0, h), top_value, frac)
    _legend(
        fig, draw, (width / 2, height - 27), n_det, gt is not None, len(rings), int(nodata.sum())
    )
    if title or subtitle:
        lines = "\n".join(t for t in (title, subtitle) if t)
        draw.multiline_text(
            (width / 2, 10),
            lines,
            fill="black",
            font=_font(_TITLE_PX),
            anchor="ma",
            align="center",
            spacing=6,
        )
    target = Path(path)
    with atomic_open(target, "wb") as fh:
        fig.save(fh, format="PNG", compress_level=3)
    return target


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's built-in scalable font at ``size`` pixels (the same on every machine)."""
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _magma(stretched: np.ndarray, top: float) -> np.ndarray:
    """``stretched`` in ``0 .. top`` as magma colours (NaN: the lowest), uint8 (rows, cols, 3)."""
    from rednmf._magma import MAGMA

    idx = np.nan_to_num(stretched, nan=0.0) * (256.0 / top)
    return MAGMA[np.clip(idx, 0, 255).astype(np.intp)]


def _resize(rgb: np.ndarray, w: int, h: int) -> Image.Image:
    """An 8-bit image to ``w x h``: nearest neighbour to magnify, area average to shrink."""
    from PIL import Image

    img = Image.fromarray(rgb)
    if img.size == (w, h):
        return img
    shrink = w < img.width or h < img.height
    return img.resize((w, h), Image.Resampling.BOX if shrink else Image.Resampling.NEAREST)


def _resize_mask(mask: np.ndarray, w: int, h: int) -> np.ndarray:
    """``mask`` at ``w x h``: a figure pixel is set when any scene pixel under it is."""
    return np.asarray(_resize(np.where(mask, np.uint8(255), np.uint8(0)), w, h)) > 0


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pixel edges between ``mask`` and the rest, merged into straight runs.

    Returns
    -------
    horizontal : numpy.ndarray of shape (n, 3)
        ``(row, col_start, col_stop)``: the edge along the top of scene row ``row``
        (``rows`` = the bottom edge), from column boundary ``col_start`` to ``col_stop``.
    vertical : numpy.ndarray of shape (m, 3)
        ``(col, row_start, row_stop)``, likewise along the left of column ``col``.
    """
    m = np.pad(np.asarray(mask, bool), 1)
    horizontal = m[1:, 1:-1] != m[:-1, 1:-1]  # (rows + 1, cols): edge above row r at col c
    vertical = (m[1:-1, 1:] != m[1:-1, :-1]).T  # (cols + 1, rows): edge left of col c at row r
    return _merge(horizontal), _merge(vertical)


def _merge(edges: np.ndarray) -> np.ndarray:
    """Runs of True along each row of ``edges``: ``(row, start, stop)``, shape (n, 3)."""
    step = np.diff(np.pad(edges, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    r0, start = np.nonzero(step == 1)
    _, stop = np.nonzero(step == -1)  # row-major order: the n-th stop closes the n-th start
    return np.stack([r0, start, stop], axis=1)


def _outline(
    draw: ImageDraw.ImageDraw,
    runs: tuple[np.ndarray, np.ndarray],
    scale: float,
    colour: tuple[int, ...],
) -> None:
    """Draw the edge runs of :func:`_runs` as a ``colour`` line over a black halo."""
    horizontal, vertical = runs
    # per run: the boundary it lies on, and where it starts and stops along it, in figure pixels
    h_at, h_lo, h_hi = np.round(horizontal.T * scale).astype(int)
    v_at, v_lo, v_hi = np.round(vertical.T * scale).astype(int)
    for thick, fill in ((_HALO, HALO_RGB), (_LINE, colour)):
        half = thick // 2  # a run is a rectangle centred on its boundary, its ends squared past
        boxes = np.concatenate(
            [
                np.stack([h_lo - half, h_at - half, h_hi + half - 1, h_at + half - 1], 1),
                np.stack([v_at - half, v_lo - half, v_at + half - 1, v_hi + half - 1], 1),
            ]
        )
        for box in boxes.tolist():
            draw.rectangle(box, fill)


@functools.lru_cache(maxsize=1)
def _ring_sprite() -> Image.Image:
    """The ring of a small detection, red over a black halo, drawn at 4x and averaged down."""
    from PIL import Image, ImageDraw

    k = 4
    size = int(np.ceil(2 * (_RING_R + _RING_HALO / 2))) + 2
    big = Image.new("RGBA", (size * k, size * k), (0, 0, 0, 0))
    pen = ImageDraw.Draw(big)
    mid = size * k / 2
    for stroke, colour in ((_RING_HALO, HALO_RGB), (_RING_LINE, DETECTION_RGB)):
        r = (_RING_R + stroke / 2) * k
        pen.ellipse([mid - r, mid - r, mid + r, mid + r], outline=colour, width=round(stroke * k))
    return big.resize((size, size), Image.Resampling.BOX)


def _paste_ring(fig: Image.Image, ring: Image.Image, x: float, y: float) -> None:
    """Paste ``ring`` centred on figure point ``(x, y)``."""
    fig.paste(ring, (round(x) - ring.width // 2, round(y) - ring.height // 2), ring)


def _colour_bar(
    fig: Image.Image,
    draw: ImageDraw.ImageDraw,
    where: tuple[int, int, int],
    top: float,
    threshold_fraction: float | None,
) -> None:
    """The colour bar at ``(x, y, height)``: ticks 1, 10⁻¹, ... and the threshold's fraction."""
    from PIL import Image, ImageDraw

    x, y, h = where
    levels = top * (1.0 - (np.arange(h) + 0.5) / h)
    bar = np.repeat(_magma(levels[:, None], top), _BAR_W, axis=1)
    fig.paste(Image.fromarray(bar), (x, y))
    draw.rectangle([x - 1, y - 1, x + _BAR_W, y + h], outline="black")
    font, small = _font(_LABEL_PX), _font(_NUMBER_PX)
    right = x + _BAR_W
    widest = 0.0
    for k in range(int(np.floor(top)) + 1):
        ty = round(y + h * (1.0 - k / top))
        draw.line([(right, ty), (right + 5, ty)], fill="black", width=1)
        tx = right + 10
        if k == 0:
            draw.text((tx, ty), "1", fill="black", font=font, anchor="lm")
            widest = max(widest, font.getlength("1"))
            continue
        draw.text((tx, ty), "10", fill="black", font=font, anchor="lm")  # 10 and a raised -k
        ten = font.getlength("10")
        draw.text((tx + ten + 1, ty - 5), f"-{k}", fill="black", font=small, anchor="lm")
        widest = max(widest, ten + 1 + small.getlength(f"-{k}"))
    if threshold_fraction is not None:
        ty = round(y + h * (1.0 + np.log10(threshold_fraction) / top))
        draw.rectangle([x, ty - 1, x + _BAR_W - 1, ty + 1], DETECTION_RGB)
        draw.line([(x, ty), (x + _BAR_W - 1, ty)], fill=HALO_RGB, width=1)
    text = "fraction of pixels scoring at least as high"
    label = Image.new("L", (int(font.getlength(text)) + 4, _LABEL_PX + 6), 0)
    ImageDraw.Draw(label).text((2, 2), text, fill=255, font=font)
    label = label.rotate(90, expand=True)
    lx, ly = round(right + 10 + widest + 8), round(y + h / 2 - label.height / 2)
    fig.paste(HALO_RGB, (lx, ly, lx + label.width, ly + label.height), label)


def _legend(
    fig: Image.Image,
    draw: ImageDraw.ImageDraw,
    centre: tuple[float, float],
    n_det: int,
    truth: bool,
    n_rings: int,
    n_nodata: int,
) -> None:
    """The legend row, centred on ``centre``: every layer drawn, with its name."""
    # over _OUTLINED detections are painted, not outlined: the legend shows a painted patch
    items = [("line" if n_det <= _OUTLINED else "patch", DETECTION_RGB, f"detections ({n_det})")]
    if truth:
        items.append(("line", TRUTH_RGB, "ground truth"))
    if n_rings:
        if n_det > _OUTLINED:
            ringed = f"top {n_rings} of {n_det} by peak score"
        elif n_rings == _RINGED:
            ringed = f"the {_RINGED} small detections of highest peak score"
        else:
            ringed = "small detections"
        items.append(("ring", DETECTION_RGB, ringed + ", numbered as in the CSV"))
    items.append(("patch", NODATA_RGB, f"no-data ({n_nodata} px)"))
    font = _font(_LEGEND_PX)
    handle, pad, spacing = 30, 10, 30
    widths = [handle + pad + font.getlength(text) for _, _, text in items]
    x = centre[0] - (sum(widths) + spacing * (len(items) - 1)) / 2
    y = round(centre[1])
    for (kind, colour, text), item_w in zip(items, widths, strict=True):
        x0 = round(x)
        if kind == "line":
            draw.rectangle([x0, y - 3, x0 + handle - 1, y + 2], HALO_RGB)
            draw.rectangle([x0 + 2, y - 1, x0 + handle - 3, y], colour)
        elif kind == "ring":
            _paste_ring(fig, _ring_sprite(), x0 + handle / 2, y)
        else:
            draw.rectangle([x0 + 2, y - 6, x0 + handle - 3, y + 5], colour, outline=(77, 77, 77))
        draw.text((x0 + handle + pad, y), text, fill="black", font=font, anchor="lm")
        x += item_w + spacing


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


def _small_ids(labels: np.ndarray, n_det: int, scale: float) -> np.ndarray:
    """Ids to ring: detections under ``_SMALL_PX`` figure pixels across, the top ``_RINGED``.

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
        if b is not None
        and max(b[0].stop - b[0].start, b[1].stop - b[1].start) * scale < _SMALL_PX
    ]
    return np.asarray(small[:_RINGED], dtype=np.int64)


def _centres(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(row, col) centres of the detections ``ids`` of a label map, shape (n, 2)."""
    from scipy import ndimage

    if not len(ids):
        return np.zeros((0, 2))
    return np.asarray(ndimage.center_of_mass(labels > 0, labels, ids), dtype=float).reshape(-1, 2)
