"""Local dual-window RX: rednmf's box-filter LRX against Spectral Python's ``rx``.

Both run on the same input: a crop of ABU Airport-1 projected on its leading
principal components (float64). ``spectral.rx(X, window=(inner, outer))``
estimates a covariance per pixel in a Python loop; rednmf's
:class:`~rednmf.detectors.rx.LRX` (``ridge=0``, ``n_pca=None``) uses box
filters and batched solves.

Agreement is checked on the interior pixels, where both windows lie fully
inside the image (Spectral shifts the outer window at the border, rednmf
clips it). Spectral's window covariance divides by ``n - 1`` and rednmf's by
``n`` (``n = outer**2 - inner**2``), so Spectral's score is ``(n - 1) / n``
times ours; the table's ``max rel diff`` is measured after that factor.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_lrx_vs_spectral.py \
        [--sizes 50 100] [--n-pca 20] [--inner 7] [--outer 21]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from rednmf.datasets import load_benchmark
from rednmf.detectors.rx import LRX
from rednmf.scoring.cube import pca_project


def _time(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    assert out is not None
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", default="abu-airport-1")
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--n-pca", type=int, default=20)
    parser.add_argument("--inner", type=int, default=7)
    parser.add_argument("--outer", type=int, default=21)
    parser.add_argument(
        "--slow", type=float, default=20.0, help="time one Spectral run only above this (s)"
    )
    args = parser.parse_args(argv)

    import spectral

    cube, _ = load_benchmark(args.scene)
    inner, outer = args.inner, args.outer
    n = outer**2 - inner**2
    factor = (n - 1) / n
    ho = outer // 2
    print(
        f"scene {args.scene}, {args.n_pca} PCs, window (inner, outer) = ({inner}, {outer}), "
        f"{n} background pixels; Spectral score = (n-1)/n * ours = {factor:.6f} * ours"
    )
    print()
    print(
        "| size | ours s (median of 3) | spectral s | runs | ratio | interior px | max rel diff |"
    )
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        crop = np.asarray(cube[:size, :size], dtype=np.float64)
        X = pca_project(crop, args.n_pca).astype(np.float64)
        det = LRX(inner=inner, outer=outer, ridge=0.0, n_pca=None)
        t_ours, ours = _time(lambda X=X, det=det: det.fit(X).decision_scores_, 3)
        t_spec, spec = _time(lambda X=X: spectral.rx(X, window=(inner, outer)), 1)
        runs = 1
        if t_spec < args.slow:
            t_more, _ = _time(lambda X=X: spectral.rx(X, window=(inner, outer)), 2)
            t_spec = statistics.median([t_spec, t_more, t_more])
            runs = 3
        a = ours[ho : size - ho, ho : size - ho] * factor
        b = np.asarray(spec)[ho : size - ho, ho : size - ho]
        rel = float(np.max(np.abs(a - b) / np.abs(b)))
        print(
            f"| {size}x{size}x{X.shape[2]} | {t_ours:.3f} | {t_spec:.2f} | {runs} "
            f"| {t_spec / t_ours:.0f}x | {a.size} | {rel:.1e} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
