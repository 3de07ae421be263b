"""Speed of the REDNMF solver: per-iteration cost, default fit, scaling in pixels.

Run from the repository root::

    .venv/bin/python benchmarks/bench_solver.py [--data DIR] [--repeats 5] [--scaling 4,5,6]

Prints, measured in this one run:

1. ms per iteration on abu-airport-1 (100 x 100 x 205, rank 8, the default
   lambda): the plain transcription of the update equations (14)-(17) as
   printed (``update_*`` of the test oracle ``tests/oracles/reference.py``:
   every product formed as written, ``XX'`` and the four bands x bands
   products with ``S+``/``S-`` of (15) included) in float64 and float32, with
   one BLAS thread and with one per CPU, each in the faster of the two layouts
   of ``X`` (band-major or pixel-major); the block engine with one thread and one per CPU, in the
   detector's configuration (``ENGINE_DEFAULTS``: the noise-aware lambda and
   the factored M step) and its layout (pixel-major); and the ratios.
2. Wall time of ``REDNMF().fit(cube)`` with every default (fit + scoring),
   median of ``--repeats``.
3. Scaling: synthetic scenes of 10^k pixels x 200 bands, float32 (one
   subprocess per size): seconds per iteration (timed between the first and
   the last iteration), set-up (scaling, initialisation, Gram matrix, lambda)
   and scoring seconds, seconds for the default 100 iterations (measured, or
   projected from ``--scaling-iter`` iterations for 10^6 and up), the resident
   memory before the fit (interpreter, libraries and the cube; numba and the
   compiled kernels are loaded before it, about 100 MB, as the other
   libraries are) and at its peak, and the growth during the fit relative to
   the cube's size.
   ``--backend torch --device cuda`` runs the scaling fits on a GPU (the
   issue's 1000 x 1000 x 200 target: ``--scaling-only --scaling 6
   --scaling-iter 100 --backend torch --device cuda``; peak memory is then
   the host's, not the GPU's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from rednmf._validation import cube_to_matrix
from rednmf.datasets import data_dir, load_benchmark
from rednmf.detectors.rednmf import REDNMF
from rednmf.engines import TorchEngine
from rednmf.preprocessing import scale_data
from rednmf.solvers import _kernels
from rednmf.solvers import rednmf as R
from rednmf.solvers.init import initialize_factors

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test oracles
from oracles import reference as REF  # noqa: E402

RANK, LAM, BETA = 8, 4.0, 1.0

#: The detector's defaults where the solver's differ (``REDNMF()``: noise-aware lambda and the
#: factored M step; the solver function keeps the paper's as its own defaults).
ENGINE_DEFAULTS = {"lam_mode": "noise", "m_split": "factored"}


def plain_ms_per_iter(X: np.ndarray, W, H, M, lam_abs: float, n_iter: int) -> float:
    """The plain transcription: the update functions (14)-(17) applied one after the other."""
    t0 = time.perf_counter()
    for _ in range(n_iter):
        S = REF.update_S(X - W @ H, lam_abs, "l21", "column")
        Sp, Sn = R._split(S)
        W = REF.update_W(X, W, H, Sp, Sn, 1e-10)
        M = REF.update_M(X, M, H, Sp, Sn, 1e-10)
        H = REF.update_H(X, W, H, M, Sp, Sn, BETA, 1e-10)
    return (time.perf_counter() - t0) / n_iter * 1e3


def engine_ms_per_iter(X, W, H, M, n_iter: int, **kw) -> float:
    t0 = time.perf_counter()
    R.rednmf_solve_blocks(X, W, H, M, lam=LAM, beta=BETA, max_iter=n_iter, tol=0, **kw)
    return (time.perf_counter() - t0) / n_iter * 1e3


def per_iteration(cube: np.ndarray, repeats: int) -> None:
    X, _ = cube_to_matrix(scale_data(cube.astype(np.float32), "minmax"))
    X = np.asfortranarray(X)  # pixel-major, as REDNMF() lays it out (the compiled S step needs it)
    W, H, M = initialize_factors(X, RANK, "nndsvda", np.random.default_rng(0))
    lam_abs = LAM * R.svd_residual_scale(X, RANK)
    cpus = len(os.sched_getaffinity(0))

    def plain(dtype: type) -> float:
        """The plain transcription's median, in whichever layout of X is faster for it."""
        return min(
            statistics.median(
                plain_ms_per_iter(*(A.astype(dtype) for A in (Xl, W, H, M)), lam_abs, 5)
                for _ in range(repeats)
            )
            for Xl in (np.ascontiguousarray(X), X)
        )

    rows = {}
    for threads in (1, cpus):
        with threadpool_limits(threads):
            rows[f"plain transcription, float64, {threads} BLAS thread(s)"] = plain(np.float64)
            rows[f"plain transcription, float32, {threads} BLAS thread(s)"] = plain(np.float32)
    for jobs in (1, cpus):
        rows[f"block engine, float32, {jobs} thread(s)"] = statistics.median(
            engine_ms_per_iter(X, W, H, M, 20, n_jobs=jobs, **ENGINE_DEFAULTS)
            for _ in range(repeats)
        )
    base1 = rows["plain transcription, float64, 1 BLAS thread(s)"]
    base = rows[f"plain transcription, float64, {cpus} BLAS thread(s)"]
    print(
        f"| solver (abu-airport-1, rank 8) | ms / iteration | vs plain f64, 1 thread "
        f"| vs plain f64, {cpus} threads |"
    )
    print("|---|---|---|---|")
    for name, ms in rows.items():
        print(f"| {name} | {ms:.1f} | {base1 / ms:.1f}x | {base / ms:.1f}x |")


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


def _rss_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak since the last reset) of this process, in MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak_rss() -> None:
    """Reset the peak resident size (Linux: write 5 to /proc/self/clear_refs)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def synthetic_cube(pixels: int, bands: int = 200, seed: int = 0) -> np.ndarray:
    """A ``side x side x bands`` float32 scene: a mixture of 6 endmembers plus N(0, 0.01^2)."""
    side = int(round(np.sqrt(pixels)))
    rng = np.random.default_rng(seed)
    k = 6
    ends = rng.uniform(0.1, 1.0, size=(k, bands)).astype(np.float32)
    cube = np.empty((side * side, bands), dtype=np.float32)
    for a in range(0, side * side, 1 << 16):  # in chunks: no temporary as large as the cube
        b = min(a + (1 << 16), side * side)
        ab = rng.dirichlet(np.ones(k), size=b - a).astype(np.float32)
        cube[a:b] = ab @ ends + rng.normal(0, 0.01, size=(b - a, bands)).astype(np.float32)
    return cube.reshape(side, side, bands)


def _scaling_child(
    pixels: int, n_iter: int, out_of_core: bool = False, backend: str = "numpy", device=None
) -> None:
    """Runs in a subprocess: one fit on a synthetic scene, prints a JSON line."""
    cube = synthetic_cube(pixels)
    side = cube.shape[0]
    if (
        backend == "numpy"
    ):  # numba and the compiled kernels (about 100 MB), like the other libraries
        _kernels.load()
    _reset_peak_rss()
    base = _rss_mb("VmRSS")
    stamps: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        engine = (
            TorchEngine(device) if backend == "torch" else ("out-of-core" if out_of_core else None)
        )
        det = REDNMF(max_iter=n_iter, engine=engine).fit(
            cube, callback=lambda t, f: stamps.append(time.perf_counter())
        )
        seconds = time.perf_counter() - t0
    peak = _rss_mb("VmHWM")
    per_iter = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
    print(
        json.dumps(
            {
                "pixels": side * side,
                "iters": det.n_iter_,
                "seconds": seconds,
                "per_iter": per_iter,
                "before": stamps[0] - t0 - per_iter,  # scaling, init, Gram, lambda
                "after": t0 + seconds - stamps[-1],  # scoring
                "cube_mb": cube.nbytes / 2**20,
                "base_mb": base,
                "peak_mb": peak,
            }
        )
    )


def scaling(
    exponents: list[int], iters_large: int, out_of_core: bool = False, backend: tuple = ()
) -> None:
    print()
    print("| pixels x 200 bands | iterations run | s measured | s / iteration | set-up s "
          "| scoring s | s for 100 iterations | cube MB | RSS before fit MB | peak RSS MB "
          "| (peak - before) / cube |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for e in exponents:
        n_iter = 100 if e <= 5 else iters_large
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(10**e), str(n_iter), str(int(out_of_core))]
            + list(backend),
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        total = r["before"] + 100 * r["per_iter"] + r["after"]
        note = "" if r["iters"] == 100 else " (projected)"
        print(
            f"| 10^{e} | {r['iters']} | {r['seconds']:.1f} | {r['per_iter']:.3f} "
            f"| {r['before']:.1f} | {r['after']:.1f} | {total:.0f}{note} | {r['cube_mb']:.0f} "
            f"| {r['base_mb']:.0f} | {r['peak_mb']:.0f} "
            f"| {(r['peak_mb'] - r['base_mb']) / r['cube_mb']:.2f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--scaling", default="4,5,6", help="exponents of the pixel counts; '' = skip")
    ap.add_argument("--scaling-iter", type=int, default=10)
    ap.add_argument(
        "--out-of-core",
        action="store_true",
        help="scaling with REDNMF(engine='out-of-core'): data scaled on the fly, S on disk",
    )
    ap.add_argument("--scaling-only", action="store_true", help="skip parts 1 and 2")
    ap.add_argument(
        "--backend",
        default="numpy",
        help="scaling: numpy, or torch for REDNMF(engine=TorchEngine(device))",
    )
    ap.add_argument("--device", default=None, help="scaling: the TorchEngine device, e.g. cuda")
    ap.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _scaling_child(*args.child[:2], bool(args.child[2]), args.backend, args.device)
        return
    blas = [
        (i["internal_api"], i.get("architecture"), i["num_threads"]) for i in threadpool_info()
    ]
    print(f"machine: {platform.machine()}, {len(__import__('os').sched_getaffinity(0))} CPUs, "
          f"BLAS {blas}")  # fmt: skip
    if not args.scaling_only:
        folder = Path(args.data) if args.data else data_dir()
        cube, gt = load_benchmark(folder / "abu-airport-1.mat")
        per_iteration(cube, args.repeats)
        default_fit(cube, gt, args.repeats)
    if args.scaling:
        backend = ["--backend", args.backend] + (["--device", args.device] if args.device else [])
        print(f"scaling: backend={args.backend}, device={args.device}")
        exps = [int(e) for e in args.scaling.split(",")]
        scaling(exps, args.scaling_iter, args.out_of_core, tuple(backend))


if __name__ == "__main__":
    main()
