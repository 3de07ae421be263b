"""How well does ``--far`` deliver the false-alarm rate it names, on the real scenes?

For every method (each with its defaults, seed 0) and every scene of the benchmark folders,
the score map is computed once and cached (``--cache``, outside the repository). Then for
each requested rate ``far`` the threshold of :func:`rednmf.thresholding.far_threshold` is
applied and the fraction of *background* pixels (ground truth 0) above it is measured.

Printed: one table per estimator (the GPD tail of :mod:`rednmf.thresholding`, and the
robust log-normal rule it replaced, kept here for comparison), rows = methods, columns =
far; each cell is the pooled
flagged background fraction over all scenes divided by the request (1.00 = exact), and in
brackets the smallest and largest per-scene ratio. The pooled ratio is the estimator's bias;
with ~10^4 background pixels per scene, a per-scene count at far = 1e-4 is about one pixel,
so per-scene ratios at the low rates are dominated by counting noise.

Usage::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/far_calibration.py \
        [--data DIR ...] [--methods grx,lrx,...] [--cache /tmp/rednmf-far-cache]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from rednmf.datasets import data_dir, list_scenes, load_benchmark
from rednmf.detectors.registry import get_detector, list_methods
from rednmf.thresholding import far_threshold

FARS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)


def lognormal_threshold(scores: np.ndarray, far: float) -> float:
    """The rule before the GPD tail: log-normal from the median and MAD of log-scores."""
    from statistics import NormalDist

    s = scores[np.isfinite(scores)].astype(np.float64)
    lo, hi = float(s.min()), float(s.max())
    eps = 1e-9 * (hi - lo)
    logs = np.log(s - lo + eps)
    centre = float(np.median(logs))
    spread = 1.4826 * float(np.median(np.abs(logs - centre))) or float(np.std(logs)) or 1.0
    return float(np.exp(centre + NormalDist().inv_cdf(1.0 - far) * spread) + lo - eps)


def cached_scores(method: str, path: Path, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """Scores of ``method`` on the scene ``path`` (computed once) and its ground truth."""
    target = cache / f"{path.stem}__{method}.npz"
    if target.is_file():
        with np.load(target) as z:
            return z["scores"], z["gt"]
    cube, gt = load_benchmark(path)
    start = time.perf_counter()
    det = get_detector(method, random_state=0) if method_has_seed(method) else None
    det = det or get_detector(method)
    det.fit(cube)
    print(f"  {method:12s} {path.stem:32s} {time.perf_counter() - start:7.1f} s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp.npz")
    np.savez(tmp, scores=det.decision_scores_, gt=np.asarray(gt) != 0)
    tmp.replace(target)
    return det.decision_scores_, np.asarray(gt) != 0


def method_has_seed(method: str) -> bool:
    return "random_state" in get_detector(method).get_params()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", type=Path, default=None)
    parser.add_argument("--methods", default=",".join(name for name, _ in list_methods()))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/rednmf-far-cache"))
    parser.add_argument("--compute-only", action="store_true")
    parser.add_argument(
        "--window-grid",
        action="store_true",
        help="also compare fit windows (lower x upper quantile, scores or log-scores)",
    )
    args = parser.parse_args()
    folders = args.data or [data_dir(), data_dir().parent / "had-extra"]
    scenes = [p for f in folders if f.is_dir() for p in list_scenes(f)]
    methods = [m for m in args.methods.split(",") if m]

    results: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for method in methods:
        results[method] = [cached_scores(method, p, args.cache) for p in scenes]
    if args.compute_only:
        return

    print(f"\n{len(scenes)} scenes: {', '.join(p.stem for p in scenes)}")
    print("cell: pooled flagged background fraction / far  [min..max per scene]\n")
    for label, rule in (
        ("GPD tail (rednmf.thresholding.far_threshold)", far_threshold),
        ("previous rule: robust log-normal", lognormal_threshold),
    ):
        print(f"\n{label}\n")
        _table(methods, results, rule)
    if args.window_grid:
        _window_grid(methods, results)


def _gpd_window_thresholds(s: np.ndarray, lo_q: float, hi_q: float) -> list[float]:
    """far_threshold with another fit window (the same truncated GPD fit)."""
    from scipy import stats

    from rednmf.thresholding import _fit_gpd_truncated

    u, c = np.quantile(s, [lo_q, hi_q])
    w = np.sort(s[(s > u) & (s <= c)])
    xi, sigma = _fit_gpd_truncated(w - u, c - u)
    p_u = w.size / s.size / stats.genpareto.cdf(c - u, xi, scale=sigma)
    return [
        float(np.quantile(s, 1 - f))
        if f >= p_u
        else u + stats.genpareto.isf(f / p_u, xi, scale=sigma)
        for f in FARS
    ]


def _window_grid(methods, results) -> None:
    """Cells (method x far, pooled) within 1.5x for several fit windows."""
    print("\nfit window | scale | pooled cells within 1.5x | max |log ratio|")
    print("|---|---|---|---|")
    for lo_q in (0.80, 0.90, 0.95):
        for hi_q in (0.98, 0.99, 0.995):
            for log in (False, True):
                ratios = []
                for method in methods:
                    flagged = np.zeros(len(FARS))
                    total = 0
                    for scores, gt in results[method]:
                        s = scores.ravel()
                        ok = np.isfinite(s)
                        if log:
                            span = np.nanmax(s) - np.nanmin(s)
                            s = np.log(s - np.nanmin(s) + 1e-9 * span)
                        ts = _gpd_window_thresholds(s[ok], lo_q, hi_q)
                        bg = ~gt.ravel() & ok
                        flagged += [np.count_nonzero(s[bg] > t) for t in ts]
                        total += int(bg.sum())
                    ratios.append(flagged / total / np.array(FARS))
                lr = np.abs(np.log(np.maximum(np.array(ratios), 1e-3)))
                within = int((lr <= np.log(1.5)).sum())
                scale = "log-scores" if log else "scores"
                print(f"| {lo_q}-{hi_q} | {scale} | {within}/{lr.size} | {lr.max():.2f} |")


def _table(methods, results, rule) -> None:
    print("| method | " + " | ".join(f"far {f:g}" for f in FARS) + " |")
    print("|---|" + "---|" * len(FARS))
    for method in methods:
        cells = []
        for far in FARS:
            flagged = total = 0
            ratios = []
            for scores, gt in results[method]:
                t = rule(scores, far)
                bg = (~gt) & np.isfinite(scores)
                n = int(np.count_nonzero(scores[bg] > t))
                flagged += n
                total += int(bg.sum())
                ratios.append(n / bg.sum() / far)
            cells.append(f"{flagged / total / far:.2f} [{min(ratios):.2f}..{max(ratios):.2f}]")
        print(f"| {method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
