"""Global RX against Spectral Python's, and GRX, LRX and CRD against their multiply-add floor.

One process, one BLAS thread (``threadpoolctl``), a synthetic float32 scene
(:func:`rednmf.datasets.make_scene`, 1000 x 1000 x 50 by default). Times are medians of
``--repeats`` runs (after a warm-up run) of the detector's ``fit`` (validation, scores and
threshold: what ``rednmf detect`` runs), the methods interleaved run by run.

**The floor** of a method is the arithmetic it cannot avoid, counted in multiply-adds
(a lone addition or multiplication counts as one), divided by the rate at which this
machine multiplies and adds in float64 on one thread: a 2000 x 2000 matrix product,
best of three (the most the hardware gives; element-wise passes over memory run far
below it). ``n`` pixels, ``d`` bands:

* GRX: ``2 n d^2``, one pass for the covariance and one for the distances (the count of
  issue 25).
* LRX (its defaults: PCA to ``k = 10`` components, windows 7 / 21): the PCA,
  ``n d^2 / 2 + n d k`` (covariance, projection); then per pixel the ``k(k + 1) / 2``
  products of its moments, the running window sums of the ``p = (k + 1)(k + 2) / 2``
  packed moments (a vertical and a horizontal step of an addition and a subtraction
  for each of the two windows: ``8 p``, and ``p`` for the ring), the covariance from the
  moments (``k(k + 1)``), its ``LDL^T`` factorisation (``k^3 / 6``) and the solve
  (``k^2``).
* CRD (its defaults: windows 3 / 9, ``m = 72`` ring samples): per pixel the inner
  products with its neighbours at the ``o = 145`` offsets of the pair table (``o d``,
  each product of a pair once), the Cholesky factorisation of the ``m x m`` system
  (``m^3 / 6``) and its two triangular solves (``m^2``), and the residual (``m d``).
  CRD runs on a crop (``--cr-size``, 250 x 250 by default: it takes over a minute at
  10^6 pixels); its count is for the crop.

Spectral Python's ``spectral.rx`` is timed on the same float32 cube and on a float64
copy of it (made outside the timer): on float32 it accumulates in float32. The table's
last column is the largest relative difference of its scores from GRX's (``ridge=0``),
after its ``n - 1`` covariance is brought to GRX's ``n``.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/bench_rx_floor.py \
        [--rows 1000 --cols 1000 --bands 50] [--repeats 5] [--cr-size 250] [--cr-repeats 3]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from rednmf.datasets import make_scene
from rednmf.detectors.cr import CRD, ring_offsets
from rednmf.detectors.rx import GRX, LRX


def _seconds(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def multiply_add_rate() -> float:
    """Float64 multiply-adds per second of a 2000 x 2000 matrix product (best of 3)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 2000, 2000))
    return 2000**3 / min(_seconds(lambda: a @ b) for _ in range(3))


def grx_ops(n: int, d: int) -> float:
    return 2.0 * n * d * d


def lrx_ops(n: int, d: int, k: int) -> float:
    p = (k + 1) * (k + 2) / 2
    per_pixel = k * (k + 1) / 2 + 9 * p + k * (k + 1) + k**3 / 6 + k * k
    return n * (d * d / 2 + d * k) + n * per_pixel


def crd_ops(n: int, d: int, inner: int, outer: int) -> float:
    m = ring_offsets(inner, outer)[0].size
    reach = 2 * (outer // 2)
    offsets = (reach + 1) * (2 * reach + 1) - reach  # the half plane of the pair table
    return n * (offsets * d + m**3 / 6 + m * m + m * d)


def timed(runs: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median seconds of each run, the runs interleaved ``repeats`` times (after one warm-up)."""
    for fn in runs.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            times[name].append(_seconds(fn))
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--cols", type=int, default=1000)
    parser.add_argument("--bands", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cr-size", type=int, default=250)
    parser.add_argument("--cr-repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import spectral

    cube, _ = make_scene(rows=args.rows, cols=args.cols, bands=args.bands, random_state=0)
    cube = np.asarray(cube, dtype=np.float32)
    n, d = args.rows * args.cols, args.bands
    mib = cube.nbytes / 2**20
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
        f"one BLAS thread; scene {args.rows} x {args.cols} x {d} float32 ({mib:.0f} MiB); "
        f"medians of {args.repeats} (CRD: {args.cr_repeats})"
    )
    with threadpool_limits(limits=1, user_api="blas"):
        rate = multiply_add_rate()
        print(f"float64 multiply-adds per second (2000^3 product, best of 3): {rate / 1e9:.1f} G")
        print()

        cube64 = cube.astype(np.float64)
        t = timed(
            {
                "grx": lambda: GRX().fit(cube),
                "spectral": lambda: spectral.rx(cube),
                "spectral64": lambda: spectral.rx(cube64),
            },
            args.repeats,
        )
        ours = GRX(ridge=0.0).fit(cube).decision_scores_
        factor = (n - 1) / n  # Spectral's covariance divides by n - 1

        def rel(other: np.ndarray) -> float:
            return float(np.max(np.abs(np.asarray(other) / factor - ours) / ours))

        diff32, diff64 = rel(spectral.rx(cube)), rel(spectral.rx(cube64))
        print("| run | s | s / GRX's | max rel. diff of scores from GRX |")
        print("|---|---|---|---|")
        print(f"| GRX `fit` | {t['grx']:.3f} | 1 | – |")
        print(f"| `spectral.rx`, float32 cube | {t['spectral']:.3f} "
              f"| {t['spectral'] / t['grx']:.2f} | {diff32:.1e} |")  # fmt: skip
        print(f"| `spectral.rx`, float64 copy | {t['spectral64']:.3f} "
              f"| {t['spectral64'] / t['grx']:.2f} | {diff64:.1e} |")  # fmt: skip
        print()

        t_lrx = timed({"lrx": lambda: LRX().fit(cube)}, args.repeats)["lrx"]
        size = min(args.cr_size, args.rows, args.cols)
        crop = np.ascontiguousarray(cube[:size, :size])
        t_crd = timed({"crd": lambda: CRD().fit(crop)}, args.cr_repeats)["crd"]
        lrx, crd = LRX(), CRD()
        rows = [
            ("GRX", f"{args.rows} x {args.cols}", t["grx"], grx_ops(n, d)),
            ("LRX", f"{args.rows} x {args.cols}", t_lrx, lrx_ops(n, d, lrx.n_pca)),
            ("CRD", f"{size} x {size}", t_crd, crd_ops(size * size, d, crd.inner, crd.outer)),
        ]
        print("| method | pixels | s | multiply-adds | floor s | s / floor |")
        print("|---|---|---|---|---|---|")
        for name, pixels, sec, ops in rows:
            floor = ops / rate
            print(f"| {name} | {pixels} | {sec:.3f} | {ops / 1e9:.2f} G | {floor:.3f} "
                  f"| {sec / floor:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
