"""Peak memory of ``rednmf detect`` per method on a large scene (issue: <= 3x the cube).

Each method runs the real command (``python -m rednmf detect CUBE --out DIR --method M``) in a
child process; its peak resident set size is the child's ``ru_maxrss`` (``os.wait4``), the
same number as ``/usr/bin/time -v``'s "Maximum resident set size". The cube is a synthetic
scene (:func:`rednmf.datasets.make_scene`) saved as float32 ``.npy``, 1000 x 1000 x 50 by
default (200 MB). Also printed: the peak of a child that only imports what ``detect`` imports
(the interpreter and libraries, before any data), and with MSNet or BSDM among the methods
the same with torch imported too.

Printed: one table, ``method | peak RSS MB | peak / cube | wall s | exit``; the medians over
``--repeat`` runs. ``--max-iter N`` passes ``--max-iter N`` to the command (default: the
method's own ``max_iter``): the iterative methods allocate the same blocks at every
iteration, so their peak does not depend on the count, only their wall time does.
``--param KEY=VALUE`` (repeatable) passes ``--param KEY=VALUE`` to the command (the deep
methods' ``epochs``, for example).

With ``--fit-only`` the command is not run: the memory of the detector's fit is separated from
the pipeline's. One child loads the ``.npy`` into memory and builds the detector
(``get_detector(method)``), another does the same and calls ``fit(cube)`` (which scores every
pixel and thresholds); the table gives both peaks and what the fit adds to the first.

Usage::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_memory.py \
        [--methods grx,lrx] [--rows 1000 --cols 1000 --bands 50] [--repeat 1] [--no-report]
        [--max-iter N] [--param KEY=VALUE] [--fit-only]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Writes the synthetic cube as float32 .npy (run in a child process).
MAKE = (
    "import numpy as np; from rednmf.datasets import make_scene; "
    "cube, _ = make_scene(rows={r}, cols={c}, bands={b}, random_state=0); "
    "np.save({path!r}, np.asarray(cube, dtype=np.float32))"
)


#: The ``--fit-only`` children: load the cube, build the detector, and fit it or not.
FIT = (
    "import numpy as np; from rednmf.detectors.registry import get_detector; "
    "cube = np.load({path!r}); det = get_detector({method!r}); {fit}"
)


def peak_rss(argv: list[str]) -> tuple[float, float, int]:
    """Run ``argv``; return its peak RSS in MB, its wall seconds and its exit status."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(f"  {' '.join(argv[3:6])}: exit {proc.returncode}: {err.strip()[-300:]}")
    return usage.ru_maxrss / 1024.0, wall, proc.returncode  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="grx")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--cols", type=int, default=1000)
    parser.add_argument("--bands", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument("--fit-only", action="store_true")
    parser.add_argument("--max-iter", type=int, default=None)
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rednmf-mem-") as tmp:
        path = Path(tmp) / "scene.npy"
        # in a child: a forked child's ru_maxrss counts the parent's pages before its exec,
        # so this process must never hold the cube
        subprocess.run(
            [sys.executable, "-c", MAKE.format(path=str(path), r=args.rows, c=args.cols,
                                              b=args.bands)],
            check=True,
        )  # fmt: skip
        cube_mb = path.stat().st_size / 2**20
        print(f"cube {args.rows} x {args.cols} x {args.bands} float32: {cube_mb:.0f} MB")
        imports = (
            "import rednmf.cli, rednmf.pipeline, rednmf.detectors.rx, rednmf.report, "
            "rednmf.plotting, rednmf.io.detections, rasterio, fiona, matplotlib.pyplot, sklearn"
        )
        base, _, _ = peak_rss([sys.executable, "-c", imports])
        methods = [m for m in args.methods.split(",") if m]
        if {"msnet", "bsdm"} & set(methods):  # the deep methods' floor: torch imported too
            deep, _, _ = peak_rss([sys.executable, "-c", imports + ", torch"])
            print(f"imports alone: {base:.0f} MB; with torch: {deep:.0f} MB\n")
        else:
            print(f"imports alone: {base:.0f} MB\n")
        if args.fit_only:
            fit_only(path, methods, args.repeat, cube_mb)
            return
        print("| method | peak RSS MB | peak / cube | wall s | exit |")
        print("|---|---|---|---|---|")
        for method in methods:
            runs = []
            for i in range(args.repeat):
                argv = [sys.executable, "-m", "rednmf", "detect", str(path), "--out",
                        str(Path(tmp) / f"out{i}"), "--method", method]  # fmt: skip
                argv += ["--no-report"] if args.no_report else []
                argv += [] if args.max_iter is None else ["--max-iter", str(args.max_iter)]
                argv += [a for kv in args.param for a in ("--param", kv)]
                runs.append(peak_rss(argv))
            mb = statistics.median(r[0] for r in runs)
            wall = statistics.median(r[1] for r in runs)
            codes = ",".join(str(r[2]) for r in runs)
            print(f"| {method} | {mb:.0f} | {mb / cube_mb:.2f} | {wall:.1f} | {codes} |")


def fit_only(path: Path, methods: list[str], repeat: int, cube_mb: float) -> None:
    """Print the peaks of loading the cube alone and of fitting it, per method (medians)."""
    print("| method | load + build MB | load + fit MB | fit adds MB | added / cube | fit wall s |")
    print("|---|---|---|---|---|---|")
    for method in methods:
        loads, fits = [], []
        for _ in range(repeat):
            for fit, runs in (("", loads), ("det.fit(cube)", fits)):
                code = FIT.format(path=str(path), method=method, fit=fit)
                runs.append(peak_rss([sys.executable, "-c", code]))
        load = statistics.median(r[0] for r in loads)
        peak = statistics.median(r[0] for r in fits)
        wall = statistics.median(r[1] for r in fits) - statistics.median(r[1] for r in loads)
        print(f"| {method} | {load:.0f} | {peak:.0f} | {peak - load:.0f} | "
              f"{(peak - load) / cube_mb:.2f} | {wall:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
