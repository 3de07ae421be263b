"""The HTML report in a real headless browser: Debian's chromium driven by Selenium.

Skipped only when the browser is missing outside CI; under CI (``$CI`` set) a
missing browser or driver is a failure (``.ci/run`` installs both).

The run is filtered (``min_area=5``, ``exclude_border=2``): the page must show
the summary's counts, and its slider must apply the same filters.
"""

from __future__ import annotations

import base64
import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from rednmf.datasets import make_scene
from rednmf.io.scene import Scene
from rednmf.pipeline import detect_scene

BANDS = 30
WAVELENGTHS = np.linspace(400.0, 2400.0, BANDS)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, dict, np.ndarray, np.ndarray]:
    tmp = tmp_path_factory.mktemp("report")
    cube, gt = make_scene(
        rows=48, cols=60, bands=BANDS, n_endmembers=3, n_targets=8, target_size=3, random_state=4
    )
    gt = np.asarray(gt) != 0
    scene = Scene(cube=cube, gt=gt, name="scene", wavelengths=WAVELENGTHS)
    summary = detect_scene(
        scene,
        tmp / "out",
        method="lrx",
        params={"inner": 3, "outer": 9},
        contamination=0.04,
        min_area=5,
        exclude_border=2,
    )
    return Path(summary["files"]["report"]), summary, gt, cube


def _text(web, element_id: str) -> str:
    return web.find_element("id", element_id).text


def _messages(web) -> list[dict]:
    return web.get_log("browser")


def _scores(web, shape) -> np.ndarray:
    data = json.loads(web.find_element("id", "data").get_attribute("textContent"))
    return np.frombuffer(base64.b64decode(data["scores"]), np.float32).reshape(shape)


def _expected(scores: np.ndarray, gt: np.ndarray, threshold: float) -> dict[str, str]:
    """The page's statistics at ``threshold``, computed here: scipy labels, the run's filters."""
    above = np.isfinite(scores) & (scores > threshold)
    labels, n = ndimage.label(above, structure=np.ones((3, 3)))
    keep = np.zeros(n + 1, bool)
    rows, cols = above.shape
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        area = int((labels[box] == k).sum())
        inside = box[0].start >= 2 and box[1].start >= 2
        inside &= box[0].stop <= rows - 2 and box[1].stop <= cols - 2
        keep[k] = area >= 5 and inside
    det = keep[labels]
    return {
        "count": f"detections: {int(keep.sum())}",
        "pixels": f"pixels: {int(det.sum())}",
        "pd": f"P_D: {det[gt].mean():.4f}",
        "pf": f"P_F: {det[~gt].mean():.6f}",
    }


def _shown(web) -> dict[str, str]:
    return {k: _text(web, k) for k in ("count", "pixels", "pd", "pf")}


def _click_pixel(web, r: int, c: int) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    canvas = web.find_element("id", "map")
    w, h, left, top, s, vx, vy = web.execute_script(
        "const c = arguments[0], r = c.getBoundingClientRect();"
        "return [r.width, r.height, c.clientLeft, c.clientTop,"
        " +c.dataset.scale, +c.dataset.viewX, +c.dataset.viewY];",
        canvas,
    )
    x = left + vx + s * (c + 0.5) - w / 2
    y = top + vy + s * (r + 0.5) - h / 2
    ActionChains(web).move_to_element_with_offset(
        canvas, int(round(x)), int(round(y))
    ).click().perform()


def test_report_is_self_contained(report):
    path, _, _, _ = report
    text = path.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "fetch(" not in text and "XMLHttpRequest" not in text


def test_report_in_the_browser(browser, report):
    from selenium.webdriver.common.keys import Keys

    path, summary, gt, cube = report
    web = browser
    web.get(path.as_uri())
    assert web.title == "rednmf report: lrx on scene"
    # no console message of any level, no network request of any kind
    assert _messages(web) == []
    assert web.execute_script("return performance.getEntriesByType('resource').length") == 0

    # the counts are the summary's: the same filtered detections (--min-area, --exclude-border)
    assert summary["n_detections"] < summary["n_above_threshold"]  # the filters dropped some
    assert _shown(web) == {
        "count": f"detections: {summary['n_detections']}",
        "pixels": f"pixels: {summary['n_detected_pixels']}",
        "pd": f"P_D: {summary['pd']:.4f}",
        "pf": f"P_F: {summary['pf']:.6f}",
    }
    # the table is the CSV
    with open(summary["files"]["csv"], newline="") as fh:
        csv_rows = list(csv.DictReader(fh))
    table = web.find_element("id", "detections")
    body = table.find_elements("css selector", "tbody tr")
    assert [tr.get_attribute("data-id") for tr in body] == [r["id"] for r in csv_rows]
    head = [th.text for th in table.find_elements("css selector", "thead th")]
    assert head[:6] == ["id", "peak score", "mean score", "pixels", "row", "col"]
    assert "lon" not in head  # no CRS

    # sorting by pixels, then the other way
    table.find_elements("css selector", "thead th")[3].click()
    areas = [int(tr.find_elements("css selector", "td")[3].text) for tr in body_rows(table)]
    assert areas == sorted(areas)
    table.find_elements("css selector", "thead th")[3].click()
    areas = [int(tr.find_elements("css selector", "td")[3].text) for tr in body_rows(table)]
    assert areas == sorted(areas, reverse=True)

    # zoom: the + button and the wheel change the view
    canvas = web.find_element("id", "map")
    before = (
        canvas.get_attribute("data-scale"),
        web.execute_script("return arguments[0].toDataURL()", canvas),
    )
    web.find_element("id", "zoom-in").click()
    after = (
        canvas.get_attribute("data-scale"),
        web.execute_script("return arguments[0].toDataURL()", canvas),
    )
    assert float(after[0]) == pytest.approx(1.5 * float(before[0]))
    assert after[1] != before[1]
    web.execute_script(
        "const c = arguments[0], r = c.getBoundingClientRect();"
        "c.dispatchEvent(new WheelEvent('wheel', {deltaY: -300, clientX: r.left + 50,"
        " clientY: r.top + 50, bubbles: true, cancelable: true}));",
        canvas,
    )
    assert float(canvas.get_attribute("data-scale")) > float(after[0])
    web.find_element("id", "zoom-fit").click()
    assert canvas.get_attribute("data-scale") == before[0]

    # clicking a row centres the map on that detection and shows its peak pixel's spectrum
    row = csv_rows[1]
    web.find_element("css selector", f"#detections tr[data-id='{row['id']}']").click()
    assert float(canvas.get_attribute("data-centre-row")) == pytest.approx(
        float(row["row"]), abs=0.01
    )
    assert float(canvas.get_attribute("data-centre-col")) == pytest.approx(
        float(row["col"]), abs=0.01
    )
    pr, pc = int(row["peak_row"]), int(row["peak_col"])
    info = _text(web, "pixel-info")
    assert info.startswith(f"row {pr}, col {pc}, score ") and "spectrum in full" in info
    points = web.find_element("id", "pixel-spectrum").get_attribute("points").split()
    assert len(points) == BANDS
    shown = np.asarray(web.execute_script(f"return Array.from(spectrum({pr * 60 + pc}).v)"))
    span = np.ptp(cube.reshape(-1, BANDS), axis=0)
    assert np.all(np.abs(shown - cube[pr, pc]) <= span / 65534 + 1e-9)  # 16 bits a band
    # the x axis: wavelengths in nm, with ticks
    assert _text(web, "spectrum-xlabel") == "wavelength (nm)"
    ticks = web.find_elements("css selector", "#spectrum text")
    assert {"500", "1000", "1500", "2000"} <= {t.text for t in ticks}

    # clicking a known anomaly pixel on the map shows its spectrum and background band
    web.find_element("id", "zoom-fit").click()
    web.execute_script("document.getElementById('map').dispatchEvent(new MouseEvent('dblclick'))")
    r, c = (int(v) for v in np.argwhere(gt)[0])
    _click_pixel(web, r, c)
    info = _text(web, "pixel-info")
    assert info.startswith(f"row {r}, col {c}, score ") and "truth: anomaly" in info
    assert web.find_element("id", "bg-band").get_attribute("points")
    assert "background: " in info and " 0 pixels" not in info

    # the slider: counts, P_D and P_F follow, with the run's filters, at the page's threshold
    scores = _scores(web, gt.shape)
    slider = web.find_element("id", "slider")
    slider.click()
    start = _shown(web)
    for _ in range(250):
        slider.send_keys(Keys.ARROW_LEFT)
    thr = float(web.find_element("id", "thr").get_attribute("data-value"))
    moved = _shown(web)
    assert moved == _expected(scores, gt, thr)
    assert all(moved[k] != start[k] for k in ("count", "pixels", "pd", "pf")), (start, moved)

    # layers switch without a message
    web.find_element("id", "layer-scores").click()
    web.find_element("id", "layer-gt").click()
    assert _messages(web) == []


def body_rows(table):
    return table.find_elements("css selector", "tbody tr")
