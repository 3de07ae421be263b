"""What writing a run's outputs costs: the report's size and the write time against the fit.

Run from the repository root::

    .venv/bin/python benchmarks/bench_outputs.py --sizes 100 --repeats 3
    .venv/bin/python benchmarks/bench_outputs.py --sizes 1000 --method grx --repeats 1

Each size is a synthetic ``make_scene`` cube of ``size x size`` pixels and
``--bands`` bands (wavelengths 400-2500 nm, so the overview is true colour),
saved as ``.npz`` with its ground truth and run through
:func:`rednmf.pipeline.detect_scene` (the same code as ``rednmf detect``). The
table gives, as medians over ``--repeats`` runs, the fit and write phases of
the run summary (``seconds``), their ratio, the report's size and the
overview's, and the time of the overview and of the report alone (each
rewritten once more outside the run, with the run's own inputs).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def one_run(size: int, bands: int, method: str, folder: Path) -> dict[str, float]:
    """Fit and write one scene; return the measured seconds and sizes."""
    from rednmf.datasets import make_scene
    from rednmf.pipeline import detect_scene

    cube, gt = make_scene(size, size, bands, n_targets=12, target_size=2, random_state=0)
    path = folder / f"scene{size}.npz"
    if not path.exists():
        np.savez(
            path,
            data=cube.astype(np.float32),
            map=(np.asarray(gt) != 0).astype(np.uint8),
            wavelengths=np.linspace(400.0, 2500.0, bands),
        )
    summary = detect_scene(path, folder / "out", method=method)
    files = {k: Path(v) for k, v in summary["files"].items()}
    return {
        "fit": summary["seconds"]["fit"],
        "write": summary["seconds"]["write"],
        "report_mb": files["report"].stat().st_size / 1e6,
        "overview_kb": files["overview"].stat().st_size / 1e3,
        "detections": summary["n_detections"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="100", help="comma-separated scene sides")
    parser.add_argument("--bands", type=int, default=205)
    parser.add_argument("--method", default="rednmf")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(
        "| pixels | bands | method | detections | fit s | write s | write / fit "
        "| report MB | overview kB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            runs = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                runs.append(one_run(size, args.bands, args.method, Path(tmp)))
                runs[-1]["total"] = time.perf_counter() - t0
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(
                f"| {size * size} | {args.bands} | {args.method} | {med['detections']:.0f} "
                f"| {med['fit']:.3f} | {med['write']:.3f} | {med['write'] / med['fit']:.1%} "
                f"| {med['report_mb']:.2f} | {med['overview_kb']:.0f} |"
            )


if __name__ == "__main__":
    main()
