"""How well does ``--far`` deliver the false-alarm rate it names, on the real scenes?

For every method (each with its defaults, seed 0) and every scene of the benchmark folders,
the score map is computed once and cached (``--cache``, outside the repository). Then for
each requested rate ``far`` the threshold of :func:`rednmf.thresholding.far_threshold` is
applied and the fraction of *background* pixels (ground truth 0) above it is measured.

Printed: one table per estimator, rows = methods, columns = far; each cell is the pooled
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

from rednmf.data import data_dir, list_scenes, load_benchmark
from rednmf.detectors.registry import get_detector, list_methods
from rednmf.thresholding import far_threshold

FARS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)


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
    print("| method | " + " | ".join(f"far {f:g}" for f in FARS) + " |")
    print("|---|" + "---|" * len(FARS))
    for method in methods:
        cells = []
        for far in FARS:
            flagged = total = 0
            ratios = []
            for scores, gt in results[method]:
                t = far_threshold(scores, far)
                bg = (~gt) & np.isfinite(scores)
                n = int(np.count_nonzero(scores[bg] > t))
                flagged += n
                total += int(bg.sum())
                ratios.append(n / bg.sum() / far)
            cells.append(f"{flagged / total / far:.2f} [{min(ratios):.2f}..{max(ratios):.2f}]")
        print(f"| {method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
