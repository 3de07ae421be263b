"""The overview picture stands alone: overlays visible on any base, a stretch for every method."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rednmf import composite, plotting

SIZE = 60
DET = (slice(20, 26), slice(5, 11))  # on the red half
TRUTH = (slice(20, 26), slice(40, 46))  # on the cyan half


def _render(tmp_path, name, detected, gt):
    image = np.zeros((SIZE, SIZE, 3))
    image[:, : SIZE // 2] = (1.0, 0.0, 0.0)  # the detection colour
    image[:, SIZE // 2 :] = (0.0, 1.0, 1.0)  # the truth colour
    scores = np.random.default_rng(0).gamma(2.0, 1.0, (SIZE, SIZE))
    path = plotting.save_overview(tmp_path / f"{name}.png", image, scores, detected, gt)
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
    path = plotting.save_overview(tmp_path / "o.png", image, scores, detected, threshold=40.0)
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
    stretched, n = plotting.tail_stretch(rx_like)
    shown = stretched / np.log10(n)
    # a median-to-max stretch leaves every pixel but one in the bottom 5 % of the colours;
    # the tail stretch spreads the background over them (63 % above 5 %)
    assert (linear > 0.05).sum() == 1
    assert 0.6 < (shown > 0.05).mean() < 0.66
    assert stretched[5, 5] == np.log10(n) and np.nanmin(stretched) == 0.0


def test_tail_stretch_does_not_invent_targets():
    clean = np.random.default_rng(1).normal(10.0, 1.0, (100, 100))
    clean[0, :3] = np.nan
    stretched, n = plotting.tail_stretch(clean)
    assert n == clean.size - 3 and np.isnan(stretched[0, :3]).all()
    # the top fifth of the colours holds the top n**-0.8 of the pixels (0.06 % here)
    assert (stretched / np.log10(n) > 0.8).mean() < 0.001


def test_titles_say_true_or_false_colour():
    wl = np.linspace(400, 1000, 30)
    assert composite.composite_title(wl, 30).startswith("true colour (")
    assert composite.composite_title(None, 30) == "false colour (PCA 1-3 as RGB)"
    swir = np.linspace(1000, 2500, 30)
    assert composite.composite_title(swir, 30).startswith("false colour")
