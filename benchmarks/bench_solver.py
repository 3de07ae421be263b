"""Speed of the REDNMF solver: per-iteration cost, default fit, scaling in pixels.

Run from the repository root::

    .venv/bin/python benchmarks/bench_solver.py [--data DIR] [--repeats 5] [--scaling 4,5,6]

Prints, measured in this one run:

1. ms per iteration on abu-airport-1 (100 x 100 x 205, rank 8, the default
   lambda): the plain transcription of the update equations (14)-(17) in
   float64 and float32, one BLAS thread; the block engine with one and with two
   threads; and the ratios.
2. Wall time of ``REDNMF().fit(cube)`` with every default (fit + BRAD scoring),
   median of ``--repeats``.
3. Scaling: synthetic scenes of 10^k pixels x 200 bands (one subprocess per
   size, so that the peak resident memory is the fit's own): seconds per
   iteration, seconds for the default 100 iterations (measured, or projected
   from ``--scaling-iter`` iterations for the largest sizes), peak memory and
   its ratio to the cube's float32 size.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from rednmf._validation import cube_to_matrix
from rednmf.data import data_dir, load_benchmark
from rednmf.detectors.rednmf import REDNMF
from rednmf.preprocessing import scale_data
from rednmf.solvers import rednmf as R
from rednmf.solvers.init import initialize_factors

RANK, LAM, BETA = 8, 4.0, 1.0


def plain_ms_per_iter(X: np.ndarray, W, H, M, lam_abs: float, n_iter: int) -> float:
    """The plain transcription: the update functions (14)-(17) applied one after the other."""
    G = X @ X.T
    t0 = time.perf_counter()
    for _ in range(n_iter):
        S = R._update_S(X - W @ H, lam_abs, "l21", "column")
        Sp, Sn = R._split(S)
        W = R._update_W(X, W, H, Sp, Sn, 1e-10)
        M = R._update_M(X, G, M, H, Sp, Sn, 1e-10)
        H = R._update_H(X, W, H, M, Sp, Sn, BETA, 1e-10)
    return (time.perf_counter() - t0) / n_iter * 1e3


def engine_ms_per_iter(X, W, H, M, n_iter: int, **kw) -> float:
    t0 = time.perf_counter()
    R.rednmf_solve(X, W, H, M, lam=LAM, beta=BETA, max_iter=n_iter, tol=0, **kw)
    return (time.perf_counter() - t0) / n_iter * 1e3


def per_iteration(cube: np.ndarray, repeats: int) -> None:
    X, _ = cube_to_matrix(scale_data(cube.astype(np.float32), "minmax"))
    W, H, M = initialize_factors(X, RANK, "nndsvda", np.random.default_rng(0))
    lam_abs = LAM * R.svd_residual_scale(X, RANK)
    rows = {}
    with threadpool_limits(1):
        f64 = [A.astype(np.float64) for A in (X, W, H, M)]
        rows["plain transcription, float64, 1 thread"] = statistics.median(
            plain_ms_per_iter(*f64, lam_abs, 5) for _ in range(repeats)
        )
        rows["plain transcription, float32, 1 thread"] = statistics.median(
            plain_ms_per_iter(X, W, H, M, lam_abs, 5) for _ in range(repeats)
        )
    for jobs in (1, 2):
        rows[f"block engine, float32, {jobs} thread(s)"] = statistics.median(
            engine_ms_per_iter(X, W, H, M, 20, n_jobs=jobs) for _ in range(repeats)
        )
    base = rows["plain transcription, float64, 1 thread"]
    base32 = rows["plain transcription, float32, 1 thread"]
    print("| solver (abu-airport-1, rank 8) | ms / iteration | vs plain f64 | vs plain f32 |")
    print("|---|---|---|---|")
    for name, ms in rows.items():
        print(f"| {name} | {ms:.1f} | {base / ms:.1f}x | {base32 / ms:.1f}x |")


def default_fit(cube: np.ndarray, gt: np.ndarray, repeats: int) -> None:
    from rednmf.metrics import roc_auc

    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        det = REDNMF().fit(cube)
        times.append(time.perf_counter() - t0)
    auc = roc_auc(det.decision_scores_, gt)
    print()
    print("| REDNMF() defaults on abu-airport-1 | median s | min s | max s | AUC |")
    print("|---|---|---|---|---|")
    print(
        f"| fit + scoring, {det.n_iter_} iterations | {statistics.median(times):.2f} "
        f"| {min(times):.2f} | {max(times):.2f} | {auc:.4f} |"
    )


def _scaling_child(pixels: int, n_iter: int) -> None:
    """Runs in a subprocess: one fit on a synthetic scene, prints a JSON line."""
    side = int(round(np.sqrt(pixels)))
    rng = np.random.default_rng(0)
    bands, k = 200, 6
    ends = rng.uniform(0.1, 1.0, size=(k, bands)).astype(np.float32)
    ab = rng.dirichlet(np.ones(k), size=side * side).astype(np.float32)
    cube = (ab @ ends).reshape(side, side, bands)
    cube += rng.normal(0, 0.01, size=cube.shape).astype(np.float32)
    del ab
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        det = REDNMF(max_iter=n_iter).fit(cube)
        seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "pixels": side * side,
                "iters": det.n_iter_,
                "seconds": seconds,
                "cube_mb": cube.nbytes / 2**20,
                "base_mb": base / 1024,
                "peak_mb": peak / 1024,
            }
        )
    )


def scaling(exponents: list[int], iters_large: int) -> None:
    print()
    print("| pixels x 200 bands | iterations run | s measured | s / iteration "
          "| s for 100 iterations | peak RSS MB | cube float32 MB | peak / cube |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for e in exponents:
        n_iter = 100 if e <= 5 else iters_large
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(10**e), str(n_iter)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        per = r["seconds"] / r["iters"]
        note = "" if r["iters"] == 100 else " (projected)"
        print(
            f"| 10^{e} | {r['iters']} | {r['seconds']:.1f} | {per:.3f} | {per * 100:.0f}{note} "
            f"| {r['peak_mb']:.0f} | {r['cube_mb']:.0f} | {r['peak_mb'] / r['cube_mb']:.2f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--scaling", default="4,5,6", help="exponents of the pixel counts; '' = skip")
    ap.add_argument("--scaling-iter", type=int, default=10)
    ap.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _scaling_child(*args.child)
        return
    blas = [
        (i["internal_api"], i.get("architecture"), i["num_threads"]) for i in threadpool_info()
    ]
    print(f"machine: {platform.machine()}, {len(__import__('os').sched_getaffinity(0))} CPUs, "
          f"BLAS {blas}")  # fmt: skip
    cube, gt = load_benchmark((args.data and __import__("pathlib").Path(args.data) or data_dir())
                              / "abu-airport-1.mat")  # fmt: skip
    per_iteration(cube, args.repeats)
    default_fit(cube, gt, args.repeats)
    if args.scaling:
        scaling([int(e) for e in args.scaling.split(",")], args.scaling_iter)


if __name__ == "__main__":
    main()
