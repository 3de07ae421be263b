"""The run's ROC picture, written as SVG without matplotlib."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np

from rednmf.metrics import roc_auc, roc_curve
from rednmf.svgplot import save_roc_svg

NS = {"svg": "http://www.w3.org/2000/svg"}


def _curve(tmp_path, scores, gt, label):
    fpr, tpr, _ = roc_curve(scores, gt)
    path = save_roc_svg(tmp_path / "roc.svg", fpr, tpr, auc=roc_auc(scores, gt), label=label)
    root = ET.parse(path).getroot()  # well-formed XML, or this raises
    line = root.find("svg:polyline", NS)
    pts = np.array([p.split(",") for p in line.get("points").split()], dtype=float)
    frame = root.findall("svg:rect", NS)[-1]  # the plot area
    x0, y0 = float(frame.get("x")), float(frame.get("y"))
    w, h = float(frame.get("width")), float(frame.get("height"))
    # back to rates: x = fpr, y = tpr (the axis runs to 1.02)
    rates = np.column_stack([(pts[:, 0] - x0) / w, (1 - (pts[:, 1] - y0) / h) * 1.02])
    return root, fpr, tpr, rates, w


def _farthest(rates, fpr, tpr):
    """The largest distance (in rates) from a point of the curve to the nearest vertex."""
    full = np.column_stack([fpr, tpr])
    return max(np.min(np.hypot(*(rates - p).T)) for p in full)


def test_the_curve_is_the_roc_from_corner_to_corner(tmp_path):
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(300, 300))
    gt = np.zeros(scores.shape, bool)
    gt[:20, :20] = True
    scores[gt] += 1.5
    root, fpr, tpr, rates, w = _curve(tmp_path, scores, gt, "grx <on> a & b")
    assert np.allclose(rates[0], [fpr[0], tpr[0]], atol=1e-3)
    assert np.allclose(rates[-1], [1.0, 1.0], atol=1e-3)
    # every point of the curve lies within a pixel of the drawn line's vertices
    assert _farthest(rates, fpr, tpr) * w < 1.0
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert f"grx <on> a & b (AUC = {roc_auc(scores, gt):.4f})" in texts  # escaped, read back
    assert "false-positive rate" in texts and "true-positive rate" in texts


def test_a_dense_curve_is_thinned_to_what_can_be_drawn(tmp_path):
    fpr = np.linspace(0.0, 1.0, 200_001)
    tpr = np.sqrt(fpr)
    save_roc_svg(tmp_path / "roc.svg", fpr, tpr)
    root = ET.parse(tmp_path / "roc.svg").getroot()
    line = root.find("svg:polyline", NS)
    pts = np.array([p.split(",") for p in line.get("points").split()], dtype=float)
    frame = root.findall("svg:rect", NS)[-1]
    w, h = float(frame.get("width")), float(frame.get("height"))
    # at most one vertex per quarter pixel along each axis, against 200 001 points
    assert len(pts) <= 4 * (w + h) + 2
    x0, y0 = float(frame.get("x")), float(frame.get("y"))
    rates = np.column_stack([(pts[:, 0] - x0) / w, (1 - (pts[:, 1] - y0) / h) * 1.02])
    assert _farthest(rates, fpr[::97], tpr[::97]) * w < 1.0
