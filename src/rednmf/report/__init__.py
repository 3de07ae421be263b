"""Self-contained HTML reports: one run (:mod:`.scene`) and ``rednmf bench`` (:mod:`.bench`).

Each page is one file that works offline with no server and no network
request: its data are embedded as base64 typed arrays and JSON, its script and
style are the package data files of ``rednmf/report/assets/`` inlined.
"""

from rednmf.report.bench import markdown_html, render_bench_report, write_bench_report
from rednmf.report.scene import render_scene_report, scene_spectra, write_scene_report

__all__ = [
    "markdown_html",
    "render_bench_report",
    "render_scene_report",
    "scene_spectra",
    "write_bench_report",
    "write_scene_report",
]
