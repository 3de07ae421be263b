"""The run report's content without a browser: spectra coding, the summary tables, the size."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest

from rednmf.datasets import make_scene
from rednmf.io.scene import Scene
from rednmf.pipeline import detect_scene
from rednmf.report.scene import encode_spectra, summary_html


def _decode(block: dict, n_pixels: int, bands: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the page's script computes: every pixel from its codes, and the full spectra."""
    k = block["k"]
    basis = np.frombuffer(base64.b64decode(block["basis"]), np.float32).reshape(k, bands)
    codes = np.frombuffer(base64.b64decode(block["coef"]), np.uint8).reshape(n_pixels, k)
    coef = np.asarray(block["coefLo"]) + np.asarray(block["coefStep"]) * codes
    approx = np.asarray(block["mean"]) + coef @ basis.astype(np.float64)
    full = block["full"]
    index = np.frombuffer(base64.b64decode(full["index"]), np.int32)
    values = np.frombuffer(base64.b64decode(full["values"]), np.uint16).reshape(-1, bands)
    exact = np.asarray(full["offset"]) + np.asarray(full["scale"]) * values
    return approx, index, exact


def test_spectra_are_coded_by_components_and_kept_in_full_where_asked():
    cube, _ = make_scene(40, 50, 60, n_endmembers=4, noise=0.002, random_state=3)
    valid = np.ones((40, 50), bool)
    valid[0, :5] = False
    full = np.array([7, 130, 1999])
    block = encode_spectra(cube, valid, full)
    approx, index, exact = _decode(block, 40 * 50, 60)
    flat = cube.reshape(-1, 60)
    assert block["k"] == 10
    # the oracle: the projection on the top 10 principal axes of the valid pixels (SVD)
    ok = valid.ravel()
    mean = flat[ok].mean(axis=0)
    axes = np.linalg.svd(flat[ok] - mean, full_matrices=False)[2][:10]
    pca = mean + (flat - mean) @ axes.T @ axes
    # 8-bit codes: within half a step of every coefficient of the projection
    bound = np.abs(axes).T @ (np.asarray(block["coefStep"]) / 2) + 1e-6
    assert np.all(np.abs(approx - pca)[ok] <= bound)
    # four endmembers plus noise of sd 0.002: what is left is at most the noise
    assert np.sqrt(np.mean((approx - flat)[ok] ** 2)) < 0.002
    # the pixels asked for are exact to 16 bits
    assert index.tolist() == sorted(full.tolist())
    span = np.ptp(flat[np.sort(full)], axis=0)
    assert np.all(np.abs(exact - flat[np.sort(full)]) <= span / 65534 / 2 + 1e-12)


def test_summary_is_readable_tables():
    summary = {
        "scene": "s",
        "method": "rednmf",
        "threshold": 1.5,
        "n_detections": 3,
        "params": {"lam": 4.0, "scorer__inner": 9},
        "objective": [10.0, 5.0, 2.5, 2.4],
        "seconds": {"read": 0.1, "fit": 2.0, "threshold": 0.05},
        "environment": {"rednmf": "0.1.0", "numpy": "2.4.6"},
        "inputs": [{"role": "scene", "path": "/x.mat", "bytes": 10, "sha256": "ab"}],
    }
    text = summary_html(summary)
    params = re.search(r"<table class='summary params'>(.*?)</table>", text).group(1)
    assert re.findall(r"<tr><th>(\w+)</th>", params) == ["lam", "scorer__inner"]  # one per row
    points = re.search(r"<polyline points='([^']*)'", text).group(1).split()
    assert len(points) == 4  # the convergence plot: one point per iteration
    assert "10 at the first iteration, 2.4 at the last (4)" in text
    assert "<tr><th>fit</th><td>2</td></tr>" in text
    assert "<tr><th>numpy</th><td>2.4.6</td></tr>" in text
    assert "every 2th" not in text and '"lam"' not in text


def test_report_agrees_with_the_summary_under_filters(tmp_path):
    """The page embeds the run's filtered detections: the summary's, the CSV's."""
    cube, gt = make_scene(48, 60, 30, n_targets=8, target_size=3, random_state=4)
    scene = Scene(cube=cube, gt=np.asarray(gt) != 0, name="f")
    summary = detect_scene(
        scene, tmp_path, method="grx", contamination=0.04, min_area=5, exclude_border=2
    )
    page = Path(summary["files"]["report"]).read_text(encoding="utf-8")
    data = json.loads(
        re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S).group(1)
    )
    mask = np.unpackbits(np.frombuffer(base64.b64decode(data["runMask"]), np.uint8))
    assert int(mask[: 48 * 60].sum()) == summary["n_detected_pixels"]
    assert len(data["detections"]) == summary["n_detections"] < summary["n_above_threshold"]
    assert (data["minArea"], data["excludeBorder"]) == (5, 2)
    areas = [row[data["detectionFields"].index("area_px")] for row in data["detections"]]
    assert min(areas) >= 5


@pytest.mark.slow
def test_report_size_within_budget_at_300x300x200(tmp_path):
    """<= 1.5 MB at 10^4 pixels and <= 25 MB at 10^6: the line between them at 9 * 10^4."""
    cube, gt = make_scene(300, 300, 200, n_targets=30, target_size=2, random_state=0)
    scene = Scene(cube=cube.astype(np.float32), gt=np.asarray(gt) != 0, name="big")
    summary = detect_scene(scene, tmp_path, method="grx")
    size = (tmp_path / "big_grx" / "big_grx_report.html").stat().st_size
    budget = 1.5e6 + (25e6 - 1.5e6) * (300 * 300 - 1e4) / (1e6 - 1e4)  # 3.40 MB
    assert summary["n_detections"] > 0
    assert size <= budget, f"{size / 1e6:.2f} MB > {budget / 1e6:.2f} MB"
