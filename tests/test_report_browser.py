"""The HTML report in a real headless browser: Debian's chromium driven by Selenium.

Skipped only when the browser is missing outside CI; under CI (``$CI`` set) a
missing browser or driver is a failure (``.ci/run`` installs both).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from rednmf.datasets import make_scene
from rednmf.pipeline import detect_scene


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, dict, np.ndarray]:
    tmp = tmp_path_factory.mktemp("report")
    cube, gt = make_scene(rows=40, cols=50, bands=30, n_endmembers=3, n_targets=5, random_state=4)
    gt = np.asarray(gt) != 0
    path = tmp / "scene.npz"
    np.savez(path, data=cube, map=gt.astype(np.uint8), wavelengths=np.linspace(400, 2400, 30))
    summary = detect_scene(path, tmp / "out", method="lrx", params={"inner": 3, "outer": 9})
    return Path(summary["files"]["report"]), summary, gt


def _text(web, element_id: str) -> str:
    return web.find_element("id", element_id).text


def test_report_is_self_contained(report):
    path, _, _ = report
    text = path.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "fetch(" not in text and "XMLHttpRequest" not in text


def test_report_loads_clicks_and_slides(browser, report):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    path, summary, gt = report
    web = browser
    web.get(path.as_uri())
    assert web.title.startswith("rednmf report")
    # no console error, no network request of any kind
    errors = [e for e in web.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    assert web.execute_script("return performance.getEntriesByType('resource').length") == 0
    # the detection count starts at the run's own
    assert _text(web, "count") == f"detections: {summary['n_detections']}"
    assert _text(web, "pd").startswith("P_D: ") and _text(web, "pf").startswith("P_F: ")

    # click a known anomaly pixel: its spectrum and the background band appear
    r, c = (int(v) for v in np.argwhere(gt)[0])
    canvas = web.find_element("id", "map")
    w, h = canvas.size["width"], canvas.size["height"]
    rows, cols = gt.shape
    x = (c + 0.5) * w / cols - w / 2
    y = (r + 0.5) * h / rows - h / 2
    ActionChains(web).move_to_element_with_offset(canvas, x, y).click().perform()
    info = _text(web, "pixel-info")
    assert info.startswith(f"row {r}, col {c}, score ") and "truth: anomaly" in info
    points = web.find_element("id", "pixel-spectrum").get_attribute("points").split()
    assert len(points) == 30
    assert web.find_element("id", "bg-band").get_attribute("points")
    assert "background: " in info and " 0 pixels" not in info

    # move the slider: the count and P_F change
    before = (_text(web, "count"), _text(web, "pf"), _text(web, "thr"))
    slider = web.find_element("id", "slider")
    slider.click()
    for _ in range(150):
        slider.send_keys(Keys.ARROW_LEFT)
    after = (_text(web, "count"), _text(web, "pf"), _text(web, "thr"))
    assert after[2] != before[2]
    assert int(after[0].split()[-1]) != int(before[0].split()[-1])
    assert float(after[1].split()[-1]) > float(before[1].split()[-1])
    # layers switch without error
    web.find_element("id", "layer-scores").click()
    web.find_element("id", "layer-gt").click()
    errors = [e for e in web.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
