"""Old vs new BRAD scorer (PCA projection, then local dual-window RX) on REDNMF's anomaly matrix.

Run from the repository root::

    .venv/bin/python benchmarks/bench_brad.py [--scene abu-airport-1] [--repeats 9]
        [--tile 1] [--one-thread] [--scores-only]

The anomaly matrix ``S`` is that of the default ``REDNMF().fit(cube)`` on the
scene (float32), and both scorers get it with the arguments the detector passes
to :func:`rednmf.scoring.cube.brad`: inner 9, outer 27, 20 components, ridge
0.01, float64 scores. ``--tile n`` repeats ``S`` n x n times (``--tile 10``: a
10^6-pixel scene from airport-1).

The previous implementation (float64 copies of every pixel block for the PCA
covariance and again for the projection; ring sums of the values and of the
``k(k+1)/2`` band products from two :func:`scipy.ndimage.uniform_filter` passes
per window; full ``k x k`` covariances solved by :func:`numpy.linalg.solve`) is
kept below, verbatim but for names and the step timers. Old and new run
interleaved in the same process, ``--repeats`` times; the table gives the
median milliseconds of each step and of the whole ``brad`` call, and the
speed-up. BLAS (the PCA covariance and projection) keeps its default threads
unless ``--one-thread``; the local RX is single-threaded NumPy either way.
``--scores-only`` skips the timings and prints, for every scene given (or all
ten), the largest score difference and both AUCs.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import numpy as np
from scipy.ndimage import uniform_filter
from threadpoolctl import threadpool_info, threadpool_limits

from rednmf import REDNMF
from rednmf.backend import get_backend
from rednmf.datasets import list_scenes, load_benchmark
from rednmf.metrics import roc_auc
from rednmf.scoring.cube import brad, pca_project
from rednmf.scoring.windows import loading_floor

lrx = importlib.import_module("rednmf.scoring.local_rx")

INNER, OUTER, N_PCA, RIDGE = 9, 27, 20, 0.01
Timer = Callable[[str, float], None]


def _no_timer(step: str, seconds: float) -> None:
    pass


# -- the previous implementation ----------------------------------------------

_OLD_PCA_BLOCK = 1 << 15
_OLD_BLOCK_ELEMENTS = 1 << 24


def old_pca_project(arr: np.ndarray, n_components: int) -> np.ndarray:
    rows, cols, bands = arr.shape
    x = arr.reshape(-1, bands)
    mean = x.mean(axis=0, dtype=np.float64)
    blocks = range(0, x.shape[0], _OLD_PCA_BLOCK)
    cov = np.zeros((bands, bands), dtype=np.float64)
    for a in blocks:
        xc = x[a : a + _OLD_PCA_BLOCK].astype(np.float64, copy=False) - mean
        cov += xc.T @ xc
    cov /= x.shape[0]
    _, vecs = np.linalg.eigh(cov)
    vecs = vecs[:, ::-1][:, :n_components]
    pivot = np.argmax(np.abs(vecs), axis=0)
    signs = np.sign(vecs[pivot, np.arange(n_components)])
    signs[signs == 0] = 1.0
    vecs = vecs * signs
    proj = np.empty((x.shape[0], n_components), dtype=arr.dtype)
    for a in blocks:
        proj[a : a + _OLD_PCA_BLOCK] = (
            x[a : a + _OLD_PCA_BLOCK].astype(np.float64, copy=False) - mean
        ) @ vecs
    return proj.reshape(rows, cols, n_components)


def _old_box_sum(a: np.ndarray, size: int) -> np.ndarray:
    sizes = (size, size) + (1,) * (a.ndim - 2)
    return uniform_filter(a, size=sizes, mode="constant", cval=0.0) * float(size * size)


def _old_ring_sum(a: np.ndarray, inner: int, outer: int) -> np.ndarray:
    return _old_box_sum(a, outer) - _old_box_sum(a, inner)


def old_local_rx(
    arr: np.ndarray, inner: int, outer: int, ridge: float, timer: Timer = _no_timer
) -> np.ndarray:
    rows, cols, k = arr.shape
    x = arr.astype(np.float64, copy=False)
    x = x - x.reshape(-1, k).mean(axis=0, dtype=np.float64)
    global_var = float(np.mean(x * x))
    floor = 1e-12 * global_var if global_var > 0.0 else 1e-12
    iu, ju = np.triu_indices(k)
    m = iu.size
    sym = np.empty((k, k), dtype=np.intp)
    sym[iu, ju] = np.arange(m)
    sym[ju, iu] = np.arange(m)
    sym_index = sym.ravel()
    half = outer // 2
    block = max(1, _OLD_BLOCK_ELEMENTS // (cols * max(m, k * k, 1)) - 2 * half)
    eye = np.eye(k)
    scores = np.empty((rows, cols))
    for r0 in range(0, rows, block):
        t0 = time.perf_counter()
        r1 = min(rows, r0 + block)
        e0, e1 = max(0, r0 - half), min(rows, r1 + half)
        xe = x[e0:e1]
        keep = slice(r0 - e0, r1 - e0)
        count = _old_ring_sum(np.ones(xe.shape[:2]), inner, outer)[keep]
        count = np.rint(count).reshape(-1, 1)
        s1 = _old_ring_sum(xe, inner, outer)[keep].reshape(-1, k)
        s2 = _old_ring_sum(xe[..., iu] * xe[..., ju], inner, outer)[keep].reshape(-1, m)
        t1 = time.perf_counter()
        mu = s1 / count
        cov = np.take(s2, sym_index, axis=1).reshape(-1, k, k)
        cov /= count[:, :, None]
        cov -= mu[:, :, None] * mu[:, None, :]
        trace = np.trace(cov, axis1=1, axis2=2)
        load = np.maximum(ridge * trace / k, floor)
        cov += load[:, None, None] * eye
        d = x[r0:r1].reshape(-1, k) - mu
        sol = np.linalg.solve(cov, d[..., None])[..., 0]
        scores[r0:r1] = np.einsum("pk,pk->p", d, sol).reshape(r1 - r0, cols)
        timer("sums", t1 - t0)
        timer("solve", time.perf_counter() - t1)
    return scores


def old_brad(S: np.ndarray) -> np.ndarray:
    return old_local_rx(old_pca_project(S, N_PCA), INNER, OUTER, RIDGE)


# -- the new local RX, step by step -------------------------------------------


def new_local_rx_steps(arr: np.ndarray, inner: int, outer: int, ridge: float, timer: Timer) -> Any:
    """``rednmf.scoring.local_rx.local_rx_backend`` with its window sums and solves timed."""
    xp = get_backend("numpy")
    rows, cols, k = arr.shape
    x = arr.astype(np.float64)
    x = x - x.reshape(-1, k).mean(axis=0, dtype=np.float64)
    global_var = float(np.mean(x * x))
    floor = loading_floor(global_var)
    offs = lrx._packed_offsets(k + 1)
    half = outer // 2
    per_row = cols * offs[-1]
    block = max(1, lrx._BLOCK_ELEMENTS // per_row - 2 * half)
    strip = max(1, lrx._CHUNK_ELEMENTS // per_row)
    strip = min(max(strip, lrx._min_rows(offs[-1])), block, rows)
    sub = max(lrx._min_rows(offs[-1]), lrx._SUB_ELEMENTS // per_row)
    work = lrx._Workspace(xp, strip, min(sub, strip), cols, k, np.dtype(np.float64))
    scores = np.empty((rows, cols))
    windows = (outer // 2, inner // 2)
    for r0 in range(0, rows, block):
        r1 = min(rows, r0 + block)
        e0, e1 = max(0, r0 - half), min(rows, r1 + half)
        t0 = time.perf_counter()
        z = np.empty((e1 - e0, cols, offs[-1]))
        lrx._moment_products(x[e0:e1], offs, work.sub, z, xp)
        for w, h in enumerate(windows):
            lrx._window_sum(z, h, r0 - e0 - 1, work.carry[w], xp)
        timer("sums", time.perf_counter() - t0)
        for part in lrx._split(r0, r1, strip):
            t0 = time.perf_counter()
            lo, hi = part.start - e0, part.stop - e0
            moments = lrx._ring_moments(z, lo, hi, windows, work.carry, work, xp)
            t1 = time.perf_counter()
            xs = x[part].reshape(-1, k)
            chunk, bad = lrx._chunk_scores(moments, xs, ridge, floor, work, xp)
            assert len(bad) == 0, "the LU fallback is not timed here"
            scores[part] = chunk.reshape(-1, cols)
            timer("sums", t1 - t0)
            timer("solve", time.perf_counter() - t1)
    return scores


# -- the comparison ------------------------------------------------------------


def anomaly_cube(scene: str) -> tuple[np.ndarray, np.ndarray]:
    cube, gt = load_benchmark(scene)
    return REDNMF().fit(cube).anomaly(cube), gt


def timings(S: np.ndarray, repeats: int, one_thread: bool) -> None:
    steps = [
        ("PCA projection", "pca"),
        ("local RX: window sums", "sums"),
        ("local RX: covariances and solves", "solve"),
        ("local RX (steps timed)", "lrx_steps"),
        ("local RX", "lrx"),
        ("brad() total", "total"),
    ]
    times: dict[tuple[str, str], list[float]] = {}

    def timer_for() -> tuple[Timer, dict[str, float]]:
        acc: dict[str, float] = {}

        def timer(step: str, seconds: float) -> None:
            acc[step] = acc.get(step, 0.0) + seconds

        return timer, acc

    def record(which: str, step: str, seconds: float) -> None:
        times.setdefault((which, step), []).append(seconds)

    limits = threadpool_limits(1) if one_thread else nullcontext()
    xp = get_backend("numpy")
    with limits:
        for _ in range(repeats):
            for which in ("old", "new"):
                t0 = time.perf_counter()
                P = old_pca_project(S, N_PCA) if which == "old" else pca_project(S, N_PCA)
                record(which, "pca", time.perf_counter() - t0)
                timer, acc = timer_for()
                t0 = time.perf_counter()
                if which == "old":
                    old_local_rx(P, INNER, OUTER, RIDGE, timer)
                else:
                    new_local_rx_steps(P, INNER, OUTER, RIDGE, timer)
                record(which, "lrx_steps", time.perf_counter() - t0)
                for step, seconds in acc.items():
                    record(which, step, seconds)
                t0 = time.perf_counter()
                if which == "old":
                    old_local_rx(P, INNER, OUTER, RIDGE)
                else:
                    lrx.local_rx_backend(P, INNER, OUTER, RIDGE, np.dtype(np.float64), xp)
                record(which, "lrx", time.perf_counter() - t0)
                t0 = time.perf_counter()
                if which == "old":
                    old_brad(S)
                else:
                    brad(S, INNER, OUTER, N_PCA, RIDGE)
                record(which, "total", time.perf_counter() - t0)

    print("| step | old ms | new ms | speed-up |")
    print("|---|---|---|---|")
    for label, step in steps:
        old = 1e3 * statistics.median(times[("old", step)])
        new = 1e3 * statistics.median(times[("new", step)])
        print(f"| {label} | {old:.1f} | {new:.1f} | {old / new:.1f}x |")
    print(f"\n(medians of {repeats}; BLAS threads: {'1' if one_thread else 'default'})")


def score_check(S: np.ndarray, gt: np.ndarray | None, name: str) -> None:
    """One table row: the largest differences between old and new scores, and both AUCs.

    Absolute, relative to the largest score, and relative pixel by pixel: over
    all pixels, and over those scoring above 1e-6 of the median (a true score
    of 0 comes out as rounding noise, ~1e-20, in both implementations).
    """
    old, new = old_brad(S), brad(S, INNER, OUTER, N_PCA, RIDGE)
    diff = np.abs(new - old)
    rel = diff / np.abs(old)
    sig = np.abs(old) > 1e-6 * np.median(np.abs(old))
    aucs = f"{roc_auc(old, gt):.10f} | {roc_auc(new, gt):.10f}" if gt is not None else "- | -"
    print(
        f"| {name} | {diff.max():.1e} | {diff.max() / np.abs(old).max():.1e} | {rel.max():.1e} "
        f"| {rel[sig].max():.1e} | {aucs} |",
        flush=True,
    )


SCORE_HEADER = (
    "| scene | max abs diff | max diff / max score | max rel diff | max rel diff, scores > "
    "1e-6 median | AUC old | AUC new |\n|---|---|---|---|---|---|---|"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scene", default=None, help="default: abu-airport-1 (all: --scores-only)"
    )
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--tile", type=int, default=1, help="repeat S n x n times")
    parser.add_argument("--one-thread", action="store_true", help="BLAS and local RX on 1 thread")
    parser.add_argument("--scores-only", action="store_true")
    args = parser.parse_args()

    blas = ", ".join(f"{i['internal_api']} {i['num_threads']} thr" for i in threadpool_info())
    print(f"{platform.processor() or platform.machine()}, BLAS: {blas}")
    if args.scores_only:
        scenes = [args.scene] if args.scene else [p.stem for p in list_scenes()]
        print("\n" + SCORE_HEADER)
        for name in scenes:
            S, gt = anomaly_cube(name)
            score_check(S, gt, name)
        return
    name = args.scene or "abu-airport-1"
    S, gt = anomaly_cube(name)
    if args.tile > 1:
        S, gt = np.tile(S, (args.tile, args.tile, 1)), None
    print(f"scene {name}, S {S.shape} {S.dtype}, tile {args.tile}, repeats {args.repeats}\n")
    timings(S, args.repeats, args.one_thread)
    print("\n" + SCORE_HEADER)
    score_check(S, gt, name)


if __name__ == "__main__":
    main()
