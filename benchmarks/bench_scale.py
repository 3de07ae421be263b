"""Every method at scene scale through ``rednmf detect``: time and peak memory per phase.

For each size (``--sizes``, sides of square scenes) and band count (``--bands``) a
synthetic scene (:func:`rednmf.datasets.make_scene`, seed 0) is saved as a float32
``.npy`` cube with its ground truth beside it. Each method then runs the real command,
``python -m rednmf detect CUBE --gt TRUTH --out DIR --method M``, in a child process:

- per phase (read, setup, fit, threshold, write) the wall seconds of the run summary
  (``seconds``) and the process's peak RSS at the end of the phase (``peak_rss_mib``,
  ``getrusage``: it never decreases, so a phase raised the peak when its number is larger
  than the one before);
- the whole command: wall seconds (start-up, imports and exit included), its peak RSS
  (the child's ``ru_maxrss``, as ``/usr/bin/time -v`` reports it) and both as ratios:
  ``wall / fit`` (the fit phase includes the scoring: what the command adds to the
  detector; setup, the detector's import, is not in it) and ``peak / cube`` (the float32
  cube's bytes).

Beside a method, where one exists, the reference a user would otherwise pick, run in a
child process on the same ``.npy`` (its seconds exclude loading the cube; its peak RSS
includes it, as ``rednmf detect``'s does):

- ``grx``: Spectral Python's ``spectral.rx(cube)``;
- ``lrx``: ``spectral.rx(X, window=(7, 21))`` (the windowed-Gaussian background, a
  covariance per pixel) on ``X`` = the cube's first 10 principal components, the
  projection LRX itself makes (``n_pca=10``, ``inner=7``, ``outer=21``; projection
  time not counted);
- ``nmf``: scikit-learn's ``NMF(n_components=8, init='random', solver='mu',
  max_iter=200, tol=1e-4)`` on the min-max scaled pixels, scored by the residual norm.

A run longer than ``--cap`` seconds is stopped and its row says ``over cap``.

Usage::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_scale.py \
        [--methods grx,lrx,...] [--sizes 250,500,1000] [--bands 100,200] [--cap 600] \
        [--no-references]

Prints the peak RSS of a child that only imports what a run imports (no data: the floor
under every row, which dominates ``peak / cube`` at small sizes), then one markdown table
(rows as they finish, then the table again in one piece).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Writes the synthetic cube (float32) and its ground truth (uint8), in a child process.
MAKE = (
    "import numpy as np; from rednmf.datasets import make_scene; "
    "cube, gt = make_scene(rows={n}, cols={n}, bands={b}, random_state=0); "
    "np.save({cube!r}, np.asarray(cube, dtype=np.float32)); del cube; "
    "np.save({gt!r}, (np.asarray(gt) != 0).astype(np.uint8))"
)

#: What ``rednmf detect`` imports by the end of a run, without any data.
IMPORTS = (
    "import rednmf.cli, rednmf.pipeline, rednmf.detectors.rx, rednmf.report, rednmf.plotting, "
    "rednmf.io.detections, rednmf.svgplot, rasterio, rasterio.features, sklearn.metrics"
)

#: The references, run in a child process: print the seconds of the computation.
REFERENCES = {
    "grx": (
        "spectral.rx",
        "import time, numpy as np, spectral; x = np.load({cube!r}); t = time.perf_counter(); "
        "s = spectral.rx(x); print(time.perf_counter() - t)",
    ),
    "lrx": (
        "spectral.rx, window (7, 21), 10 PCs",
        "import time, numpy as np, spectral; from rednmf.scoring.cube import pca_project; "
        "x = pca_project(np.load({cube!r}), 10).astype(np.float64); t = time.perf_counter(); "
        "s = spectral.rx(x, window=(7, 21)); print(time.perf_counter() - t)",
    ),
    "nmf": (
        "sklearn NMF (mu, 8, 200 it.)",
        "import time, numpy as np; from sklearn.decomposition import NMF; "
        "x = np.load({cube!r}); x = x.reshape(-1, x.shape[2]); t = time.perf_counter(); "
        "x = (x - x.min()) / (x.max() - x.min()); "
        "m = NMF(n_components=8, init='random', solver='mu', max_iter=200, tol=1e-4, "
        "random_state=0); w = m.fit_transform(x); "
        "s = np.linalg.norm(x - w @ m.components_, axis=1); print(time.perf_counter() - t)",
    ),
}


def run_capped(argv: list[str], cap: float) -> dict[str, object]:
    """Run ``argv`` for at most ``cap`` seconds; its wall, peak RSS (MiB), exit and output."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, start_new_session=True)
        over = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > cap:
                over = True
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {
            "wall": time.perf_counter() - start,
            "peak": usage.ru_maxrss / 1024.0,  # KiB on Linux
            "code": proc.returncode,
            "over": over,
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace"),
        }


def non_deep_methods() -> list[str]:
    """Every registered method that does not train a network."""
    from rednmf.detectors.registry import DEEP_METHODS, list_methods

    return [name for name, _ in list_methods() if name not in DEEP_METHODS]


def one_method(
    method: str, cube: Path, gt: Path, folder: Path, cap: float, cube_mib: float
) -> str:
    """The table row of ``method`` on ``cube``."""
    argv = [sys.executable, "-m", "rednmf", "detect", str(cube), "--gt", str(gt),
            "--out", str(folder), "--method", method]  # fmt: skip
    r = run_capped(argv, cap)
    if r["over"]:
        cells = [f"over cap ({cap:.0f} s)"] + [""] * 8
    elif r["code"] != 0:
        last = (str(r["stderr"]).strip().splitlines() or ["?"])[-1]
        cells = [f"exit {r['code']}: {last[:80]}"] + [""] * 8
    else:
        found = sorted(folder.glob(f"*_{method}/*_{method}_summary.json"))
        s = json.loads(found[-1].read_text())
        sec, mib = s["seconds"], s["peak_rss_mib"]
        phases = ("read", "setup", "fit", "threshold", "write")
        cells = [
            " / ".join(f"{sec[p]:.2f}" for p in phases),
            f"{r['wall']:.1f}",
            f"{r['wall'] / sec['fit']:.2f}",
            " / ".join(f"{mib[p]:.0f}" for p in phases),
            f"{r['peak']:.0f}",
            f"{r['peak'] / cube_mib:.2f}",
            "" if s["auc"] is None else f"{s['auc']:.3f}",
        ]
        cells += [""] * 2
    if method in REFERENCES:
        name, code = REFERENCES[method]
        ref = run_capped([sys.executable, "-c", code.format(cube=str(cube))], cap)
        if ref["over"]:
            cells[-2:] = [name, f"over cap ({cap:.0f} s)"]
        elif ref["code"] != 0:
            cells[-2:] = [name, f"exit {ref['code']}"]
        else:
            secs = float(str(ref["stdout"]).split()[-1])
            cells[-2:] = [name, f"{secs:.1f} s, {ref['peak']:.0f} MiB"]
    return "| " + method + " | " + " | ".join(cells) + " |"


HEADER = (
    "| method | pixels × bands | s: read / setup / fit / threshold / write | wall s "
    "| wall / fit | peak MiB at the end of read / setup / fit / threshold / write | peak MiB "
    "| peak / cube | AUC "
    "| reference | reference fit, peak |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=None, help="comma-separated; default: non-deep")
    parser.add_argument("--sizes", default="250,500,1000", help="comma-separated scene sides")
    parser.add_argument("--bands", default="100,200", help="comma-separated band counts")
    parser.add_argument("--cap", type=float, default=600.0, help="seconds per run")
    parser.add_argument("--no-references", action="store_true")
    args = parser.parse_args()
    methods = args.methods.split(",") if args.methods else non_deep_methods()
    if args.no_references:
        REFERENCES.clear()
    rows = []
    imports = run_capped([sys.executable, "-c", IMPORTS], args.cap)
    print(f"imports alone (what a detect run imports, no data): {imports['peak']:.0f} MiB\n")
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory(prefix="rednmf-scale-") as tmp:
        for n in (int(v) for v in args.sizes.split(",")):
            for b in (int(v) for v in args.bands.split(",")):
                cube, gt = Path(tmp) / f"s{n}x{b}.npy", Path(tmp) / f"s{n}x{b}_gt.npy"
                # in a child: this process never holds the cube (a forked child's
                # ru_maxrss would count the parent's pages)
                make = MAKE.format(n=n, b=b, cube=str(cube), gt=str(gt))
                subprocess.run([sys.executable, "-c", make], check=True)
                cube_mib = cube.stat().st_size / 2**20
                for method in methods:
                    folder = Path(tmp) / "out"
                    row = one_method(method, cube, gt, folder, args.cap, cube_mib)
                    row = row.replace(" | ", f" | {n}×{n} × {b} | ", 1)
                    rows.append(row)
                    print(row, flush=True)
                    shutil.rmtree(folder, ignore_errors=True)
                cube.unlink()
                gt.unlink()
    print()
    print(HEADER)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
