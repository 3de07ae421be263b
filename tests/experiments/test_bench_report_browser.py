"""The ``rednmf bench`` HTML report in a real headless browser (Debian's chromium, Selenium).

A quick Table 2 run (GRX and LRX on the synthetic scene) writes ``report.html`` next to
``report.md``; the page must load offline with no console error and no request, show the
report's tables as HTML tables, and draw one score map per scene whose threshold slider and
method selector update the pixel count, the 8-connected detections, P_D and P_F live, to the
values computed here from the fitted scores.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from rednmf.detectors.registry import get_detector
from rednmf.experiments import make_context, run_bench
from rednmf.experiments.common import load_scene

METHODS = ["grx", "lrx"]


@pytest.fixture(scope="module")
def bench_page(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench-html")
    run_bench(make_context(out, None, quick=True, methods=METHODS), ["table2"], log=lambda _: None)
    return out


def _stats(web, root) -> dict[str, str]:
    return {
        k: root.find_element("css selector", "." + k).text for k in ("count", "pixels", "pd", "pf")
    } | {"thr": root.find_element("css selector", ".thr").get_attribute("data-value")}


def _expected(scores: np.ndarray, gt: np.ndarray, threshold: float) -> dict[str, str]:
    """What the page must show at ``threshold``, computed independently here."""
    det = np.isfinite(scores) & (scores > threshold)
    _, n = ndimage.label(det, structure=np.ones((3, 3)))
    return {
        "count": f"detections: {n}",
        "pixels": f"pixels: {int(det.sum())}",
        "pd": f"P_D: {det[gt].mean():.4f}",
        "pf": f"P_F: {det[~gt].mean():.6f}",
    }


def test_bench_page_is_self_contained_with_html_tables(bench_page):
    page = (bench_page / "report.html").read_text(encoding="utf-8")
    assert (bench_page / "report.md").is_file()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "fetch(" not in page and "XMLHttpRequest" not in page
    assert "<table class='bench'><thead><tr><th>method</th>" in page
    assert page.count("<section class='scene-map'") == 1  # one scene: synthetic-small


def test_bench_page_in_the_browser(browser, bench_page):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    web = browser
    web.get((bench_page / "report.html").as_uri())
    assert web.title == "rednmf bench report"
    assert web.get_log("browser") == []  # no message of any level
    assert web.execute_script("return performance.getEntriesByType('resource').length") == 0

    # the report's Table 2 is an HTML table with one row per method
    table = web.find_elements("css selector", "table.bench")[0]
    body_rows = [r.text.split()[0] for r in table.find_elements("css selector", "tbody tr")]
    assert body_rows == METHODS

    # the embedded score maps are the fitted ones
    data = json.loads(web.find_element("id", "bench-data").get_attribute("textContent"))
    cube, gt = load_scene("synthetic-small", None)  # quick mode's synthetic scene
    gt = np.asarray(gt) != 0
    (entry,) = data["maps"]
    scores = {
        m: np.frombuffer(base64.b64decode(entry["scores"][m]), np.float32).reshape(gt.shape)
        for m in METHODS
    }
    np.testing.assert_allclose(
        scores["grx"], get_detector("grx").fit(cube).decision_scores_, rtol=1e-6
    )

    panel = web.find_element("id", "map-0")
    assert panel.get_attribute("data-scene") == "synthetic-small"
    shown = _stats(web, panel)
    thr = float(shown.pop("thr"))
    start = float(np.mean(scores["grx"] > thr))
    assert 0.005 <= start <= 0.012  # the slider starts at the top 1 %
    assert shown == _expected(scores["grx"], gt, thr)

    slider = panel.find_element("css selector", ".slider")
    slider.click()
    for _ in range(120):
        slider.send_keys(Keys.ARROW_LEFT)
    moved = _stats(web, panel)
    thr2 = float(moved.pop("thr"))
    assert thr2 < thr
    assert moved == _expected(scores["grx"], gt, thr2)
    assert moved["pixels"] != shown["pixels"] and moved["pf"] != shown["pf"]

    # another method: its own scores, the same slider position
    Select(panel.find_element("css selector", ".method")).select_by_value("lrx")
    other = _stats(web, panel)
    thr3 = float(other.pop("thr"))
    assert thr3 != thr2
    assert other == _expected(scores["lrx"], gt, thr3)

    panel.find_element("css selector", ".truth").click()

    # the ROC curves of every method, their AUC from the full score maps
    from rednmf.metrics import roc_auc

    roc = web.find_element("id", "roc-0")
    for m in METHODS:
        assert web.find_element("id", f"roc-0-{m}").get_attribute("points")
        assert f"{m} (AUC {roc_auc(scores[m], gt):.4f})" in roc.text
    roc.find_element("css selector", ".logx").click()  # linear axis, then back
    assert "false-positive rate" in roc.text and "(log)" not in roc.text

    # the tables sort on a click of a header: by the first number of "ours (paper, diff)"
    head = table.find_elements("css selector", "thead th")
    column = next(i for i, th in enumerate(head) if th.text.strip() != "method")
    for _ in range(2):
        head[column].click()
        cells = [
            tr.find_elements("css selector", "td")[column].text
            for tr in table.find_elements("css selector", "tbody tr")
        ]
        numbers = [float(c.split()[0]) for c in cells if c.split()[0] != "-"]
        order = head[column].get_attribute("aria-sort")
        assert numbers == sorted(numbers, reverse=order == "descending")
    assert order == "descending"
    assert web.get_log("browser") == []  # no message of any level
