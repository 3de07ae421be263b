"""Fixtures shared by the test suite."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from rednmf.datasets import data_dir as _find_data_dir
from rednmf.datasets import extra_data_dir as _find_extra_data_dir
from rednmf.datasets import load_benchmark, make_scene


def _scene_folder(folder: Path, probe: str, env: str, names: str) -> Path:
    """``folder`` if it holds ``probe``; else skip (a failure when ``$CI`` is set)."""
    if not (folder / probe).is_file():
        msg = f"scenes not found in {folder}; set {env} to the folder holding {names}"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return folder


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Folder of the benchmark scenes; skipped if absent (a failure when ``$CI`` is set)."""
    return _scene_folder(
        _find_data_dir(), "abu-airport-1.mat", "REDNMF_DATA", "abu-airport-1.mat and the others"
    )


@pytest.fixture(scope="session")
def extra_data_dir(data_dir: Path) -> Path:
    """Folder of the two extra real scenes (had-extra); skipped if absent (failure under CI)."""
    return _scene_folder(
        _find_extra_data_dir(),
        "abu-urban-2.mat",
        "REDNMF_DATA_EXTRA",
        "abu-urban-2.mat and muufl-gulfport_taef.mat",
    )


@pytest.fixture(scope="session")
def airport1(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(cube, gt)`` of ABU Airport-1 (100 x 100 x 205, uint16, 144 anomaly pixels)."""
    return load_benchmark(data_dir / "abu-airport-1.mat")


@pytest.fixture
def small_scene() -> tuple[np.ndarray, np.ndarray]:
    """A small synthetic ``(cube, gt)``: 40 x 40 x 50, 6 single-pixel targets."""
    return make_scene(rows=40, cols=40, bands=50, n_endmembers=3, n_targets=6, random_state=0)


@pytest.fixture(scope="module")
def client():
    """A 2-worker Dask ``LocalCluster`` client (skips without dask[distributed]).

    Threads in this process: starts in well under a second. Worker processes
    (``processes=True``) give the same numbers but take seconds to start.
    """
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def _find(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    """Debian's headless chromium driven by Selenium (skipped without it, failure under CI)."""
    chromium = _find("chromium", "chromium-browser")
    driver = _find("chromedriver")
    if chromium is None or driver is None:
        msg = "chromium and chromedriver not found; apt-get install chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    web = webdriver.Chrome(service=Service(driver), options=options)
    web.set_window_size(1400, 1200)
    yield web
    web.quit()


@pytest.fixture(scope="session")
def real_crops(data_dir, extra_data_dir) -> dict[str, np.ndarray]:
    """The middle 32 x 32 pixels (every band, the stored values) of each of the 12 real scenes."""
    files = sorted(data_dir.glob("*.mat")) + sorted(extra_data_dir.glob("*.mat"))
    crops = {}
    for f in files:
        cube = np.asarray(load_benchmark(f)[0])
        r, c = cube.shape[0] // 2 - 16, cube.shape[1] // 2 - 16
        crops[f.stem] = np.ascontiguousarray(cube[r : r + 32, c : c + 32])
    assert len(crops) == 12
    return crops
