"""The overview picture stands alone: overlays visible on any base, a stretch for every method."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rednmf import composite, overview
from rednmf.datasets import make_scene

SIZE = 60
DET = (slice(20, 26), slice(5, 11))  # on the red half
TRUTH = (slice(20, 26), slice(40, 46))  # on the cyan half


def _render(tmp_path, name, detected, gt):
    image = np.zeros((SIZE, SIZE, 3))
    image[:, : SIZE // 2] = (1.0, 0.0, 0.0)  # the detection colour
    image[:, SIZE // 2 :] = (0.0, 1.0, 1.0)  # the truth colour
    scores = np.random.default_rng(0).gamma(2.0, 1.0, (SIZE, SIZE))
    path = overview.save_overview(tmp_path / f"{name}.png", image, scores, detected, gt)
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def _left_panel(img):
    """The left panel's scene pixels: the bounding box of its base colours, 3 px inside."""
    r, g, b = img[:, :, 0], img[:, :, 1], img[:, :, 2]
    base = ((r > 240) & (g < 15) & (b < 15)) | ((r < 15) & (g > 240) & (b > 240))
    rows, cols = np.nonzero(base)
    return img[rows.min() + 3 : rows.max() - 2, cols.min() + 3 : cols.max() - 2]


def _dark(panel):
    return panel.max(axis=2) < 60


def test_outlines_stay_visible_on_a_base_of_their_own_colour(tmp_path):
    empty = np.zeros((SIZE, SIZE), bool)
    det = empty.copy()
    det[DET] = True
    gt = empty.copy()
    gt[TRUTH] = True
    plain = _left_panel(_render(tmp_path, "plain", empty, empty))
    with_det = _left_panel(_render(tmp_path, "det", det, empty))
    with_gt = _left_panel(_render(tmp_path, "gt", empty, gt))
    assert _dark(plain).sum() == 0  # a red and cyan base, nothing dark on it
    for panel, (rs, cs) in ((with_det, DET), (with_gt, TRUTH)):
        dark = _dark(panel)
        h, w = dark.shape
        # a halo around the block: at least its perimeter, 6 x 4 scene pixels of ~10 px each
        assert dark.sum() >= 4 * 6 * (w / SIZE)
        rr, cc = np.nonzero(dark)
        centre = ((rs.start + rs.stop) / 2 / SIZE, (cs.start + cs.stop) / 2 / SIZE)
        assert abs(rr.mean() / h - centre[0]) < 0.03 and abs(cc.mean() / w - centre[1]) < 0.03
    # the detection's own red line is drawn on the red base, inside its halo
    r, g = with_det[:, :, 0], with_det[:, :, 1]
    assert ((r > 200) & (g > 25) & (g < 70)).sum() >= 4 * 6 * (with_det.shape[1] / SIZE) / 2


@pytest.mark.parametrize("size", [40, 100, 1000])
def test_every_detection_is_marked_at_any_size(tmp_path, size):
    rng = np.random.default_rng(size)
    image = rng.uniform(0.3, 0.6, (size, size, 3))
    scores = rng.gamma(2.0, 1.0, (size, size))
    detected = np.zeros((size, size), bool)
    for r, c in [(size // 4, size // 4), (size // 2, 3 * size // 4)]:
        detected[r, c] = True  # one pixel each: the hardest case
    path = overview.save_overview(tmp_path / "o.png", image, scores, detected, threshold=40.0)
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert img.shape[1] >= 1200  # the same legible size whatever the scene
    red = (img[:, :, 0] > 200) & (img[:, :, 1] < 70) & (img[:, :, 2] < 70)
    from scipy import ndimage

    left = red[:, : img.shape[1] // 2]
    lab, n = ndimage.label(left, structure=np.ones((3, 3)))
    sizes = ndimage.sum(left, lab, np.arange(1, n + 1))
    assert (sizes >= 30).sum() >= 2  # an outline or a ring of at least 30 red pixels each


def test_tail_stretch_shows_structure_for_heavy_tailed_scores():
    rng = np.random.default_rng(1)
    rx_like = rng.chisquare(10, (100, 100))
    rx_like[5, 5] = 1e6  # one extreme pixel, as RX gives
    lo, hi = float(np.median(rx_like)), float(rx_like.max())
    linear = (rx_like - lo) / (hi - lo)
    stretched, n = overview.tail_stretch(rx_like)
    shown = stretched / np.log10(n)
    # a median-to-max stretch leaves every pixel but one in the bottom 5 % of the colours;
    # the tail stretch spreads the background over them (63 % above 5 %)
    assert (linear > 0.05).sum() == 1
    assert 0.6 < (shown > 0.05).mean() < 0.66
    assert stretched[5, 5] == np.log10(n) and np.nanmin(stretched) == 0.0


def test_tail_stretch_does_not_invent_targets():
    clean = np.random.default_rng(1).normal(10.0, 1.0, (100, 100))
    clean[0, :3] = np.nan
    stretched, n = overview.tail_stretch(clean)
    assert n == clean.size - 3 and np.isnan(stretched[0, :3]).all()
    # the top fifth of the colours holds the top n**-0.8 of the pixels (0.06 % here)
    assert (stretched / np.log10(n) > 0.8).mean() < 0.001


def test_titles_say_true_or_false_colour():
    wl = np.linspace(400, 1000, 30)
    assert composite.composite_title(wl, 30).startswith("true colour (")
    assert composite.composite_title(None, 30) == "false colour (PCA 1-3 as RGB)"
    swir = np.linspace(1000, 2500, 30)
    assert composite.composite_title(swir, 30).startswith("false colour")


def test_nodata_is_the_same_grey_on_both_panels(tmp_path):
    rng = np.random.default_rng(3)
    image = rng.uniform(0.0, 0.6, (50, 50, 3))
    scores = rng.gamma(2.0, 1.0, (50, 50))
    scores[:10, :10] = np.nan
    path = overview.save_overview(tmp_path / "o.png", image, scores, scores > 6.0)
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    grey = (np.abs(img - np.array(overview.NODATA_RGB)).max(axis=2) == 0)[:, :1300]
    left, right = grey[:, :650].sum(), grey[:, 650:].sum()
    # a 10 x 10 corner of a 50 x 50 scene on a ~624 px panel: ~125 x 125 figure pixels each
    assert 120**2 < left < 130**2 and abs(int(left) - int(right)) < 300


def test_over_300_detections_are_painted_and_the_top_20_ringed(tmp_path):
    size = 200
    rng = np.random.default_rng(4)
    image = np.full((size, size, 3), 0.5)
    scores = rng.gamma(2.0, 1.0, (size, size))
    detected = np.zeros((size, size), bool)
    detected[2::10, 2::10] = True  # 400 one-pixel detections
    path = overview.save_overview(tmp_path / "o.png", image, scores, detected)
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    left = img[:-54, :650]  # the left panel, above the legend
    red = (left[:, :, 0] > 200) & (left[:, :, 1] < 70) & (left[:, :, 2] < 70)
    from scipy import ndimage

    lab, n = ndimage.label(red, structure=np.ones((3, 3)))
    sizes = ndimage.sum(red, lab, np.arange(1, n + 1))
    # every detection painted: 400 marks of about 3 x 3 figure pixels (a scene pixel),
    # and 20 rings (the top 20 by peak score) of many more
    assert (sizes <= 16).sum() == 400
    assert (sizes >= 60).sum() == 20


def test_same_input_same_bytes(tmp_path):
    rng = np.random.default_rng(5)
    image = rng.uniform(0.0, 1.0, (70, 90, 3))
    scores = rng.gamma(2.0, 1.0, (70, 90))
    args = (image, scores, scores > 6.0, scores > 7.0)
    kw = {"threshold": 6.0, "title": "t", "subtitle": "s"}
    a = overview.save_overview(tmp_path / "a.png", *args, **kw).read_bytes()
    b = overview.save_overview(tmp_path / "b.png", *args, **kw).read_bytes()
    assert a == b


def test_a_fresh_detect_process_does_not_import_matplotlib(tmp_path):
    """Every output of ``rednmf detect``, the overview included, is written without it."""
    import scipy.io

    import rednmf

    cube, gt = make_scene(rows=30, cols=30, bands=16, n_targets=4, random_state=2)
    scene = tmp_path / "s.mat"
    scipy.io.savemat(scene, {"data": cube, "map": (np.asarray(gt) != 0).astype(np.uint8)})
    src = str(Path(rednmf.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "rednmf", "detect", str(scene)]
        + ["--out", str(tmp_path / "out"), "--method", "grx"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    assert {"PIL.Image", "rednmf.overview"} <= imported  # the import log is read
    assert sorted(m for m in imported if m.split(".")[0] == "matplotlib") == []
    assert (tmp_path / "out" / "s_grx" / "s_grx_overview.png").is_file()
