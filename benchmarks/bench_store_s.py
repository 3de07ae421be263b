"""What not storing ``S`` and the scaled ``X`` costs REDNMF per iteration (the memory trade).

A scene over :data:`rednmf.solvers.rednmf_blocks.STORED_S_BYTES` is fitted without a scaled
copy and without ``S`` (each block's ``S`` is formed again from the factors of its S step);
a smaller one keeps both. This fits the same synthetic scene both ways in one process, the
runs interleaved (``STORED_S_BYTES`` set to 0 or to a huge value), and prints the median
iteration time of each (the callback's time stamps), the ratio and the fit's wall time.
The results are the same bit for bit (``tests/solvers/test_solver_rednmf.py``).

Usage::

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_store_s.py \
        [--rows 500 --cols 500 --bands 200] [--iter 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from rednmf.datasets import make_scene
from rednmf.detectors.rednmf import REDNMF
from rednmf.solvers import _kernels, rednmf_blocks


def fit_ms(cube: np.ndarray, stored: bool, n_iter: int) -> tuple[float, float]:
    """Median iteration ms and fit seconds with ``S`` stored or formed per block."""
    rednmf_blocks.STORED_S_BYTES = 1 << 62 if stored else 0
    stamps: list[float] = []
    det = REDNMF(max_iter=n_iter, scorer="norm")
    start = time.perf_counter()
    det.fit(cube, callback=lambda t, f: stamps.append(time.perf_counter()))
    return float(np.median(np.diff(stamps))) * 1e3, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--cols", type=int, default=500)
    parser.add_argument("--bands", type=int, default=200)
    parser.add_argument("--iter", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cube, _ = make_scene(rows=args.rows, cols=args.cols, bands=args.bands, random_state=0)
    cube = np.asarray(cube, dtype=np.float32)
    _kernels.load(np.float32)
    runs: dict[str, list[tuple[float, float]]] = {"stored": [], "formed": []}
    for _ in range(args.repeat):
        for mode in runs:
            runs[mode].append(fit_ms(cube, mode == "stored", args.iter))
    print(f"REDNMF, {args.rows} x {args.cols} x {args.bands} float32, {args.iter} iterations, "
          f"scorer='norm', medians of {args.repeat} interleaved runs\n")  # fmt: skip
    print("| S and X | iteration ms (each run) | median ms | fit s (median) |")
    print("|---|---|---|---|")
    med = {}
    for mode, rs in runs.items():
        med[mode] = statistics.median(r[0] for r in rs)
        each = ", ".join(f"{r[0]:.0f}" for r in rs)
        fit = statistics.median(r[1] for r in rs)
        print(f"| {mode} | {each} | {med[mode]:.0f} | {fit:.1f} |")
    print(f"\nformed / stored: {med['formed'] / med['stored']:.2f}")


if __name__ == "__main__":
    main()
