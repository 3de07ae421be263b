"""What writing a run's outputs costs, and how fast its report answers in a browser.

Run from the repository root::

    .venv/bin/python benchmarks/bench_outputs.py --sizes 100 --method rednmf --repeats 3
    .venv/bin/python benchmarks/bench_outputs.py --sizes 1000 --bands 200 --method grx \\
        --repeats 1 --browser

Each size is a synthetic ``make_scene`` cube of ``size x size`` pixels and
``--bands`` bands (float32, wavelengths 400-2500 nm, so the overview is true
colour) run in memory through :func:`rednmf.pipeline.detect_scene` (the same
code as ``rednmf detect``). The first table gives, as medians over
``--repeats`` runs, the fit and write phases of the run summary
(``seconds``), their ratio and the sizes of the report and the overview; the
write phase of the first run alone (it imports matplotlib, rasterio and
Fiona, as every ``rednmf detect`` process does) in a column of its own.

With ``--browser``, the last run's report is opened in headless chromium
(Selenium) and the second table gives the median over 7 calls, in ms, of
the page's own handlers, timed inside the page with ``performance.now()``:
moving the threshold slider (statistics, 8-connected detections with the
run's filters, layers repainted), showing a pixel's spectrum with its local
background (what hovering does), and a zoom step.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np


def one_run(size: int, bands: int, method: str, folder: Path) -> dict[str, float]:
    """Fit and write one scene; return the measured seconds and sizes."""
    from rednmf.datasets import make_scene
    from rednmf.io.scene import Scene
    from rednmf.pipeline import detect_scene

    cube, gt = make_scene(size, size, bands, n_targets=12, target_size=2, random_state=0)
    scene = Scene(
        cube=cube.astype(np.float32),
        gt=np.asarray(gt) != 0,
        name=f"scene{size}",
        wavelengths=np.linspace(400.0, 2500.0, bands),
    )
    del cube
    summary = detect_scene(scene, folder, method=method)
    files = {k: Path(v) for k, v in summary["files"].items()}
    return {
        "fit": summary["seconds"]["fit"],
        "write": summary["seconds"]["write"],
        "report_mb": files["report"].stat().st_size / 1e6,
        "overview_kb": files["overview"].stat().st_size / 1e3,
        "detections": summary["n_detections"],
        "report": files["report"],
    }


_TIMING = """
const t = [];
function time(f) { const t0 = performance.now(); f(); return performance.now() - t0; }
const slider = document.getElementById('slider');
const out = {slider: [], spectrum: [], zoom: []};
for (let i = 0; i < 7; i++) {
  slider.value = String(400 + 40 * i);
  out.slider.push(time(() => slider.dispatchEvent(new Event('input'))));
  out.spectrum.push(time(() => showPixel((37 * i) % D.rows, (53 * i) % D.cols)));
  out.zoom.push(time(() => zoomAt(100, 100, i % 2 ? 1 / 1.5 : 1.5)));
}
return out;
"""


def browser_timings(report: Path) -> dict[str, float]:
    """Median ms of the slider, spectrum and zoom handlers of ``report`` in headless chromium."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    web = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        web.set_window_size(1400, 1000)
        web.set_script_timeout(600)
        web.get(report.resolve().as_uri())
        times = web.execute_script(_TIMING)
    finally:
        web.quit()
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="100", help="comma-separated scene sides")
    parser.add_argument("--bands", type=int, default=205)
    parser.add_argument("--method", default="rednmf")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--browser", action="store_true", help="time the report in chromium")
    args = parser.parse_args()
    rows, pages = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            runs = [one_run(size, args.bands, args.method, Path(tmp)) for _ in range(args.repeats)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "report"}
            rows.append(
                f"| {size * size} | {args.bands} | {args.method} | {med['detections']:.0f} "
                f"| {med['fit']:.3f} | {runs[0]['write']:.3f} | {med['write']:.3f} "
                f"| {med['write'] / med['fit']:.1%} "
                f"| {med['report_mb']:.2f} | {med['overview_kb']:.0f} |"
            )
            if args.browser:
                ms = browser_timings(runs[-1]["report"])
                pages.append(
                    f"| {size * size} | {args.bands} | {ms['slider']:.1f} "
                    f"| {ms['spectrum']:.1f} | {ms['zoom']:.1f} |"
                )
    print(
        "| pixels | bands | method | detections | fit s | write s, first run | write s "
        "| write / fit | report MB | overview kB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if pages:
        print("\n| pixels | bands | slider ms | spectrum (hover) ms | zoom ms |")
        print("|---|---|---|---|---|")
        print("\n".join(pages))


if __name__ == "__main__":
    main()
